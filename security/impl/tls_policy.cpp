// The cipher suites of RFC 7252 section 9.1.3 first, then the common AES-GCM ones.
#include <coap/security/tls_policy.hpp>

#include <algorithm>

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

// The caches are not copied: a copy computes its own lists.
tls_policy::tls_policy(const tls_policy& o)
    : Botan::TLS::Policy(o), ciphers(o.ciphers), key_exchange(o.key_exchange), signature_methods(o.signature_methods),
      dtls_initial(o.dtls_initial), dtls_maximum(o.dtls_maximum), request_client_certificate(o.request_client_certificate) {}

tls_policy& tls_policy::operator=(const tls_policy& o) {
  if (this == &o) return *this;
  ciphers = o.ciphers;
  key_exchange = o.key_exchange;
  signature_methods = o.signature_methods;
  dtls_initial = o.dtls_initial;
  dtls_maximum = o.dtls_maximum;
  request_client_certificate = o.request_client_certificate;
  std::lock_guard lock(cache_mutex_);
  suites_.clear();
  schemes_ = {};
  return *this;
}

std::vector<std::uint16_t> tls_policy::ciphersuite_list(Botan::TLS::Protocol_Version version, bool have_srp) const {
  std::lock_guard lock(cache_mutex_);
  for (const auto& e : suites_)
    if (e.version == version.version_code() && e.have_srp == have_srp && e.ciphers == ciphers &&
        e.key_exchange == key_exchange && e.signature_methods == signature_methods)
      return e.codes;
  // Not computed yet for these values (a field changed: entries of the old values go).
  std::erase_if(suites_, [&](const suites_entry& e) {
    return e.ciphers != ciphers || e.key_exchange != key_exchange || e.signature_methods != signature_methods;
  });
  suites_entry e;
  e.version = version.version_code();
  e.have_srp = have_srp;
  e.ciphers = ciphers;
  e.key_exchange = key_exchange;
  e.signature_methods = signature_methods;
  e.codes = Botan::TLS::Policy::ciphersuite_list(version, have_srp);  // throws when none is allowed
  suites_.push_back(std::move(e));
  return suites_.back().codes;
}

std::vector<Botan::TLS::Signature_Scheme> tls_policy::allowed_signature_schemes() const {
  std::lock_guard lock(cache_mutex_);
  if (!schemes_.valid || schemes_.signature_methods != signature_methods) {
    schemes_.schemes = Botan::TLS::Policy::allowed_signature_schemes();
    schemes_.signature_methods = signature_methods;
    schemes_.valid = true;
  }
  return schemes_.schemes;
}

}  // namespace coap::security
