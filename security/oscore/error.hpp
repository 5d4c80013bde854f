// RFC 8613 sections 7.2.1, 7.4, 8.2 and 8.4: why protecting or verifying an OSCORE message
// failed, as std::error_code, and the unprotected reply section 8.2 suggests for a request.
#pragma once

#include <coap/code.hpp>

#include <optional>
#include <string_view>
#include <system_error>

namespace coap {

enum class oscore_error {
  // ---- A received message (sections 8.2 and 8.4) ----
  security_context_not_found = 1,  // no Recipient Context for the 'kid' / 'kid context'
  malformed_message,               // the OSCORE option, COSE object or plaintext does not decode
  decryption_failed,               // the AEAD tag does not verify
  replay_detected,                 // the Partial IV was received before (section 7.4, 7.4.1)
  not_protected,                   // no OSCORE option where one was expected
  unexpected_observe,              // an inner Observe in a response to a non-Observe request
  freshness_required,              // Appendix B.1.2: verified, but the replay window is not yet
                                   // known: answered 4.01 with Echo (protected)
  outer_block_continue,            // not a failure: a block of a message cut into Outer Block1
                                   // blocks was kept (section 4.1.3.4.2): answered 2.31 Continue
  outer_block_incomplete,          // an Outer Block1 block out of order or of another message: 4.08
  outer_block_too_large,           // the reassembled message passed MAX_UNFRAGMENTED_SIZE: 4.13
  // ---- Protecting (sections 7.2.1, 4.1.3.7, 3.3) ----
  sequence_number_exhausted,       // the Sender Sequence Number passed 2^40 - 1
  sequence_number_not_stored,      // the persistence hook failed (Appendix B.1.1)
  nested_oscore,                   // the original message already has an OSCORE option
  invalid_message,                 // a request protected as a response, or the reverse
  unsupported_proxy_uri,           // a Proxy-Uri that cannot be split into options (4.1.3.3)
  // ---- Setting up a security context (section 3) ----
  unsupported_algorithm,           // an AEAD algorithm this build does not implement
  invalid_context_parameters,      // an ID longer than the nonce allows, a bad replay window
  // ---- Appendix B.2, ID Context re-derivation (after the others: their values stay) ----
  id_context_renewal,              // not a failure (server): a request verified under the client's
                                   // new ID1; answered 4.01, protected under R2||ID1, 'kid context' R2
  id_context_renewed,              // not a failure (client): that 4.01 verified; the request goes
                                   // again under R2||R3
  invalid_kid_context,             // a 'kid context' that is not one CBOR byte string (B.2 wire form)
  unexpected_kid_context,          // a response with a 'kid context' when no renewal is under way,
                                   // a second one for one request, or one that is not a 4.01
};

const std::error_category& oscore_error_category() noexcept;

inline std::error_code make_error_code(oscore_error e) noexcept {
  return {static_cast<int>(e), oscore_error_category()};
}

// Section 8.2: the unprotected response a server MAY send when verifying a request fails
// (with an Outer Max-Age of zero, section 4.1.3.1). Empty for errors that are not about a
// received request, and for errors of other categories.
struct oscore_error_reply {
  response_code code;
  std::string_view diagnostic;
};
std::optional<oscore_error_reply> error_reply(std::error_code ec) noexcept;

}  // namespace coap

template <>
struct std::is_error_code_enum<coap::oscore_error> : std::true_type {};
