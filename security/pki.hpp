// RFC 7252 section 9.1.3.3 (Certificate mode; TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8) and RFC 5280
// (certificate path validation, CRLs): the security policy `pki` of
// coap::session<Transport, pki>, on Botan 2. Every field of libcoap's coap_dtls_pki_t has its
// counterpart in pki_config; coap_context_set_pki and coap_context_set_pki_root_cas are
// set_pki and set_pki_root_cas.
#pragma once

#include <coap/context.hpp>
#include <coap/policies.hpp>
#include <coap/security/detail/secure_policy.hpp>
#include <coap/security/detail/secure_state.hpp>
#include <coap/security/tls_policy.hpp>

#include <botan/certstor.h>
#include <botan/credentials_manager.h>
#include <botan/pkcs8.h>
#include <botan/x509_crl.h>
#include <botan/x509cert.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace coap::security {

// libcoap's coap_dtls_key_t: the CA (trusted, or the issuer to present), the certificate (its
// chain may follow it) and the private key, from files or from memory, PEM or DER (told apart
// by their content). The key may be PKCS #8 ("PRIVATE KEY", unencrypted), SEC 1 ("EC PRIVATE
// KEY", as `openssl ecparam -genkey` writes it, "EC PARAMETERS" block included) or PKCS #1
// ("RSA PRIVATE KEY"); it must be ECDSA or RSA and match the certificate.
struct pki_key {
  std::string ca_file, cert_file, key_file;            // COAP_PKI_KEY_PEM
  std::vector<std::uint8_t> ca, cert, key;             // COAP_PKI_KEY_PEM_BUF / COAP_PKI_KEY_ASN1

  static pki_key from_files(std::string ca_file, std::string cert_file, std::string key_file) {
    pki_key k;
    k.ca_file = std::move(ca_file);
    k.cert_file = std::move(cert_file);
    k.key_file = std::move(key_file);
    return k;
  }
  static pki_key from_memory(std::vector<std::uint8_t> ca, std::vector<std::uint8_t> cert,
                             std::vector<std::uint8_t> key) {
    pki_key k;
    k.ca = std::move(ca);
    k.cert = std::move(cert);
    k.key = std::move(key);
    return k;
  }
};

// What validate_cn_call_back is given, for each certificate of the peer's chain.
struct pki_cn_info {
  std::string_view cn;                    // the subject's CommonName
  std::span<const std::uint8_t> der;      // the certificate, DER
  unsigned depth;                         // 0: the peer's own certificate, 1: its issuer...
  bool validated;                         // the chain validated (or verification is off)
};

// libcoap's coap_dtls_pki_t.
struct pki_config {
  bool verify_peer_cert = true;           // validate the peer's certificate
  bool require_peer_cert = true;          // server: a client without a certificate fails
  bool allow_self_signed = false;         // a lone self-signed certificate is trusted
  bool allow_expired_certs = false;       // expiry (and not-yet-valid) is not an error
  bool cert_chain_validation = true;      // enforce cert_chain_verify_depth
  unsigned cert_chain_verify_depth = 3;   // intermediate CAs allowed between peer and root
  bool check_cert_revocation = false;     // consult the CRLs below
  bool allow_no_crl = true;               // a missing CRL is not an error
  bool allow_expired_crl = false;         // a CRL past its nextUpdate still counts
  std::vector<std::string> crl_files;     // PEM or DER
  std::vector<std::vector<std::uint8_t>> crls;
  // validate_cn_call_back: false rejects the peer (TLS alert bad_certificate).
  std::function<bool(const pki_cn_info&)> validate_cn;
  // validate_sni_call_back (server): the key to present for an SNI (nullopt: the default).
  std::function<std::optional<pki_key>(std::string_view sni)> validate_sni;
  std::string client_sni;                 // the SNI a client sends (empty: none)
  // Client: the host the server's certificate must name (RFC 7252 section 9.1.3.3): a DNS
  // name or IPv4 address in its SubjectAltName (DNS, IP, or the host of a CoAP URI), or its
  // CommonName when it has no SubjectAltName; exact matches, no wildcards. A mismatch fails
  // with bad_certificate. Empty: not checked (libcoap's default; validate_cn can check).
  // create_client from a coaps:// URI fills it with the URI's host (name or IPv4) when empty.
  // Checked only with verify_peer_cert. Botan 2 does not decode IPv6 addresses in a
  // SubjectAltName, so an IPv6 host matches only a CoAP URI there (and a URI is not filled
  // in for one).
  std::string verify_host;
  pki_key key;                            // own certificate, key and CA
  tls_setup_hook setup;                   // additional_tls_setup_call_back
};

// Loaded key material: the chain to present and its private key.
struct pki_identity {
  std::vector<Botan::X509_Certificate> chain;
  std::shared_ptr<Botan::Private_Key> key;
};

// The credentials, trust anchors, CRLs and policy that PKI sessions share: one per server
// endpoint, one per client session.
class pki_state final : public detail::secure_state {
 public:
  // `roots`: the context's root CAs (set_pki_root_cas), may be null. A failure is
  // error::invalid_credentials; `diagnostic` (when given) then says which file or buffer and
  // why (see load_pki_identity), and is emptied on success.
  static std::shared_ptr<pki_state> make(const pki_config& config, bool server,
                                         std::shared_ptr<const Botan::Certificate_Store_In_Memory> roots,
                                         std::error_code& ec, std::string* diagnostic = nullptr);

  const std::string& sni() const noexcept { return config_.client_sni; }

  // The tls_channel's hooks: path validation with this configuration's rules (throws
  // TLS_Exception with the alert; true when the chain reached a trusted certificate, false
  // when it was let through unverified or as an allowed self-signed one), and
  // require_peer_cert once the handshake is done.
  bool verify(const std::vector<Botan::X509_Certificate>& chain, Botan::Usage_Type usage,
              const std::string& hostname) const;
  void on_established(const Botan::TLS::Session& session) const;

  // A server caches the keys validate_sni gave, one per SNI, up to this many; a declined SNI
  // (nullopt) is not cached, so clients sending made-up names grow nothing. Beyond the cap,
  // the key of the latest uncached SNI lives in one slot until the next one replaces it (not
  // when the policy allows static RSA key exchange: then names beyond the cap get the default).
  static constexpr std::size_t max_cached_sni = 64;
  std::size_t cached_sni_keys() const noexcept { return by_sni_.size(); }

  // ---- Botan::Credentials_Manager ----
  std::vector<Botan::Certificate_Store*> trusted_certificate_authorities(const std::string& type,
                                                                         const std::string& context) override;
  std::vector<Botan::X509_Certificate> cert_chain(const std::vector<std::string>& key_types, const std::string& type,
                                                  const std::string& context) override;
  Botan::Private_Key* private_key_for(const Botan::X509_Certificate& cert, const std::string& type,
                                      const std::string& context) override;
  Botan::SymmetricKey psk(const std::string& type, const std::string& context, const std::string& identity) override;

  pki_state() : secure_state(tls_policy::mode::pki) {}

 private:
  const pki_identity* identity_for(const std::string& sni);

  pki_config config_;
  pki_identity own_;
  std::map<std::string, pki_identity, std::less<>> by_sni_;
  std::string overflow_sni_;
  std::optional<pki_identity> overflow_;
  bool overflow_allowed_ = true;
  Botan::Certificate_Store_In_Memory trusted_;   // CA of the key, and the context's roots
  Botan::Certificate_Store_In_Memory crl_store_; // the same CAs with the CRLs
};

// Loads a pki_key (what validate_sni returns goes through this too). A failure is
// error::invalid_credentials; `diagnostic` (when given) then names the file ("key file
// 'server.key'") or buffer ("key in memory") and the reason, e.g. "cannot read it: No such
// file or directory", "not PEM or DER", "unsupported key format ...", "does not match
// certificate file '...'", "no certificate in it". It is emptied on success.
std::optional<pki_identity> load_pki_identity(const pki_key& key, std::vector<Botan::X509_Certificate>& cas,
                                              std::error_code& ec, std::string* diagnostic = nullptr);

// The context's PKI: server defaults (coap_context_set_pki) and root CAs.
struct pki_context_state {
  std::optional<pki_config> config;
  std::shared_ptr<const pki_state> server;
  std::shared_ptr<Botan::Certificate_Store_In_Memory> roots;
  std::string last_error;  // see pki_last_error
};

// Why the context's latest PKI set-up failed, for people: set_pki, set_pki_root_cas, an
// endpoint's server state, or a client session's create_client (with its own pki_config or the
// context's) that returned error::invalid_credentials. Names the file or buffer and the
// reason (see load_pki_identity); empty when the latest one succeeded, or before any.
template <class Allocator>
[[nodiscard]] std::string pki_last_error(const basic_context<Allocator>& ctx) {
  const auto* s = coap::detail::context_access::find_security_state<pki_context_state>(ctx);
  return s ? s->last_error : std::string();
}

struct pki : detail::secure_policy_base<pki_state> {
  static constexpr std::string_view name = "PKI";
  using client_config = pki_config;
  using server_config = pki_config;

  // A client's state: its own configuration, or else the context's (coap_new_client_session
  // with COAP_PROTO_DTLS after coap_context_set_pki); with only root CAs set, a client that
  // verifies the server against them and presents no certificate.
  // `host`: the host of the URI the session was made from (empty: none); it becomes
  // verify_host when the configuration names none (RFC 7252 section 9.1.3.3).
  template <class Allocator>
  static state_ptr client_state(basic_context<Allocator>& ctx, const client_config* config, std::error_code& ec,
                                std::string_view host = {}) {
    auto* s = coap::detail::context_access::find_security_state<pki_context_state>(ctx);
    std::shared_ptr<const Botan::Certificate_Store_In_Memory> roots = s ? s->roots : nullptr;
    const pki_config roots_only{};
    const pki_config* chosen = config ? config : s && s->config ? &*s->config : roots ? &roots_only : nullptr;
    if (!chosen) {
      ec = error::security_not_configured;
      return nullptr;
    }
    std::string diagnostic;
    state_ptr state;
    if (host.empty() || !chosen->verify_host.empty()) {
      state = pki_state::make(*chosen, false, roots, ec, &diagnostic);
    } else {
      auto checked = *chosen;
      checked.verify_host = host;
      state = pki_state::make(checked, false, roots, ec, &diagnostic);
    }
    // Kept where pki_last_error finds it; a context without PKI state gets one only to say so.
    if (!diagnostic.empty())
      coap::detail::context_access::security_state<pki_context_state>(ctx).last_error = std::move(diagnostic);
    else if (s)
      s->last_error.clear();
    return state;
  }
  template <class Allocator>
  static state_ptr server_state(basic_context<Allocator>& ctx, std::error_code& ec) {
    auto* s = coap::detail::context_access::find_security_state<pki_context_state>(ctx);
    if (!s || !s->config) {
      ec = error::security_not_configured;
      return nullptr;
    }
    if (!s->server) s->server = pki_state::make(*s->config, true, s->roots, ec, &s->last_error);
    return s->server;
  }
};
static_assert(channel_security<pki>);

// coap_context_set_pki: the server side of every PKI endpoint added afterwards, and the
// default of client sessions made without their own pki_config.
template <class Allocator>
std::error_code set_pki(basic_context<Allocator>& ctx, const pki_config& config) {
  auto& s = coap::detail::context_access::security_state<pki_context_state>(ctx);
  std::error_code ec;
  // Loaded now, so that a bad file is reported here rather than at the first handshake.
  auto server = pki_state::make(config, true, s.roots, ec, &s.last_error);
  if (ec) return ec;
  s.config = config;
  s.server = std::move(server);
  return {};
}

// coap_context_set_pki_root_cas: trust anchors from a PEM (or DER) file and/or a directory of
// them (its files without a certificate are skipped), added to every PKI session of the
// context made afterwards. `diagnostic`: as for load_pki_identity.
std::error_code add_root_cas(Botan::Certificate_Store_In_Memory& store, const std::string& ca_file,
                             const std::string& ca_dir, std::string* diagnostic = nullptr);
template <class Allocator>
std::error_code set_pki_root_cas(basic_context<Allocator>& ctx, const std::string& ca_file,
                                 const std::string& ca_dir = {}) {
  auto& s = coap::detail::context_access::security_state<pki_context_state>(ctx);
  if (!s.roots) s.roots = std::make_shared<Botan::Certificate_Store_In_Memory>();
  if (auto ec = add_root_cas(*s.roots, ca_file, ca_dir, &s.last_error)) return ec;
  if (s.config) {
    std::error_code ec;
    s.server = pki_state::make(*s.config, true, s.roots, ec, &s.last_error);
    return ec;
  }
  return {};
}

}  // namespace coap::security

namespace coap {
using security::pki;
}  // namespace coap
