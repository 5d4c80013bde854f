// What the secure policies (psk, pki) share towards the transports: the record layer type
// (tls_channel), the shared state, and the stateless DTLS cookie check of RFC 6347 section 4.2.1.
#pragma once

#include <coap/security/detail/dtls_hello.hpp>
#include <coap/security/detail/tls_channel.hpp>

#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace coap::security::detail {

template <class State>
struct secure_policy_base {
  static constexpr bool secure = true;
  static constexpr std::string_view datagram_protocol = "DTLS";  // RFC 6347
  static constexpr std::string_view stream_protocol = "TLS";     // RFC 8323 section 9
  using state = State;
  using state_ptr = std::shared_ptr<const State>;
  template <class Session>
  using channel = tls_channel<Session, State>;

  static client_hello_result check_client_hello(std::span<const std::uint8_t> datagram, const std::string& peer,
                                                const State& server) {
    return detail::check_client_hello(datagram, peer, server.cookie_secret());
  }
};

}  // namespace coap::security::detail
