// RFC 5280 section 6 (path validation, through Botan's x509_path_validate) with libcoap's
// coap_dtls_pki_t rules on top: self-signed, expired, depth, CRLs, the CN callback; and
// RFC 7252 section 9.1.3.3: the request URI's host against the server's certificate.
#include <coap/security/pki.hpp>
#include <coap/security/detail/dtls_hello.hpp>

#include <coap/uri.hpp>

#include <boost/asio/ip/address.hpp>

#include <botan/data_src.h>
#include <botan/pkix_types.h>
#include <botan/tls_exceptn.h>
#include <botan/x509path.h>

#include <algorithm>
#include <cctype>
#include <filesystem>

namespace coap::security {
namespace {

using Botan::TLS::Alert;
using Botan::TLS::TLS_Exception;
using status = Botan::Certificate_Status_Code;

// Every certificate in a source (PEM with several, or one DER).
std::vector<Botan::X509_Certificate> read_certificates(Botan::DataSource& src) {
  std::vector<Botan::X509_Certificate> certs;
  while (!src.end_of_data()) {
    try {
      certs.emplace_back(src);
    } catch (const std::exception&) {
      break;
    }
  }
  return certs;
}

std::vector<Botan::X509_Certificate> certificates_from(const std::string& file, const std::vector<std::uint8_t>& mem) {
  if (!file.empty()) {
    Botan::DataSource_Stream src(file, true);
    return read_certificates(src);
  }
  Botan::DataSource_Memory src(mem);
  return read_certificates(src);
}

std::unique_ptr<Botan::Private_Key> key_from(const std::string& file, const std::vector<std::uint8_t>& mem) {
  if (!file.empty()) {
    Botan::DataSource_Stream src(file, true);
    return Botan::PKCS8::load_key(src);
  }
  Botan::DataSource_Memory src(mem);
  return Botan::PKCS8::load_key(src);
}

bool has(const pki_key& k, const std::string& file, const std::vector<std::uint8_t>& mem) {
  (void)k;
  return !file.empty() || !mem.empty();
}

std::vector<Botan::X509_CRL> read_crls(const pki_config& c) {
  std::vector<Botan::X509_CRL> crls;
  auto read = [&](Botan::DataSource& src) {
    while (!src.end_of_data()) {
      try {
        crls.emplace_back(src);
      } catch (const std::exception&) {
        break;
      }
    }
  };
  for (const auto& f : c.crl_files) {
    Botan::DataSource_Stream src(f, true);
    read(src);
  }
  for (const auto& m : c.crls) {
    Botan::DataSource_Memory src(m);
    read(src);
  }
  return crls;
}

std::string common_name(const Botan::X509_Certificate& c) {
  auto cn = c.subject_info("X520.CommonName");
  return cn.empty() ? std::string() : cn.front();
}

// RFC 7252 section 9.1.3.3: does the certificate name `host`? See pki_config::verify_host.
bool names_host(const Botan::X509_Certificate& c, std::string_view host) {
  const auto bare = [](std::string_view n) { return n.ends_with('.') ? n.substr(0, n.size() - 1) : n; };
  boost::system::error_code not_address;
  const auto address = boost::asio::ip::make_address(std::string(host), not_address);
  const auto same = [&](std::string_view name) {
    if (!not_address) {
      boost::system::error_code bad;
      const auto a = boost::asio::ip::make_address(std::string(name), bad);
      return !bad && a == address;
    }
    const auto x = bare(name), y = bare(host);
    return !x.empty() && std::equal(x.begin(), x.end(), y.begin(), y.end(), [](char a, char b) {
      return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
    });
  };
  const auto& san = c.subject_alt_name();
  if (!san.has_items()) return same(common_name(c));
  for (const auto& name : san.get_attribute(not_address ? "DNS" : "IP"))
    if (same(name)) return true;
  for (const auto& text : san.get_attribute("URI")) {
    coap::uri u;
    if (!coap::parse_uri(text, u) && same(u.host)) return true;
  }
  return false;
}

bool is_expiry(status s) { return s == status::CERT_HAS_EXPIRED || s == status::CERT_NOT_YET_VALID; }
bool is_crl_expiry(status s) { return s == status::CRL_HAS_EXPIRED || s == status::CRL_NOT_YET_VALID; }
bool is_trust(status s) {
  return s == status::CERT_ISSUER_NOT_FOUND || s == status::CANNOT_ESTABLISH_TRUST ||
         s == status::CHAIN_LACKS_TRUST_ROOT;
}

// The alert a remaining validation failure is reported with (RFC 5246 section 7.2).
Alert::Type alert_for(status s) {
  if (is_expiry(s)) return Alert::CERTIFICATE_EXPIRED;
  if (is_trust(s)) return Alert::UNKNOWN_CA;
  if (s == status::CERT_IS_REVOKED) return Alert::CERTIFICATE_REVOKED;
  return Alert::BAD_CERTIFICATE;
}

}  // namespace

std::optional<pki_identity> load_pki_identity(const pki_key& key, std::vector<Botan::X509_Certificate>& cas,
                                              std::error_code& ec) {
  try {
    if (has(key, key.ca_file, key.ca)) {
      auto loaded = certificates_from(key.ca_file, key.ca);
      if (loaded.empty()) {
        ec = error::invalid_credentials;
        return std::nullopt;
      }
      cas.insert(cas.end(), loaded.begin(), loaded.end());
    }
    pki_identity id;
    if (!has(key, key.cert_file, key.cert) && !has(key, key.key_file, key.key)) return id;  // verifies only
    id.chain = certificates_from(key.cert_file, key.cert);
    id.key = key_from(key.key_file, key.key);
    if (id.chain.empty() || !id.key) {
      ec = error::invalid_credentials;
      return std::nullopt;
    }
    // The key must belong to the certificate.
    if (id.chain.front().load_subject_public_key()->public_key_bits() != id.key->public_key_bits()) {
      ec = error::invalid_credentials;
      return std::nullopt;
    }
    return id;
  } catch (const std::exception&) {
    ec = error::invalid_credentials;
    return std::nullopt;
  }
}

std::error_code add_root_cas(Botan::Certificate_Store_In_Memory& store, const std::string& ca_file,
                             const std::string& ca_dir) {
  try {
    if (!ca_file.empty()) {
      auto certs = certificates_from(ca_file, {});
      if (certs.empty()) return error::invalid_credentials;
      for (auto& c : certs) store.add_certificate(c);
    }
    if (!ca_dir.empty()) {
      for (const auto& entry : std::filesystem::directory_iterator(ca_dir)) {
        if (!entry.is_regular_file()) continue;
        for (auto& c : certificates_from(entry.path().string(), {})) store.add_certificate(c);
      }
    }
  } catch (const std::exception&) {
    return error::invalid_credentials;
  }
  return {};
}

std::shared_ptr<pki_state> pki_state::make(const pki_config& config, bool server,
                                           std::shared_ptr<const Botan::Certificate_Store_In_Memory> roots,
                                           std::error_code& ec) {
  auto s = std::make_shared<pki_state>();
  s->server_ = server;
  s->config_ = config;
  std::vector<Botan::X509_Certificate> cas;
  auto own = load_pki_identity(config.key, cas, ec);
  if (!own) return nullptr;
  // A server presents a certificate; a client may go without (when the server allows it).
  if (server && own->chain.empty()) {
    ec = error::invalid_credentials;
    return nullptr;
  }
  s->own_ = std::move(*own);
  if (roots)
    for (const auto& dn : roots->all_subjects())
      if (auto c = roots->find_cert(dn, {})) cas.push_back(*c);
  for (const auto& c : cas) {
    s->trusted_.add_certificate(c);
    s->crl_store_.add_certificate(c);
  }
  try {
    for (const auto& crl : read_crls(config)) s->crl_store_.add_crl(crl);
  } catch (const std::exception&) {
    ec = error::invalid_credentials;
    return nullptr;
  }
  if (config.check_cert_revocation && !config.allow_no_crl && config.crl_files.empty() && config.crls.empty()) {
    ec = error::invalid_credentials;  // revocation required, and nothing to check it with
    return nullptr;
  }
  s->policy_.request_client_certificate = server && config.verify_peer_cert;
  if (server) s->cookie_secret_ = detail::make_cookie_secret();
  if (config.setup) config.setup(s->policy_, *s);
  // Static RSA key exchange keeps the server's key pointer until the ClientKeyExchange; then
  // the one-slot overflow of the SNI cache (identity_for) could free it meanwhile.
  const auto kex = s->policy_.allowed_key_exchange_methods();
  s->overflow_allowed_ = std::find(kex.begin(), kex.end(), "RSA") == kex.end();
  return s;
}

bool pki_state::verify(const std::vector<Botan::X509_Certificate>& chain, Botan::Usage_Type usage,
                       const std::string&) const {
  if (chain.empty()) throw TLS_Exception(Alert::BAD_CERTIFICATE, "empty certificate chain");
  bool validated = false;
  bool anchored = false;  // validated up to a trusted certificate
  if (config_.verify_peer_cert) {
    std::vector<Botan::Certificate_Store*> stores;
    auto& store = const_cast<Botan::Certificate_Store_In_Memory&>(config_.check_cert_revocation ? crl_store_ : trusted_);
    stores.push_back(&store);
    std::optional<status> failure;
    const bool self_signed = chain.size() == 1 && chain.front().is_self_signed();
    if (config_.allow_self_signed && self_signed) {
      // A lone self-signed certificate is accepted when its signature and dates hold (it is
      // no CA, so path validation would not take it as its own anchor).
      const auto& c = chain.front();
      if (!c.check_signature(*c.load_subject_public_key()))
        throw TLS_Exception(Alert::BAD_CERTIFICATE, "self-signed certificate with a bad signature");
      const Botan::X509_Time now(std::chrono::system_clock::now());
      if (!config_.allow_expired_certs && (now < c.not_before() || c.not_after() < now))
        throw TLS_Exception(Alert::CERTIFICATE_EXPIRED, "self-signed certificate outside its validity");
      validated = true;
      anchored = trusted_.certificate_known(c);  // trusted by name, not only allowed
    }
    const Botan::Path_Validation_Restrictions restrictions(
        config_.check_cert_revocation && !config_.allow_no_crl, 110);
    const auto result = validated ? Botan::Path_Validation_Result(status::OK)
                                  : Botan::x509_path_validate(chain, restrictions, stores, "", usage);
    auto consider = [&](status s) {
      if (static_cast<int>(s) < static_cast<int>(status::FIRST_ERROR_STATUS)) return;
      if (config_.allow_expired_certs && is_expiry(s)) return;
      if (config_.allow_expired_crl && is_crl_expiry(s)) return;
      if (!config_.check_cert_revocation && (is_crl_expiry(s) || s == status::NO_REVOCATION_DATA)) return;
      if (!failure) failure = s;
    };
    consider(result.result());
    for (const auto& statuses : result.all_statuses())
      for (auto s : statuses) consider(s);
    if (failure) throw TLS_Exception(alert_for(*failure), Botan::to_string(*failure));
    // Depth: the intermediate CAs between the peer and the trust anchor.
    const auto& path = result.cert_path();
    if (config_.cert_chain_validation && path.size() > 2 && path.size() - 2 > config_.cert_chain_verify_depth)
      throw TLS_Exception(Alert::BAD_CERTIFICATE, "certificate chain deeper than allowed");
    if (!server_ && !config_.verify_host.empty() && !names_host(chain.front(), config_.verify_host))
      throw TLS_Exception(Alert::BAD_CERTIFICATE, "the certificate does not name " + config_.verify_host);
    if (!validated) anchored = true;  // path validation reached a trust anchor
    validated = true;
  }
  if (config_.validate_cn) {
    for (std::size_t depth = 0; depth < chain.size(); ++depth) {
      const auto der = chain[depth].BER_encode();
      const auto cn = common_name(chain[depth]);
      if (!config_.validate_cn(pki_cn_info{cn, der, static_cast<unsigned>(depth), validated}))
        throw TLS_Exception(Alert::BAD_CERTIFICATE, "certificate rejected by the CN callback");
    }
  }
  return anchored;
}

void pki_state::on_established(const Botan::TLS::Session& session) const {
  if (server_ && config_.verify_peer_cert && config_.require_peer_cert && session.peer_certs().empty())
    throw TLS_Exception(Alert::HANDSHAKE_FAILURE, "the client sent no certificate");
}

std::vector<Botan::Certificate_Store*> pki_state::trusted_certificate_authorities(const std::string&,
                                                                                  const std::string&) {
  if (!config_.verify_peer_cert) return {};
  return {&trusted_};
}

const pki_identity* pki_state::identity_for(const std::string& sni) {
  if (!server_ || !config_.validate_sni || sni.empty()) return &own_;
  if (auto it = by_sni_.find(sni); it != by_sni_.end()) return &it->second;
  if (overflow_ && overflow_sni_ == sni) return &*overflow_;
  // Botan asks several times per handshake (cert_chain per key type, then private_key_for):
  // a declined or unloadable SNI calls validate_sni each time and gets the default key.
  auto key = config_.validate_sni(sni);
  if (!key) return &own_;
  std::vector<Botan::X509_Certificate> cas;
  std::error_code ec;
  auto loaded = load_pki_identity(*key, cas, ec);
  if (!loaded || loaded->chain.empty() || !loaded->key) return &own_;
  if (by_sni_.size() < max_cached_sni) return &by_sni_.emplace(sni, std::move(*loaded)).first->second;
  if (!overflow_allowed_) return &own_;
  overflow_sni_ = sni;
  overflow_ = std::move(loaded);
  return &*overflow_;
}

std::vector<Botan::X509_Certificate> pki_state::cert_chain(const std::vector<std::string>& key_types,
                                                           const std::string&, const std::string& context) {
  const auto* id = identity_for(context);
  if (id->chain.empty() || !id->key) return {};
  const auto algo = id->key->algo_name();
  if (std::find(key_types.begin(), key_types.end(), algo) == key_types.end()) return {};
  return id->chain;
}

Botan::Private_Key* pki_state::private_key_for(const Botan::X509_Certificate& cert, const std::string&,
                                               const std::string& context) {
  const auto* id = identity_for(context);
  if (!id->chain.empty() && id->chain.front() == cert) return id->key.get();
  if (!own_.chain.empty() && own_.chain.front() == cert) return own_.key.get();
  return nullptr;
}

Botan::SymmetricKey pki_state::psk(const std::string& type, const std::string& context, const std::string&) {
  if (type == "tls-server" && context == "dtls-cookie-secret") return cookie_secret_;
  return Botan::SymmetricKey();
}

}  // namespace coap::security
