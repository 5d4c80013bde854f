// RFC 7252 section 9 (DTLS: PreSharedKey and Certificate modes), RFC 8323 section 9 (TLS for
// coaps+tcp) and RFC 6347 (DTLS 1.2: cookies, retransmission, silent drop of bad records) over
// real loopback sockets, with libcoap's coap_dtls_spsk_t / coap_dtls_pki_t semantics: requests
// waiting for the handshake, the record overhead in max_pdu_size, the TLS alert every failed
// handshake reports, loss during the handshake, stateless cookies and the handshake cap.
#include <coap/security/psk.hpp>

#define BOOST_TEST_MODULE secure_session
#include <boost/test/unit_test.hpp>

#include <coap/security/pki.hpp>
#include <coap/session.hpp>
#include <coap/tls_alert.hpp>
#include <coap/transports/tcp.hpp>
#include <coap/transports/udp.hpp>

#include "support/cert_dir.hpp"
#include "support/lossy_udp_proxy.hpp"

#include <coap/security/detail/dtls_record.hpp>

#include <boost/asio.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <fstream>
#include <memory>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace asio = boost::asio;
namespace sec = coap::security;
using namespace std::chrono_literals;
using proxy = coap::test::lossy_udp_proxy;
using bytes = std::vector<std::uint8_t>;

namespace {

const auto loopback = asio::ip::make_address("127.0.0.1");
const bytes secret{'s', 'e', 'c', 'r', 'e', 't', 'P', 'S', 'K'};

using coap::test::cert;  // the test PKI (tests/support/cert_dir.hpp)
using coap::test::cert_dir;
using coap::test::file_bytes;

// DTLS retransmission from 100 ms (RFC 6347 section 4.2.4.1 suggests 1 s), so that losses cost
// little time.
sec::tls_setup_hook fast_dtls(std::chrono::milliseconds maximum = 60000ms) {
  return [maximum](sec::tls_policy& p, Botan::Credentials_Manager&) {
    p.dtls_initial = 100ms;
    p.dtls_maximum = maximum;
  };
}
coap::session_config quick(std::chrono::milliseconds handshake = 5s) {
  coap::session_config c;
  c.handshake_timeout = handshake;
  c.ack_timeout = 300ms;
  c.max_retransmit = 6;
  c.response_timeout = 5s;
  return c;
}
sec::psk_client_config psk_client(std::string identity = "alice", bytes key = secret) {
  sec::psk_client_config c;
  c.identity = std::move(identity);
  c.key = std::move(key);
  c.setup = fast_dtls();
  return c;
}
sec::psk_server_config psk_server_config() {
  sec::psk_server_config c;
  c.key = secret;
  c.setup = fast_dtls();
  return c;
}
// A peer's configuration: trusts ca.crt and presents <name>.crt (none when name is empty).
sec::pki_config pki(const std::string& name, const std::string& ca = "ca.crt") {
  sec::pki_config c;
  c.key = name.empty() ? sec::pki_key::from_files(cert(ca), "", "")
                       : sec::pki_key::from_files(cert(ca), cert(name + ".crt"), cert(name + ".key"));
  c.setup = fast_dtls();
  return c;
}

// A server context with GET /hello and one DTLS and one TLS endpoint.
struct server {
  coap::context ctx;
  std::uint16_t udp = 0, tcp = 0;
  explicit server(asio::io_context& io) : ctx(io.get_executor()) {
    ctx.add_resource("hello").on(coap::method::get, [](const coap::request&, coap::basic_response<>& res) {
      res.set_payload(std::string_view("world"));
    });
    ctx.add_resource("whoami").on(coap::method::get, [](const coap::request& req, coap::basic_response<>& res) {
      res.set_payload(req.authenticated_peer());
    });
  }
  template <class Security>
  void listen() {
    const auto dtls = ctx.add_endpoint<coap::udp, Security>(loopback, 0, &udp);
    BOOST_TEST_REQUIRE(!dtls, dtls.message());
    const auto tls = ctx.add_endpoint<coap::tcp, Security>(loopback, 0, &tcp);
    BOOST_TEST_REQUIRE(!tls, tls.message());
  }
  template <class Transport>
  std::uint16_t port() const {
    return std::is_same_v<Transport, coap::udp> ? udp : tcp;
  }
};

struct outcome {
  std::error_code ec;
  coap::message response;
  bool done = false;
  std::string suite;       // the negotiated cipher suite, once the request completed
  bool still_open = false; // the client session after the request
  bool ok() const { return !ec && coap::to_string(response.code()) == "2.05 Content" && response.payload_string() == "world"; }
};

coap::message get_hello() {
  coap::message m(coap::method::get);
  m.add(coap::options::uri_path{}, "hello");
  return m;
}

struct fixture {
  asio::io_context io;
  coap::context client{io.get_executor()};
  std::vector<std::unique_ptr<server>> servers;

  server& psk_server(const sec::psk_server_config& cfg = psk_server_config()) {
    auto& s = *servers.emplace_back(std::make_unique<server>(io));
    BOOST_TEST_REQUIRE(!sec::set_psk(s.ctx, cfg));
    s.listen<coap::psk>();
    return s;
  }
  server& pki_server(const sec::pki_config& cfg) {
    auto& s = *servers.emplace_back(std::make_unique<server>(io));
    const auto ec = sec::set_pki(s.ctx, cfg);
    BOOST_TEST_REQUIRE(!ec, ec.message());
    s.listen<coap::pki>();
    return s;
  }

  template <class Pred>
  bool run_until(Pred done, std::chrono::milliseconds limit = 10s) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!done()) {
      if (std::chrono::steady_clock::now() >= end) return false;
      io.run_for(5ms);
      io.restart();
    }
    return true;
  }

  template <class Transport, class Security>
  coap::session<Transport, Security> connect(std::uint16_t port, const typename Security::client_config& cfg,
                                             const coap::session_config& sc = quick()) {
    std::error_code ec;
    auto s = coap::session<Transport, Security>::create_client(client, {loopback, port}, sc, cfg, ec);
    BOOST_TEST_REQUIRE(!ec, ec.message());
    return s;
  }

  template <class S>
  outcome request(S& s, coap::message m, std::chrono::milliseconds limit = 10s) {
    outcome out;
    s.async_request(std::move(m), [&](std::error_code ec, coap::message r) {
      out.ec = ec;
      out.response = std::move(r);
      out.done = true;
    });
    BOOST_TEST_REQUIRE(run_until([&] { return out.done; }, limit));
    out.suite = s.implementation()->security_channel().cipher_suite();
    out.still_open = s.is_open();
    return out;
  }

  // GET /hello on a new client session to `srv`.
  template <class Transport, class Security>
  outcome hello(server& srv, const typename Security::client_config& cfg, const coap::session_config& sc = quick()) {
    auto s = connect<Transport, Security>(srv.port<Transport>(), cfg, sc);
    return request(s, get_hello(), sc.handshake_timeout + 5s);
  }

  // Runs until the server's session count has not changed for 200 ms (at most 3 s).
  void settle(server& srv) {
    auto count = srv.ctx.session_count();
    auto since = std::chrono::steady_clock::now();
    run_until([&] {
      const auto now = std::chrono::steady_clock::now();
      if (srv.ctx.session_count() != count) {
        count = srv.ctx.session_count();
        since = now;
      }
      return now - since >= 200ms;
    }, 3s);
  }

  // A handshake that must fail with `expected`; the client session is closed by it, and a TLS
  // server session leaves its endpoint at once. (A DTLS server session that failed stays in
  // its endpoint's table until its peer's address sends again or the idle timeout; the test
  // cases show that a new client still gets through afterwards.)
  template <class Transport, class Security>
  void expect_failure(server& srv, const typename Security::client_config& cfg, std::error_code expected,
                      const coap::session_config& sc = quick()) {
    settle(srv);  // server sessions of earlier clients that closed have left
    const auto before = srv.ctx.session_count();  // failed DTLS sessions stay (see above)
    const auto out = hello<Transport, Security>(srv, cfg, sc);
    BOOST_TEST((out.ec == expected), Transport::name << ": expected " << expected.message() << ", got "
                                                     << out.ec.message());
    BOOST_TEST(!out.still_open);
    if constexpr (std::is_same_v<Transport, coap::tcp>)
      BOOST_TEST(run_until([&] { return srv.ctx.session_count() == before; }, 3s));
  }
  template <class Transport, class Security>
  void expect_success(server& srv, const typename Security::client_config& cfg) {
    const auto out = hello<Transport, Security>(srv, cfg);
    BOOST_TEST(out.ok(), Transport::name << ": " << out.ec.message());
  }
  // Both transports, DTLS then TLS.
  template <class Security>
  void expect_failure_both(server& srv, const typename Security::client_config& cfg, std::error_code expected) {
    expect_failure<coap::udp, Security>(srv, cfg, expected);
    expect_failure<coap::tcp, Security>(srv, cfg, expected);
  }
  template <class Security>
  void expect_success_both(server& srv, const typename Security::client_config& cfg) {
    expect_success<coap::udp, Security>(srv, cfg);
    expect_success<coap::tcp, Security>(srv, cfg);
  }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(secure_sessions, fixture)

// ---- 1. The suites of RFC 7252 section 9.1.3: PSK_WITH_AES_128_CCM_8 in PreSharedKey mode,
// ECDHE_ECDSA_WITH_AES_128_CCM_8 in Certificate mode; the same over TLS (RFC 8323 section 9).
BOOST_AUTO_TEST_CASE(get_over_all_four_combinations) {
  auto& p = psk_server();
  auto& c = pki_server(pki("server"));
  const auto dtls_psk = hello<coap::udp, coap::psk>(p, psk_client());
  const auto tls_psk = hello<coap::tcp, coap::psk>(p, psk_client());
  const auto dtls_pki = hello<coap::udp, coap::pki>(c, pki("client"));
  const auto tls_pki = hello<coap::tcp, coap::pki>(c, pki("client"));
  for (const auto* o : {&dtls_psk, &tls_psk, &dtls_pki, &tls_pki}) {
    BOOST_TEST(!o->ec, o->ec.message());
    BOOST_TEST(coap::to_string(o->response.code()) == "2.05 Content");
    BOOST_TEST(o->response.payload_string() == "world");
    BOOST_TEST(o->still_open);
  }
  BOOST_TEST(dtls_psk.suite == "PSK_WITH_AES_128_CCM_8");
  BOOST_TEST(tls_psk.suite == "PSK_WITH_AES_128_CCM_8");
  BOOST_TEST(dtls_pki.suite == "ECDHE_ECDSA_WITH_AES_128_CCM_8");
  BOOST_TEST(tls_pki.suite == "ECDHE_ECDSA_WITH_AES_128_CCM_8");
}

// ---- 2. libcoap queues what is sent before the handshake completes: three requests and a
// ping issued right after create_client all complete once the session is up, none is lost.
template <class Transport>
void queued_before_handshake(fixture& f) {
  auto& srv = f.psk_server();
  auto s = f.connect<Transport, coap::psk>(srv.port<Transport>(), psk_client());
  BOOST_TEST(!s.implementation()->security_channel().established());
  std::vector<outcome> outs(4);
  for (int i = 0; i < 3; ++i)
    s.async_request(get_hello(), [&outs, i](std::error_code ec, coap::message m) {
      outs[i].ec = ec;
      outs[i].response = std::move(m);
      outs[i].done = true;
    });
  s.async_ping([&outs](std::error_code ec, coap::message) {
    outs[3].ec = ec;
    outs[3].done = true;
  });
  BOOST_TEST_REQUIRE(f.run_until([&] { return outs[0].done && outs[1].done && outs[2].done && outs[3].done; }));
  for (int i = 0; i < 3; ++i) BOOST_TEST(outs[i].ok(), Transport::name << " request " << i << ": " << outs[i].ec.message());
  BOOST_TEST(!outs[3].ec, Transport::name << " ping: " << outs[3].ec.message());
  BOOST_TEST(s.implementation()->security_channel().established());
  // The same ping once the session is up.
  outcome after;
  s.async_ping([&after](std::error_code ec, coap::message) {
    after.ec = ec;
    after.done = true;
  });
  BOOST_TEST_REQUIRE(f.run_until([&] { return after.done; }));
  BOOST_TEST(!after.ec, Transport::name << " ping after the handshake: " << after.ec.message());
}
BOOST_AUTO_TEST_CASE(requests_and_ping_wait_for_the_handshake_dtls) { queued_before_handshake<coap::udp>(*this); }
BOOST_AUTO_TEST_CASE(requests_and_ping_wait_for_the_handshake_tls) { queued_before_handshake<coap::tcp>(*this); }

// ---- 3. coap_session_max_pdu_size over DTLS: the MTU less the record's header (13), explicit
// nonce (8) and tag (8 for CCM_8). Before the handshake the largest offered suite counts
// (AES-GCM: 13 + 8 + 16). A larger request goes block-wise (RFC 7959); beyond the body limit
// it fails locally with message_too_large.
BOOST_AUTO_TEST_CASE(max_pdu_size_accounts_for_the_record) {
  auto& srv = psk_server();
  auto s = connect<coap::udp, coap::psk>(srv.udp, psk_client());
  BOOST_TEST(s.max_pdu_size() == 1152u - 37u);
  BOOST_TEST_REQUIRE(request(s, get_hello()).ok());
  BOOST_TEST(s.implementation()->security_channel().record_overhead() == 29u);
  BOOST_TEST(s.max_pdu_size() == 1123u);
  // 4 header + 8 token + 6 Uri-Path "hello" + 1 payload marker = 19 bytes before the payload.
  auto fits = get_hello();
  fits.set_payload(std::string(1123 - 19, 'x'));
  const auto exact = request(s, fits);
  BOOST_TEST(exact.ok(), exact.ec.message());
  auto big = get_hello();
  big.set_payload(std::string(1123 - 19 + 1, 'x'));
  const auto in_blocks = request(s, big);  // one byte over: Block1 blocks, each in a record
  BOOST_TEST(in_blocks.ok(), in_blocks.ec.message());
  s.config().max_body_size = 1123 - 19;
  const auto too_big = request(s, big);
  BOOST_TEST((too_big.ec == coap::error::message_too_large), too_big.ec.message());
  BOOST_TEST(too_big.still_open);  // only the exchange failed
}

// ---- 4. Failed handshakes name their TLS alert (RFC 5246 section 7.2, RFC 4279 section 2).

// A wrong PSK makes the Finished messages fail authentication. TLS reports it (bad_record_mac).
// DTLS drops records that fail authentication silently (RFC 6347 section 4.1.2.7), as
// libcoap's OpenSSL server does, so the client only times out.
BOOST_AUTO_TEST_CASE(wrong_psk) {
  auto& srv = psk_server();
  const auto wrong = psk_client("alice", {'w', 'r', 'o', 'n', 'g'});
  expect_failure<coap::tcp, coap::psk>(srv, wrong, coap::tls_alert::bad_record_mac);
  expect_failure<coap::udp, coap::psk>(srv, wrong, coap::error::handshake_timeout, quick(2s));
  expect_success_both<coap::psk>(srv, psk_client());  // the server goes on
}

// libcoap's validate_id_call_back refusing an identity: the server sends unknown_psk_identity.
// It is sent before any key is in use, so it reaches a DTLS client in the clear as well.
BOOST_AUTO_TEST_CASE(unknown_psk_identity) {
  auto cfg = psk_server_config();
  cfg.key_for_identity = [](std::string_view identity, std::string_view) -> std::optional<bytes> {
    if (identity == "alice") return secret;
    return std::nullopt;
  };
  auto& srv = psk_server(cfg);
  expect_failure_both<coap::psk>(srv, psk_client("mallory"), coap::tls_alert::unknown_psk_identity);
  expect_success_both<coap::psk>(srv, psk_client("alice"));
}

// A server certificate from a CA the client does not trust: unknown_ca. Trusting the rogue CA
// (the client's pki_key ca) lets the same server through.
BOOST_AUTO_TEST_CASE(untrusted_ca) {
  auto& srv = pki_server(pki("untrusted"));
  expect_failure_both<coap::pki>(srv, pki("client"), coap::tls_alert::unknown_ca);
  expect_success_both<coap::pki>(srv, pki("client", "rogue-ca.crt"));
}

// An expired server certificate: certificate_expired, unless allow_expired_certs.
BOOST_AUTO_TEST_CASE(expired_certificate) {
  auto& srv = pki_server(pki("expired"));
  expect_failure_both<coap::pki>(srv, pki("client"), coap::tls_alert::certificate_expired);
  auto lenient = pki("client");
  lenient.allow_expired_certs = true;
  expect_success_both<coap::pki>(srv, lenient);
}

// validate_cn_call_back: called for the peer's certificate (depth 0, CN localhost, after the
// chain validated); false rejects it with bad_certificate.
BOOST_AUTO_TEST_CASE(cn_callback) {
  auto& srv = pki_server(pki("server"));
  struct call {
    std::string cn;
    unsigned depth;
    bool validated;
    bool der;
  };
  std::vector<call> calls;
  bool accept = false;
  auto cfg = pki("client");
  cfg.validate_cn = [&](const sec::pki_cn_info& i) {
    calls.push_back({std::string(i.cn), i.depth, i.validated, !i.der.empty() && i.der[0] == 0x30});
    return accept;
  };
  expect_failure_both<coap::pki>(srv, cfg, coap::tls_alert::bad_certificate);
  BOOST_TEST_REQUIRE(calls.size() == 2u);  // one per handshake: the server sends its leaf only
  for (const auto& c : calls) {
    BOOST_TEST(c.cn == "localhost");
    BOOST_TEST(c.depth == 0u);
    BOOST_TEST(c.validated);
    BOOST_TEST(c.der);  // a DER SEQUENCE
  }
  accept = true;
  expect_success_both<coap::pki>(srv, cfg);
}

// check_cert_revocation with ca.crl: the revoked server certificate fails (certificate_revoked);
// without revocation checks it is accepted (libcoap's default).
BOOST_AUTO_TEST_CASE(revoked_certificate) {
  auto& srv = pki_server(pki("revoked"));
  auto strict = pki("client");
  strict.check_cert_revocation = true;
  strict.crl_files = {cert("ca.crl")};
  expect_failure_both<coap::pki>(srv, strict, coap::tls_alert::certificate_revoked);
  expect_success_both<coap::pki>(srv, pki("client"));
}

// require_peer_cert: a client without a certificate is refused (handshake_failure, as
// libcoap's OpenSSL server); with require_peer_cert=false it gets in.
BOOST_AUTO_TEST_CASE(missing_client_certificate) {
  auto& strict = pki_server(pki("server"));
  expect_failure_both<coap::pki>(strict, pki(""), coap::tls_alert::handshake_failure);
  expect_success_both<coap::pki>(strict, pki("client"));
  auto lenient_cfg = pki("server");
  lenient_cfg.require_peer_cert = false;
  auto& lenient = pki_server(lenient_cfg);
  expect_success_both<coap::pki>(lenient, pki(""));
}

// allow_self_signed: a lone self-signed server certificate is accepted; otherwise unknown_ca.
BOOST_AUTO_TEST_CASE(self_signed_server) {
  auto& srv = pki_server(pki("selfsigned"));
  expect_failure_both<coap::pki>(srv, pki("client"), coap::tls_alert::unknown_ca);
  auto lenient = pki("client");
  lenient.allow_self_signed = true;
  expect_success_both<coap::pki>(srv, lenient);
}

// cert_chain_verify_depth: leaf + intermediate (chain-leaf-bundle) has one intermediate CA; a
// depth of 0 rejects it (bad_certificate), the default of 3 accepts it.
BOOST_AUTO_TEST_CASE(chain_depth) {
  auto cfg = pki("server");
  cfg.key = sec::pki_key::from_files(cert("ca.crt"), cert("chain-leaf-bundle.crt"), cert("chain-leaf.key"));
  auto& srv = pki_server(cfg);
  auto shallow = pki("client");
  shallow.cert_chain_verify_depth = 0;
  expect_failure_both<coap::pki>(srv, shallow, coap::tls_alert::bad_certificate);
  expect_success_both<coap::pki>(srv, pki("client"));
}

// COAP_PKI_KEY_ASN1: DER certificates and PKCS #8 DER keys from memory.
BOOST_AUTO_TEST_CASE(der_in_memory) {
  auto server_cfg = pki("server");
  server_cfg.key = sec::pki_key::from_memory(file_bytes("ca.crt.der"), file_bytes("server.crt.der"),
                                             file_bytes("server.key.der"));
  auto& srv = pki_server(server_cfg);
  auto client_cfg = pki("client");
  client_cfg.key = sec::pki_key::from_memory(file_bytes("ca.crt.der"), file_bytes("client.crt.der"),
                                             file_bytes("client.key.der"));
  expect_success_both<coap::pki>(srv, client_cfg);
}

// ---- 4b. Choosing keys by identity, hint and SNI (RFC 6066 section 3; libcoap's
// validate_id_call_back, validate_sni_call_back and validate_ih_call_back).

// The server's key depends on the client's identity and the SNI it sent.
BOOST_AUTO_TEST_CASE(psk_key_by_identity_and_sni) {
  const bytes key_a{'k', 'e', 'y', '-', 'a'}, key_b{'k', 'e', 'y', '-', 'b'};
  std::vector<std::string> asked;
  auto cfg = psk_server_config();
  cfg.key_for_identity = [&](std::string_view identity, std::string_view sni) -> std::optional<bytes> {
    asked.push_back(std::string(identity) + "@" + std::string(sni));
    if (identity != "alice") return std::nullopt;
    if (sni == "a.example") return key_a;
    if (sni == "b.example") return key_b;
    return std::nullopt;
  };
  auto& srv = psk_server(cfg);
  const auto with_sni = [](std::string sni, bytes key) {
    auto c = psk_client("alice", std::move(key));
    c.sni = std::move(sni);
    return c;
  };
  expect_success_both<coap::psk>(srv, with_sni("a.example", key_a));
  expect_success_both<coap::psk>(srv, with_sni("b.example", key_b));
  expect_failure<coap::tcp, coap::psk>(srv, with_sni("a.example", key_b), coap::tls_alert::bad_record_mac);
  expect_failure_both<coap::psk>(srv, with_sni("", key_a), coap::tls_alert::unknown_psk_identity);
  BOOST_TEST(std::count(asked.begin(), asked.end(), "alice@a.example") >= 3);
  BOOST_TEST(std::count(asked.begin(), asked.end(), "alice@b.example") >= 2);
  BOOST_TEST(std::count(asked.begin(), asked.end(), "alice@") >= 2);
}

// The server's hint and key depend on the SNI; the client picks its identity and key from
// the hint it is sent. Without a matching SNI the defaults ("CoAP", the context key) hold.
BOOST_AUTO_TEST_CASE(psk_hint_and_key_by_sni) {
  const bytes room{'r', 'o', 'o', 'm'};
  auto cfg = psk_server_config();
  cfg.on_sni = [&](std::string_view sni) -> std::optional<sec::psk_hint_key> {
    if (sni == "room.example") return sec::psk_hint_key{"room-7", room};
    return std::nullopt;
  };
  auto& srv = psk_server(cfg);
  std::vector<std::string> hints;
  const auto client = [&](std::string sni) {
    auto c = psk_client("nobody", {'n', 'o', 'n', 'e'});
    c.sni = std::move(sni);
    c.on_hint = [&hints, room](std::string_view hint) -> std::optional<sec::psk_identity_key> {
      hints.emplace_back(hint);
      if (hint == "room-7") return sec::psk_identity_key{"guest", room};
      if (hint == "CoAP") return sec::psk_identity_key{"alice", secret};
      return std::nullopt;
    };
    return c;
  };
  expect_success_both<coap::psk>(srv, client("room.example"));
  BOOST_TEST(std::count(hints.begin(), hints.end(), "room-7") == 2);
  BOOST_TEST(std::count(hints.begin(), hints.end(), "CoAP") == 0);
  hints.clear();
  expect_success_both<coap::psk>(srv, client("other.example"));
  expect_success_both<coap::psk>(srv, client(""));
  BOOST_TEST(std::count(hints.begin(), hints.end(), "CoAP") == 4);
  BOOST_TEST(hints.size() == 4u);
  // on_hint declining keeps the configured identity and key: here the wrong ones.
  auto declined = psk_client("alice", {'w', 'r', 'o', 'n', 'g'});
  declined.on_hint = [](std::string_view) -> std::optional<sec::psk_identity_key> { return std::nullopt; };
  expect_failure<coap::tcp, coap::psk>(srv, declined, coap::tls_alert::bad_record_mac);
}

// The server presents the certificate validate_sni gives for the client's SNI (the client
// sees it in validate_cn), the default one for other names and for none. Keys given are
// cached per name, up to pki_state::max_cached_sni; declined names are not.
BOOST_AUTO_TEST_CASE(pki_key_by_sni) {
  const auto chain_key = sec::pki_key::from_files(cert("ca.crt"), cert("chain-leaf-bundle.crt"), cert("chain-leaf.key"));
  std::vector<std::string> asked;
  auto cfg = pki("server");
  cfg.validate_sni = [&](std::string_view sni) -> std::optional<sec::pki_key> {
    asked.emplace_back(sni);
    if (sni == "chain.example" || sni.starts_with("n")) return chain_key;
    return std::nullopt;
  };
  auto& srv = pki_server(cfg);
  const auto& state = *coap::detail::context_access::find_security_state<sec::pki_context_state>(srv.ctx)->server;
  bytes seen;
  const auto client = [&](std::string sni) {
    auto c = pki("client");
    c.client_sni = std::move(sni);
    c.validate_cn = [&seen](const sec::pki_cn_info& i) {
      if (i.depth == 0) seen.assign(i.der.begin(), i.der.end());
      return true;
    };
    return c;
  };
  const auto chain_leaf = file_bytes("chain-leaf.crt.der"), server_leaf = file_bytes("server.crt.der");
  BOOST_TEST_REQUIRE(!chain_leaf.empty());
  const auto presents = [&]<class Transport>(Transport, const std::string& sni, const bytes& expected) {
    seen.clear();
    expect_success<Transport, coap::pki>(srv, client(sni));
    BOOST_TEST((seen == expected), Transport::name << " SNI '" << sni << "'");
  };
  for (int round = 0; round < 2; ++round) {
    presents(coap::udp{}, "chain.example", chain_leaf);
    presents(coap::tcp{}, "chain.example", chain_leaf);
    presents(coap::udp{}, "other.example", server_leaf);
    presents(coap::tcp{}, "other.example", server_leaf);
    presents(coap::tcp{}, "", server_leaf);
  }
  BOOST_TEST(std::count(asked.begin(), asked.end(), "chain.example") == 1);  // loaded once
  BOOST_TEST(std::count(asked.begin(), asked.end(), "other.example") >= 4);  // asked each time
  BOOST_TEST(std::count(asked.begin(), asked.end(), "") == 0);
  BOOST_TEST(state.cached_sni_keys() == 1u);

  // Past the cap the cache stops growing, and names beyond it still get their key.
  const auto cap = sec::pki_state::max_cached_sni;
  for (std::size_t i = 0; i < cap + 3; ++i) {
    seen.clear();
    expect_success<coap::tcp, coap::pki>(srv, client("n" + std::to_string(i) + ".example"));
    BOOST_TEST((seen == chain_leaf), "n" << i);
  }
  BOOST_TEST(state.cached_sni_keys() == cap);
  presents(coap::tcp{}, "chain.example", chain_leaf);
  presents(coap::tcp{}, "other.example", server_leaf);
}

// RFC 7252 section 9.1.3.3: the server's certificate must name the host the client asked for
// (pki_config::verify_host): a DNS name or address in its SubjectAltName, the host of a CoAP
// URI there, or its CommonName when it has no SubjectAltName. A mismatch is bad_certificate.
BOOST_AUTO_TEST_CASE(server_name_check) {
  const auto host = [](std::string h) {
    auto c = pki("client");
    c.verify_host = std::move(h);
    return c;
  };
  auto& srv = pki_server(pki("server"));  // SAN DNS:localhost, IP:127.0.0.1, IP:::1
  for (const char* ok : {"localhost", "LocalHost", "localhost.", "127.0.0.1"}) {
    BOOST_TEST_CONTEXT("verify_host " << ok) expect_success_both<coap::pki>(srv, host(ok));
  }
  for (const char* bad : {"example.org", "local", "127.0.0.2", "localhost.example"}) {
    BOOST_TEST_CONTEXT("verify_host " << bad)
    expect_failure_both<coap::pki>(srv, host(bad), coap::tls_alert::bad_certificate);
  }
  auto unverified = host("example.org");  // only checked along with the certificate
  unverified.verify_peer_cert = false;
  expect_success_both<coap::pki>(srv, unverified);

  auto& nosan = pki_server(pki("nosan"));  // CN localhost, no SubjectAltName
  expect_success_both<coap::pki>(nosan, host("localhost"));
  expect_failure_both<coap::pki>(nosan, host("127.0.0.1"), coap::tls_alert::bad_certificate);

  auto& urisan = pki_server(pki("urisan"));  // CN coap-uri, SAN URI:coaps://coap.example:5684/
  expect_success_both<coap::pki>(urisan, host("coap.example"));
  expect_failure_both<coap::pki>(urisan, host("coap-uri"), coap::tls_alert::bad_certificate);
}

// The same without a pki_config of the session's own: the context's root CAs
// (set_pki_root_cas) and the URI's host.
BOOST_AUTO_TEST_CASE(uri_host_is_checked_with_context_roots) {
  auto lenient = [](const std::string& name) {
    auto c = pki(name);
    c.require_peer_cert = false;  // the client has no certificate of its own
    return c;
  };
  auto& named = pki_server(lenient("server"));
  auto& nosan = pki_server(lenient("nosan"));
  BOOST_TEST_REQUIRE(!sec::set_pki_root_cas(client, cert("ca.crt")));
  const auto by_uri = [&](server& srv) {
    std::error_code ec;
    auto s = coap::session<coap::tcp, coap::pki>::create_client(
        client, "coaps+tcp://127.0.0.1:" + std::to_string(srv.tcp) + "/hello", ec);
    BOOST_TEST_REQUIRE(!ec, ec.message());
    return request(s, get_hello());
  };
  const auto ok = by_uri(named);
  BOOST_TEST(ok.ok(), ok.ec.message());
  const auto refused = by_uri(nosan);
  BOOST_TEST((refused.ec == coap::tls_alert::bad_certificate), refused.ec.message());
}

// create_client from a coaps:// URI checks the URI's host unless verify_host says otherwise.
BOOST_AUTO_TEST_CASE(uri_host_is_checked) {
  auto& named = pki_server(pki("server"));  // names 127.0.0.1
  auto& nosan = pki_server(pki("nosan"));   // names localhost only
  const auto by_uri = [&](server& srv, const sec::pki_config& cfg) {
    std::error_code ec;
    auto s = coap::session<coap::udp, coap::pki>::create_client(
        client, "coaps://127.0.0.1:" + std::to_string(srv.udp) + "/hello", cfg, ec);
    BOOST_TEST_REQUIRE(!ec, ec.message());
    return request(s, get_hello());
  };
  const auto ok = by_uri(named, pki("client"));
  BOOST_TEST(ok.ok(), ok.ec.message());
  const auto refused = by_uri(nosan, pki("client"));
  BOOST_TEST((refused.ec == coap::tls_alert::bad_certificate), refused.ec.message());
  auto explicit_host = pki("client");
  explicit_host.verify_host = "localhost";
  const auto chosen = by_uri(nosan, explicit_host);
  BOOST_TEST(chosen.ok(), chosen.ec.message());
}

// Who the handshake authenticated, for access control: a request handler sees the client's
// PSK identity (the one on_hint chose, when it chose) or its certificate's CN; a client sees
// the server certificate's CN, and nothing for a PSK server. Sessions started side by side on
// one endpoint keep their own identities.
BOOST_AUTO_TEST_CASE(authenticated_peer) {
  auto cfg = psk_server_config();
  cfg.key_for_identity = [](std::string_view, std::string_view) -> std::optional<bytes> { return secret; };
  auto& p = psk_server(cfg);
  auto& c = pki_server(pki("server"));
  coap::message whoami(coap::method::get);
  whoami.add(coap::options::uri_path{}, "whoami");

  const auto ask = [&]<class Transport, class Security>(Transport, Security, std::uint16_t port,
                                                         const typename Security::client_config& cc) {
    auto s = connect<Transport, Security>(port, cc);
    BOOST_TEST(s.authenticated_peer().empty());  // not before the handshake
    const auto out = request(s, whoami);
    BOOST_TEST(!out.ec, out.ec.message());
    return std::pair{std::string(out.response.payload_string()), std::string(s.authenticated_peer())};
  };
  for (const auto* id : {"alice", "bob"}) {
    BOOST_TEST((ask(coap::udp{}, coap::psk{}, p.udp, psk_client(id)) == std::pair<std::string, std::string>{id, ""}));
    BOOST_TEST((ask(coap::tcp{}, coap::psk{}, p.tcp, psk_client(id)) == std::pair<std::string, std::string>{id, ""}));
  }
  auto hinted = psk_client("nobody");
  hinted.on_hint = [](std::string_view) { return std::optional<sec::psk_identity_key>({"carol", secret}); };
  BOOST_TEST(ask(coap::udp{}, coap::psk{}, p.udp, hinted).first == "carol");
  const std::pair<std::string, std::string> both{"coap-client", "localhost"};
  BOOST_TEST((ask(coap::udp{}, coap::pki{}, c.udp, pki("client")) == both));
  BOOST_TEST((ask(coap::tcp{}, coap::pki{}, c.tcp, pki("client")) == both));

  // Interleaved handshakes on one DTLS endpoint: each server session keeps its client's identity.
  std::vector<coap::session<coap::udp, coap::psk>> sessions;
  std::vector<outcome> outs(6);
  for (int i = 0; i < 6; ++i) {
    sessions.push_back(connect<coap::udp, coap::psk>(p.udp, psk_client("client-" + std::to_string(i))));
    sessions.back().async_request(whoami, [&outs, i](std::error_code ec, coap::message m) {
      outs[i].ec = ec;
      outs[i].response = std::move(m);
      outs[i].done = true;
    });
  }
  BOOST_TEST_REQUIRE(run_until([&] { return std::all_of(outs.begin(), outs.end(), [](auto& o) { return o.done; }); }));
  for (int i = 0; i < 6; ++i) BOOST_TEST(outs[i].response.payload_string() == "client-" + std::to_string(i));

  // A certificate names nobody unless it chained to a trust anchor: not with verification
  // off, not as a self-signed one let in by allow_self_signed.
  auto& self_signed = pki_server(pki("selfsigned"));
  auto allowed = pki("client");
  allowed.allow_self_signed = true;
  BOOST_TEST((ask(coap::udp{}, coap::pki{}, self_signed.udp, allowed).second == ""));
  auto unverified = pki("client");
  unverified.verify_peer_cert = false;
  BOOST_TEST((ask(coap::tcp{}, coap::pki{}, c.tcp, unverified).second == ""));
  auto open_cfg = pki("server");
  open_cfg.verify_peer_cert = false;
  open_cfg.require_peer_cert = false;
  auto& open = pki_server(open_cfg);  // does not check client certificates
  BOOST_TEST((ask(coap::udp{}, coap::pki{}, open.udp, pki("client")) == std::pair<std::string, std::string>{"", "localhost"}));

  // NoSec: nobody.
  static_assert(coap::no_sec::channel<int>::authenticated_peer().empty());
}

// Set-up errors are reported at set-up: an unreadable file, and an endpoint without security.
BOOST_AUTO_TEST_CASE(setup_errors) {
  server srv(io);
  auto cfg = pki("server");
  cfg.key.cert_file = cert("no-such-file.crt");
  BOOST_TEST((sec::set_pki(srv.ctx, cfg) == coap::error::invalid_credentials));
  std::uint16_t port = 0;
  BOOST_TEST((srv.ctx.add_endpoint<coap::udp, coap::psk>(loopback, 0, &port) == coap::error::security_not_configured));
  BOOST_TEST((srv.ctx.add_endpoint<coap::tcp, coap::psk>(loopback, 0, &port) == coap::error::security_not_configured));
  BOOST_TEST((srv.ctx.add_endpoint<coap::udp, coap::pki>(loopback, 0, &port) == coap::error::security_not_configured));
  BOOST_TEST(srv.ctx.endpoint_count() == 0u);
}

// ---- 5. RFC 6347 section 4.2.4: DTLS retransmits its flights until the handshake completes.
// 30% of the datagrams are lost each way during the handshake (one mt19937 per direction
// decides each datagram in order, so a seed always drops the same datagrams); once it is
// complete the loss stops and a request shows the session works. (CoAP's own retransmission
// under loss is udp_session_test's; here it would only add a second source of chance.)
BOOST_AUTO_TEST_CASE(dtls_handshake_through_loss) {
  auto& srv = psk_server();
  srv.ctx.config().session.handshake_timeout = 20s;
  for (const unsigned seed : {1u, 2u, 3u}) {
    struct dice {
      std::mt19937 to_server, to_client;
      std::size_t dropped = 0;
      bool lossy = true;
    };
    auto d = std::make_shared<dice>(dice{std::mt19937(seed), std::mt19937(seed + 1000)});
    proxy p(io.get_executor(), {loopback, srv.udp}, [d](proxy::direction dir, std::size_t, auto) {
      auto& rng = dir == proxy::direction::to_server ? d->to_server : d->to_client;
      if (d->lossy && std::uniform_int_distribution<int>(0, 99)(rng) < 30) {
        ++d->dropped;
        return proxy::action::drop;
      }
      return proxy::action::forward;
    });
    auto s = connect<coap::udp, coap::psk>(p.endpoint().port(), psk_client(), quick(20s));
    const bool established =
        run_until([&] { return s.implementation()->security_channel().established() || !s.is_open(); }, 25s);
    BOOST_TEST((established && s.is_open()), "seed " << seed << ": the handshake did not complete");
    BOOST_TEST_MESSAGE("seed " << seed << ": " << p.seen(proxy::direction::to_server) << " up, "
                               << p.seen(proxy::direction::to_client) << " down, " << d->dropped << " dropped");
    BOOST_TEST(d->dropped > 0u, "seed " << seed << " dropped nothing during the handshake");
    d->lossy = false;
    if (established && s.is_open()) {
      const auto out = request(s, get_hello());
      BOOST_TEST(out.ok(), "seed " << seed << ": " << out.ec.message());
    }
    s.close();
    p.close();
  }
}

// The two flights whose loss the random runs above hit, lost once each, deterministically.
// RFC 6347 section 4.2.4: a lost ServerHello flight makes the client retransmit its
// ClientHello (still in a DTLS 1.0 record: it has not seen the server's version), which the
// server must answer by retransmitting that flight; a lost final flight (the server's CCS and
// Finished) makes the client retransmit its own final flight, which the server must answer
// the same way (section 4.2.4, "the server ... retransmits its last flight").
// Drops the first `times` datagrams to the client that `lost` picks.
void lose_once(fixture& f, std::function<bool(std::span<const std::uint8_t>)> lost, int times = 1) {
  auto& srv = f.psk_server();
  auto left = std::make_shared<int>(times);
  proxy p(f.io.get_executor(), {loopback, srv.udp}, [lost, left](proxy::direction dir, std::size_t, auto data) {
    if (dir == proxy::direction::to_server || *left == 0 || !lost(data)) return proxy::action::forward;
    --*left;
    return proxy::action::drop;
  });
  auto s = f.connect<coap::udp, coap::psk>(p.endpoint().port(), psk_client(), quick(5s));
  const auto out = f.request(s, get_hello(), 10s);
  BOOST_TEST(*left == 0);
  BOOST_TEST(out.ok(), out.ec.message());
}
// Lost HelloVerifyRequests: the client sends its hello again each time, with the next record
// number, and each HelloVerifyRequest takes its hello's number (RFC 6347 section 4.2.1): after
// four losses the fifth carries number 4. The session's records must then be numbered from
// the cookie hello's number on (section 4.2.1 again), not from Botan's own 1: its fourth
// record (NewSessionTicket) would carry number 4, which the client's replay window drops as
// seen, again on every retransmission, and the handshake stalls.
BOOST_AUTO_TEST_CASE(dtls_recovers_lost_hello_verify_requests) {
  lose_once(*this, [](std::span<const std::uint8_t> d) { return d.size() > 13 && d[0] == 22 && d[13] == 3; }, 4);
}
BOOST_AUTO_TEST_CASE(dtls_recovers_a_lost_server_hello) {
  lose_once(*this, [](std::span<const std::uint8_t> d) { return d.size() > 13 && d[0] == 22 && d[13] == 2; });
}
BOOST_AUTO_TEST_CASE(dtls_recovers_a_lost_server_finished) {
  // The datagram holding the server's Finished: its only handshake record of epoch 1 during
  // the handshake (records of a flight share datagrams).
  lose_once(*this, [](std::span<const std::uint8_t> d) {
    bool finished = false;
    sec::detail::for_each_dtls_record(d, [&](std::span<const std::uint8_t> r) {
      finished = finished || (r[0] == 22 && sec::detail::dtls_epoch(r.data()) == 1);
    });
    return finished;
  });
}

// ---- 5b. RFC 6347 section 4.1.2.7: a DTLS record that fails its checks is dropped, and the
// association goes on. Datagrams spoofed from the client's address at an established server
// session (and from the server's at the client): garbage, a ciphertext record with one byte
// flipped, a replayed request record, a plaintext fatal alert in epoch 0, a plaintext
// ClientHello. Each side goes on serving the same session; the replay is not answered twice.
BOOST_AUTO_TEST_CASE(dtls_drops_forged_records) {
  auto& srv = psk_server();
  int served = 0;
  srv.ctx.add_resource("count").on(coap::method::post, [&](const coap::request&, coap::basic_response<>& res) {
    ++served;
    res.set_code(coap::response_code::changed);
  });
  std::vector<bytes> app_records;  // the client's application records, as sent
  proxy p(io.get_executor(), {loopback, srv.udp}, [&](proxy::direction dir, std::size_t, auto d) {
    if (dir == proxy::direction::to_server && !d.empty() && d[0] == 23) app_records.emplace_back(d.begin(), d.end());
    return proxy::action::forward;
  });
  auto s = connect<coap::udp, coap::psk>(p.endpoint().port(), psk_client());
  coap::message post(coap::method::post);
  post.add(coap::options::uri_path{}, "count");
  post.set_type(coap::message_type::non_confirmable);
  BOOST_TEST_REQUIRE(!request(s, post).ec);
  BOOST_TEST_REQUIRE(served == 1);
  BOOST_TEST_REQUIRE(!app_records.empty());
  const std::size_t sessions = srv.ctx.session_count();

  const bytes request_record = app_records.back();
  bytes flipped = request_record;
  flipped.back() ^= 0x01;
  // Epoch 0, sequence 100: a fatal bad_record_mac alert, and a ClientHello header.
  const bytes alert{21, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 100, 0, 2, 2, 20};
  const bytes hello{22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 101, 0, 12, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  std::mt19937 rng(7);
  bytes garbage(64);
  for (auto& b : garbage) b = static_cast<std::uint8_t>(rng());
  for (const auto dir : {proxy::direction::to_server, proxy::direction::to_client})
    for (const auto& forged : {garbage, flipped, alert, hello}) p.inject(dir, forged);
  p.inject(proxy::direction::to_server, request_record);  // a replay
  run_until([] { return false; }, 300ms);

  BOOST_TEST(s.is_open());
  BOOST_TEST(served == 1);  // the replayed record was not a second request
  const auto out = request(s, get_hello());
  BOOST_TEST(out.ok(), out.ec.message());
  BOOST_TEST(srv.ctx.session_count() == sessions);
  BOOST_TEST_REQUIRE(!request(s, post).ec);
  BOOST_TEST(served == 2);
}

// RFC 6347 section 4.1.1: the records of a flight share datagrams, within the MTU. A PSK
// server's second flight (ServerHello, ServerKeyExchange, ServerHelloDone) is one datagram; a
// certificate flight on a session MTU of 400 bytes is split, and a datagram that holds more
// than one record stays within 400 bytes.
BOOST_AUTO_TEST_CASE(dtls_flights_share_datagrams) {
  const auto record_count = [](const bytes& d) {
    std::size_t n = 0;
    sec::detail::for_each_dtls_record(std::span<const std::uint8_t>(d), [&](auto) { ++n; });
    return n;
  };
  const auto downstream = [&](server& srv, auto cfg, coap::session_config sc) {
    std::vector<bytes> seen;
    proxy p(io.get_executor(), {loopback, srv.udp}, [&](proxy::direction dir, std::size_t, auto d) {
      if (dir == proxy::direction::to_client) seen.emplace_back(d.begin(), d.end());
      return proxy::action::forward;
    });
    using security = std::conditional_t<std::is_same_v<decltype(cfg), sec::pki_config>, coap::pki, coap::psk>;
    auto s = connect<coap::udp, security>(p.endpoint().port(), cfg, sc);
    BOOST_TEST(request(s, get_hello()).ok());
    return seen;
  };
  auto& psk_srv = psk_server();
  const auto psk_seen = downstream(psk_srv, psk_client(), quick());
  BOOST_TEST_REQUIRE(psk_seen.size() >= 2u);
  BOOST_TEST(record_count(psk_seen[1]) == 3u);  // after the HelloVerifyRequest: SH, SKE, SHD

  auto& pki_srv = pki_server(pki("server"));
  pki_srv.ctx.config().session.mtu = 400;
  const auto pki_seen = downstream(pki_srv, pki("client"), quick());
  std::size_t packed = 0;
  for (const auto& d : pki_seen)
    if (record_count(d) > 1) {
      ++packed;
      BOOST_TEST(d.size() <= 400u);
    }
  BOOST_TEST(packed > 0u);
  BOOST_TEST(pki_seen.size() >= 4u);  // HelloVerifyRequest, a split second flight, the rest
}

// ---- 6. RFC 6347 section 4.2.1: a ClientHello without a cookie gets a HelloVerifyRequest and
// the server keeps no state. Nothing reaches the client here, which keeps sending hellos.
BOOST_AUTO_TEST_CASE(stateless_hello_verify_request) {
  auto& srv = psk_server();
  std::vector<bytes> answers;
  proxy p(io.get_executor(), {loopback, srv.udp}, [&](proxy::direction dir, std::size_t, auto data) {
    if (dir == proxy::direction::to_server) return proxy::action::forward;
    answers.emplace_back(data.begin(), data.end());
    return proxy::action::drop;
  });
  auto s = connect<coap::udp, coap::psk>(p.endpoint().port(), psk_client(), quick(1500ms));
  std::size_t most_sessions = 0;
  bool closed = false;
  BOOST_TEST(run_until([&] {
    most_sessions = std::max(most_sessions, srv.ctx.session_count());
    return closed = !s.is_open();
  }, 5s));
  BOOST_TEST(closed);
  BOOST_TEST(most_sessions == 0u);
  BOOST_TEST(p.seen(proxy::direction::to_server) >= 2u);  // the first hello and retransmissions
  BOOST_TEST_REQUIRE(!answers.empty());
  BOOST_TEST(answers.size() == p.seen(proxy::direction::to_server));  // each hello answered
  for (const auto& a : answers) {
    BOOST_TEST_REQUIRE(a.size() > 13u);
    BOOST_TEST(a[0] == 22);   // handshake record
    BOOST_TEST(a[13] == 3);   // hello_verify_request
  }
}

// ---- 7. libcoap's max_handshakes: beyond the cap, hellos with a valid cookie are dropped.
// Client A's handshake can never finish (only the HelloVerifyRequest reaches A, and nothing
// from A after its hello with the cookie reaches the server), so its server session holds the
// only slot until the server's handshake timeout (4 s). Client B, directly,
// gives up after 1.5 s: well within that window, so B must fail with handshake_timeout (the
// cap drops its hellos silently) whatever the scheduling. Once A's server session has timed
// out, a client C gets in.
BOOST_AUTO_TEST_CASE(handshake_cap) {
  auto& srv = psk_server();
  srv.ctx.config().max_handshakes = 1;
  srv.ctx.config().session.handshake_timeout = 4s;
  // A's first hello, the HelloVerifyRequest and A's hello with the cookie pass; nothing else.
  proxy p(io.get_executor(), {loopback, srv.udp}, [](proxy::direction dir, std::size_t n, auto) {
    const std::size_t pass = dir == proxy::direction::to_server ? 2 : 1;
    return n < pass ? proxy::action::forward : proxy::action::drop;
  });
  auto a = connect<coap::udp, coap::psk>(p.endpoint().port(), psk_client(), quick(30s));
  BOOST_TEST_REQUIRE(run_until([&] { return srv.ctx.session_count() == 1u; }, 3s));

  auto b = connect<coap::udp, coap::psk>(srv.udp, psk_client(), quick(1500ms));
  const auto out_b = request(b, get_hello(), 5s);
  BOOST_TEST((out_b.ec == coap::error::handshake_timeout), out_b.ec.message());
  BOOST_TEST(srv.ctx.session_count() == 1u);  // A's only: B never got a session

  a.close();
  p.close();
  auto c_cfg = psk_client();
  c_cfg.setup = fast_dtls(400ms);
  const auto out_c = hello<coap::udp, coap::psk>(srv, c_cfg, quick(10s));
  BOOST_TEST(out_c.ok(), out_c.ec.message());
}

BOOST_AUTO_TEST_SUITE_END()
