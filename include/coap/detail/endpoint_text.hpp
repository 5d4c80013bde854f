// libcoap's coap_session_str / coap_endpoint_str address text ("127.0.0.1:5683", "[::1]:5683"),
// written into a caller's buffer: a server makes a session (and its description) per new
// peer, and that must not allocate outside the session's Allocator (address::to_string and
// std::to_string return std::string).
#pragma once

#include <boost/asio/detail/socket_ops.hpp>
#include <boost/asio/ip/address.hpp>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>

namespace coap::detail {

// Longest text: "[" IPv6 with a scope id "]:" port. Asio bounds address text by this.
inline constexpr std::size_t max_endpoint_text = boost::asio::detail::max_addr_v6_str_len + 8;

// Appends `text` to `out` at `at`, truncating at the end of `out`.
inline std::size_t append_text(std::span<char> out, std::size_t at, std::string_view text) noexcept {
  const std::size_t n = std::min(text.size(), out.size() - std::min(at, out.size()));
  std::memcpy(out.data() + at, text.data(), n);
  return at + n;
}

// "address:port" ("[address]:port" for IPv6) into out; returns the length written.
template <class Endpoint>
std::size_t write_endpoint_text(std::span<char> out, const Endpoint& e) noexcept {
  namespace ops = boost::asio::detail::socket_ops;
  char address[boost::asio::detail::max_addr_v6_str_len];
  boost::system::error_code ec;
  const auto a = e.address();
  const char* text = nullptr;
  if (a.is_v6()) {
    const auto bytes = a.to_v6().to_bytes();
    text = ops::inet_ntop(BOOST_ASIO_OS_DEF(AF_INET6), bytes.data(), address, sizeof address,
                          a.to_v6().scope_id(), ec);
  } else {
    const auto bytes = a.to_v4().to_bytes();
    text = ops::inet_ntop(BOOST_ASIO_OS_DEF(AF_INET), bytes.data(), address, sizeof address, 0, ec);
  }
  std::size_t at = 0;
  if (a.is_v6()) at = append_text(out, at, "[");
  at = append_text(out, at, text ? std::string_view(text) : std::string_view("?"));
  if (a.is_v6()) at = append_text(out, at, "]");
  at = append_text(out, at, ":");
  char port[8];
  const auto r = std::to_chars(port, port + sizeof port, e.port());
  return append_text(out, at, std::string_view(port, static_cast<std::size_t>(r.ptr - port)));
}

// The same as a std::string (set-up paths: DTLS cookie identities).
template <class Endpoint>
std::string endpoint_string(const Endpoint& e) {
  char text[max_endpoint_text];
  return std::string(text, write_endpoint_text(text, e));
}

}  // namespace coap::detail
