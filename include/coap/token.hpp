// RFC 7252 section 5.3.1: the token, 0 to 8 bytes, kept inline (no allocation).
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <span>

namespace coap {

class token {
 public:
  static constexpr std::size_t max_size = 8;

  constexpr token() noexcept = default;

  // False (and the token left empty) when bytes is longer than 8.
  constexpr bool assign(std::span<const std::uint8_t> bytes) noexcept {
    if (bytes.size() > max_size) {
      size_ = 0;
      return false;
    }
    std::copy(bytes.begin(), bytes.end(), bytes_.begin());
    size_ = static_cast<std::uint8_t>(bytes.size());
    return true;
  }

  // Builds a token from an integer, big-endian, in `length` bytes (at most 8).
  static constexpr token from_uint(std::uint64_t value, std::size_t length = 8) noexcept {
    token t;
    length = std::min(length, max_size);
    for (std::size_t i = 0; i < length; ++i)
      t.bytes_[length - 1 - i] = static_cast<std::uint8_t>(value >> (8 * i));
    t.size_ = static_cast<std::uint8_t>(length);
    return t;
  }

  constexpr std::span<const std::uint8_t> bytes() const noexcept { return {bytes_.data(), size_}; }
  constexpr std::size_t size() const noexcept { return size_; }
  constexpr bool empty() const noexcept { return size_ == 0; }

  friend constexpr bool operator==(const token& a, const token& b) noexcept {
    return a.size_ == b.size_ && std::equal(a.bytes_.begin(), a.bytes_.begin() + a.size_,
                                            b.bytes_.begin());
  }

 private:
  std::array<std::uint8_t, max_size> bytes_{};
  std::uint8_t size_ = 0;
};

}  // namespace coap
