// RFC 5280 section 6 (path validation, through Botan's x509_path_validate) with libcoap's
// coap_dtls_pki_t rules on top: self-signed, expired, depth, CRLs, the CN callback; and
// RFC 7252 section 9.1.3.3: the request URI's host against the server's certificate. Before
// that, reading the key material: RFC 7468 PEM or DER certificates and CRLs, and private keys
// in PKCS #8 (RFC 5958), SEC 1 (RFC 5915) or PKCS #1 (RFC 8017), each failure with its reason.
#include <coap/security/pki.hpp>
#include <coap/security/detail/dtls_hello.hpp>

#include <coap/uri.hpp>

#include <boost/asio/ip/address.hpp>

#include <botan/asn1_obj.h>
#include <botan/base64.h>
#include <botan/ber_dec.h>
#include <botan/data_src.h>
#include <botan/ec_group.h>
#include <botan/ecdsa.h>
#include <botan/mem_ops.h>
#include <botan/pkix_types.h>
#include <botan/rsa.h>
#include <botan/tls_exceptn.h>
#include <botan/x509path.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <stdexcept>

namespace coap::security {
namespace {

using Botan::TLS::Alert;
using Botan::TLS::TLS_Exception;
using status = Botan::Certificate_Status_Code;

// ---- Reading key material: every failure throws load_failure with the file or buffer it
// concerns and the reason; the public functions turn it into error::invalid_credentials and
// their `diagnostic`.

struct load_failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Larger than any certificate chain, key or CRL a CoAP node presents.
constexpr std::size_t max_source_size = 16 * 1024 * 1024;

// One file or buffer of key material, and how messages name it ("key file 'a.pem'", "key in
// memory").
struct source {
  std::string name;
  Botan::secure_vector<std::uint8_t> bytes;  // wiped when freed: it may hold a private key
};

[[noreturn]] void fail(const source& s, const std::string& why) { throw load_failure(s.name + ": " + why); }

source read_source(std::string_view what, const std::string& file, const std::vector<std::uint8_t>& mem) {
  source s;
  if (file.empty()) {
    s.name = std::string(what) + " in memory";
    s.bytes.assign(mem.begin(), mem.end());
    return s;
  }
  s.name = std::string(what) + " file '" + file + "'";
  std::error_code fs_error;
  if (std::filesystem::is_directory(file, fs_error)) fail(s, "cannot read it: it is a directory");
  errno = 0;
  std::ifstream in(file, std::ios::binary);
  if (!in) fail(s, "cannot read it" + (errno ? ": " + std::generic_category().message(errno) : std::string()));
  std::array<char, 4096> chunk;
  while (in.read(chunk.data(), chunk.size()) || in.gcount() > 0) {
    s.bytes.insert(s.bytes.end(), chunk.begin(), chunk.begin() + in.gcount());
    if (s.bytes.size() > max_source_size) fail(s, "larger than 16 MiB");
  }
  Botan::secure_scrub_memory(chunk.data(), chunk.size());
  if (in.bad()) fail(s, "cannot read it: input error");
  return s;
}

// RFC 7468: the blocks of a PEM source, or nullopt when it has none (then it may be DER).
struct pem_block {
  std::string label;                          // "CERTIFICATE", "EC PRIVATE KEY", ...
  Botan::secure_vector<std::uint8_t> der;
  bool encrypted = false;                     // OpenSSL's legacy "Proc-Type: 4,ENCRYPTED"
};

std::optional<std::vector<pem_block>> pem_blocks(const source& s) {
  const std::string_view text(reinterpret_cast<const char*>(s.bytes.data()), s.bytes.size());
  constexpr std::string_view begin = "-----BEGIN ", dashes = "-----";
  auto at = text.find(begin);
  if (at == std::string_view::npos) return std::nullopt;
  std::vector<pem_block> blocks;
  for (; at != std::string_view::npos; at = text.find(begin, at)) {
    const auto label_at = at + begin.size();
    const auto label_end = text.find(dashes, label_at);
    const auto line_end = text.find('\n', label_at);
    if (label_end == std::string_view::npos || (line_end != std::string_view::npos && label_end > line_end))
      fail(s, "malformed PEM (a BEGIN line without its closing dashes)");
    pem_block block;
    block.label = std::string(text.substr(label_at, label_end - label_at));
    const std::string end_line = "-----END " + block.label + "-----";
    const auto body_at = label_end + dashes.size();
    const auto end_at = text.find(end_line, body_at);
    if (end_at == std::string_view::npos) fail(s, "malformed PEM ('" + block.label + "' block without its END line)");
    // RFC 1421 headers ("Proc-Type: 4,ENCRYPTED", "DEK-Info: ...") end in a blank line.
    Botan::secure_vector<char> body;
    std::string_view rest = text.substr(body_at, end_at - body_at);
    while (!rest.empty()) {
      const auto nl = rest.find('\n');
      const auto line = rest.substr(0, nl);
      rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
      if (line.find(':') != std::string_view::npos) {
        if (line.find("ENCRYPTED") != std::string_view::npos) block.encrypted = true;
        continue;
      }
      body.insert(body.end(), line.begin(), line.end());
    }
    try {
      block.der = Botan::base64_decode(body.data(), body.size(), true);
    } catch (const std::exception&) {
      fail(s, "malformed PEM ('" + block.label + "' block is not valid base64)");
    }
    blocks.push_back(std::move(block));
    at = end_at + end_line.size();
  }
  return blocks;
}

std::string labels_of(const std::vector<pem_block>& blocks) {
  std::string all;
  for (const auto& b : blocks) all += (all.empty() ? "" : ", ") + b.label;
  return all.empty() ? "none" : all;
}

// Every object of type T (a certificate, a CRL) in a source: the PEM blocks labelled one of
// `labels`, or else DER objects one after the other.
template <class T>
std::vector<T> read_objects(const source& s, std::initializer_list<std::string_view> labels, std::string_view kind) {
  std::vector<T> found;
  if (s.bytes.empty()) fail(s, "empty");
  if (auto blocks = pem_blocks(s)) {
    for (const auto& b : *blocks) {
      if (std::find(labels.begin(), labels.end(), b.label) == labels.end()) continue;
      try {
        found.emplace_back(std::vector<std::uint8_t>(b.der.begin(), b.der.end()));
      } catch (const std::exception& e) {
        fail(s, std::string(kind) + " " + std::to_string(found.size() + 1) + " unparsable: " + e.what());
      }
    }
    if (found.empty()) fail(s, "no " + std::string(kind) + " in it (PEM blocks: " + labels_of(*blocks) + ")");
    return found;
  }
  if (s.bytes.front() != 0x30) fail(s, "not PEM or DER");
  Botan::DataSource_Memory src(s.bytes);
  while (!src.end_of_data()) {
    try {
      found.emplace_back(src);
    } catch (const std::exception& e) {
      if (found.empty()) fail(s, "not a DER " + std::string(kind) + ": " + e.what());
      fail(s, "unparsable data after " + std::string(kind) + " " + std::to_string(found.size()) + ": " + e.what());
    }
  }
  return found;
}

std::vector<Botan::X509_Certificate> read_certificates(const source& s) {
  return read_objects<Botan::X509_Certificate>(s, {"CERTIFICATE", "X509 CERTIFICATE"}, "certificate");
}

// ---- Private keys: PKCS #8 (RFC 5958), SEC 1 (RFC 5915) and PKCS #1 (RFC 8017), as ECDSA or
// RSA keys, the signature methods of tls_policy.

std::unique_ptr<Botan::Private_Key> pkcs8_key(const source& s, const Botan::secure_vector<std::uint8_t>& der) {
  try {
    Botan::DataSource_Memory src(der);
    return Botan::PKCS8::load_key(src);
  } catch (const std::exception& e) {
    fail(s, std::string("unsupported or corrupt PKCS #8 key: ") + e.what());
  }
}

// RFC 5915 section 3: ECPrivateKey ::= SEQUENCE { version INTEGER (1), privateKey OCTET
// STRING, parameters [0] ECParameters OPTIONAL, publicKey [1] BIT STRING OPTIONAL }. The key
// is made from the private scalar alone; a public key in the file must agree with it.
std::unique_ptr<Botan::Private_Key> sec1_key(const source& s, const Botan::secure_vector<std::uint8_t>& der) {
  constexpr auto context = static_cast<Botan::ASN1_Tag>(Botan::CONSTRUCTED | Botan::CONTEXT_SPECIFIC);
  try {
    Botan::BER_Decoder outer(der);
    auto seq = outer.start_cons(Botan::SEQUENCE);
    std::size_t version = 0;
    seq.decode(version);
    if (version != 1) fail(s, "SEC 1 EC key of version " + std::to_string(version) + " (only 1 exists)");
    Botan::secure_vector<std::uint8_t> scalar;
    seq.decode(scalar, Botan::OCTET_STRING);
    std::optional<Botan::EC_Group> group;
    std::vector<std::uint8_t> public_bits;
    while (seq.more_items()) {
      auto field = seq.get_next_object();
      if (field.is_a(0, context))
        group.emplace(field.bits(), field.length());
      else if (field.is_a(1, context))
        Botan::BER_Decoder(std::move(field)).decode(public_bits, Botan::BIT_STRING).verify_end();
    }
    seq.end_cons();
    outer.verify_end();
    if (!group) fail(s, "SEC 1 EC key without its curve (no [0] parameters)");
    const Botan::BigInt x(scalar.data(), scalar.size());
    // Botan's constructor would pick a random key for 0.
    if (x.is_zero() || x >= group->get_order()) fail(s, "SEC 1 EC key with its private value out of range");
    auto key = std::make_unique<Botan::ECDSA_PrivateKey>(detail::tls_rng(), *group, x);
    if (!public_bits.empty() && !(group->OS2ECP(public_bits) == key->public_point()))
      fail(s, "SEC 1 EC key whose public key does not match its private key");
    return key;
  } catch (const load_failure&) {
    throw;
  } catch (const std::exception& e) {
    fail(s, std::string("corrupt SEC 1 EC key: ") + e.what());
  }
}

std::unique_ptr<Botan::Private_Key> pkcs1_key(const source& s, const Botan::secure_vector<std::uint8_t>& der) {
  try {
    return std::make_unique<Botan::RSA_PrivateKey>(
        Botan::AlgorithmIdentifier("RSA", Botan::AlgorithmIdentifier::USE_NULL_PARAM), der);
  } catch (const std::exception& e) {
    fail(s, std::string("corrupt PKCS #1 RSA key: ") + e.what());
  }
}

enum class key_format { pkcs8, encrypted_pkcs8, sec1, pkcs1, unknown };

// A DER private key by its shape: PKCS #8 is { INTEGER, SEQUENCE, ... }, SEC 1
// { INTEGER, OCTET STRING, ... }, PKCS #1 { INTEGER, INTEGER, ... }, and encrypted PKCS #8
// { SEQUENCE, OCTET STRING }.
key_format der_key_format(const Botan::secure_vector<std::uint8_t>& der) {
  try {
    Botan::BER_Decoder outer(der);
    auto seq = outer.start_cons(Botan::SEQUENCE);
    const auto first = seq.get_next_object();
    const auto second = seq.get_next_object();
    if (first.is_a(Botan::SEQUENCE, Botan::CONSTRUCTED) && second.is_a(Botan::OCTET_STRING, Botan::UNIVERSAL))
      return key_format::encrypted_pkcs8;
    if (!first.is_a(Botan::INTEGER, Botan::UNIVERSAL)) return key_format::unknown;
    if (second.is_a(Botan::SEQUENCE, Botan::CONSTRUCTED)) return key_format::pkcs8;
    if (second.is_a(Botan::OCTET_STRING, Botan::UNIVERSAL)) return key_format::sec1;
    if (second.is_a(Botan::INTEGER, Botan::UNIVERSAL)) return key_format::pkcs1;
  } catch (const std::exception&) {
  }
  return key_format::unknown;
}

std::unique_ptr<Botan::Private_Key> decode_key(const source& s, key_format format,
                                               const Botan::secure_vector<std::uint8_t>& der) {
  switch (format) {
    case key_format::pkcs8: return pkcs8_key(s, der);
    case key_format::sec1: return sec1_key(s, der);
    case key_format::pkcs1: return pkcs1_key(s, der);
    case key_format::encrypted_pkcs8:
      fail(s, "unsupported key format: encrypted PKCS #8 (decrypt it, e.g. openssl pkcs8 -nocrypt)");
    case key_format::unknown: break;
  }
  fail(s, "unsupported key format: not PKCS #8, SEC 1 or PKCS #1");
}

std::unique_ptr<Botan::Private_Key> read_key(const source& s) {
  if (s.bytes.empty()) fail(s, "empty");
  std::unique_ptr<Botan::Private_Key> key;
  if (auto blocks = pem_blocks(s)) {
    // The first private key; `openssl ecparam -genkey` writes "EC PARAMETERS" before it.
    for (const auto& b : *blocks) {
      const auto format = b.label == "PRIVATE KEY"           ? key_format::pkcs8
                          : b.label == "ENCRYPTED PRIVATE KEY" ? key_format::encrypted_pkcs8
                          : b.label == "EC PRIVATE KEY"        ? key_format::sec1
                          : b.label == "RSA PRIVATE KEY"       ? key_format::pkcs1
                                                               : key_format::unknown;
      if (format == key_format::unknown) continue;
      if (b.encrypted)
        fail(s, "unsupported key format: encrypted '" + b.label + "' (decrypt it, e.g. openssl pkey)");
      key = decode_key(s, format, b.der);
      break;
    }
    if (!key) fail(s, "no private key in it (PEM blocks: " + labels_of(*blocks) + ")");
  } else {
    if (s.bytes.front() != 0x30) fail(s, "not PEM or DER");
    const auto format = der_key_format(s.bytes);
    if (format == key_format::unknown) fail(s, "not PEM, and not a DER private key (PKCS #8, SEC 1 or PKCS #1)");
    key = decode_key(s, format, s.bytes);
  }
  const auto algo = key->algo_name();
  if (algo != "ECDSA" && algo != "RSA") fail(s, "unsupported key type " + algo + " ((D)TLS 1.2 takes ECDSA or RSA)");
  // For ECDSA a signature round trip (a PKCS #8 EC key carries a public key Botan takes as
  // is); for RSA the cheap checks (p * q = n, ...), not the slow primality proofs.
  if (!key->check_key(detail::tls_rng(), algo == "ECDSA")) fail(s, "the " + algo + " key fails its consistency check");
  return key;
}

bool has(const std::string& file, const std::vector<std::uint8_t>& mem) { return !file.empty() || !mem.empty(); }

std::vector<Botan::X509_CRL> read_crls(const pki_config& c) {
  std::vector<Botan::X509_CRL> crls;
  const auto add = [&](const source& s) {
    auto more = read_objects<Botan::X509_CRL>(s, {"X509 CRL"}, "CRL");
    crls.insert(crls.end(), more.begin(), more.end());
  };
  for (const auto& f : c.crl_files) add(read_source("CRL", f, {}));
  for (std::size_t i = 0; i < c.crls.size(); ++i)
    add(read_source(c.crls.size() == 1 ? "CRL" : "CRL " + std::to_string(i + 1), "", c.crls[i]));
  return crls;
}

// Runs `load`; a failure becomes error::invalid_credentials and `diagnostic`.
template <class F>
bool reported(std::error_code& ec, std::string* diagnostic, F&& load) {
  if (diagnostic) diagnostic->clear();
  std::string why;
  try {
    load();
    return true;
  } catch (const load_failure& e) {
    why = e.what();
  } catch (const std::exception& e) {
    why = std::string("unusable key material: ") + e.what();
  }
  ec = error::invalid_credentials;
  if (diagnostic) *diagnostic = std::move(why);
  return false;
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
                                              std::error_code& ec, std::string* diagnostic) {
  pki_identity id;
  std::vector<Botan::X509_Certificate> loaded_cas;
  const bool loaded = reported(ec, diagnostic, [&] {
    if (has(key.ca_file, key.ca)) loaded_cas = read_certificates(read_source("CA", key.ca_file, key.ca));
    const bool with_cert = has(key.cert_file, key.cert), with_key = has(key.key_file, key.key);
    if (!with_cert && !with_key) return;  // verifies only
    const auto cert = read_source("certificate", key.cert_file, key.cert);
    if (!with_key) fail(cert, "given without its private key");
    const auto private_key = read_source("key", key.key_file, key.key);
    if (!with_cert) fail(private_key, "given without its certificate");
    id.chain = read_certificates(cert);
    id.key = read_key(private_key);
    // The key must belong to the certificate.
    if (id.chain.front().load_subject_public_key()->public_key_bits() != id.key->public_key_bits())
      fail(private_key, "does not match " + cert.name);
  });
  if (!loaded) return std::nullopt;
  cas.insert(cas.end(), loaded_cas.begin(), loaded_cas.end());
  return id;
}

std::error_code add_root_cas(Botan::Certificate_Store_In_Memory& store, const std::string& ca_file,
                             const std::string& ca_dir, std::string* diagnostic) {
  std::error_code ec;
  reported(ec, diagnostic, [&] {
    std::vector<Botan::X509_Certificate> certs;
    if (!ca_file.empty()) certs = read_certificates(read_source("root CA", ca_file, {}));
    if (!ca_dir.empty()) {
      std::error_code dir_error;
      std::filesystem::directory_iterator entries(ca_dir, dir_error);
      if (dir_error) throw load_failure("root CA directory '" + ca_dir + "': cannot read it: " + dir_error.message());
      for (const auto& entry : entries) {
        if (!entry.is_regular_file()) continue;
        try {
          auto more = read_certificates(read_source("root CA", entry.path().string(), {}));
          certs.insert(certs.end(), more.begin(), more.end());
        } catch (const load_failure&) {
          // Not a certificate file: a directory of CAs may hold others (README, CRLs).
        }
      }
    }
    for (auto& c : certs) store.add_certificate(c);
  });
  return ec;
}

std::shared_ptr<pki_state> pki_state::make(const pki_config& config, bool server,
                                           std::shared_ptr<const Botan::Certificate_Store_In_Memory> roots,
                                           std::error_code& ec, std::string* diagnostic) {
  auto s = std::make_shared<pki_state>();
  s->server_ = server;
  s->config_ = config;
  std::vector<Botan::X509_Certificate> cas;
  auto own = load_pki_identity(config.key, cas, ec, diagnostic);
  if (!own) return nullptr;
  const bool loaded = reported(ec, diagnostic, [&] {
    // A server presents a certificate; a client may go without (when the server allows it).
    if (server && own->chain.empty()) throw load_failure("a server needs a certificate and its private key");
    if (config.check_cert_revocation && !config.allow_no_crl && config.crl_files.empty() && config.crls.empty())
      throw load_failure("revocation checking without allow_no_crl needs a CRL, and none is given");
    s->own_ = std::move(*own);
    if (roots)
      for (const auto& dn : roots->all_subjects())
        if (auto c = roots->find_cert(dn, {})) cas.push_back(*c);
    for (const auto& c : cas) {
      s->trusted_.add_certificate(c);
      s->crl_store_.add_certificate(c);
    }
    for (const auto& crl : read_crls(config)) s->crl_store_.add_crl(crl);
  });
  if (!loaded) return nullptr;
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
  if (const auto* secret = cookie_secret_for(type, context)) return *secret;
  return Botan::SymmetricKey();
}

}  // namespace coap::security
