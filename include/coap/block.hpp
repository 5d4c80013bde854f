// RFC 7959 section 2.2: the value of the Block1 and Block2 options (NUM, M, SZX).
#pragma once

#include <coap/error.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <system_error>

namespace coap {

// NUM is at most 20 bits: the option value is at most 3 bytes.
inline constexpr std::uint32_t max_block_num = (1u << 20) - 1;
// SZX 7 is reserved (RFC 8323 section 6 gives it to BERT, which this build does not do).
inline constexpr std::uint8_t max_szx = 6;

struct block_value {
  std::uint32_t num = 0;
  bool more = false;
  std::uint8_t szx = 0;

  // 2^(SZX + 4) bytes. Out-of-range SZX values (7 and above) give 1024, never a shift past
  // the width of the type.
  constexpr std::size_t size() const noexcept {
    return std::size_t{16} << (szx <= max_szx ? szx : max_szx);
  }
  // The offset of this block in the body.
  constexpr std::size_t offset() const noexcept { return static_cast<std::size_t>(num) * size(); }

  friend constexpr bool operator==(const block_value&, const block_value&) = default;
};

// The option value as a uint (section 3.2 of RFC 7252 then makes it 0 to 3 bytes).
// Precondition: num <= max_block_num and szx <= max_szx; outside them the value is not one
// decode_block accepts (bits above SZX's three are masked, NUM's are not).
constexpr std::uint32_t encode(block_value b) noexcept {
  return (b.num << 4) | (b.more ? 0x8u : 0u) | (b.szx & 0x7u);
}

// invalid_block_option when SZX is 7 or NUM exceeds max_block_num.
std::error_code decode_block(std::uint32_t raw, block_value& out) noexcept;
// The same from the option's bytes (big-endian); invalid_block_option beyond 3 bytes.
std::error_code decode_block(std::span<const std::uint8_t> value, block_value& out) noexcept;

// The largest SZX whose block fits in `size` bytes: 0 below 32 bytes (16 is the smallest
// block), 6 from 1024 bytes on.
constexpr std::uint8_t szx_for_size(std::size_t size) noexcept {
  std::uint8_t szx = 0;
  while (szx < max_szx && (std::size_t{32} << szx) <= size) ++szx;
  return szx;
}

}  // namespace coap
