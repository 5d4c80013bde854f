// RFC 7252 section 3: the message format of CoAP over UDP (4-byte header, token, options,
// payload). Parsing is strict and allocation-free; encoding refuses what may not be sent.
#pragma once

#include <coap/detail/option_codec.hpp>
#include <coap/error.hpp>
#include <coap/message_view.hpp>

#include <cstddef>
#include <cstdint>
#include <span>

namespace coap::udp_codec {

inline constexpr std::size_t header_size = 4;
inline constexpr std::uint8_t version = 1;

// The fixed header alone, for rejecting a message whose body is malformed: a CON that fails
// to parse still names the message ID that the RST must echo (section 4.2).
struct header {
  std::uint8_t version;
  message_type type;
  std::uint8_t token_length;
  coap::code code;
  std::uint16_t message_id;
};
std::error_code parse_header(std::span<const std::uint8_t> datagram, header& out) noexcept;

// Parses one datagram into a view of it.
std::error_code parse(std::span<const std::uint8_t> datagram, message_view& out) noexcept;

// Encoded size of a message (message or message_view); fails as encode would.
template <class Message>
std::error_code encoded_size(const Message& m, std::size_t& size) noexcept {
  const coap::code c = m.code();
  if (c.is_reserved_class() || c.is_signal()) return error::reserved_code_class;
  if (m.token().size() > 8) return error::token_too_long;
  std::size_t body = 0;
  if (auto ec = coap::detail::encoded_body_size(m, body)) return ec;
  if (c.is_empty() && (!m.token().empty() || body != 0)) return error::empty_message_not_empty;
  // Section 4.2/4.3: an ACK carries a response or nothing; a request is CON or NON.
  if (m.type() == message_type::acknowledgement && c.is_request()) return error::invalid_message;
  if (m.type() == message_type::reset && !c.is_empty()) return error::invalid_message;
  size = header_size + m.token().size() + body;
  return {};
}

namespace detail {
// The 4-byte header of section 3.
inline std::uint8_t* write_header(message_type type, std::size_t token_length, coap::code c, std::uint16_t message_id,
                                  std::uint8_t* p) noexcept {
  *p++ = static_cast<std::uint8_t>((version << 6) | (static_cast<unsigned>(type) << 4) | token_length);
  *p++ = c.raw();
  *p++ = static_cast<std::uint8_t>(message_id >> 8);
  *p++ = static_cast<std::uint8_t>(message_id);
  return p;
}

// Writes a message that encoded_size accepted into `out`, which holds its size.
template <class Message>
std::size_t write(const Message& m, std::uint8_t* out) noexcept {
  std::uint8_t* p = write_header(m.type(), m.token().size(), m.code(), m.message_id(), out);
  for (auto b : m.token()) *p++ = b;
  p = coap::detail::write_body(m, p);
  return static_cast<std::size_t>(p - out);
}
}  // namespace detail

// Encodes into out; `written` is the size on success. Nothing is allocated.
template <class Message>
std::error_code encode(const Message& m, std::span<std::uint8_t> out, std::size_t& written) noexcept {
  std::size_t size = 0;
  if (auto ec = encoded_size(m, size)) return ec;
  if (out.size() < size) return error::buffer_too_small;
  written = detail::write(m, out.data());
  return {};
}

// Section 4.1: an empty message (code 0.00, no token, nothing after the header): an ACK, an
// RST, or a CON ping. It is its header alone, so it needs no message and no allocation.
inline void encode_empty(message_type type, std::uint16_t message_id, std::span<std::uint8_t, header_size> out) noexcept {
  detail::write_header(type, 0, coap::code(), message_id, out.data());
}

// Encodes into a resizable byte container (std::vector, with any allocator); the message is
// checked once (this runs per response on a server).
template <class Message, class Container>
std::error_code encode(const Message& m, Container& out) {
  std::size_t size = 0;
  if (auto ec = encoded_size(m, size)) return ec;
  out.resize(size);
  detail::write(m, out.data());
  return {};
}

}  // namespace coap::udp_codec
