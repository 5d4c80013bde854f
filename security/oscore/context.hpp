// RFC 8613 section 3: the security context (Common, Sender and Recipient Context), derived
// once from its input parameters (section 3.2), with its two mutable parts: the Sender
// Sequence Number (with the persistence of Appendix B.1.1) and the replay window.
#pragma once

#include <coap/security/oscore/algorithm.hpp>
#include <coap/security/oscore/cose.hpp>
#include <coap/security/oscore/error.hpp>
#include <coap/security/oscore/option_value.hpp>
#include <coap/security/oscore/replay_window.hpp>

#include <coap/message.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <system_error>
#include <vector>

namespace coap::oscore_core {

// Appendix B.1.1: before a Sender Sequence Number divisible by `interval` (K) is used, `store`
// saves it to non-volatile memory; after a reboot the context starts at the last saved value
// plus K plus `margin` (F). With a synchronous `store` that reports failure, F may be 0: the
// saved value itself was never used. F covers writes that can be lost after reporting success.
struct sequence_number_persistence {
  std::uint64_t interval = 0;  // K; 0 turns persistence off
  // Returns false when the value could not be saved: the number is then not used, and
  // protecting fails with oscore_error::sequence_number_not_stored.
  std::function<bool(std::uint64_t)> store;
  std::optional<std::uint64_t> last_stored;  // SSN1, read back at start-up
  std::uint64_t margin = 0;                  // F
};

// Section 3.2: the input parameters. Master Secret, Sender ID and Recipient ID are required;
// the others have the section's defaults.
struct context_params {
  std::vector<std::uint8_t> master_secret;
  std::vector<std::uint8_t> master_salt;            // default: empty
  std::optional<std::vector<std::uint8_t>> id_context;
  std::vector<std::uint8_t> sender_id;              // at most nonce length - 6 bytes
  std::vector<std::uint8_t> recipient_id;
  aead_algorithm algorithm = aead_algorithm::aes_ccm_16_64_128;
  // Section 5.1: whether requests carry the ID Context as 'kid context'.
  bool send_kid_context = false;
  std::size_t replay_window_size = replay_window::default_size;
  // Section 3.2.2 starts at 0; persistence.last_stored overrides this.
  std::uint64_t initial_sequence_number = 0;
  sequence_number_persistence persistence;
  // Appendix B.1.2, for a server that keeps no replay window across restarts: a request that
  // verifies is refused (4.01 with an Echo option, protected) until one echoes the value back;
  // its Partial IV then starts the window. Used by the context store of a server
  // (coap::set_oscore); libcoap's rfc8613_b_1_2, whose default is true.
  bool replay_window_recovery = false;
  // Appendix B.2 (libcoap's rfc8613_b_2, default false): the ID Context is renewed with fresh
  // nonces. A client starts from a random 8-byte ID1 in place of `id_context` and sends it as
  // 'kid context'; a server answers a request under an unknown ID Context for this Recipient
  // ID with a 4.01 carrying its nonce R2, then takes the client's R2||R3 as the context in use
  // (security/oscore/store.hpp). Needs the Master Secret kept for the life of the context.
  bool renew_id_context = false;
};

// Section 3.2.1: what HKDF derives. Secret: callers that only test derivation should drop it.
struct derived_keys {
  std::vector<std::uint8_t> sender_key;
  std::vector<std::uint8_t> recipient_key;
  std::vector<std::uint8_t> common_iv;
};
std::error_code derive_keys(const context_params& params, derived_keys& out);

namespace detail {
struct context_access;
// Section 5's AEAD keyed once with the Sender Key and once with the Recipient Key (the keys
// never change), and the buffer it works in (impl/aead.cpp). Botan stays out of this header.
struct aead_state;
struct aead_state_deleter {
  void operator()(aead_state* s) const noexcept;
};
// What protect.hpp reuses from one message to the next, so that protecting and verifying
// allocate nothing once the buffers have grown: the plaintext, the ciphertext, the AAD and
// the Inner message. Belongs to a context because a context is used by one thread at a time.
struct protect_scratch {
  std::vector<std::uint8_t> plaintext;
  std::vector<std::uint8_t> ciphertext;
  std::vector<std::uint8_t> aad;
  std::vector<std::uint8_t> aad_array;
  coap::message inner;
};
struct scratch_access;
}  // namespace detail

// Not copyable: two copies would reuse Sender Sequence Numbers, and so AEAD nonces. Not
// synchronized: one session (one strand) uses it at a time, which makes reading and
// incrementing the sequence number and checking and updating the replay window atomic
// (sections 7.2 and 7.4). The Master Secret and Salt are not kept (section 3.1 allows it);
// the keys are wiped on destruction.
class context {
 public:
  // Throws std::system_error (an oscore_error) for invalid parameters.
  explicit context(const context_params& params);
  // The non-throwing form.
  static std::optional<context> make(const context_params& params, std::error_code& ec);

  context(context&&) noexcept;
  context& operator=(context&&) noexcept;
  context(const context&) = delete;
  context& operator=(const context&) = delete;
  ~context();

  aead_algorithm algorithm() const noexcept { return algorithm_; }
  std::span<const std::uint8_t> sender_id() const noexcept { return sender_id_.bytes(); }
  std::span<const std::uint8_t> recipient_id() const noexcept { return recipient_id_.bytes(); }
  std::optional<std::span<const std::uint8_t>> id_context() const noexcept {
    if (!id_context_) return std::nullopt;
    return std::span<const std::uint8_t>(*id_context_);
  }
  bool sends_kid_context() const noexcept { return send_kid_context_; }
  // Appendix B.2 as libcoap 4.3.5 sends it: while a client's renewal is under way its 'kid
  // context' is the ID Context wrapped in a CBOR byte string (option_value.hpp).
  bool wraps_kid_context() const noexcept { return wrap_kid_context_; }
  void wrap_kid_context(bool wrap) noexcept { wrap_kid_context_ = wrap; }
  std::span<const std::uint8_t> common_iv() const noexcept { return common_iv_.bytes(); }

  // The next Sender Sequence Number to be used.
  std::uint64_t sender_sequence_number() const noexcept { return sequence_number_; }
  // Takes the next Sender Sequence Number (section 8.1 step 3), storing it first when
  // Appendix B.1.1 asks to. Fails past max_sequence_number (section 7.2.1).
  std::error_code next_sequence_number(std::uint64_t& out);

  replay_window& recipient_replay_window() noexcept { return replay_; }
  const replay_window& recipient_replay_window() const noexcept { return replay_; }

  // Section 8.2 step 2: whether a request's 'kid' (and 'kid context', when sent) name this
  // context's Recipient Context.
  bool matches(const option_fields& f) const noexcept;

 private:
  friend struct detail::context_access;
  friend struct detail::scratch_access;
  context() = default;
  std::error_code init(const context_params& params);
  void wipe() noexcept;

  aead_algorithm algorithm_ = aead_algorithm::aes_ccm_16_64_128;
  small_bytes<max_id_length> sender_id_;
  small_bytes<max_id_length> recipient_id_;
  std::optional<std::vector<std::uint8_t>> id_context_;
  bool send_kid_context_ = false;
  bool wrap_kid_context_ = false;
  std::vector<std::uint8_t> sender_key_;
  std::vector<std::uint8_t> recipient_key_;
  nonce common_iv_;
  std::uint64_t sequence_number_ = 0;
  sequence_number_persistence persistence_;
  replay_window replay_;
  std::unique_ptr<detail::aead_state, detail::aead_state_deleter> aead_;
  detail::protect_scratch scratch_;
};

namespace detail {
struct scratch_access {
  static protect_scratch& of(context& c) noexcept { return c.scratch_; }
};

// Keys the AEAD of `algorithm` with both keys (context::init); unsupported_algorithm when
// Botan lacks it.
std::error_code make_aead_state(aead_algorithm algorithm, std::span<const std::uint8_t> sender_key,
                                std::span<const std::uint8_t> recipient_key,
                                std::unique_ptr<aead_state, aead_state_deleter>& out);

// The AEAD of section 5 (RFC 8152 section 5.3), with the Sender Key (seal) or the Recipient
// Key (open). open fails with decryption_failed. Not reentrant for one context (its buffer):
// callers hold the context as section 7.2 says (one user at a time). `ciphertext` and
// `plaintext` are replaced, their capacity kept.
std::error_code seal(const context& ctx, std::span<const std::uint8_t> nonce, std::span<const std::uint8_t> aad,
                     std::span<const std::uint8_t> plaintext, std::vector<std::uint8_t>& ciphertext);
std::error_code open(const context& ctx, std::span<const std::uint8_t> nonce, std::span<const std::uint8_t> aad,
                     std::span<const std::uint8_t> ciphertext, std::vector<std::uint8_t>& plaintext);
}  // namespace detail

}  // namespace coap::oscore_core
