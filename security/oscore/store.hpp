// RFC 8613 section 3: the security contexts one coap::context holds, shared by all of its
// OSCORE sessions. Section 8.2 step 2 (a server finds the Recipient Context by 'kid' and
// 'kid context') and section 7.2.1 (a Sender Sequence Number is never used twice under one
// key) make the set a single store: two client sessions made with the same parameters share
// one context and so one sequence number, rather than each starting from the same value and
// reusing nonces. Appendix B.2 (ID Context re-derivation) keeps its state here too: a
// client's renewal, a server's pending R2 nonces (at most max_pending_renewals) and the
// context each renewal leaves in use.
#pragma once

#include <coap/security/oscore/context.hpp>
#include <coap/security/oscore/option_value.hpp>

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <vector>

namespace coap::oscore_core {

class store {
 public:
  struct renewal_state;  // Appendix B.2 (below)
  struct entry {
    oscore_core::context security_context;
    // Who a request verified with this context comes from, as request::authenticated_peer()
    // reports it: "oscore:" and the Recipient ID in hex ("oscore:01"), with "/" and the ID
    // Context in hex when there is one.
    std::string peer;
    // SHA-256 over the parameters that make the keys: two sets of parameters with the same IDs
    // but another Master Secret are different contexts.
    std::array<std::uint8_t, 32> fingerprint{};
    // The entry whose context protects this one's responses: itself, or the first entry with
    // the same Sender Context (same Master Secret, Salt, ID Context, Sender ID and AEAD, so
    // the same Sender Key and Common IV). A server with several recipients in one
    // configuration (libcoap's several recipient_id lines) then has one Sender Sequence
    // Number, and never uses a nonce twice under its key (section 7.2.1).
    entry* sender = this;
    std::array<std::uint8_t, 32> sender_fingerprint{};
    // Appendix B.1.2: false until a request echoed `echo` (contexts without recovery start
    // true). Guarded by mutex().
    bool window_verified = true;
    std::array<std::uint8_t, 8> echo{};
    // Appendix B.2, for a context made with renew_id_context (null otherwise).
    std::unique_ptr<renewal_state> renewal{};
    // Appendix B.2: a pending entry's 4.01 carries this as 'kid context' (R2, CBOR-wrapped).
    wrapped_kid_context response_kid_context{};
  };

  // Appendix B.2. The nonces are 8 bytes, as libcoap 4.3.5 makes them (R2 and R3 are what
  // makes the new keys fresh: section B.2 asks for random values long enough not to repeat).
  static constexpr std::size_t renewal_nonce_length = 8;
  // Pending R2 nonces kept per store: a 4.01 answered but no R2||R3 request yet. Each costs a
  // derived context; when all are taken, a new one replaces the oldest, whose client then
  // has to start over. Bounds what requests under made-up ID1 values (or replays of a
  // genuine one) can make a server keep.
  static constexpr std::size_t max_pending_renewals = 4;
  struct renewal_state {
    context_params params;  // the configured parameters, Master Secret included, to derive anew
    bool client = false;
    // Client: ID1, and where the renewal stands: waiting for the server's R2, then for a
    // response under R2||R3 (requests meanwhile wrap 'kid context'), then done.
    enum class step { waiting_for_r2, confirming, done } state = step::waiting_for_r2;
    std::array<std::uint8_t, renewal_nonce_length> id1{};
    // Server: the entry the latest renewal left in use for this Recipient ID (made at the first
    // renewal, then given each new context in place: sessions keep pointers to it).
    entry* renewed = nullptr;
  };

  // Appendix B.2 on a server: what a request no context matched led to (server_renewal_lookup),
  // kept by the session until the request verified (renewal_verified).
  struct renewal_lookup {
    entry* base = nullptr;                // the configured context of the request's 'kid'
    entry* existing = nullptr;            // a renewed context named by the wrapped 'kid context'
    std::size_t pending = max_pending_renewals;  // the R2 slot R2||R3 names (step 4)
    std::vector<std::uint8_t> id_context;        // ID1, or R2||R3
    std::optional<oscore_core::context> candidate;  // derived from it, verifies the request
    std::error_code error;                // why nothing was found
  };

  // Held while a session protects or verifies with an entry's context (its sequence number and
  // replay window change), so that sessions of one context on several threads stay safe.
  std::mutex& mutex() noexcept { return mutex_; }

  // A server's context (coap_new_oscore_recipient / coap_context_oscore_server): a second
  // context with the same Recipient ID and ID Context as one there is refused
  // (oscore_error::invalid_context_parameters), as a request could not tell them apart.
  std::error_code add(const context_params& params);
  // A client session's context: the one made earlier from the same parameters, or a new one.
  entry* find_or_add(const context_params& params, std::error_code& ec);
  // Section 8.2 step 2; nullptr when no context matches. Call with mutex() held.
  entry* find(const option_fields& request) noexcept;
  std::size_t size() const noexcept { return entries_.size(); }

  // ---- Appendix B.2, all with mutex() held ----
  // Server, after find() returned nullptr: the context to verify the request with when its
  // 'kid' names a context with renew_id_context and its 'kid context' is a wrapped ID1 or
  // R2||R3; nullptr otherwise (l.error tells why when it is not just "not found").
  context* server_renewal_lookup(const option_fields& request, renewal_lookup& l);
  // Server, once the request verified under l's context: for ID1, a pending entry holding
  // R2||ID1 (the session answers 4.01 with it: id_context_renewal); for R2||R3, the entry now
  // in use, which serves the request. nullptr and `ec` when a context could not be derived.
  entry* renewal_verified(renewal_lookup& l, bool& answer_4_01, std::error_code& ec);
  // Client: the context R2||ID1 to verify the server's 4.01 with; `r2` from its 'kid context'.
  std::error_code client_renewal_candidate(const entry& e, std::span<const std::uint8_t> r2,
                                           std::optional<context>& out);
  // Client, once the 4.01 verified: e's context becomes R2||R3 (a fresh R3), its sequence
  // number going on.
  std::error_code client_renewal_verified(entry& e, std::span<const std::uint8_t> r2);
  std::size_t pending_renewals() const noexcept;

 private:
  void share_sender(entry& e) noexcept;
  std::error_code derive(const context_params& base, std::span<const std::uint8_t> id_context,
                         std::optional<context>& out) const;

  struct pending_slot {
    std::unique_ptr<entry> e;  // made at first use, then reused: sessions keep pointers
    entry* base = nullptr;
    std::array<std::uint8_t, renewal_nonce_length> r2{};
    std::uint64_t stamp = 0;
    bool used = false;
  };
  std::vector<pending_slot> pending_;  // at most max_pending_renewals
  std::uint64_t pending_stamp_ = 0;

  std::mutex mutex_;
  // Set-up state on the global heap, like the resources; entries never move (sessions keep
  // pointers) and stay until the store goes.
  std::vector<std::unique_ptr<entry>> entries_;
};

}  // namespace coap::oscore_core
