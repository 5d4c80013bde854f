// RFC 7252 section 3: parsing the UDP message format.
#include <coap/udp_codec.hpp>

namespace coap::udp_codec {

std::error_code parse_header(std::span<const std::uint8_t> d, header& out) noexcept {
  if (d.size() < header_size) return error::truncated_header;
  out.version = d[0] >> 6;
  out.type = static_cast<message_type>((d[0] >> 4) & 3u);
  out.token_length = d[0] & 0x0fu;
  out.code = coap::code(d[1]);
  out.message_id = static_cast<std::uint16_t>((d[2] << 8) | d[3]);
  return {};
}

std::error_code parse(std::span<const std::uint8_t> d, message_view& out) noexcept {
  header h;
  if (auto ec = parse_header(d, h)) return ec;
  if (h.version != version) return error::unsupported_version;
  if (h.token_length > 8) return error::invalid_token_length;
  // Section 4.1: an empty message has nothing after the message ID.
  if (h.code.is_empty() && (h.token_length != 0 || d.size() != header_size))
    return error::empty_message_not_empty;
  if (d.size() < header_size + h.token_length) return error::truncated_token;
  const auto token = d.subspan(header_size, h.token_length);
  std::span<const std::uint8_t> options, payload;
  std::uint64_t present = 0;
  if (auto ec = coap::detail::split_body(d.subspan(header_size + h.token_length), options, payload, present))
    return ec;
  out = message_view({h.type, h.code, h.message_id, token, options, payload, present});
  return {};
}

}  // namespace coap::udp_codec
