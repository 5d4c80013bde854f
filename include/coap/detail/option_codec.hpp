// RFC 7252 section 3.1: option delta/length encoding with the 13 and 14 extensions, shared
// by the UDP header (section 3) and the TCP frame (RFC 8323 section 3.2), which use it alike.
#pragma once

#include <coap/error.hpp>
#include <coap/option.hpp>
#include <coap/option_view.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace coap::detail {

inline constexpr std::uint8_t payload_marker = 0xff;
inline constexpr std::size_t max_option_length = 65535u + 269u;  // 65804

// Reads one option or the payload marker at p. On success p points past it and `number`
// holds the running option number. Returns true in `at_payload` when the marker was read
// (p then points at the payload, which is known to be non-empty).
inline std::error_code decode_option(const std::uint8_t*& p, const std::uint8_t* end,
                                     std::uint32_t& number, std::span<const std::uint8_t>& value,
                                     bool& at_payload) noexcept {
  at_payload = false;
  const std::uint8_t first = *p++;
  if (first == payload_marker) {
    if (p == end) return error::payload_marker_without_payload;
    at_payload = true;
    return {};
  }
  auto extended = [&](unsigned nibble, std::uint32_t& out) -> std::error_code {
    if (nibble < 13) {
      out = nibble;
    } else if (nibble == 13) {
      if (end - p < 1) return error::truncated_option;
      out = 13u + p[0];
      p += 1;
    } else if (nibble == 14) {
      if (end - p < 2) return error::truncated_option;
      out = 269u + ((std::uint32_t{p[0]} << 8) | p[1]);
      p += 2;
    } else {
      return error::reserved_option_nibble;
    }
    return {};
  };
  std::uint32_t delta = 0, length = 0;
  if (auto ec = extended(first >> 4, delta)) return ec;
  if (auto ec = extended(first & 0x0fu, length)) return ec;
  number += delta;
  if (number > 0xffffu) return error::option_number_overflow;
  if (static_cast<std::size_t>(end - p) < length) return error::truncated_option;
  value = {p, length};
  p += length;
  return {};
}

// Size of the header (first byte plus extensions) for one delta/length pair.
constexpr std::size_t option_header_size(std::uint32_t delta, std::size_t length) noexcept {
  auto ext = [](std::size_t v) -> std::size_t { return v < 13 ? 0 : v < 269 ? 1 : 2; };
  return 1 + ext(delta) + ext(length);
}

// Writes one option header at out (which has option_header_size bytes) and returns its end.
inline std::uint8_t* write_option_header(std::uint8_t* out, std::uint32_t delta,
                                         std::size_t length) noexcept {
  std::uint8_t* first = out++;
  auto nibble = [&](std::size_t v) -> unsigned {
    if (v < 13) return static_cast<unsigned>(v);
    if (v < 269) {
      *out++ = static_cast<std::uint8_t>(v - 13);
      return 13;
    }
    const std::size_t x = v - 269;
    *out++ = static_cast<std::uint8_t>(x >> 8);
    *out++ = static_cast<std::uint8_t>(x);
    return 14;
  };
  const unsigned d = nibble(delta);
  const unsigned l = nibble(length);
  *first = static_cast<std::uint8_t>((d << 4) | l);
  return out;
}

// Checks what encoding refuses for one option: its length bound, its registered bounds
// (request/response registry, or the signalling one when `signal` is a 7.xx code), and
// repetition of a non-repeatable option.
// (Internal checks return the enum, 0 for none: a std::error_code per option would cost an
// out-of-line category call each time.)
inline constexpr error no_error{};

inline error check_option(code c, std::uint16_t number, std::size_t length, bool repeated) noexcept {
  if (length > max_option_length) return error::option_value_too_long;
  const option_definition* def =
      c.is_signal() ? find_signal_option(c, number) : find_option(number);
  if (def) {
    if (length < def->min_length || length > def->max_length) return error::option_value_length;
    if (repeated && !def->repeatable) return error::option_not_repeatable;
  }
  return no_error;
}

// Encoded size of the options and payload of any message-like (options ascending by number).
template <class Message>
std::error_code encoded_body_size(const Message& m, std::size_t& size) noexcept {
  std::size_t n = 0;
  std::uint32_t previous = 0;
  bool first = true;
  for (const option_view o : m.options()) {
    if (!first && o.number() < previous) return error::invalid_message;
    if (const error e = check_option(m.code(), o.number(), o.value().size(),
                                     !first && o.number() == previous);
        e != no_error)
      return e;
    n += option_header_size(o.number() - previous, o.value().size()) + o.value().size();
    previous = o.number();
    first = false;
  }
  if (!m.payload().empty()) n += 1 + m.payload().size();
  size = n;
  return {};
}

// Writes options and payload; the caller has checked the size with encoded_body_size.
template <class Message>
std::uint8_t* write_body(const Message& m, std::uint8_t* out) noexcept {
  std::uint32_t previous = 0;
  for (const option_view o : m.options()) {
    out = write_option_header(out, o.number() - previous, o.value().size());
    if (!o.value().empty()) std::memcpy(out, o.value().data(), o.value().size());
    out += o.value().size();
    previous = o.number();
  }
  if (const auto payload = m.payload(); !payload.empty()) {
    *out++ = payload_marker;
    std::memcpy(out, payload.data(), payload.size());
    out += payload.size();
  }
  return out;
}

}  // namespace coap::detail
