// RFC 7252 section 9.1 (DTLS 1.2 for CoAP: TLS_PSK_WITH_AES_128_CCM_8 in PreSharedKey mode,
// TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8 in Certificate mode) and RFC 8323 section 9 (TLS 1.2 for
// coaps+tcp) as a Botan 2 TLS::Policy. Botan's default policy allows neither PSK key exchange
// nor CCM(8); this one does, keeps the common AES-GCM suites for interoperability, and allows
// (D)TLS 1.2 only. Every field may be changed in a set-up hook (psk/pki configs' `setup`)
// before the first session uses the policy.
//
// Botan asks its policy for the cipher suite list (and the signature schemes) on every
// handshake, and its default builds them from the algorithm names each time: every known
// suite's names as strings, compared with ours, then sorted by string comparisons (issue 16:
// a third of a DTLS server's handshake time). This policy computes each list once for the
// field values it was computed from, and again only when a field has changed since.
#pragma once

#include <botan/credentials_manager.h>
#include <botan/tls_policy.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

namespace coap::security {

class tls_policy final : public Botan::TLS::Policy {
 public:
  enum class mode { psk, pki };
  explicit tls_policy(mode m);
  tls_policy(const tls_policy& other);
  tls_policy& operator=(const tls_policy& other);

  // Botan's names: "AES-128/CCM(8)", "AES-128/GCM", "AES-256/GCM", "ChaCha20Poly1305"...
  std::vector<std::string> ciphers;
  // "PSK", "ECDHE_PSK" (PSK mode); "ECDH" (certificates).
  std::vector<std::string> key_exchange;
  // "ECDSA", "RSA" (certificates).
  std::vector<std::string> signature_methods;
  // DTLS handshake retransmission (RFC 6347 section 4.2.4): first timeout, then doubling up to
  // the maximum.
  std::chrono::milliseconds dtls_initial{1000};
  std::chrono::milliseconds dtls_maximum{60000};
  // A server asks clients for a certificate (set from verify_peer_cert).
  bool request_client_certificate = false;

  std::vector<std::string> allowed_ciphers() const override { return ciphers; }
  std::vector<std::string> allowed_key_exchange_methods() const override { return key_exchange; }
  std::vector<std::string> allowed_signature_methods() const override { return signature_methods; }
  bool allow_tls10() const override { return false; }
  bool allow_tls11() const override { return false; }
  bool allow_tls12() const override { return true; }
  bool allow_dtls10() const override { return false; }
  bool allow_dtls12() const override { return true; }
  bool request_client_certificate_authentication() const override { return request_client_certificate; }
  size_t dtls_initial_timeout() const override { return static_cast<size_t>(dtls_initial.count()); }
  size_t dtls_maximum_timeout() const override { return static_cast<size_t>(dtls_maximum.count()); }
  // RFC 7925 section 4.4: no renegotiation.
  bool allow_client_initiated_renegotiation() const override { return false; }
  bool allow_server_initiated_renegotiation() const override { return false; }
  // Our own verification (pki.cpp) decides about revocation data: allow_no_crl.
  bool require_cert_revocation_info() const override { return false; }

  // Computed once per protocol version and field values (Botan's own computation, cached).
  std::vector<std::uint16_t> ciphersuite_list(Botan::TLS::Protocol_Version version, bool have_srp) const override;
  std::vector<Botan::TLS::Signature_Scheme> allowed_signature_schemes() const override;

 private:
  struct suites_entry {
    std::uint16_t version = 0;
    bool have_srp = false;
    std::vector<std::string> ciphers, key_exchange, signature_methods;  // what they came from
    std::vector<std::uint16_t> codes;
  };
  struct schemes_entry {
    bool valid = false;
    std::vector<std::string> signature_methods;
    std::vector<Botan::TLS::Signature_Scheme> schemes;
  };
  // Sessions on several threads may share one policy (one per endpoint or client session).
  mutable std::mutex cache_mutex_;
  mutable std::vector<suites_entry> suites_;
  mutable schemes_entry schemes_;
};

// The additional set-up hook (libcoap's additional_tls_setup_call_back): the Botan policy and
// credentials of the sessions being set up, before any handshake uses them.
using tls_setup_hook = std::function<void(tls_policy&, Botan::Credentials_Manager&)>;

}  // namespace coap::security
