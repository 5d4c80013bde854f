// RFC 8323 section 5.3: the Capabilities and Settings Messages of a connection. What ours says
// (5.3.1 Max-Message-Size, 5.3.2 Block-Wise-Transfer), what the peer's told us, and whether a
// signal carries a critical option we do not know (5.2: a connection error). Transport-free:
// testable without a socket (tests/tcp_codec_test.cpp).
#pragma once

#include <coap/message_view.hpp>
#include <coap/option.hpp>
#include <coap/session_config.hpp>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <utility>

namespace coap::detail {

struct peer_capabilities {
  // Section 5.3.1: until the peer's CSM says otherwise, 1152 bytes.
  static constexpr std::size_t default_max_message_size = 1152;

  std::size_t max_message_size = default_max_message_size;
  bool block_wise = false;
  bool received = false;  // the peer's first CSM arrived

  // Our CSM: Max-Message-Size and Block-Wise-Transfer (section 5.3.2: we do RFC 7959
  // transfers, and BERT when the peer offers it too, section 6). `csm` has the CSM code.
  template <class Message>
  static void describe_ours(Message& csm, const session_config& c) {
    csm.add_uint_option(signal_option::max_message_size, static_cast<std::uint32_t>(c.max_message_size));
    csm.add_empty_option(signal_option::block_wise_transfer);
  }
  // A CSM from the peer; true when it is the first (the connection is now ready).
  bool update(const message_view& csm) noexcept {
    if (auto o = csm.find(signal_option::max_message_size)) max_message_size = std::max<std::size_t>(o->as_uint(), 64);
    block_wise = csm.find(signal_option::block_wise_transfer).has_value();
    return !std::exchange(received, true);
  }
  // Section 5.2: the first critical option that the signal's code does not define, if any.
  static std::optional<std::uint16_t> unknown_critical_option(const message_view& signal) noexcept {
    for (option_view o : signal.options())
      if (is_critical(o.number()) && !find_signal_option(signal.code(), o.number())) return o.number();
    return std::nullopt;
  }
};

}  // namespace coap::detail
