// The error category of TLS alerts (RFC 5246 section 7.2, RFC 4279 section 2).
#include <coap/tls_alert.hpp>

#include <string>

namespace coap {
namespace {

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "coap.tls_alert"; }
  std::string message(int value) const override {
    switch (static_cast<tls_alert>(value)) {
      case tls_alert::close_notify: return "TLS alert: close notify";
      case tls_alert::unexpected_message: return "TLS alert: unexpected message";
      case tls_alert::bad_record_mac: return "TLS alert: bad record MAC";
      case tls_alert::record_overflow: return "TLS alert: record overflow";
      case tls_alert::handshake_failure: return "TLS alert: handshake failure";
      case tls_alert::bad_certificate: return "TLS alert: bad certificate";
      case tls_alert::unsupported_certificate: return "TLS alert: unsupported certificate";
      case tls_alert::certificate_revoked: return "TLS alert: certificate revoked";
      case tls_alert::certificate_expired: return "TLS alert: certificate expired";
      case tls_alert::certificate_unknown: return "TLS alert: certificate unknown";
      case tls_alert::illegal_parameter: return "TLS alert: illegal parameter";
      case tls_alert::unknown_ca: return "TLS alert: unknown CA";
      case tls_alert::access_denied: return "TLS alert: access denied";
      case tls_alert::decode_error: return "TLS alert: decode error";
      case tls_alert::decrypt_error: return "TLS alert: decrypt error";
      case tls_alert::protocol_version: return "TLS alert: protocol version";
      case tls_alert::insufficient_security: return "TLS alert: insufficient security";
      case tls_alert::internal_error: return "TLS alert: internal error";
      case tls_alert::user_canceled: return "TLS alert: user canceled";
      case tls_alert::no_renegotiation: return "TLS alert: no renegotiation";
      case tls_alert::unsupported_extension: return "TLS alert: unsupported extension";
      case tls_alert::unrecognized_name: return "TLS alert: unrecognized name";
      case tls_alert::unknown_psk_identity: return "TLS alert: unknown PSK identity";
      case tls_alert::no_application_protocol: return "TLS alert: no application protocol";
    }
    return "TLS alert " + std::to_string(value);
  }
};

}  // namespace

const std::error_category& tls_alert_category() noexcept {
  static const category instance;
  return instance;
}

}  // namespace coap
