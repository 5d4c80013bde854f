// RFC 5246 section 7.2 (TLS 1.2 alerts, also DTLS 1.2's, RFC 6347) and RFC 4279 section 2
// (unknown_psk_identity) as std::error_code: a failed handshake names the alert that ended it,
// whether the peer sent it or we did. No TLS library is needed to compare against these.
#pragma once

#include <system_error>

namespace coap {

enum class tls_alert {
  close_notify = 0,
  unexpected_message = 10,
  bad_record_mac = 20,
  record_overflow = 22,
  handshake_failure = 40,
  bad_certificate = 42,
  unsupported_certificate = 43,
  certificate_revoked = 44,
  certificate_expired = 45,
  certificate_unknown = 46,
  illegal_parameter = 47,
  unknown_ca = 48,
  access_denied = 49,
  decode_error = 50,
  decrypt_error = 51,
  protocol_version = 70,
  insufficient_security = 71,
  internal_error = 80,
  user_canceled = 90,
  no_renegotiation = 100,
  unsupported_extension = 110,
  unrecognized_name = 112,
  unknown_psk_identity = 115,
  no_application_protocol = 120,
};

const std::error_category& tls_alert_category() noexcept;

inline std::error_code make_error_code(tls_alert a) noexcept {
  return {static_cast<int>(a), tls_alert_category()};
}

}  // namespace coap

template <>
struct std::is_error_code_enum<coap::tls_alert> : std::true_type {};
