// RFC 7252 section 9 "NoSec": no security. Stateless; costs a session nothing.
#pragma once

#include <coap/policies.hpp>

#include <cstddef>
#include <string_view>

namespace coap {
namespace security {

struct no_sec {
  static constexpr bool secure = false;
  static constexpr std::string_view name = "NoSec";
  static constexpr std::string_view datagram_protocol = "UDP";
  static constexpr std::string_view stream_protocol = "TCP";
  // Nothing to share between sessions, and no record layer: a session holds an empty member.
  using state_ptr = std::nullptr_t;
  struct no_channel {
    template <class Session>
    explicit no_channel(Session&) noexcept {}
    // No handshake, so nobody is authenticated.
    static constexpr std::string_view authenticated_peer() noexcept { return {}; }
  };
  template <class Session>
  using channel = no_channel;
};
static_assert(security_policy<no_sec>);

}  // namespace security

using security::no_sec;

}  // namespace coap
