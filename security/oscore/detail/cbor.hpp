// RFC 8949 section 3 (RFC 7049 section 2.1): the few CBOR items OSCORE serializes (sections
// 3.2.1 and 5.4): arrays, byte and text strings, integers and nil. A writer only: OSCORE
// never parses CBOR.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace coap::oscore_core::detail {

class cbor_writer {
 public:
  explicit cbor_writer(std::vector<std::uint8_t>& out) noexcept : out_(out) {}

  void array(std::uint64_t items) { head(4, items); }
  void bytes(std::span<const std::uint8_t> b) {
    head(2, b.size());
    out_.insert(out_.end(), b.begin(), b.end());
  }
  void text(std::string_view s) {
    head(3, s.size());
    out_.insert(out_.end(), s.begin(), s.end());
  }
  void uint(std::uint64_t v) { head(0, v); }
  void integer(std::int64_t v) {
    // Major type 1 holds -1 - n.
    if (v >= 0) head(0, static_cast<std::uint64_t>(v));
    else head(1, static_cast<std::uint64_t>(-(v + 1)));
  }
  void nil() { out_.push_back(0xf6); }

 private:
  // The shortest head: the argument in the initial byte below 24, else in 1, 2, 4 or 8 bytes.
  void head(std::uint8_t major, std::uint64_t v) {
    const auto initial = static_cast<std::uint8_t>(major << 5);
    if (v < 24) {
      out_.push_back(static_cast<std::uint8_t>(initial | v));
      return;
    }
    int bytes = v <= 0xff ? 1 : v <= 0xffff ? 2 : v <= 0xffffffffu ? 4 : 8;
    const std::uint8_t info = bytes == 1 ? 24 : bytes == 2 ? 25 : bytes == 4 ? 26 : 27;
    out_.push_back(static_cast<std::uint8_t>(initial | info));
    for (int i = bytes - 1; i >= 0; --i) out_.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  }

  std::vector<std::uint8_t>& out_;
};

}  // namespace coap::oscore_core::detail
