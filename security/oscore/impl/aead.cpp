// RFC 8613 section 5 with RFC 8152 sections 5.3 and 10: COSE_Encrypt0 encryption and
// decryption with the context's keys. Each context keys its ciphers once (the keys never
// change, section 3.2). The AES-CCM algorithms (RFC 8152 section 10.2, the mandatory one
// among them) are RFC 3610's CCM written here over one AES block encryption, in stack
// buffers: Botan 2's CCM mode allocates five secure_vectors per message. The block encryption
// is the CPU's AES instructions where it has them (x86-64 AES-NI: the round keys expanded once
// here, FIPS 197 section 5.2, and no call into a library per block: a protected request and
// its response take about twenty blocks), else Botan's AES. GCM and ChaCha20/Poly1305 use
// Botan's AEAD modes, keyed once, in the context's buffer.
#include <coap/security/oscore/context.hpp>

#include <botan/aead.h>
#include <botan/block_cipher.h>
#include <botan/exceptn.h>
#include <botan/mem_ops.h>
#include <botan/secmem.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <string>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define COAP_OSCORE_AESNI 1
#else
#define COAP_OSCORE_AESNI 0
#endif

namespace coap::oscore_core {
namespace detail {

namespace {

#if COAP_OSCORE_AESNI
// FIPS 197 section 5.2's key expansion and section 5.1's cipher, with AES-NI. The round
// constants of aeskeygenassist must be immediates: one function per step.
#define COAP_AESNI __attribute__((target("aes,sse2")))

COAP_AESNI inline __m128i xor_prefixes(__m128i k) noexcept {
  k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
  k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
  return _mm_xor_si128(k, _mm_slli_si128(k, 4));
}
template <int Rcon>
COAP_AESNI inline __m128i next_key_128(__m128i k) noexcept {
  return _mm_xor_si128(xor_prefixes(k), _mm_shuffle_epi32(_mm_aeskeygenassist_si128(k, Rcon), 0xff));
}
// AES-256: even round keys from the previous even one and the odd one (RotWord, SubWord,
// Rcon); odd ones from the previous odd one and the even one (SubWord only).
template <int Rcon>
COAP_AESNI inline __m128i next_even_256(__m128i even, __m128i odd) noexcept {
  return _mm_xor_si128(xor_prefixes(even), _mm_shuffle_epi32(_mm_aeskeygenassist_si128(odd, Rcon), 0xff));
}
COAP_AESNI inline __m128i next_odd_256(__m128i odd, __m128i even) noexcept {
  return _mm_xor_si128(xor_prefixes(odd), _mm_shuffle_epi32(_mm_aeskeygenassist_si128(even, 0), 0xaa));
}

struct aesni_key {
  __m128i round[15] = {};  // (std::array of a vector type loses its alignment attribute)
  int rounds = 0;  // 10 (AES-128) or 14 (AES-256)

  COAP_AESNI void expand(std::span<const std::uint8_t> key) noexcept {
    auto load = [](const std::uint8_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); };
    auto& k = round;
    if (key.size() == 16) {
      rounds = 10;
      k[0] = load(key.data());
      k[1] = next_key_128<0x01>(k[0]);
      k[2] = next_key_128<0x02>(k[1]);
      k[3] = next_key_128<0x04>(k[2]);
      k[4] = next_key_128<0x08>(k[3]);
      k[5] = next_key_128<0x10>(k[4]);
      k[6] = next_key_128<0x20>(k[5]);
      k[7] = next_key_128<0x40>(k[6]);
      k[8] = next_key_128<0x80>(k[7]);
      k[9] = next_key_128<0x1b>(k[8]);
      k[10] = next_key_128<0x36>(k[9]);
    } else {
      rounds = 14;
      k[0] = load(key.data());
      k[1] = load(key.data() + 16);
      k[2] = next_even_256<0x01>(k[0], k[1]);
      k[3] = next_odd_256(k[1], k[2]);
      k[4] = next_even_256<0x02>(k[2], k[3]);
      k[5] = next_odd_256(k[3], k[4]);
      k[6] = next_even_256<0x04>(k[4], k[5]);
      k[7] = next_odd_256(k[5], k[6]);
      k[8] = next_even_256<0x08>(k[6], k[7]);
      k[9] = next_odd_256(k[7], k[8]);
      k[10] = next_even_256<0x10>(k[8], k[9]);
      k[11] = next_odd_256(k[9], k[10]);
      k[12] = next_even_256<0x20>(k[10], k[11]);
      k[13] = next_odd_256(k[11], k[12]);
      k[14] = next_even_256<0x40>(k[12], k[13]);
    }
  }
  COAP_AESNI void encrypt(const std::uint8_t* in, std::uint8_t* out) const noexcept {
    __m128i b = _mm_xor_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in)), round[0]);
    for (int r = 1; r < rounds; ++r) b = _mm_aesenc_si128(b, round[static_cast<std::size_t>(r)]);
    b = _mm_aesenclast_si128(b, round[static_cast<std::size_t>(rounds)]);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), b);
  }
  void wipe() noexcept { Botan::secure_scrub_memory(round, sizeof round); }
};
#undef COAP_AESNI
#endif

// One AES key's block encryption: the CPU's instructions when it has them, else Botan's.
class aes_encryptor {
 public:
  // Throws Botan::Exception for a key length AES does not have.
  explicit aes_encryptor(std::span<const std::uint8_t> key) {
#if COAP_OSCORE_AESNI
    if ((key.size() == 16 || key.size() == 32) && __builtin_cpu_supports("aes")) {
      ni_.expand(key);
      return;
    }
#endif
    botan_ = Botan::BlockCipher::create_or_throw("AES-" + std::to_string(key.size() * 8));
    botan_->set_key(key.data(), key.size());
  }
  aes_encryptor(const aes_encryptor&) = delete;
  aes_encryptor& operator=(const aes_encryptor&) = delete;
  ~aes_encryptor() {
#if COAP_OSCORE_AESNI
    ni_.wipe();
#endif
  }

  void encrypt(const std::uint8_t* in, std::uint8_t* out) const {
#if COAP_OSCORE_AESNI
    if (!botan_) return ni_.encrypt(in, out);
#endif
    botan_->encrypt(in, out);
  }
  void encrypt(std::uint8_t* block) const { encrypt(block, block); }

 private:
#if COAP_OSCORE_AESNI
  aesni_key ni_;
#endif
  std::unique_ptr<Botan::BlockCipher> botan_;  // null: the CPU's instructions
};

// RFC 3610 (CCM) with M = tag_length and L = 15 - nonce length, over one keyed AES.
class ccm {
 public:
  static constexpr std::size_t block = 16;

  ccm(std::span<const std::uint8_t> key, std::size_t tag_length) : aes_(key), tag_length_(tag_length) {}

  std::size_t tag_length() const noexcept { return tag_length_; }

  // Section 2.2 and 2.3: `output` = ciphertext || tag.
  bool seal(std::span<const std::uint8_t> nonce, std::span<const std::uint8_t> aad,
            std::span<const std::uint8_t> plaintext, std::vector<std::uint8_t>& output) const {
    std::array<std::uint8_t, block> tag{};
    if (!mac(nonce, aad, plaintext, tag)) return false;
    output.resize(plaintext.size() + tag_length_);
    std::array<std::uint8_t, block> s0{};
    crypt(nonce, plaintext, output.data(), s0);
    for (std::size_t i = 0; i < tag_length_; ++i) output[plaintext.size() + i] = tag[i] ^ s0[i];
    Botan::secure_scrub_memory(tag.data(), tag.size());
    return true;
  }

  // Section 2.5: decrypts, recomputes the tag over the plaintext and compares in constant
  // time; on a mismatch the plaintext is wiped and false returned.
  bool open(std::span<const std::uint8_t> nonce, std::span<const std::uint8_t> aad,
            std::span<const std::uint8_t> ciphertext, std::vector<std::uint8_t>& output) const {
    if (ciphertext.size() < tag_length_) return false;
    const std::size_t length = ciphertext.size() - tag_length_;
    output.resize(length);
    std::array<std::uint8_t, block> s0{};
    crypt(nonce, ciphertext.first(length), output.data(), s0);
    std::array<std::uint8_t, block> tag{};
    const bool computed = mac(nonce, aad, output, tag);
    for (std::size_t i = 0; i < tag_length_; ++i) tag[i] ^= s0[i];
    const bool ok = computed && Botan::constant_time_compare(tag.data(), ciphertext.data() + length, tag_length_);
    if (!ok) {
      if (!output.empty()) Botan::secure_scrub_memory(output.data(), output.size());
      output.clear();
    }
    return ok;
  }

 private:
  // Section 2.2: CBC-MAC over B_0, the encoded AAD and the message, each zero-padded to a block.
  bool mac(std::span<const std::uint8_t> nonce, std::span<const std::uint8_t> aad,
           std::span<const std::uint8_t> message, std::array<std::uint8_t, block>& x) const {
    const std::size_t l = block - 1 - nonce.size();
    if (l < 2 || l > 8) return false;
    if (l < 8 && (message.size() >> (8 * l)) != 0) return false;  // length must fit in L bytes
    std::array<std::uint8_t, block> b{};
    b[0] = static_cast<std::uint8_t>((aad.empty() ? 0 : 0x40) | (((tag_length_ - 2) / 2) << 3) | (l - 1));
    std::copy(nonce.begin(), nonce.end(), b.begin() + 1);
    for (std::size_t i = 0; i < l; ++i) b[block - 1 - i] = static_cast<std::uint8_t>(message.size() >> (8 * i));
    aes_.encrypt(b.data(), x.data());
    std::size_t at = 0;
    auto absorb = [&](std::span<const std::uint8_t> bytes) {
      while (!bytes.empty()) {
        const std::size_t n = std::min(block - at, bytes.size());
        for (std::size_t i = 0; i < n; ++i) x[at + i] ^= bytes[i];
        at += n;
        bytes = bytes.subspan(n);
        if (at == block) {
          aes_.encrypt(x.data());
          at = 0;
        }
      }
    };
    auto pad = [&] {
      if (at != 0) aes_.encrypt(x.data());
      at = 0;
    };
    if (!aad.empty()) {
      // Section 2.2: a length below 2^16 - 2^8 in two bytes, else 0xff 0xfe and four bytes.
      std::array<std::uint8_t, 6> length{};
      std::size_t n = 0;
      if (aad.size() < 0xff00) {
        length = {static_cast<std::uint8_t>(aad.size() >> 8), static_cast<std::uint8_t>(aad.size()), 0, 0, 0, 0};
        n = 2;
      } else if ((aad.size() >> 32) == 0) {
        length = {0xff, 0xfe, static_cast<std::uint8_t>(aad.size() >> 24), static_cast<std::uint8_t>(aad.size() >> 16),
                  static_cast<std::uint8_t>(aad.size() >> 8), static_cast<std::uint8_t>(aad.size())};
        n = 6;
      } else {
        return false;
      }
      absorb({length.data(), n});
      absorb(aad);
      pad();
    }
    absorb(message);
    pad();
    return true;
  }

  // Section 2.3: CTR with A_i = flags || nonce || i; S_0 (for the tag) into `s0`.
  void crypt(std::span<const std::uint8_t> nonce, std::span<const std::uint8_t> input, std::uint8_t* output,
             std::array<std::uint8_t, block>& s0) const {
    const std::size_t l = block - 1 - nonce.size();
    std::array<std::uint8_t, block> a{};
    a[0] = static_cast<std::uint8_t>(l - 1);
    std::copy(nonce.begin(), nonce.end(), a.begin() + 1);
    aes_.encrypt(a.data(), s0.data());
    std::array<std::uint8_t, block> s{};
    std::uint64_t counter = 0;
    for (std::size_t done = 0; done < input.size(); done += block) {
      ++counter;
      for (std::size_t i = 0; i < l; ++i) a[block - 1 - i] = static_cast<std::uint8_t>(counter >> (8 * i));
      aes_.encrypt(a.data(), s.data());
      const std::size_t n = std::min(block, input.size() - done);
      for (std::size_t i = 0; i < n; ++i) output[done + i] = input[done + i] ^ s[i];
    }
    Botan::secure_scrub_memory(s.data(), s.size());
  }

  aes_encryptor aes_;
  std::size_t tag_length_;
};

bool is_ccm(aead_algorithm a) noexcept {
  switch (a) {
    case aead_algorithm::aes_ccm_16_64_128:
    case aead_algorithm::aes_ccm_16_64_256:
    case aead_algorithm::aes_ccm_64_64_128:
    case aead_algorithm::aes_ccm_64_64_256:
    case aead_algorithm::aes_ccm_16_128_128:
    case aead_algorithm::aes_ccm_16_128_256:
    case aead_algorithm::aes_ccm_64_128_128:
    case aead_algorithm::aes_ccm_64_128_256:
      return true;
    default:
      return false;
  }
}

}  // namespace

struct aead_state {
  // CCM algorithms: one keyed AES per direction.
  std::unique_ptr<ccm> seal_ccm;  // Sender Key
  std::unique_ptr<ccm> open_ccm;  // Recipient Key
  // The others: Botan's modes.
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
    if (is_ccm(algorithm)) {
      const auto p = *parameters_of(algorithm);
      auto keyed = [&](std::span<const std::uint8_t> key) { return std::make_unique<ccm>(key, p.tag_length); };
      s->seal_ccm = keyed(sender_key);
      s->open_ccm = keyed(recipient_key);
    } else {
      s->seal = make_mode(algorithm, Botan::ENCRYPTION, sender_key);
      s->open = make_mode(algorithm, Botan::DECRYPTION, recipient_key);
    }
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
  if (s->seal_ccm) {
    if (!s->seal_ccm->seal(nonce, aad, plaintext, ciphertext)) return oscore_error::invalid_message;
    return {};
  }
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
  if (s->open_ccm) {
    if (!s->open_ccm->open(nonce, aad, ciphertext, plaintext)) return oscore_error::decryption_failed;
    return {};
  }
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
