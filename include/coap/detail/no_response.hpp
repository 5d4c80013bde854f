// RFC 7967 section 2.1: the No-Response option, a request's statement of the response classes
// its sender is not interested in. Used by the server (which suppresses those answers) and by
// the client (which completes at once when it asked for no answer of any class). Multicast's
// defaults (section 2.1's table for requests without the option) are the caller's concern:
// suppresses() answers for any value, given or defaulted.
#pragma once

#include <coap/code.hpp>
#include <coap/option.hpp>

#include <cstdint>
#include <optional>

namespace coap::detail {

// Section 2.1: bit (class - 1) of the value suppresses that class.
inline constexpr std::uint8_t no_response_2xx = 0x02;
inline constexpr std::uint8_t no_response_4xx = 0x08;
inline constexpr std::uint8_t no_response_5xx = 0x10;
inline constexpr std::uint8_t no_response_all = no_response_2xx | no_response_4xx | no_response_5xx;

// True when a request whose No-Response value is `value` does not want `response`: bit
// (class - 1) set, for classes 2, 4 and 5. Value 0 wants every answer (section 2.1).
constexpr bool suppresses(std::uint8_t value, code response) noexcept {
  const unsigned cls = response.code_class();
  if (cls != 2 && cls != 4 && cls != 5) return false;
  return (value >> (cls - 1)) & 1u;
}

// The No-Response value of a request when it carries a well-formed one. A value longer than
// its registered 0..1 bytes is treated like an unrecognized option (RFC 7252 section 5.4.3);
// No-Response is elective (258 is even), so it is ignored: nullopt, as without the option
// (group requests then take their default, detail/multicast_rules.hpp).
template <class Message>
std::optional<std::uint8_t> no_response_value(const Message& request) noexcept {
  const auto o = request.find(option_number::no_response);
  if (!o || o->value().size() > 1) return std::nullopt;
  return o->value().empty() ? std::uint8_t{0} : o->value()[0];
}

// The No-Response value of a unicast request: 0 (interested in everything) without one.
template <class Message>
std::uint8_t no_response_bits(const Message& request) noexcept {
  return no_response_value(request).value_or(0);
}

// The server's question: should `response` to `request` be left unsent?
template <class Message>
bool response_suppressed(const Message& request, code response) noexcept {
  return suppresses(no_response_bits(request), response);
}

// The client's question: does `request` ask for no answer at all (2.xx, 4.xx and 5.xx
// suppressed)? Then there is nothing to wait for.
template <class Message>
bool expects_no_response(const Message& request) noexcept {
  return (no_response_bits(request) & no_response_all) == no_response_all;
}

}  // namespace coap::detail
