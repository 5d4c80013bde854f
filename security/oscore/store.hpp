// RFC 8613 section 3: the security contexts one coap::context holds, shared by all of its
// OSCORE sessions. Section 8.2 step 2 (a server finds the Recipient Context by 'kid' and
// 'kid context') and section 7.2.1 (a Sender Sequence Number is never used twice under one
// key) make the set a single store: two client sessions made with the same parameters share
// one context and so one sequence number, rather than each starting from the same value and
// reusing nonces.
#pragma once

#include <coap/security/oscore/context.hpp>
#include <coap/security/oscore/option_value.hpp>

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <vector>

namespace coap::oscore_core {

class store {
 public:
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

 private:
  void share_sender(entry& e) noexcept;

  std::mutex mutex_;
  // Set-up state on the global heap, like the resources; entries never move (sessions keep
  // pointers) and stay until the store goes.
  std::vector<std::unique_ptr<entry>> entries_;
};

}  // namespace coap::oscore_core
