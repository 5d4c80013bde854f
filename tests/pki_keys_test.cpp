// RFC 5958 (PKCS #8), RFC 5915 (SEC 1 ECPrivateKey) and RFC 8017 appendix A.1.2 (PKCS #1
// RSAPrivateKey): the private keys pki_key takes, PEM or DER, from files and from memory; the
// text every failure to load a key, certificate, CA or CRL reports (pki_last_error and the
// `diagnostic` of load_pki_identity); and real DTLS handshakes with a SEC 1 and a PKCS #1 key.
#include <coap/security/pki.hpp>

#define BOOST_TEST_MODULE pki_keys
#include <boost/test/unit_test.hpp>

#include <coap/session.hpp>
#include <coap/transports/udp.hpp>

#include "support/cert_dir.hpp"

#include <boost/asio.hpp>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace asio = boost::asio;
namespace sec = coap::security;
using namespace std::chrono_literals;
using bytes = std::vector<std::uint8_t>;

namespace {

const auto loopback = asio::ip::make_address("127.0.0.1");

using coap::test::cert;  // the test PKI (tests/support/cert_dir.hpp)
using coap::test::cert_dir;
using coap::test::file_bytes;
// Writes `content` to a new file of the test PKI directory; returns its path.
std::string write_file(const std::string& name, const bytes& content) {
  std::ofstream(cert(name), std::ios::binary).write(reinterpret_cast<const char*>(content.data()),
                                                    static_cast<std::streamsize>(content.size()));
  return cert(name);
}
bytes text(std::string_view s) { return bytes(s.begin(), s.end()); }

struct loaded {
  std::optional<sec::pki_identity> identity;
  std::error_code ec;
  std::string why;
};
loaded load(const sec::pki_key& key) {
  loaded l;
  std::vector<Botan::X509_Certificate> cas;
  l.identity = sec::load_pki_identity(key, cas, l.ec, &l.why);
  return l;
}
loaded load_files(const std::string& cert_name, const std::string& key_name) {
  return load(sec::pki_key::from_files(cert("ca.crt"), cert(cert_name), cert(key_name)));
}
loaded load_memory(const std::string& cert_name, const std::string& key_name) {
  return load(sec::pki_key::from_memory(file_bytes("ca.crt"), file_bytes(cert_name), file_bytes(key_name)));
}

// A failure: error::invalid_credentials and exactly the text `why`.
void expect_refused(const loaded& l, const std::string& why) {
  BOOST_TEST(!l.identity);
  BOOST_TEST((l.ec == coap::error::invalid_credentials), l.ec.message());
  BOOST_TEST(l.why == why);
}
// A failure whose text starts with `prefix` (the rest is Botan's own wording).
void expect_refused_with(const loaded& l, const std::string& prefix) {
  BOOST_TEST(!l.identity);
  BOOST_TEST((l.ec == coap::error::invalid_credentials), l.ec.message());
  BOOST_TEST(l.why.starts_with(prefix), l.why << " (want it to start with: " << prefix << ")");
}

struct key_case {
  const char* cert;
  const char* key;
  const char* algorithm;
  const char* format;
};
const key_case key_cases[] = {
    {"server.crt", "server.key", "ECDSA", "PKCS #8 PEM"},
    {"server.crt", "server.key.der", "ECDSA", "PKCS #8 DER"},
    {"sec1.crt", "sec1.key", "ECDSA", "SEC 1 PEM after an EC PARAMETERS block"},
    {"sec1.crt", "sec1.key.der", "ECDSA", "SEC 1 DER"},
    {"client.crt", "client.sec1.key", "ECDSA", "SEC 1 PEM alone"},
    {"rsa.crt", "rsa.key", "RSA", "PKCS #1 PEM"},
    {"rsa.crt", "rsa.key.der", "RSA", "PKCS #1 DER"},
};

void expect_loaded(const loaded& l, const key_case& c) {
  BOOST_TEST_REQUIRE(l.identity.has_value(), c.format << ": " << l.why);
  BOOST_TEST(!l.ec, c.format);
  BOOST_TEST(l.why.empty(), c.format);
  BOOST_TEST(l.identity->chain.size() == 1u, c.format);
  BOOST_TEST_REQUIRE(l.identity->key != nullptr);
  BOOST_TEST(l.identity->key->algo_name() == c.algorithm, c.format);
}

// ---- DTLS on loopback: a server with GET /hello, a client that verifies it against ca.crt.
struct dtls_pair {
  asio::io_context io;
  coap::context server{io.get_executor()};
  coap::context client{io.get_executor()};
  std::uint16_t port = 0;

  static sec::pki_config config(const std::string& cert_name, const std::string& key_name) {
    sec::pki_config c;
    c.key = sec::pki_key::from_files(cert("ca.crt"), cert(cert_name), cert(key_name));
    c.setup = [](sec::tls_policy& p, Botan::Credentials_Manager&) { p.dtls_initial = 100ms; };
    return c;
  }
  // GET /hello from a client presenting client_cert/client_key to a server presenting
  // server_cert/server_key (both verified); returns the cipher suite, empty on failure.
  std::string hello(const std::string& server_cert, const std::string& server_key, const std::string& client_cert,
                    const std::string& client_key) {
    server.add_resource("hello").on(coap::method::get, [](const coap::request&, coap::basic_response<>& res) {
      res.set_payload(std::string_view("world"));
    });
    const auto set = sec::set_pki(server, config(server_cert, server_key));
    BOOST_TEST_REQUIRE(!set, set.message() << ": " << sec::pki_last_error(server));
    const auto listen = server.add_endpoint<coap::udp, coap::pki>(loopback, 0, &port);
    BOOST_TEST_REQUIRE(!listen, listen.message());

    coap::session_config sc;
    sc.handshake_timeout = 5s;
    std::error_code ec;
    auto session = coap::session<coap::udp, coap::pki>::create_client(client, {loopback, port}, sc,
                                                                       config(client_cert, client_key), ec);
    BOOST_TEST_REQUIRE(!ec, ec.message() << ": " << sec::pki_last_error(client));
    coap::message get(coap::method::get);
    get.add(coap::options::uri_path{}, "hello");
    bool done = false;
    std::string suite;
    session.async_request(std::move(get), [&](std::error_code e, coap::message response) {
      done = true;
      BOOST_TEST(!e, e.message());
      if (e) return;
      BOOST_TEST(coap::to_string(response.code()) == "2.05 Content");
      BOOST_TEST(response.payload_string() == "world");
      suite = session.implementation()->security_channel().cipher_suite();
    });
    const auto end = std::chrono::steady_clock::now() + 10s;
    while (!done && std::chrono::steady_clock::now() < end) {
      io.run_for(5ms);
      io.restart();
    }
    BOOST_TEST(done);
    return suite;
  }
};

}  // namespace

// ---- 1. Every format loads, from files and from memory, and its key matches its certificate.
BOOST_AUTO_TEST_CASE(key_formats_from_files) {
  for (const auto& c : key_cases) expect_loaded(load_files(c.cert, c.key), c);
}

BOOST_AUTO_TEST_CASE(key_formats_from_memory) {
  for (const auto& c : key_cases) expect_loaded(load_memory(c.cert, c.key), c);
}

// ---- 2. Failures name the file (or buffer) and the reason.
BOOST_AUTO_TEST_CASE(missing_files) {
  expect_refused(load_files("server.crt", "no-such.key"),
                 "key file '" + cert("no-such.key") + "': cannot read it: No such file or directory");
  expect_refused(load_files("no-such.crt", "server.key"),
                 "certificate file '" + cert("no-such.crt") + "': cannot read it: No such file or directory");
  expect_refused(load(sec::pki_key::from_files(cert("no-such-ca.crt"), cert("server.crt"), cert("server.key"))),
                 "CA file '" + cert("no-such-ca.crt") + "': cannot read it: No such file or directory");
  expect_refused(load_files("server.crt", ""),  // cert_dir() itself
                 "key file '" + cert("") + "': cannot read it: it is a directory");
}

BOOST_AUTO_TEST_CASE(corrupt_files) {
  const auto garbage = write_file("garbage.key", text("this is no key\n"));
  expect_refused(load_files("server.crt", "garbage.key"), "key file '" + garbage + "': not PEM or DER");
  const auto empty = write_file("empty.key", {});
  expect_refused(load_files("server.crt", "empty.key"), "key file '" + empty + "': empty");

  // PEM with a damaged base64 body, PEM without its END line.
  auto pem = file_bytes("server.key");
  pem[40] = '!';
  const auto bad_base64 = write_file("bad-base64.key", pem);
  expect_refused(load_files("server.crt", "bad-base64.key"),
                 "key file '" + bad_base64 + "': malformed PEM ('PRIVATE KEY' block is not valid base64)");
  const auto whole = file_bytes("sec1.key");
  const auto cut = write_file("cut.key", bytes(whole.begin(), whole.end() - 30));
  expect_refused(load_files("sec1.crt", "cut.key"),
                 "key file '" + cut + "': malformed PEM ('EC PRIVATE KEY' block without its END line)");

  // DER cut short.
  const auto der = file_bytes("sec1.key.der");
  const auto short_der = write_file("short.key.der", bytes(der.begin(), der.end() - 10));
  expect_refused(load_files("sec1.crt", "short.key.der"),
                 "key file '" + short_der + "': not PEM, and not a DER private key (PKCS #8, SEC 1 or PKCS #1)");

  // SEC 1 whose private value was changed: it disagrees with the public key beside it.
  auto tampered = der;
  tampered[20] ^= 0x01;  // inside the 32-byte privateKey OCTET STRING at offset 7
  const auto tampered_file = write_file("tampered.key.der", tampered);
  expect_refused(load_files("sec1.crt", "tampered.key.der"),
                 "key file '" + tampered_file + "': SEC 1 EC key whose public key does not match its private key");

  // The same in PKCS #8, where Botan would take the public key beside it as is.
  auto pkcs8 = file_bytes("server.key.der");
  pkcs8[40] ^= 0x01;  // inside the privateKey OCTET STRING of the inner ECPrivateKey at offset 36
  const auto pkcs8_file = write_file("tampered.p8.der", pkcs8);
  expect_refused(load_files("server.crt", "tampered.p8.der"),
                 "key file '" + pkcs8_file + "': the ECDSA key fails its consistency check");

  // A PKCS #1 RSA key whose modulus was changed.
  auto rsa = file_bytes("rsa.key.der");
  rsa[20] ^= 0x01;
  const auto rsa_file = write_file("tampered-rsa.key.der", rsa);
  expect_refused(load_files("rsa.crt", "tampered-rsa.key.der"),
                 "key file '" + rsa_file + "': the RSA key fails its consistency check");

  // A corrupt certificate.
  auto crt = file_bytes("server.crt.der");
  crt.resize(crt.size() / 2);
  const auto half = write_file("half.crt.der", crt);
  expect_refused_with(load_files("half.crt.der", "server.key"),
                      "certificate file '" + half + "': not a DER certificate: ");
}

BOOST_AUTO_TEST_CASE(wrong_contents) {
  expect_refused(load_files("server.key", "server.key"),
                 "certificate file '" + cert("server.key") + "': no certificate in it (PEM blocks: PRIVATE KEY)");
  expect_refused(load_files("server.crt", "server.crt"),
                 "key file '" + cert("server.crt") + "': no private key in it (PEM blocks: CERTIFICATE)");
  expect_refused(load_files("server.crt", "ca.crl"),
                 "key file '" + cert("ca.crl") + "': no private key in it (PEM blocks: X509 CRL)");
  expect_refused(load_files("server.crt", "server.encrypted.key"),
                 "key file '" + cert("server.encrypted.key") +
                     "': unsupported key format: encrypted PKCS #8 (decrypt it, e.g. openssl pkcs8 -nocrypt)");
  expect_refused(load_files("server.crt", "server.legacy-encrypted.key"),
                 "key file '" + cert("server.legacy-encrypted.key") +
                     "': unsupported key format: encrypted 'EC PRIVATE KEY' (decrypt it, e.g. openssl pkey)");
  expect_refused(load(sec::pki_key::from_files("", cert("server.crt"), "")),
                 "certificate file '" + cert("server.crt") + "': given without its private key");
  expect_refused(load(sec::pki_key::from_files("", "", cert("server.key"))),
                 "key file '" + cert("server.key") + "': given without its certificate");
}

BOOST_AUTO_TEST_CASE(memory_is_named_as_memory) {
  expect_refused(load(sec::pki_key::from_memory({}, file_bytes("server.crt"), text("garbage"))),
                 "key in memory: not PEM or DER");
  expect_refused(load(sec::pki_key::from_memory({}, text("garbage"), file_bytes("server.key"))),
                 "certificate in memory: not PEM or DER");
  expect_refused(load(sec::pki_key::from_memory(file_bytes("server.key"), file_bytes("server.crt"),
                                                file_bytes("server.key"))),
                 "CA in memory: no certificate in it (PEM blocks: PRIVATE KEY)");
}

// ---- 3. A key that is not its certificate's is refused, in every format.
BOOST_AUTO_TEST_CASE(key_must_match_certificate) {
  for (const auto* key : {"client.key", "client.key.der", "client.sec1.key", "sec1.key", "rsa.key", "rsa.key.der"})
    expect_refused(load_files("server.crt", key),
                   "key file '" + cert(key) + "': does not match certificate file '" + cert("server.crt") + "'");
  expect_refused(load(sec::pki_key::from_memory({}, file_bytes("rsa.crt"), file_bytes("server.key"))),
                 "key in memory: does not match certificate in memory");
}

// ---- 4. Through the context: set_pki, set_pki_root_cas and create_client keep the text where
// pki_last_error finds it; a later success clears it.
BOOST_AUTO_TEST_CASE(context_reports_the_reason) {
  asio::io_context io;
  coap::context ctx(io.get_executor());
  BOOST_TEST(sec::pki_last_error(ctx).empty());

  sec::pki_config mismatched;
  mismatched.key = sec::pki_key::from_files(cert("ca.crt"), cert("server.crt"), cert("client.sec1.key"));
  BOOST_TEST((sec::set_pki(ctx, mismatched) == coap::error::invalid_credentials));
  BOOST_TEST(sec::pki_last_error(ctx) == "key file '" + cert("client.sec1.key") + "': does not match certificate file '" +
                                             cert("server.crt") + "'");

  sec::pki_config no_certificate;
  no_certificate.key = sec::pki_key::from_files(cert("ca.crt"), "", "");
  BOOST_TEST((sec::set_pki(ctx, no_certificate) == coap::error::invalid_credentials));
  BOOST_TEST(sec::pki_last_error(ctx) == "a server needs a certificate and its private key");

  const auto garbage_crl = write_file("garbage.crl", text("-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n"));
  sec::pki_config bad_crl;
  bad_crl.key = sec::pki_key::from_files(cert("ca.crt"), cert("server.crt"), cert("server.key"));
  bad_crl.check_cert_revocation = true;
  bad_crl.crl_files = {garbage_crl};
  BOOST_TEST((sec::set_pki(ctx, bad_crl) == coap::error::invalid_credentials));
  BOOST_TEST(sec::pki_last_error(ctx).starts_with("CRL file '" + garbage_crl + "': CRL 1 unparsable: "),
             sec::pki_last_error(ctx));
  bad_crl.crl_files = {cert("server.crt")};
  BOOST_TEST((sec::set_pki(ctx, bad_crl) == coap::error::invalid_credentials));
  BOOST_TEST(sec::pki_last_error(ctx) == "CRL file '" + cert("server.crt") + "': no CRL in it (PEM blocks: CERTIFICATE)");
  bad_crl.crl_files = {cert("ca.crl"), cert("expired.crl.der")};
  BOOST_TEST(!sec::set_pki(ctx, bad_crl));  // PEM and DER CRLs load
  BOOST_TEST(sec::pki_last_error(ctx).empty());

  BOOST_TEST((sec::set_pki_root_cas(ctx, cert("no-such-roots.crt")) == coap::error::invalid_credentials));
  BOOST_TEST(sec::pki_last_error(ctx) ==
             "root CA file '" + cert("no-such-roots.crt") + "': cannot read it: No such file or directory");
  BOOST_TEST((sec::set_pki_root_cas(ctx, "", cert("no-such-dir")) == coap::error::invalid_credentials));
  BOOST_TEST(sec::pki_last_error(ctx).starts_with("root CA directory '" + cert("no-such-dir") + "': cannot read it: "),
             sec::pki_last_error(ctx));
  BOOST_TEST(!sec::set_pki_root_cas(ctx, "", cert_dir()));  // a directory of many files, some certificates
  BOOST_TEST(sec::pki_last_error(ctx).empty());

  // A client session whose own key is unreadable, in a context without PKI set-up.
  coap::context client(io.get_executor());
  sec::pki_config missing;
  missing.key = sec::pki_key::from_files(cert("ca.crt"), cert("client.crt"), cert("no-such-client.key"));
  std::error_code ec;
  auto session = coap::session<coap::udp, coap::pki>::create_client(client, {loopback, 5684}, missing, ec);
  BOOST_TEST((ec == coap::error::invalid_credentials), ec.message());
  BOOST_TEST(sec::pki_last_error(client) ==
             "key file '" + cert("no-such-client.key") + "': cannot read it: No such file or directory");
  ec.clear();
  auto good = coap::session<coap::udp, coap::pki>::create_client(client, {loopback, 5684},
                                                                  dtls_pair::config("client.crt", "client.sec1.key"), ec);
  BOOST_TEST(!ec, ec.message());
  BOOST_TEST(sec::pki_last_error(client).empty());
  good.close();
}

// ---- 5. Real DTLS handshakes with the keys openssl's other commands write.
BOOST_AUTO_TEST_CASE(dtls_with_sec1_keys) {
  dtls_pair pair;
  BOOST_TEST(pair.hello("sec1.crt", "sec1.key", "client.crt", "client.sec1.key") == "ECDHE_ECDSA_WITH_AES_128_CCM_8");
}

BOOST_AUTO_TEST_CASE(dtls_with_pkcs1_rsa_key) {
  dtls_pair pair;
  const auto suite = pair.hello("rsa.crt", "rsa.key", "client.crt", "client.key");
  BOOST_TEST(suite.starts_with("ECDHE_RSA_WITH_"), suite);
}
