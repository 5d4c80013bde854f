// RFC 8613 section 5 with RFC 8152 sections 5.3 and 10: COSE_Encrypt0 encryption and
// decryption with the context's keys, on Botan's AEAD modes.
#include <coap/security/oscore/context.hpp>

#include <botan/aead.h>
#include <botan/exceptn.h>

#include <memory>
#include <string>

namespace coap::oscore_core {
namespace detail {

struct context_access {
  static std::span<const std::uint8_t> sender_key(const context& c) noexcept { return c.sender_key_; }
  static std::span<const std::uint8_t> recipient_key(const context& c) noexcept { return c.recipient_key_; }
};

namespace {

// Botan's name of a COSE algorithm. CCM's L is 15 minus the nonce length (RFC 3610).
std::string botan_name(aead_algorithm a) {
  const auto p = *parameters_of(a);
  switch (a) {
    case aead_algorithm::a128gcm: return "AES-128/GCM";
    case aead_algorithm::a192gcm: return "AES-192/GCM";
    case aead_algorithm::a256gcm: return "AES-256/GCM";
    case aead_algorithm::chacha20_poly1305: return "ChaCha20Poly1305";
    default: break;
  }
  return "AES-" + std::to_string(p.key_length * 8) + "/CCM(" + std::to_string(p.tag_length) + "," +
         std::to_string(15 - p.nonce_length) + ")";
}

std::unique_ptr<Botan::AEAD_Mode> make_mode(const context& ctx, Botan::Cipher_Dir dir,
                                            std::span<const std::uint8_t> key, std::span<const std::uint8_t> aad) {
  auto mode = Botan::AEAD_Mode::create_or_throw(botan_name(ctx.algorithm()), dir);
  mode->set_key(key.data(), key.size());
  mode->set_associated_data(aad.data(), aad.size());
  return mode;
}

}  // namespace

std::error_code seal(const context& ctx, std::span<const std::uint8_t> nonce, std::span<const std::uint8_t> aad,
                     std::span<const std::uint8_t> plaintext, std::vector<std::uint8_t>& ciphertext) {
  try {
    auto mode = make_mode(ctx, Botan::ENCRYPTION, context_access::sender_key(ctx), aad);
    mode->start(nonce.data(), nonce.size());
    Botan::secure_vector<std::uint8_t> buffer(plaintext.begin(), plaintext.end());
    mode->finish(buffer);
    ciphertext.assign(buffer.begin(), buffer.end());
  } catch (const Botan::Exception&) {
    return oscore_error::unsupported_algorithm;
  }
  return {};
}

std::error_code open(const context& ctx, std::span<const std::uint8_t> nonce, std::span<const std::uint8_t> aad,
                     std::span<const std::uint8_t> ciphertext, std::vector<std::uint8_t>& plaintext) {
  try {
    auto mode = make_mode(ctx, Botan::DECRYPTION, context_access::recipient_key(ctx), aad);
    if (ciphertext.size() < mode->minimum_final_size()) return oscore_error::decryption_failed;
    mode->start(nonce.data(), nonce.size());
    Botan::secure_vector<std::uint8_t> buffer(ciphertext.begin(), ciphertext.end());
    mode->finish(buffer);
    plaintext.assign(buffer.begin(), buffer.end());
  } catch (const Botan::Exception&) {
    // Invalid_Authentication_Tag, or a malformed input Botan refuses: either way the object
    // did not verify.
    return oscore_error::decryption_failed;
  }
  return {};
}

}  // namespace detail
}  // namespace coap::oscore_core
