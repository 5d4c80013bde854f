// RFC 7959 section 2.2: decoding Block1 and Block2 option values.
#include <coap/block.hpp>

namespace coap {

std::error_code decode_block(std::uint32_t raw, block_value& out) noexcept {
  const std::uint32_t num = raw >> 4;
  const auto szx = static_cast<std::uint8_t>(raw & 0x7u);
  if (num > max_block_num || szx > max_szx) return error::invalid_block_option;
  out = block_value{num, (raw & 0x8u) != 0, szx};
  return {};
}

std::error_code decode_block(std::span<const std::uint8_t> value, block_value& out) noexcept {
  if (value.size() > 3) return error::invalid_block_option;
  std::uint32_t raw = 0;
  for (std::uint8_t b : value) raw = (raw << 8) | b;
  return decode_block(raw, out);
}

}  // namespace coap
