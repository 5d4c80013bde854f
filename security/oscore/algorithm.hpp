// RFC 8613 sections 3.2 and 5, RFC 8152 section 10 (COSE AEAD algorithms): the AEAD algorithms
// a security context may use, with the lengths that the key derivation and nonce need.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

namespace coap::oscore_core {

// COSE algorithm identifiers (RFC 8152 tables 9, 10 and 11; RFC 8152 section 10.3).
enum class aead_algorithm : std::int32_t {
  a128gcm = 1,
  a192gcm = 2,
  a256gcm = 3,
  aes_ccm_16_64_128 = 10,  // the default and mandatory one (section 3.2)
  aes_ccm_16_64_256 = 11,
  aes_ccm_64_64_128 = 12,
  aes_ccm_64_64_256 = 13,
  chacha20_poly1305 = 24,
  aes_ccm_16_128_128 = 30,
  aes_ccm_16_128_256 = 31,
  aes_ccm_64_128_128 = 32,
  aes_ccm_64_128_256 = 33,
};

struct aead_parameters {
  std::size_t key_length;
  std::size_t nonce_length;
  std::size_t tag_length;
};

// The lengths of a supported algorithm; empty for an unknown identifier.
constexpr std::optional<aead_parameters> parameters_of(aead_algorithm a) noexcept {
  switch (a) {
    case aead_algorithm::a128gcm: return aead_parameters{16, 12, 16};
    case aead_algorithm::a192gcm: return aead_parameters{24, 12, 16};
    case aead_algorithm::a256gcm: return aead_parameters{32, 12, 16};
    case aead_algorithm::aes_ccm_16_64_128: return aead_parameters{16, 13, 8};
    case aead_algorithm::aes_ccm_16_64_256: return aead_parameters{32, 13, 8};
    case aead_algorithm::aes_ccm_64_64_128: return aead_parameters{16, 7, 8};
    case aead_algorithm::aes_ccm_64_64_256: return aead_parameters{32, 7, 8};
    case aead_algorithm::chacha20_poly1305: return aead_parameters{32, 12, 16};
    case aead_algorithm::aes_ccm_16_128_128: return aead_parameters{16, 13, 16};
    case aead_algorithm::aes_ccm_16_128_256: return aead_parameters{32, 13, 16};
    case aead_algorithm::aes_ccm_64_128_128: return aead_parameters{16, 7, 16};
    case aead_algorithm::aes_ccm_64_128_256: return aead_parameters{32, 7, 16};
  }
  return std::nullopt;
}

// The longest nonce of the algorithms above, and so of a Common IV.
inline constexpr std::size_t max_nonce_length = 13;
// Section 5.2: the Partial IV is at most 5 bytes; section 7.2.1: below 2^40.
inline constexpr std::size_t max_partial_iv_length = 5;
inline constexpr std::uint64_t max_sequence_number = (std::uint64_t{1} << 40) - 1;
// Section 3.3: an ID is at most the nonce length minus 6 bytes.
inline constexpr std::size_t max_id_length = max_nonce_length - 6;

}  // namespace coap::oscore_core
