// RFC 8613 section 5 with RFC 8152 sections 5.3 and 10: COSE_Encrypt0 encryption and
// decryption with the context's keys, on Botan's AEAD modes. Each context keys one mode per
// direction once (the keys never change, section 3.2); every message then only sets its AAD
// and nonce, and works in the context's buffer: nothing is parsed, keyed or allocated per
// message once the buffer has grown.
#include <coap/security/oscore/context.hpp>

#include <botan/aead.h>
#include <botan/exceptn.h>
#include <botan/mem_ops.h>
#include <botan/secmem.h>

#include <memory>
#include <string>

namespace coap::oscore_core {
namespace detail {

struct aead_state {
  std::unique_ptr<Botan::AEAD_Mode> seal;  // Sender Key
  std::unique_ptr<Botan::AEAD_Mode> open;  // Recipient Key
  Botan::secure_vector<std::uint8_t> buffer;
};

void aead_state_deleter::operator()(aead_state* s) const noexcept { delete s; }

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

std::unique_ptr<Botan::AEAD_Mode> make_mode(aead_algorithm a, Botan::Cipher_Dir dir,
                                            std::span<const std::uint8_t> key) {
  auto mode = Botan::AEAD_Mode::create_or_throw(botan_name(a), dir);
  mode->set_key(key.data(), key.size());
  return mode;
}

// One message through `mode`: AAD, nonce, then the whole input in the state's buffer. On a
// failure the mode is reset (keys kept), ready for the next message.
void run(Botan::AEAD_Mode& mode, Botan::secure_vector<std::uint8_t>& buffer, std::span<const std::uint8_t> nonce,
         std::span<const std::uint8_t> aad, std::span<const std::uint8_t> input, std::vector<std::uint8_t>& output) {
  try {
    mode.set_associated_data(aad.data(), aad.size());
    mode.start(nonce.data(), nonce.size());
    buffer.assign(input.begin(), input.end());
    mode.finish(buffer);
    output.assign(buffer.begin(), buffer.end());
    Botan::secure_scrub_memory(buffer.data(), buffer.size());
  } catch (...) {
    mode.reset();
    if (!buffer.empty()) Botan::secure_scrub_memory(buffer.data(), buffer.size());
    throw;
  }
}

}  // namespace

std::error_code make_aead_state(aead_algorithm algorithm, std::span<const std::uint8_t> sender_key,
                                std::span<const std::uint8_t> recipient_key,
                                std::unique_ptr<aead_state, aead_state_deleter>& out) {
  try {
    std::unique_ptr<aead_state, aead_state_deleter> s(new aead_state);
    s->seal = make_mode(algorithm, Botan::ENCRYPTION, sender_key);
    s->open = make_mode(algorithm, Botan::DECRYPTION, recipient_key);
    out = std::move(s);
  } catch (const Botan::Exception&) {
    return oscore_error::unsupported_algorithm;
  }
  return {};
}

struct context_access {
  static aead_state* aead(const context& c) noexcept { return c.aead_.get(); }
};

std::error_code seal(const context& ctx, std::span<const std::uint8_t> nonce, std::span<const std::uint8_t> aad,
                     std::span<const std::uint8_t> plaintext, std::vector<std::uint8_t>& ciphertext) {
  aead_state* s = context_access::aead(ctx);
  if (!s) return oscore_error::sequence_number_exhausted;  // a moved-from context protects nothing
  try {
    run(*s->seal, s->buffer, nonce, aad, plaintext, ciphertext);
  } catch (const Botan::Exception&) {
    return oscore_error::unsupported_algorithm;
  }
  return {};
}

std::error_code open(const context& ctx, std::span<const std::uint8_t> nonce, std::span<const std::uint8_t> aad,
                     std::span<const std::uint8_t> ciphertext, std::vector<std::uint8_t>& plaintext) {
  aead_state* s = context_access::aead(ctx);
  if (!s) return oscore_error::decryption_failed;
  if (ciphertext.size() < s->open->minimum_final_size()) return oscore_error::decryption_failed;
  try {
    run(*s->open, s->buffer, nonce, aad, ciphertext, plaintext);
  } catch (const Botan::Exception&) {
    // Invalid_Authentication_Tag, or a malformed input Botan refuses: either way the object
    // did not verify.
    return oscore_error::decryption_failed;
  }
  return {};
}

}  // namespace detail
}  // namespace coap::oscore_core
