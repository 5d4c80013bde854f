// Errors of coap-cpp: one enum, one category (std::error_code), in Asio's and Beast's manner.
// Codec errors name the RFC 7252 section 3 / RFC 8323 section 3.2 rule the input broke.
#pragma once

#include <string>
#include <system_error>

namespace coap {

enum class error {
  // ---- Message format (RFC 7252 section 3, RFC 8323 section 3.2) ----
  truncated_header = 1,          // fewer bytes than the fixed header
  unsupported_version,           // Ver is not 1 (RFC 7252 section 3: silently ignored)
  invalid_token_length,          // TKL 9 to 15 (reserved)
  truncated_token,               // the token runs past the end of the message
  reserved_option_nibble,        // option delta or length 15 outside the payload marker
  truncated_option,              // an extended delta/length or a value runs past the end
  option_number_overflow,        // delta sum exceeds 65535
  payload_marker_without_payload,// 0xFF followed by nothing
  empty_message_not_empty,       // code 0.00 with a token, options or payload (section 4.1)
  truncated_frame,               // TCP: the Len field announces more than is there
  frame_length_overflow,         // TCP: the length does not fit the limits of this build
  reserved_code_class,           // code class 1, 6 or 7 over UDP (section 12.1)
  // ---- Encoding: refuses what may not be sent ----
  token_too_long,                // more than 8 bytes
  option_value_too_long,         // beyond 65804 bytes, the largest encodable option length
  option_value_length,           // outside the registered length bounds of the option
  option_not_repeatable,         // a non-repeatable option given more than once
  buffer_too_small,              // the output span cannot hold the encoded message
  message_too_large,             // larger than the peer's or the session's limit
  invalid_message,               // fields that no valid message can carry (e.g. ACK with a request code)
  // ---- URIs (RFC 7252 section 6) ----
  invalid_uri,                   // not a URI, or a relative reference
  unsupported_scheme,            // not coap, coaps, coap+tcp or coaps+tcp
  uri_has_fragment,              // section 6.4 step 3: fragments are not allowed
  invalid_port,                  // port out of range
  // ---- Link format (RFC 6690) ----
  invalid_link_format,
  // ---- Block-wise (RFC 7959) ----
  invalid_block_option,          // SZX 7 or a value longer than 3 bytes
  // ---- Sessions and exchanges (RFC 7252 section 4, RFC 8323 section 5) ----
  timeout,                       // MAX_RETRANSMIT exhausted, or no response in time
  reset_by_peer,                 // the peer answered with RST
  session_closed,                // the session ended before the exchange finished
  queue_full,                    // too many requests waiting on one session
  no_memory,                     // the session's allocator refused
  csm_timeout,                   // TCP: the peer's CSM did not arrive in time
  aborted_by_peer,               // TCP: the peer sent an Abort signal
  handshake_failed,              // (D)TLS handshake did not complete
  // ---- Security (RFC 7252 section 9, RFC 8323 section 9) ----
  // A TLS alert is its own error code: coap::tls_alert (tls_alert.hpp).
  handshake_timeout,             // the (D)TLS handshake did not finish in time
  security_not_configured,       // no PSK or PKI set-up for a secure session or endpoint
  invalid_credentials,           // a key, certificate or CRL could not be read or does not fit
  // ---- Block-wise transfer and Observe, client side (RFC 7959, RFC 7641) ----
  etag_mismatch,                 // a body's blocks kept changing ETag (RFC 7959 section 2.4)
  not_observable,                // the observation ended: an answer without Observe, or an error code
  // ---- RFC 8516, client side ----
  too_many_requests,             // the server answered 4.29 Too Many Requests: no request to it until its Max-Age passed
};

const std::error_category& error_category() noexcept;

inline std::error_code make_error_code(error e) noexcept {
  return {static_cast<int>(e), error_category()};
}

// True where the error ends the session rather than one exchange (cf. Boost.MySQL's
// is_fatal_error): callers reconnect on these and retry on the others.
bool is_fatal(std::error_code ec) noexcept;

}  // namespace coap

template <>
struct std::is_error_code_enum<coap::error> : std::true_type {};
