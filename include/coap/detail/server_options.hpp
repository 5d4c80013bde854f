// What a server session does around one request for RFC 8516 (4.29 Too Many Requests),
// RFC 9175 section 2 (Echo: freshness and amplification mitigation) and RFC 7967 (No-Response),
// whatever the transport: the state is constant per session (detail/echo.hpp,
// detail/rate_limit.hpp); the session's server_side calls these before and after the handler.
#pragma once

#include <coap/code.hpp>
#include <coap/detail/echo.hpp>
#include <coap/detail/no_response.hpp>
#include <coap/detail/option_codec.hpp>
#include <coap/detail/rate_limit.hpp>
#include <coap/message_view.hpp>
#include <coap/session_config.hpp>

#include <chrono>
#include <cstdint>

namespace coap::detail {

struct request_guards {
  echo_state echo;
  request_rate_limit rate;
};

// RFC 8516 section 3: 4.29 with Max-Age, the seconds after which the peer may try again.
template <class Message>
void make_too_many_requests(Message& response, std::uint32_t retry_after) {
  response.clear_options_and_payload();
  response.set_code(response_code::too_many_requests);
  response.add_uint_option(static_cast<std::uint16_t>(option_number::max_age), retry_after);
}

// RFC 9175 section 2.3/2.4: 4.01 Unauthorized with our Echo value, in place of any answer.
template <class Message, class Random>
void make_echo_challenge(Message& response, request_guards& guards, const session_config& config,
                         std::chrono::steady_clock::time_point now, Random&& random) {
  if (response.code() != code(response_code::unauthorized) || response.find(option_number::echo)) {
    response.clear_options_and_payload();
    response.set_code(response_code::unauthorized);
  }
  response.remove_option(static_cast<std::uint16_t>(option_number::echo));
  response.add_option(static_cast<std::uint16_t>(option_number::echo),
                      guards.echo.issue(now, config.echo_freshness, random));
}

// The size of a request as RFC 7252 section 3 frames it (over UDP: the datagram).
inline std::size_t datagram_size(const message_view& m) noexcept {
  const auto payload = m.payload().size();
  return 4 + m.token().size() + m.encoded_options().size() + (payload ? 1 + payload : 0);
}

// The size `response` will have with `token_size` bytes of token (0 when it cannot be encoded:
// the session answers 5.00 instead, which is small).
template <class Message>
std::size_t datagram_size(const Message& response, std::size_t token_size) noexcept {
  std::size_t body = 0;
  if (encoded_body_size(response, body)) return 0;
  return 4 + token_size + body;
}

}  // namespace coap::detail
