// RFC 8613 section 6.1 (and section 2): the value of the OSCORE option, the compressed header
// of the COSE object: flags |0 0 0|h|k|n|, the Partial IV (n bytes), the 'kid context' length
// and bytes when h is set, and the 'kid' (the rest) when k is set.
#pragma once

#include <coap/security/oscore/algorithm.hpp>
#include <coap/security/oscore/cose.hpp>
#include <coap/security/oscore/error.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <system_error>

namespace coap::oscore_core {

// The fields of an OSCORE option value. On decoding, the spans point into the value decoded.
// A 'kid' may be present and empty (the empty Sender ID), hence the flags.
struct option_fields {
  std::span<const std::uint8_t> partial_iv;  // empty when absent (n = 0)
  bool has_kid = false;
  std::span<const std::uint8_t> kid;
  bool has_kid_context = false;
  std::span<const std::uint8_t> kid_context;
};

// The OSCORE option is 0 to 255 bytes long (section 2, figure 3).
inline constexpr std::size_t max_option_value_length = 255;
using option_value = small_bytes<max_option_value_length>;

namespace detail {
inline constexpr std::uint8_t flag_kid_context = 0x10;  // h
inline constexpr std::uint8_t flag_kid = 0x08;          // k
inline constexpr std::uint8_t partial_iv_length_mask = 0x07;  // n
inline constexpr std::uint8_t reserved_flags = 0xe0;
}  // namespace detail

// Strict: reserved flag bits, n = 6 or 7, a value shorter than its fields, bytes after the
// fields when no 'kid' is flagged, and a single 0x00 (all flags zero means an empty value,
// section 2) are malformed_message (section 8.2 step 2).
inline std::error_code decode_option_value(std::span<const std::uint8_t> value, option_fields& out) noexcept {
  out = option_fields{};
  if (value.empty()) return {};
  const std::uint8_t flags = value[0];
  if (flags == 0 || (flags & detail::reserved_flags)) return oscore_error::malformed_message;
  const std::size_t n = flags & detail::partial_iv_length_mask;
  if (n > max_partial_iv_length) return oscore_error::malformed_message;
  std::size_t at = 1;
  if (value.size() - at < n) return oscore_error::malformed_message;
  out.partial_iv = value.subspan(at, n);
  at += n;
  if (flags & detail::flag_kid_context) {
    if (value.size() - at < 1) return oscore_error::malformed_message;
    const std::size_t s = value[at++];
    if (value.size() - at < s) return oscore_error::malformed_message;
    out.has_kid_context = true;
    out.kid_context = value.subspan(at, s);
    at += s;
  }
  if (flags & detail::flag_kid) {
    out.has_kid = true;
    out.kid = value.subspan(at);
  } else if (at != value.size()) {
    return oscore_error::malformed_message;
  }
  return {};
}

// The inverse; the empty value when no field is present. invalid_message when a field does
// not fit (a Partial IV over 5 bytes, a 'kid context' over 255, a value over 255 bytes).
inline std::error_code encode_option_value(const option_fields& f, option_value& out) noexcept {
  if (f.partial_iv.size() > max_partial_iv_length) return oscore_error::invalid_message;
  if (f.has_kid_context && f.kid_context.size() > 255) return oscore_error::invalid_message;
  std::uint8_t flags = static_cast<std::uint8_t>(f.partial_iv.size());
  if (f.has_kid) flags |= detail::flag_kid;
  if (f.has_kid_context) flags |= detail::flag_kid_context;
  if (flags == 0) {
    out.assign({});
    return {};
  }
  std::array<std::uint8_t, max_option_value_length> b{};
  std::size_t n = 0;
  auto put = [&](std::span<const std::uint8_t> bytes) {
    if (max_option_value_length - n < bytes.size()) return false;
    for (auto x : bytes) b[n++] = x;
    return true;
  };
  b[n++] = flags;
  put(f.partial_iv);
  if (f.has_kid_context) {
    b[n++] = static_cast<std::uint8_t>(f.kid_context.size());
    if (!put(f.kid_context)) return oscore_error::invalid_message;
  }
  if (f.has_kid && !put(f.kid)) return oscore_error::invalid_message;
  out.assign({b.data(), n});
  return {};
}

// Appendix B.2 on the wire, as libcoap 4.3.5 sends it (src/oscore/oscore.c,
// oscore_encode_option_value): while a renewal is under way the 'kid context' field holds the
// ID Context wrapped in a CBOR byte string (RFC 8949 major type 2): 0x48 and 8 bytes for ID1
// or R2, 0x50 and 16 bytes for R2||R3. The wrapped value must still fit the field (255
// bytes), so the ID Context is at most 253 bytes.
inline constexpr std::size_t max_wrapped_id_context_length = 253;
using wrapped_kid_context = small_bytes<255>;

inline std::error_code wrap_kid_context(std::span<const std::uint8_t> id_context, wrapped_kid_context& out) noexcept {
  if (id_context.size() > max_wrapped_id_context_length) return oscore_error::invalid_kid_context;
  std::array<std::uint8_t, 255> b{};
  std::size_t n = 0;
  if (id_context.size() < 24) {
    b[n++] = static_cast<std::uint8_t>(0x40 | id_context.size());
  } else {
    b[n++] = 0x58;
    b[n++] = static_cast<std::uint8_t>(id_context.size());
  }
  for (auto x : id_context) b[n++] = x;
  out.assign({b.data(), n});
  return {};
}

// The inverse, strict: exactly one definite-length byte string with its shortest head and
// nothing after it, else invalid_kid_context. `out` points into `kid_context`.
inline std::error_code unwrap_kid_context(std::span<const std::uint8_t> kid_context,
                                          std::span<const std::uint8_t>& out) noexcept {
  if (kid_context.empty() || (kid_context[0] & 0xe0) != 0x40) return oscore_error::invalid_kid_context;
  const std::uint8_t info = kid_context[0] & 0x1f;
  std::size_t head = 1, length = info;
  if (info == 24) {
    if (kid_context.size() < 2 || kid_context[1] < 24) return oscore_error::invalid_kid_context;
    head = 2;
    length = kid_context[1];
  } else if (info > 24) {
    return oscore_error::invalid_kid_context;  // longer than a 'kid context' can be
  }
  if (kid_context.size() != head + length) return oscore_error::invalid_kid_context;
  out = kid_context.subspan(head);
  return {};
}

}  // namespace coap::oscore_core
