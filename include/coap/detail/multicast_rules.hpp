// RFC 7252 section 8.1 and 8.2, RFC 7967 section 2.1, RFC 7390 section 2.7: what a server does
// with a request that arrived at a multicast group: which requests it takes (NON only), which
// answers it suppresses (errors and empty answers, unless No-Response says otherwise) and
// when it sends the rest (a random point within the leisure). Pure functions: no socket.
#pragma once

#include <coap/code.hpp>
#include <coap/detail/no_response.hpp>
#include <coap/message_type.hpp>
#include <coap/message_view.hpp>
#include <coap/option.hpp>

#include <boost/asio/ip/address.hpp>

#include <chrono>
#include <cstdint>
#include <optional>

namespace coap::detail {

// Section 12.8 (IPv4 "All CoAP Nodes") and RFC 7252 section 12.8 / RFC 7390 (IPv6 link-local
// and site-local "All CoAP Nodes").
inline boost::asio::ip::address all_coap_nodes_v4() { return boost::asio::ip::make_address_v4("224.0.1.187"); }
inline boost::asio::ip::address all_coap_nodes_link_local() { return boost::asio::ip::make_address_v6("ff02::fd"); }
inline boost::asio::ip::address all_coap_nodes_site_local() { return boost::asio::ip::make_address_v6("ff05::fd"); }

// Section 8.1: a request to a group must be NON; a CON one is dropped unanswered, as libcoap
// does ("Invalid multicast packet received RFC7252 8.1"): no ACK from every member at once, no
// RST either. Anything but a request (a response, an empty message) is dropped too.
constexpr bool group_request_accepted(message_type t, code c) noexcept {
  return t == message_type::non_confirmable && c.is_request();
}

// RFC 7967 section 2.1: for a request to a group without No-Response, the server behaves as if
// it said "not interested in 4.xx and 5.xx" (RFC 7252 section 8.2: errors are not sent).
inline constexpr std::uint8_t group_default_no_response = no_response_4xx | no_response_5xx;

// Section 8.2 and RFC 7967: does the answer `c` (with `payload_size` bytes) to a group request
// go out? No-Response, when present, decides alone (RFC 7967 section 2.1 applies to multicast
// as well). Without it: no 4.xx or 5.xx, no empty message, no 2.05 Content without a payload
// (section 8.2: "if it only has an empty payload or an error response"). Other 2.xx answers
// go even without payload: their code is the news (2.04 Changed to "all lights off").
constexpr bool group_answer_sent(code c, std::size_t payload_size, std::optional<std::uint8_t> no_response) noexcept {
  if (c.is_empty() || c.is_request()) return false;
  if (no_response) return !suppresses(*no_response, c);
  if (suppresses(group_default_no_response, c)) return false;
  return !(c == code(response_code::content) && payload_size == 0);
}
inline bool group_answer_sent(const message_view& request, code c, std::size_t payload_size) noexcept {
  return group_answer_sent(c, payload_size, no_response_value(request));
}

// Section 8.2: a random point within the leisure, from a 64-bit random number (uniform up to
// a bias of leisure / 2^64, nothing at these scales).
constexpr std::chrono::milliseconds pick_leisure(std::chrono::milliseconds leisure, std::uint64_t random) noexcept {
  if (leisure.count() <= 0) return std::chrono::milliseconds(0);
  return std::chrono::milliseconds(static_cast<std::chrono::milliseconds::rep>(
      random % (static_cast<std::uint64_t>(leisure.count()) + 1)));
}

}  // namespace coap::detail
