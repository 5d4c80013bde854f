// The cipher suites of RFC 7252 section 9.1.3 first, then the common AES-GCM ones.
#include <coap/security/tls_policy.hpp>

namespace coap::security {

tls_policy::tls_policy(mode m)
    : ciphers{"AES-128/CCM(8)", "AES-128/GCM", "AES-256/GCM", "AES-128/CCM", "ChaCha20Poly1305"} {
  if (m == mode::psk) {
    key_exchange = {"PSK", "ECDHE_PSK"};
  } else {
    key_exchange = {"ECDH"};
    signature_methods = {"ECDSA", "RSA"};
  }
}

}  // namespace coap::security
