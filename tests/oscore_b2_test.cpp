// RFC 8613 Appendix B.2 (ID Context re-derivation) inside sessions, over real loopback
// sockets: our client renewing its context with our server over UDP and TCP; the wire form
// libcoap 4.3.5 uses (a CBOR-wrapped 'kid context' while the renewal is under way, R2 in a
// protected 4.01); a garbled or forged R2 refused by the client, a second 4.01 for one request
// refused (no loops); the server's bound on pending R2 states; and the wrapping itself.
#include <coap/security/oscore.hpp>

#define BOOST_TEST_MODULE oscore_b2
#include <boost/test/unit_test.hpp>

#include <coap/security/oscore/conf_file.hpp>
#include <coap/session.hpp>
#include <coap/transports/tcp.hpp>
#include <coap/transports/udp.hpp>
#include <coap/udp_codec.hpp>

#include <boost/asio.hpp>
#include <boost/mpl/list.hpp>

#include "support/lossy_udp_proxy.hpp"
#include "support/request_outcome.hpp"
#include "support/run_until.hpp"

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using bytes = std::vector<std::uint8_t>;

namespace coap {
inline std::ostream& operator<<(std::ostream& os, code c) { return os << to_string(c); }
}  // namespace coap

namespace {

const auto loopback = asio::ip::make_address("127.0.0.1");

// Client 0x01 talks to server 0x02, both with Appendix B.2 on (libcoap's rfc8613_b_2).
coap::oscore::context_params params(bool client) {
  coap::oscore::context_params p;
  p.master_secret = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  p.master_salt = {0x9e, 0x7c, 0xa9, 0x22, 0x23, 0x78, 0x63, 0x40};
  p.sender_id = client ? bytes{0x01} : bytes{0x02};
  p.recipient_id = client ? bytes{0x02} : bytes{0x01};
  p.renew_id_context = true;
  // The server's own context wants an Echo after a restart (Appendix B.1.2); a renewed one
  // does not (its keys are new), which the tests below would notice as an extra round trip.
  p.replay_window_recovery = !client;
  return p;
}

coap::session_config quick() {
  coap::session_config c;
  c.ack_timeout = 200ms;
  c.response_timeout = 3s;
  return c;
}

coap::message get(std::string_view path) {
  coap::message r(coap::method::get);
  r.add(coap::options::uri_path{}, path);
  return r;
}

// The OSCORE option of a datagram, parsed; nullopt for one without.
std::optional<coap::oscore_core::option_fields> oscore_of(const bytes& datagram, bytes& value_copy) {
  coap::message_view v;
  if (coap::udp_codec::parse(datagram, v)) return std::nullopt;
  const auto o = v.find(coap::option_number::oscore);
  if (!o) return std::nullopt;
  value_copy.assign(o->value().begin(), o->value().end());
  coap::oscore_core::option_fields f;
  if (coap::oscore_core::decode_option_value(value_copy, f)) return std::nullopt;
  return f;
}

// Where R2 starts in a datagram carrying the 4.01's option value (0x10, 9, 0x48, R2).
std::optional<std::size_t> r2_at(const bytes& d) {
  for (std::size_t i = 0; i + 11 <= d.size(); ++i)
    if (d[i] == 0x10 && d[i + 1] == 0x09 && d[i + 2] == 0x48) return i + 3;
  return std::nullopt;
}

// The network between one client and the server (tests/support's forwarder): keeps every
// datagram as it came and lets a script change one (false drops it; a changed one goes on in
// its place).
struct relay {
  using proxy_type = coap::test::lossy_udp_proxy;
  std::vector<bytes> requests, responses;
  std::function<bool(bytes&)> to_server, to_client;
  proxy_type proxy;

  relay(asio::io_context& io, std::uint16_t server_port)
      : proxy(io.get_executor(), {loopback, server_port},
              [this](proxy_type::direction d, std::size_t, std::span<const std::uint8_t> b) { return pass(d, b); }) {}
  std::uint16_t port() const { return proxy.endpoint().port(); }

  proxy_type::action pass(proxy_type::direction d, std::span<const std::uint8_t> b) {
    const bool up = d == proxy_type::direction::to_server;
    bytes copy(b.begin(), b.end());
    (up ? requests : responses).push_back(copy);
    const auto& change = up ? to_server : to_client;
    if (!change) return proxy_type::action::forward;
    if (!change(copy)) return proxy_type::action::drop;
    if (std::ranges::equal(copy, b)) return proxy_type::action::forward;
    proxy.inject(d, copy);
    return proxy_type::action::drop;
  }
};

struct fixture {
  asio::io_context io;
  coap::context server{io.get_executor()};
  coap::context client{io.get_executor()};
  std::uint16_t udp_port = 0, tcp_port = 0;

  fixture() {
    BOOST_TEST_REQUIRE(!coap::set_oscore(server, params(false)));
    server.add_resource("hello").on(coap::method::get, [](const coap::request&, coap::basic_response<>& res) {
      res.set_payload(std::string_view("world"));
    });
    server.add_resource("whoami").on(coap::method::get, [](const coap::request& req, coap::basic_response<>& res) {
      res.set_payload(req.authenticated_peer());
    });
    BOOST_TEST_REQUIRE(!(server.add_endpoint<coap::udp, coap::oscore>(loopback, 0, &udp_port)));
    BOOST_TEST_REQUIRE(!(server.add_endpoint<coap::tcp, coap::oscore>(loopback, 0, &tcp_port)));
  }

  std::shared_ptr<coap::oscore_core::store> server_store() { return coap::security::detail::oscore_server_store(server); }

  template <class Pred>
  bool run_until(Pred done, std::chrono::milliseconds limit = 5s) {
    return coap::test::run_until(io, done, limit, 2ms);
  }

  template <class Transport>
  coap::session<Transport, coap::oscore> connect(coap::context& from, std::uint16_t port) {
    std::error_code ec;
    auto s = coap::session<Transport, coap::oscore>::create_client(from, {loopback, port}, quick(),
                                                                    coap::oscore_client_config{params(true)}, ec);
    BOOST_TEST_REQUIRE(!ec, ec.message());
    return s;
  }

  using outcome = coap::test::outcome;
  template <class S>
  outcome ask(S& s, coap::message m) {
    auto out = coap::test::ask(io, s, std::move(m), 5s, 2ms);
    BOOST_TEST_REQUIRE(out.done);
    return out;
  }
};

using transports = boost::mpl::list<coap::udp, coap::tcp>;

}  // namespace

BOOST_AUTO_TEST_CASE(kid_context_wrapping_is_strict) {
  // The CBOR byte string libcoap 4.3.5 puts in 'kid context': short and one-byte heads.
  using coap::oscore_core::unwrap_kid_context;
  using coap::oscore_core::wrap_kid_context;
  for (const std::size_t n : {1u, 8u, 16u, 23u, 24u, 200u, 253u}) {
    const bytes id(n, 0xab);
    coap::oscore_core::wrapped_kid_context w;
    BOOST_TEST_REQUIRE(!wrap_kid_context(id, w));
    BOOST_TEST(w.size() == n + (n < 24 ? 1 : 2));
    std::span<const std::uint8_t> back;
    BOOST_TEST_REQUIRE(!unwrap_kid_context(w.bytes(), back));
    BOOST_TEST(std::ranges::equal(back, id));
  }
  BOOST_TEST(wrap_kid_context(bytes(254, 0), *std::make_unique<coap::oscore_core::wrapped_kid_context>()) ==
             coap::oscore_error::invalid_kid_context);
  std::span<const std::uint8_t> out;
  for (const bytes& bad : {bytes{}, bytes{0x48, 1, 2, 3}, bytes{0x41, 1, 2}, bytes{0x58, 0x05, 1, 2, 3, 4, 5},
                           bytes{0x59, 0x00, 0x01, 7}, bytes{0x61, 'a'}, bytes{0x01}})
    BOOST_TEST(unwrap_kid_context(bad, out) == coap::oscore_error::invalid_kid_context);
}

BOOST_AUTO_TEST_CASE(the_conf_files_rfc8613_b_2_turns_it_on) {
  // libcoap's keyword, default false, reaches context_params::renew_id_context.
  const std::string text =
      "master_secret,hex,\"0102030405060708090a0b0c0d0e0f10\"\nsender_id,ascii,\"client\"\n"
      "recipient_id,ascii,\"server\"\n";
  for (const bool on : {false, true}) {
    coap::oscore_core::conf c;
    coap::oscore_core::conf_diagnostic where;
    BOOST_TEST_REQUIRE(!coap::oscore_core::parse_conf(text + (on ? "rfc8613_b_2,bool,true\n" : ""), c, where));
    coap::oscore::context_params p;
    BOOST_TEST_REQUIRE(!c.params(0, p));
    BOOST_TEST(p.renew_id_context == on);
  }
}

BOOST_FIXTURE_TEST_SUITE(oscore_b2, fixture)

BOOST_AUTO_TEST_CASE_TEMPLATE(client_and_server_renew_the_id_context, Transport, transports) {
  auto s = connect<Transport>(client, std::is_same_v<Transport, coap::udp> ? udp_port : tcp_port);
  // The application sees one answer; underneath, the 4.01 with R2 and the request again.
  auto r = ask(s, get("whoami"));
  BOOST_TEST_REQUIRE(!r.ec, r.ec.message());
  BOOST_TEST(r.response.code() == coap::code(coap::response_code::content));
  // Served under R2||R3: 16 bytes of ID Context after the Recipient ID.
  const std::string peer(r.response.payload_string());
  BOOST_TEST(peer.rfind("oscore:01/", 0) == 0u);
  BOOST_TEST(peer.size() == std::string("oscore:01/").size() + 32);
  const auto& counters = s.implementation()->security_channel().counters();
  BOOST_TEST(counters.id_context_renewals == 1u);
  BOOST_TEST(counters.refused == 0u);
  BOOST_TEST(server_store()->pending_renewals() == 0u);
  // Later requests use the renewed context as it is: no second renewal, the same peer.
  r = ask(s, get("whoami"));
  BOOST_TEST(r.response.payload_string() == peer);
  BOOST_TEST(ask(s, get("hello")).response.payload_string() == "world");
  BOOST_TEST(counters.id_context_renewals == 1u);
  BOOST_TEST(counters.protected_responses == 3u);
}

BOOST_AUTO_TEST_CASE(the_wire_is_libcoaps) {
  // What libcoap 4.3.5 sends and expects (src/oscore/oscore.c, src/coap_oscore.c): request #1
  // with 'kid context' 0x48 ID1; the 4.01 with only 'kid context' 0x48 R2 in its option;
  // request #2 with 0x50 R2||R3; afterwards R2||R3 as it is.
  relay rl(io, udp_port);
  auto s = connect<coap::udp>(client, rl.port());
  BOOST_TEST_REQUIRE(ask(s, get("hello")).response.payload_string() == "world");
  BOOST_TEST_REQUIRE(ask(s, get("hello")).response.payload_string() == "world");
  BOOST_TEST_REQUIRE(rl.requests.size() == 3u);
  BOOST_TEST_REQUIRE(rl.responses.size() == 3u);
  bytes v1, v401, v2, v3;
  const auto r1 = oscore_of(rl.requests[0], v1);
  const auto a1 = oscore_of(rl.responses[0], v401);
  const auto r2 = oscore_of(rl.requests[1], v2);
  const auto r3 = oscore_of(rl.requests[2], v3);
  BOOST_TEST_REQUIRE((r1 && a1 && r2 && r3));
  BOOST_TEST_REQUIRE(r1->kid_context.size() == 9u);
  BOOST_TEST(r1->kid_context[0] == 0x48);
  BOOST_TEST(v401.size() == 11u);  // flags 0x10, s = 9, 0x48, R2
  BOOST_TEST(v401[0] == 0x10);
  BOOST_TEST(a1->kid_context[0] == 0x48);
  BOOST_TEST_REQUIRE(r2->kid_context.size() == 17u);
  BOOST_TEST(r2->kid_context[0] == 0x50);
  BOOST_TEST(std::ranges::equal(r2->kid_context.subspan(1, 8), a1->kid_context.subspan(1)));
  BOOST_TEST(std::ranges::equal(r3->kid_context, r2->kid_context.subspan(1)));
  // The 4.01 is protected: outer code 2.04, ciphertext only.
  coap::message_view answer;
  BOOST_TEST_REQUIRE(!coap::udp_codec::parse(rl.responses[0], answer));
  BOOST_TEST(answer.code() == coap::code(coap::response_code::changed));
}

BOOST_AUTO_TEST_CASE(a_garbled_or_forged_r2_is_refused) {
  relay rl(io, udp_port);
  auto s = connect<coap::udp>(client, rl.port());
  // Garbled: the kid context's CBOR head says 7 bytes where 8 follow.
  rl.to_client = [](bytes& d) {
    bytes v;
    const auto f = oscore_of(d, v);
    if (!f || !f->has_kid_context) return true;
    if (const auto at = r2_at(d)) d[*at - 1] = 0x47;
    return true;
  };
  auto r = ask(s, get("hello"));
  BOOST_TEST(r.ec == coap::oscore_error::invalid_kid_context);
  const auto& counters = s.implementation()->security_channel().counters();
  BOOST_TEST(counters.refused == 1u);
  BOOST_TEST(counters.last_error == coap::oscore_error::invalid_kid_context);

  // Forged: one bit of R2 changed. R2||ID1 then makes other keys, and the 4.01 does not verify.
  rl.to_client = [](bytes& d) {
    bytes v;
    const auto f = oscore_of(d, v);
    if (!f || !f->has_kid_context) return true;
    if (const auto at = r2_at(d)) d[*at] ^= 0x01;
    return true;
  };
  r = ask(s, get("hello"));
  BOOST_TEST(r.ec == coap::oscore_error::decryption_failed);
  BOOST_TEST(counters.refused == 2u);
  BOOST_TEST(counters.id_context_renewals == 0u);
  // Left alone, the renewal goes through.
  rl.to_client = nullptr;
  r = ask(s, get("hello"));
  BOOST_TEST_REQUIRE(!r.ec, r.ec.message());
  BOOST_TEST(r.response.payload_string() == "world");
  BOOST_TEST(counters.id_context_renewals == 1u);
}

BOOST_AUTO_TEST_CASE(one_renewal_per_request) {
  // The answer to request #2 replaced by the first 4.01 again (its Message ID made to fit):
  // a second R2 for one request is refused, not followed.
  relay rl(io, udp_port);
  auto s = connect<coap::udp>(client, rl.port());
  bytes first_401;
  rl.to_client = [&](bytes& d) {
    if (first_401.empty()) {
      first_401 = d;
      return true;
    }
    const bytes mid(d.begin() + 2, d.begin() + 4);
    d = first_401;
    std::ranges::copy(mid, d.begin() + 2);
    return true;
  };
  auto r = ask(s, get("hello"));
  BOOST_TEST(r.ec == coap::oscore_error::unexpected_kid_context);
  BOOST_TEST(rl.requests.size() == 2u);  // no third request
  const auto& counters = s.implementation()->security_channel().counters();
  BOOST_TEST(counters.id_context_renewals == 1u);
  BOOST_TEST(counters.last_error == coap::oscore_error::unexpected_kid_context);
}

BOOST_AUTO_TEST_CASE(pending_r2_states_are_bounded) {
  // Six clients (each its own context, so its own ID1) get their 4.01, but their R2||R3
  // requests are held back: the server keeps at most max_pending_renewals R2 states, the
  // newest. Let through, the newest four complete; the two oldest find their R2 gone, get
  // a 4.01 with a new R2, and refuse it (one renewal per request).
  constexpr std::size_t clients = 6;
  constexpr auto bound = coap::oscore_core::store::max_pending_renewals;
  static_assert(bound < clients);
  std::vector<std::unique_ptr<coap::context>> contexts;
  std::vector<std::unique_ptr<relay>> relays;
  std::vector<coap::session<coap::udp, coap::oscore>> sessions;
  std::vector<outcome> outcomes(clients);
  std::vector<char> hold(clients, 1);
  for (std::size_t i = 0; i < clients; ++i) {
    contexts.push_back(std::make_unique<coap::context>(io.get_executor()));
    relays.push_back(std::make_unique<relay>(io, udp_port));
    relays[i]->to_server = [&hold, i, r = relays[i].get()](bytes&) { return !hold[i] || r->requests.size() == 1; };
    sessions.push_back(connect<coap::udp>(*contexts[i], relays[i]->port()));
    sessions[i].async_request(get("hello"), [&outcomes, i](std::error_code ec, coap::message m) {
      outcomes[i] = {ec, std::move(m), true};
    });
    // One at a time, so that "oldest" means the first clients.
    BOOST_TEST_REQUIRE(run_until([&] { return relays[i]->requests.size() >= 2; }));
  }
  BOOST_TEST(server_store()->pending_renewals() == bound);
  // The held requests come again with their retransmissions: the newest four first (an
  // oldest one let through first would take a slot of theirs with its new R2).
  for (std::size_t i = clients - bound; i < clients; ++i) hold[i] = 0;
  BOOST_TEST_REQUIRE(run_until([&] { return std::all_of(outcomes.end() - bound, outcomes.end(), [](const outcome& o) { return o.done; }); }, 10s));
  for (std::size_t i = 0; i < clients - bound; ++i) hold[i] = 0;
  BOOST_TEST_REQUIRE(run_until([&] { return std::ranges::all_of(outcomes, &outcome::done); }, 10s));
  for (std::size_t i = 0; i < clients; ++i) {
    if (i < clients - bound) {
      BOOST_TEST(outcomes[i].ec == coap::oscore_error::unexpected_kid_context, "client " << i);
    } else {
      BOOST_TEST(!outcomes[i].ec, "client " << i << ": " << outcomes[i].ec.message());
      BOOST_TEST(outcomes[i].response.payload_string() == "world");
    }
  }
  // What the two refused clients caused is again bounded.
  BOOST_TEST(server_store()->pending_renewals() <= bound);
}

BOOST_AUTO_TEST_SUITE_END()
