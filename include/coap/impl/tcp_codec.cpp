// RFC 8323 section 3.2: parsing the TCP frame format.
#include <coap/tcp_codec.hpp>

namespace coap::tcp_codec {
namespace {

// Reads Len and where the code byte starts; `header` is 0 when more bytes are needed.
std::error_code read_length(std::span<const std::uint8_t> s, std::uint64_t& len,
                            std::size_t& header) noexcept {
  header = 0;
  if (s.empty()) return {};
  const unsigned nibble = s[0] >> 4;
  if ((s[0] & 0x0fu) > 8) return error::invalid_token_length;
  const std::size_t ext = nibble < 13 ? 0 : nibble == 13 ? 1 : nibble == 14 ? 2 : 4;
  if (s.size() < 1 + ext) return {};
  switch (ext) {
    case 0: len = nibble; break;
    case 1: len = 13u + s[1]; break;
    case 2: len = 269u + ((std::uint32_t{s[1]} << 8) | s[2]); break;
    default:
      len = 65805ull + ((std::uint64_t{s[1]} << 24) | (std::uint64_t{s[2]} << 16) |
                        (std::uint64_t{s[3]} << 8) | s[4]);
  }
  header = 1 + ext;
  return {};
}

}  // namespace

std::error_code frame_size(std::span<const std::uint8_t> s, std::uint64_t& size) noexcept {
  size = 0;
  std::uint64_t len = 0;
  std::size_t header = 0;
  if (auto ec = read_length(s, len, header)) return ec;
  if (header == 0) return {};
  size = header + 1 + (s[0] & 0x0fu) + len;
  return {};
}

std::error_code parse(std::span<const std::uint8_t> f, message_view& out) noexcept {
  std::uint64_t len = 0;
  std::size_t header = 0;
  if (auto ec = read_length(f, len, header)) return ec;
  if (header == 0 || f.size() < header + 1) return error::truncated_header;
  const std::size_t tkl = f[0] & 0x0fu;
  if (f.size() - header - 1 < tkl) return error::truncated_token;
  const std::size_t rest = f.size() - header - 1 - tkl;
  if (rest < len) return error::truncated_frame;
  if (rest > len) return error::invalid_message;  // trailing bytes: not one frame
  const auto token = f.subspan(header + 1, tkl);
  std::span<const std::uint8_t> options, payload;
  std::uint64_t present = 0;
  if (auto ec = coap::detail::split_body(f.subspan(header + 1 + tkl), options, payload, present)) return ec;
  out = message_view({message_type::confirmable, coap::code(f[header]), 0, token, options, payload, present});
  return {};
}

}  // namespace coap::tcp_codec
