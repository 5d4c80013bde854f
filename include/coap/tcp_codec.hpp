// RFC 8323 section 3.2: the message format of CoAP over TCP (Len/TKL nibbles, 13/14/15
// extended length, code, token, options, payload; no type, no message ID).
#pragma once

#include <coap/detail/option_codec.hpp>
#include <coap/error.hpp>
#include <coap/message_view.hpp>

#include <cstddef>
#include <cstdint>
#include <span>

namespace coap::tcp_codec {

// The largest Len a 4-byte extended length can state: 0xffffffff + 65805.
inline constexpr std::uint64_t max_length = 0xffffffffull + 65805u;

// How long the frame at the front of a stream is. `size` is 0 when the bytes do not yet tell
// (the header is incomplete). An error means the stream is broken (TKL 9 to 15).
std::error_code frame_size(std::span<const std::uint8_t> stream, std::uint64_t& size) noexcept;

// Parses exactly one frame (as long as frame_size said) into a view of it. The view's type
// and message ID are meaningless on TCP and left at their defaults.
std::error_code parse(std::span<const std::uint8_t> frame, message_view& out) noexcept;

// Size of the Len field's extension for a given Len.
constexpr std::size_t extension_size(std::uint64_t len) noexcept {
  return len < 13 ? 0 : len < 269 ? 1 : len < 65805 ? 2 : 4;
}

namespace detail {
// The Len field (options, marker and payload) and the whole frame size.
template <class Message>
std::error_code frame_lengths(const Message& m, std::size_t& len, std::size_t& size) noexcept {
  const coap::code c = m.code();
  if (c.is_reserved_class()) return error::reserved_code_class;
  if (m.token().size() > 8) return error::token_too_long;
  if (auto ec = coap::detail::encoded_body_size(m, len)) return ec;
  if (len > max_length) return error::frame_length_overflow;
  size = 1 + extension_size(len) + 1 + m.token().size() + len;
  return {};
}
}  // namespace detail

template <class Message>
std::error_code encoded_size(const Message& m, std::size_t& size) noexcept {
  std::size_t len = 0;
  return detail::frame_lengths(m, len, size);
}

namespace detail {
// Writes a message that frame_lengths accepted (Len `len`) into `out`, which holds its size.
template <class Message>
std::size_t write(const Message& m, std::size_t len, std::uint8_t* out) noexcept {
  const std::size_t tkl = m.token().size();
  std::uint8_t* p = out;
  std::uint8_t* first = p++;
  unsigned nibble;
  if (len < 13) {
    nibble = static_cast<unsigned>(len);
  } else if (len < 269) {
    nibble = 13;
    *p++ = static_cast<std::uint8_t>(len - 13);
  } else if (len < 65805) {
    nibble = 14;
    const auto x = len - 269;
    *p++ = static_cast<std::uint8_t>(x >> 8);
    *p++ = static_cast<std::uint8_t>(x);
  } else {
    nibble = 15;
    const auto x = len - 65805;
    for (int shift = 24; shift >= 0; shift -= 8) *p++ = static_cast<std::uint8_t>(x >> shift);
  }
  *first = static_cast<std::uint8_t>((nibble << 4) | tkl);
  *p++ = m.code().raw();
  for (auto b : m.token()) *p++ = b;
  p = coap::detail::write_body(m, p);
  return static_cast<std::size_t>(p - out);
}
}  // namespace detail

template <class Message>
std::error_code encode(const Message& m, std::span<std::uint8_t> out, std::size_t& written) noexcept {
  std::size_t len = 0, size = 0;
  if (auto ec = detail::frame_lengths(m, len, size)) return ec;
  if (out.size() < size) return error::buffer_too_small;
  written = detail::write(m, len, out.data());
  return {};
}

// Encodes into a resizable byte container (std::vector, with any allocator); the message is
// checked and sized once.
template <class Message, class Container>
std::error_code encode(const Message& m, Container& out) {
  std::size_t len = 0, size = 0;
  if (auto ec = detail::frame_lengths(m, len, size)) return ec;
  out.resize(size);
  detail::write(m, len, out.data());
  return {};
}

}  // namespace coap::tcp_codec
