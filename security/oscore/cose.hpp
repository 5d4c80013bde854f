// RFC 8613 sections 3.2.1, 5, 5.2 and 5.4: the inputs of the COSE_Encrypt0 object that are not
// the message: the HKDF 'info', the Partial IV, the AEAD nonce and the AAD.
#pragma once

#include <coap/security/oscore/algorithm.hpp>
#include <coap/security/oscore/detail/cbor.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace coap::oscore_core {

// Section 3.2.1: info = [id, id_context / nil, alg_aead, type ("Key" or "IV"), L].
inline std::vector<std::uint8_t> kdf_info(std::span<const std::uint8_t> id,
                                          std::optional<std::span<const std::uint8_t>> id_context,
                                          aead_algorithm algorithm, std::string_view type,
                                          std::size_t length) {
  std::vector<std::uint8_t> out;
  detail::cbor_writer w(out);
  w.array(5);
  w.bytes(id);
  if (id_context) w.bytes(*id_context);
  else w.nil();
  w.integer(static_cast<std::int64_t>(algorithm));
  w.text(type);
  w.uint(length);
  return out;
}

// A byte string of at most N bytes kept inline: Partial IVs, IDs and nonces are short, and
// the state a session keeps per exchange should not allocate.
template <std::size_t N>
class small_bytes {
 public:
  small_bytes() noexcept = default;
  // False (and left empty) when longer than N.
  bool assign(std::span<const std::uint8_t> b) noexcept {
    if (b.size() > N) {
      size_ = 0;
      return false;
    }
    for (std::size_t i = 0; i < b.size(); ++i) bytes_[i] = b[i];
    size_ = b.size();
    return true;
  }
  std::span<const std::uint8_t> bytes() const noexcept { return {bytes_.data(), size_}; }
  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }

 private:
  std::array<std::uint8_t, N> bytes_{};
  std::size_t size_ = 0;
};

using partial_iv = small_bytes<max_partial_iv_length>;
using nonce = small_bytes<max_nonce_length>;

// Section 5: the Sender Sequence Number without leading zero bytes; 0 is the byte 0x00.
// The number must not exceed max_sequence_number.
inline partial_iv encode_partial_iv(std::uint64_t sequence_number) noexcept {
  std::array<std::uint8_t, max_partial_iv_length> b{};
  std::size_t n = 0;
  for (int shift = 32; shift >= 0; shift -= 8) {
    const auto byte = static_cast<std::uint8_t>(sequence_number >> shift);
    if (n || byte || shift == 0) b[n++] = byte;
  }
  partial_iv out;
  out.assign({b.data(), n});
  return out;
}

inline std::uint64_t decode_partial_iv(std::span<const std::uint8_t> piv) noexcept {
  std::uint64_t v = 0;
  for (auto b : piv) v = (v << 8) | b;
  return v;
}

// Section 5.2: S, the ID of the endpoint that made the Partial IV left-padded to the nonce
// length minus 6, and the Partial IV left-padded to 5 bytes, XORed with the Common IV.
// The caller guarantees id_piv.size() <= common_iv.size() - 6 and piv.size() <= 5.
inline nonce make_nonce(std::span<const std::uint8_t> common_iv, std::span<const std::uint8_t> id_piv,
                        std::span<const std::uint8_t> piv) noexcept {
  std::array<std::uint8_t, max_nonce_length> b{};
  const std::size_t n = common_iv.size();
  b[0] = static_cast<std::uint8_t>(id_piv.size());
  const std::size_t id_end = n - max_partial_iv_length;  // ID_PIV ends where the PIV field starts
  for (std::size_t i = 0; i < id_piv.size(); ++i) b[id_end - id_piv.size() + i] = id_piv[i];
  for (std::size_t i = 0; i < piv.size(); ++i) b[n - piv.size() + i] = piv[i];
  for (std::size_t i = 0; i < n; ++i) b[i] ^= common_iv[i];
  nonce out;
  out.assign({b.data(), n});
  return out;
}

// Section 5.4: aad_array = [oscore_version 1, [alg_aead], request_kid, request_piv, options].
// No Class I option is defined, so `options` is the empty byte string. Appended to `out`.
inline void append_aad_array(aead_algorithm algorithm, std::span<const std::uint8_t> request_kid,
                             std::span<const std::uint8_t> request_piv, std::vector<std::uint8_t>& out) {
  detail::cbor_writer w(out);
  w.array(5);
  w.uint(1);
  w.array(1);
  w.integer(static_cast<std::int64_t>(algorithm));
  w.bytes(request_kid);
  w.bytes(request_piv);
  w.bytes({});
}

inline std::vector<std::uint8_t> aad_array(aead_algorithm algorithm, std::span<const std::uint8_t> request_kid,
                                           std::span<const std::uint8_t> request_piv) {
  std::vector<std::uint8_t> out;
  append_aad_array(algorithm, request_kid, request_piv, out);
  return out;
}

// Section 5.4 with RFC 8152 section 5.3: AAD = Enc_structure ["Encrypt0", h'', external_aad],
// where external_aad is aad_array wrapped in a byte string. Into `out` (replaced; its capacity
// kept, so that a reused vector allocates nothing), `scratch` holding aad_array on the way.
inline void make_aad(aead_algorithm algorithm, std::span<const std::uint8_t> request_kid,
                     std::span<const std::uint8_t> request_piv, std::vector<std::uint8_t>& out,
                     std::vector<std::uint8_t>& scratch) {
  scratch.clear();
  append_aad_array(algorithm, request_kid, request_piv, scratch);
  out.clear();
  detail::cbor_writer w(out);
  w.array(3);
  w.text("Encrypt0");
  w.bytes({});
  w.bytes(scratch);
}

inline std::vector<std::uint8_t> make_aad(aead_algorithm algorithm, std::span<const std::uint8_t> request_kid,
                                          std::span<const std::uint8_t> request_piv) {
  std::vector<std::uint8_t> out, scratch;
  make_aad(algorithm, request_kid, request_piv, out, scratch);
  return out;
}

}  // namespace coap::oscore_core
