// RFC 7252 section 3.2: one option as a number and a non-owning value, with typed readers.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace coap {

class option_view {
 public:
  constexpr option_view() noexcept = default;
  constexpr option_view(std::uint16_t number, std::span<const std::uint8_t> value) noexcept
      : number_(number), value_(value) {}

  constexpr std::uint16_t number() const noexcept { return number_; }
  constexpr std::span<const std::uint8_t> value() const noexcept { return value_; }

  std::string_view as_string() const noexcept {
    return {reinterpret_cast<const char*>(value_.data()), value_.size()};
  }

  // Section 3.2 uint: big-endian, leading zeros allowed on receipt. Values longer than four
  // bytes (no registered uint option has them) keep their low-order 32 bits.
  constexpr std::uint32_t as_uint() const noexcept {
    std::uint32_t v = 0;
    for (auto b : value_) v = (v << 8) | b;
    return v;
  }

 private:
  std::uint16_t number_ = 0;
  std::span<const std::uint8_t> value_;
};

}  // namespace coap
