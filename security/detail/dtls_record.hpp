// RFC 6347 section 4.1: the DTLS record header (type, version, epoch, 48-bit sequence number,
// length; 13 bytes) and walking the records that share a datagram.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>

namespace coap::security::detail {

inline constexpr std::size_t dtls_record_header = 13;

inline std::uint16_t dtls_epoch(const std::uint8_t* record) noexcept {
  return static_cast<std::uint16_t>(record[3] << 8 | record[4]);
}
inline std::uint64_t dtls_sequence(const std::uint8_t* record) noexcept {
  std::uint64_t seq = 0;
  for (int i = 5; i < 11; ++i) seq = seq << 8 | record[i];
  return seq;
}
inline void set_dtls_sequence(std::uint8_t* record, std::uint64_t seq) noexcept {
  for (int i = 10; i >= 5; --i, seq >>= 8) record[i] = static_cast<std::uint8_t>(seq);
}

// Calls f(record) for each record of `datagram` whose header is complete; a record whose
// length runs past the end is cut at the end.
template <class Byte, class F>
void for_each_dtls_record(std::span<Byte> datagram, F&& f) {
  for (std::size_t at = 0; at + dtls_record_header <= datagram.size();) {
    const std::size_t length = std::size_t{datagram[at + 11]} << 8 | datagram[at + 12];
    const std::size_t n = std::min(datagram.size() - at, dtls_record_header + length);
    f(datagram.subspan(at, n));
    at += n;
  }
}

}  // namespace coap::security::detail
