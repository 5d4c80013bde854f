// RFC 8613 inside sessions: session<udp, oscore> and session<tcp, oscore> against a server
// endpoint with set_oscore, over real loopback sockets. Requests, responses, Observe
// (section 4.1.3.5) and block-wise bodies (section 4.1.3.4, Inner Block options) end to end,
// Outer Block options (section 4.1.3.4.2) put together by the server and the client;
// section 8.2's replies to what does not verify (4.01 Security context not found, 4.00
// Decryption failed, 4.01 Replay detected, 4.02 for a malformed option) with the session going
// on; a retransmission answered from the deduplication cache rather than as a replay;
// resources that require an authenticated sender; and a client that refuses what its
// request's binding does not verify.
#include <coap/security/oscore.hpp>

#define BOOST_TEST_MODULE oscore_session
#include <boost/test/unit_test.hpp>

#include <coap/observation.hpp>
#include <coap/security/psk.hpp>
#include <coap/session.hpp>
#include <coap/transports/tcp.hpp>
#include <coap/transports/udp.hpp>
#include <coap/tcp_codec.hpp>
#include <coap/udp_codec.hpp>

#include <boost/asio.hpp>
#include <boost/mpl/list.hpp>

#include "support/request_outcome.hpp"
#include "support/run_until.hpp"

#include <chrono>
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

// At compile time: an OSCORE session is its own type, takes only its own set-up, and has no
// (D)TLS members; a PSK or NoSec session takes no OSCORE set-up.
template <class Session, class Config>
concept client_takes = requires(typename Session::context_type& ctx, typename Session::endpoint_type ep,
                                const Config& config, std::error_code& ec) {
  Session::create_client(ctx, ep, config, ec);
};
template <class Session>
concept has_cipher_suite = requires(const Session& s) { s.cipher_suite(); };
static_assert(client_takes<coap::session<coap::udp, coap::oscore>, coap::oscore_client_config>);
static_assert(client_takes<coap::session<coap::tcp, coap::oscore>, coap::oscore_client_config>);
static_assert(!client_takes<coap::session<coap::udp, coap::oscore>, coap::security::psk_client_config>);
static_assert(!client_takes<coap::session<coap::udp, coap::psk>, coap::oscore_client_config>);
static_assert(!client_takes<coap::session<coap::udp>, coap::oscore_client_config>);
static_assert(!has_cipher_suite<coap::session<coap::udp, coap::oscore>>);
static_assert(coap::message_security<coap::oscore> && !coap::channel_security<coap::oscore>);

const auto loopback = asio::ip::make_address("127.0.0.1");

// Client 0x01 talks to server 0x02 (sections 3.1 and 3.3: each one's Sender ID is the other's
// Recipient ID).
coap::oscore::context_params params(bool client, bytes secret = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}) {
  coap::oscore::context_params p;
  p.master_secret = std::move(secret);
  p.master_salt = {0x9e, 0x7c, 0xa9, 0x22, 0x23, 0x78, 0x63, 0x40};
  p.sender_id = client ? bytes{0x01} : bytes{0x02};
  p.recipient_id = client ? bytes{0x02} : bytes{0x01};
  return p;
}

coap::session_config quick() {
  coap::session_config c;
  c.ack_timeout = 300ms;
  c.response_timeout = 3s;
  return c;
}

coap::message request(coap::method m, std::string_view path, std::string_view payload = {}) {
  coap::message r(m);
  r.add(coap::options::uri_path{}, path);
  if (!payload.empty()) r.set_payload(payload);
  return r;
}

struct fixture {
  asio::io_context io;
  coap::context server{io.get_executor()};
  coap::context client{io.get_executor()};
  std::uint16_t udp_port = 0, tcp_port = 0;
  std::string stored;  // /store's body
  int obs_value = 0;

  fixture() {
    BOOST_TEST_REQUIRE(!coap::set_oscore(server, params(false)));
    server.add_resource("hello").on(coap::method::get, [](const coap::request&, coap::basic_response<>& res) {
      res.set_payload(std::string_view("world"));
    });
    server.add_resource("whoami").on(coap::method::get, [](const coap::request& req, coap::basic_response<>& res) {
      res.set_payload(req.authenticated_peer());
    });
    server.add_resource("echo").on(coap::method::post, [](const coap::request& req, coap::basic_response<>& res) {
      res.set_code(coap::response_code::changed);
      res.set_payload(req.message().payload());
    });
    server.add_resource("secret").require_authentication().on(
        coap::method::get,
        [](const coap::request&, coap::basic_response<>& res) { res.set_payload(std::string_view("42")); });
    server.add_resource("store")
        .on(coap::method::put,
            [this](const coap::request& req, coap::basic_response<>& res) {
              stored.assign(reinterpret_cast<const char*>(req.message().payload().data()),
                            req.message().payload().size());
              res.set_code(coap::response_code::changed);
            })
        .on(coap::method::get,
            [this](const coap::request&, coap::basic_response<>& res) { res.set_payload(std::string_view(stored)); });
    server.add_resource("obs").observable().on(coap::method::get, [this](const coap::request&, coap::basic_response<>& res) {
      res.set_payload(std::to_string(obs_value));
    });
    const auto udp = server.add_endpoint<coap::udp, coap::oscore>(loopback, 0, &udp_port);
    BOOST_TEST_REQUIRE(!udp, udp.message());
    const auto tcp = server.add_endpoint<coap::tcp, coap::oscore>(loopback, 0, &tcp_port);
    BOOST_TEST_REQUIRE(!tcp, tcp.message());
  }

  template <class Transport>
  std::uint16_t port() const {
    return std::is_same_v<Transport, coap::udp> ? udp_port : tcp_port;
  }

  template <class Pred>
  bool run_until(Pred done, std::chrono::milliseconds limit = 5s) {
    return coap::test::run_until(io, done, limit, 2ms);
  }

  template <class Transport>
  coap::session<Transport, coap::oscore> connect(coap::oscore::context_params p = params(true)) {
    std::error_code ec;
    auto s = coap::session<Transport, coap::oscore>::create_client(client, {loopback, port<Transport>()}, quick(),
                                                                    coap::oscore_client_config{std::move(p)}, ec);
    BOOST_TEST_REQUIRE(!ec, ec.message());
    return s;
  }

  // Sends one datagram from a raw socket and returns the answer.
  bytes exchange_raw(asio::ip::udp::socket& socket, const bytes& wire) {
    socket.send(asio::buffer(wire));
    bytes in(1500);
    std::optional<std::size_t> n;
    socket.async_receive(asio::buffer(in), [&](boost::system::error_code ec, std::size_t got) {
      if (!ec) n = got;
    });
    BOOST_TEST_REQUIRE(run_until([&] { return n.has_value(); }));
    in.resize(*n);
    return in;
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

BOOST_FIXTURE_TEST_SUITE(oscore_session, fixture)

BOOST_AUTO_TEST_CASE_TEMPLATE(get_and_post_end_to_end, Transport, transports) {
  auto s = connect<Transport>();
  auto r = ask(s, request(coap::method::get, "hello"));
  BOOST_TEST_REQUIRE(!r.ec, r.ec.message());
  BOOST_TEST(r.response.code() == coap::code(coap::response_code::content));
  BOOST_TEST(r.response.payload_string() == "world");
  // The handler saw the OSCORE sender.
  r = ask(s, request(coap::method::get, "whoami"));
  BOOST_TEST(r.response.payload_string() == "oscore:01");
  r = ask(s, request(coap::method::post, "echo", "protected payload"));
  BOOST_TEST(r.response.code() == coap::code(coap::response_code::changed));
  BOOST_TEST(r.response.payload_string() == "protected payload");
  // No OSCORE option reaches the application, and the client counted its protections.
  BOOST_TEST(!r.response.find(coap::option_number::oscore));
  BOOST_TEST(s.implementation()->security_channel().counters().protected_responses == 3u);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(the_wire_carries_only_post_and_ciphertext, Transport, transports) {
  // Section 4.2: what a peer without the key sees is a POST to nowhere in particular. A plain
  // session to the same endpoint is served too: /hello needs no authentication ...
  std::error_code ec;
  auto plain = coap::session<Transport>::create_client(client, {loopback, port<Transport>()}, quick(), ec);
  BOOST_TEST_REQUIRE(!ec);
  auto r = ask(plain, request(coap::method::get, "hello"));
  BOOST_TEST(r.response.payload_string() == "world");
  // ... /secret does (4.01), and answers the OSCORE client.
  r = ask(plain, request(coap::method::get, "secret"));
  BOOST_TEST(r.response.code() == coap::code(coap::response_code::unauthorized));
  auto s = connect<Transport>();
  r = ask(s, request(coap::method::get, "secret"));
  BOOST_TEST(r.response.payload_string() == "42");
}

BOOST_AUTO_TEST_CASE_TEMPLATE(wrong_secret_and_unknown_kid_are_refused, Transport, transports) {
  // Section 8.2: the server cannot verify: 4.00 Decryption failed, unprotected, which the
  // client accepts as the error it is.
  auto wrong = connect<Transport>(params(true, bytes(16, 0xee)));
  auto r = ask(wrong, request(coap::method::get, "hello"));
  BOOST_TEST_REQUIRE(!r.ec, r.ec.message());
  BOOST_TEST(r.response.code() == coap::code(coap::response_code::bad_request));
  BOOST_TEST(r.response.payload_string() == "Decryption failed");
  // A Sender ID the server has no context for: 4.01 Security context not found.
  auto p = params(true);
  p.sender_id = {0x07};
  auto unknown = connect<Transport>(p);
  r = ask(unknown, request(coap::method::get, "hello"));
  BOOST_TEST(r.response.code() == coap::code(coap::response_code::unauthorized));
  BOOST_TEST(r.response.payload_string() == "Security context not found");
  // The server goes on serving the right client.
  auto good = connect<Transport>();
  r = ask(good, request(coap::method::get, "hello"));
  BOOST_TEST(r.response.payload_string() == "world");
}

BOOST_AUTO_TEST_CASE(a_verified_request_is_no_amplification_risk) {
  // RFC 9175 section 2.4 limits answers to unverified UDP addresses to 3 times the request;
  // a request that verified under OSCORE comes from the key's holder, so a large first answer
  // goes at once, without an Echo round trip (one protected request, one response).
  stored.assign(900, 'x');
  auto s = connect<coap::udp>();
  const auto r = ask(s, request(coap::method::get, "store"));
  BOOST_TEST(r.response.payload().size() == 900u);
  BOOST_TEST(s.implementation()->security_channel().counters().protected_requests == 1u);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(block_wise_put_then_get, Transport, transports) {
  // Section 4.1.3.4: Inner Block options; every block is its own OSCORE request.
  auto s = connect<Transport>();
  std::string body(6000, '\0');
  for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>('a' + i % 26);
  auto put = request(coap::method::put, "store", body);
  put.add_uint_option(static_cast<std::uint16_t>(coap::option_number::block1), 2);  // SZX 2: 64 bytes
  auto r = ask(s, std::move(put));
  BOOST_TEST_REQUIRE(!r.ec, r.ec.message());
  BOOST_TEST(r.response.code() == coap::code(coap::response_code::changed));
  BOOST_TEST(stored == body);
  auto get = request(coap::method::get, "store");
  get.add_uint_option(static_cast<std::uint16_t>(coap::option_number::block2), 2);
  r = ask(s, std::move(get));
  BOOST_TEST_REQUIRE(!r.ec, r.ec.message());
  BOOST_TEST(r.response.payload_string() == body);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(observe_notifications_are_protected_in_order, Transport, transports) {
  // Section 4.1.3.5: each notification has its own Partial IV, which orders them.
  auto s = connect<Transport>();
  std::optional<std::pair<std::error_code, coap::observation>> made;
  auto reg = request(coap::method::get, "obs");
  reg.add_uint_option(static_cast<std::uint16_t>(coap::option_number::observe), 0);
  s.async_observe(std::move(reg), [&](std::error_code ec, coap::observation o) { made.emplace(ec, std::move(o)); });
  BOOST_TEST_REQUIRE(run_until([&] { return made.has_value(); }));
  BOOST_TEST_REQUIRE(!made->first, made->first.message());
  auto& obs = made->second;
  std::vector<std::string> seen;
  for (int i = 0; i < 4; ++i) {
    std::optional<std::string> got;
    obs.async_next([&](std::error_code ec, coap::message m) { got = ec ? "error " + ec.message() : m.payload_string(); });
    if (i > 0) {
      obs_value = i;
      server.notify_observers("obs");
    }
    BOOST_TEST_REQUIRE(run_until([&] { return got.has_value(); }), "message " << i);
    seen.push_back(*got);
  }
  BOOST_TEST(seen == (std::vector<std::string>{"0", "1", "2", "3"}), boost::test_tools::per_element());
}

// ---- raw datagrams: the server's side of section 8.2 ----

struct raw_client {
  asio::ip::udp::socket socket;
  coap::oscore_core::context context{params(true)};
  raw_client(asio::io_context& io, std::uint16_t port) : socket(io) {
    socket.open(asio::ip::udp::v4());
    socket.connect({loopback, port});
  }
  coap::oscore_core::request_binding binding;  // of the latest protected_get
  // A protected GET /hello under a fresh Sender Sequence Number.
  bytes protected_get(std::uint16_t mid, std::span<const std::uint8_t> echo = {}) {
    auto m = request(coap::method::get, "hello");
    m.set_type(coap::message_type::confirmable);
    m.set_message_id(mid);
    m.set_token(coap::token::from_uint(mid, 4));
    if (!echo.empty()) m.add_option(coap::option_number::echo, echo);
    coap::message out;
    coap::oscore_core::request_binding& b = binding;
    BOOST_TEST_REQUIRE(!coap::oscore_core::protect_request(context, m, out, b));
    bytes wire;
    BOOST_TEST_REQUIRE(!coap::udp_codec::encode(out, wire));
    return wire;
  }
};

BOOST_AUTO_TEST_CASE(replay_and_retransmission_over_udp) {
  raw_client c(io, udp_port);
  const bytes first = c.protected_get(0x100);
  auto exchange = [&](const bytes& wire) { return exchange_raw(c.socket, wire); };
  const bytes answer = exchange(first);
  coap::message_view v;
  BOOST_TEST_REQUIRE(!coap::udp_codec::parse(answer, v));
  BOOST_TEST(v.code() == coap::code(coap::response_code::changed));  // section 4.2: the outer code
  BOOST_TEST(v.find(coap::option_number::oscore).has_value());
  // Section 7.5 / RFC 7252 section 4.5: the same CON again is a retransmission: the same bytes.
  BOOST_TEST(exchange(first) == answer);
  // The same OSCORE request under a new message ID is a replay: 4.01, unprotected, Max-Age 0.
  bytes replayed = first;
  replayed[2] = 0x01;  // message ID 0x0100 -> 0x0100 + 0x... (a different ID)
  replayed[3] = 0x99;
  const bytes refused = exchange(replayed);
  BOOST_TEST_REQUIRE(!coap::udp_codec::parse(refused, v));
  BOOST_TEST(v.code() == coap::code(coap::response_code::unauthorized));
  BOOST_TEST(std::string(v.payload().begin(), v.payload().end()) == "Replay detected");
  BOOST_TEST(v.find(coap::option_number::max_age)->as_uint() == 0u);
  BOOST_TEST(!v.find(coap::option_number::oscore));
}

BOOST_AUTO_TEST_CASE(malformed_oscore_messages_get_the_rfc_replies_and_the_session_goes_on) {
  std::vector<std::error_code> refusals;
  server.set_event_handler([&](coap::session_event e, std::string_view, std::error_code ec) {
    if (e == coap::session_event::security_refused) refusals.push_back(ec);
  });
  raw_client c(io, udp_port);
  auto answer_to = [&](const bytes& wire) {
    const bytes in = exchange_raw(c.socket, wire);
    coap::message_view v;
    BOOST_TEST_REQUIRE(!coap::udp_codec::parse(in, v));
    return std::pair(v.code(), std::string(v.payload().begin(), v.payload().end()));
  };
  // A request whose OSCORE option value is `value`, with a payload of `payload`.
  std::uint16_t mid = 0x200;
  auto crafted = [&](bytes value, bytes payload) {
    coap::message m(coap::method::post);
    m.set_type(coap::message_type::confirmable);
    m.set_message_id(++mid);
    m.set_token(coap::token::from_uint(mid, 4));
    m.add_option(coap::option_number::oscore, value);
    m.set_payload(payload);
    bytes wire;
    BOOST_TEST_REQUIRE(!coap::udp_codec::encode(m, wire));
    return wire;
  };
  const auto bad_option = coap::code(coap::response_code::bad_option);
  const auto bad_request = coap::code(coap::response_code::bad_request);
  const auto unauthorized = coap::code(coap::response_code::unauthorized);
  // Section 6.1: reserved flag bits (0xe0) set.
  BOOST_TEST(answer_to(crafted({0x89, 0x05, 0x01}, bytes(12, 0))).first == bad_option);
  // A Partial IV of six bytes (n = 6 is reserved).
  BOOST_TEST(answer_to(crafted({0x0e, 1, 2, 3, 4, 5, 6, 0x01}, bytes(12, 0))).first == bad_option);
  // A 'kid' longer than the AEAD's nonce allows names no context.
  BOOST_TEST(answer_to(crafted({0x09, 0x05, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, bytes(12, 0))).first == unauthorized);
  // Ciphertext shorter than the tag, and a flipped ciphertext byte: 4.00 Decryption failed.
  BOOST_TEST(answer_to(crafted({0x09, 0x05, 0x01}, bytes(4, 0))).first == bad_request);
  bytes good = c.protected_get(0x300);
  good.back() ^= 0x01;
  const auto flipped = answer_to(good);
  BOOST_TEST(flipped.first == bad_request);
  BOOST_TEST(flipped.second == "Decryption failed");
  // No payload at all.
  BOOST_TEST(answer_to(crafted({0x09, 0x05, 0x01}, {})).first == bad_option);
  // The session goes on: a good request from the same peer is served.
  const auto ok = answer_to(c.protected_get(0x301));
  BOOST_TEST(ok.first == coap::code(coap::response_code::changed));
  // Each refusal was told to the context's event handler, with its reason.
  BOOST_TEST(refusals.size() == 6u);
  BOOST_TEST((refusals.size() > 4 && refusals[4] == coap::oscore_error::decryption_failed));
}

BOOST_AUTO_TEST_CASE(replay_window_recovery_with_echo) {
  // Appendix B.1.2: a server that starts without its replay window answers the first request
  // that verifies with a protected 4.01 carrying Echo, and serves the one that echoes it.
  coap::context restarted{io.get_executor()};
  auto p = params(false);
  p.replay_window_recovery = true;
  BOOST_TEST_REQUIRE(!coap::set_oscore(restarted, p));
  restarted.add_resource("hello").on(coap::method::get, [](const coap::request&, coap::basic_response<>& res) {
    res.set_payload(std::string_view("world"));
  });
  std::uint16_t port = 0;
  BOOST_TEST_REQUIRE(!(restarted.add_endpoint<coap::udp, coap::oscore>(loopback, 0, &port)));
  raw_client c(io, port);
  auto exchange = [&](const bytes& wire) {
    const bytes in = exchange_raw(c.socket, wire);
    coap::message_view v;
    BOOST_TEST_REQUIRE(!coap::udp_codec::parse(in, v));
    coap::message plain;
    const auto ec = coap::oscore_core::unprotect_response(c.context, c.binding, v, plain);
    BOOST_TEST_REQUIRE(!ec, ec.message());
    return plain;
  };
  const auto first = exchange(c.protected_get(0x400));
  BOOST_TEST(first.code() == coap::code(coap::response_code::unauthorized));
  const auto echo = first.find(coap::option_number::echo);
  BOOST_TEST_REQUIRE(echo.has_value());
  BOOST_TEST(echo->value().size() == 8u);
  const bytes echo_value(echo->value().begin(), echo->value().end());
  // Without the Echo, still refused; with it, served, and from then on without it.
  BOOST_TEST(exchange(c.protected_get(0x401)).code() == coap::code(coap::response_code::unauthorized));
  const auto served = exchange(c.protected_get(0x402, echo_value));
  BOOST_TEST(served.code() == coap::code(coap::response_code::content));
  BOOST_TEST(served.payload_string() == "world");
  BOOST_TEST(exchange(c.protected_get(0x403)).payload_string() == "world");
}

BOOST_AUTO_TEST_CASE(outer_block1_blocks_are_put_together_before_verification) {
  // Section 4.1.3.4.2: an intermediary cut a protected PUT into RFC 7959 blocks of its
  // ciphertext (Outer Block1, the OSCORE option in each). The server answers 2.31 to each
  // block, verifies the whole, and names the last block in its protected answer.
  raw_client c(io, udp_port);
  std::uint16_t mid = 0x500;
  auto exchange = [&](const bytes& wire) {
    const bytes in = exchange_raw(c.socket, wire);
    coap::message plain;
    coap::message_view v;
    BOOST_TEST_REQUIRE(!coap::udp_codec::parse(in, v));
    plain.assign(v);
    return plain;
  };
  // The protected PUT /store of `body`, under a fresh Sender Sequence Number.
  auto protect_put = [&](const std::string& body) {
    auto m = request(coap::method::put, "store", body);
    m.set_token(coap::token::from_uint(0x77, 2));
    coap::message out;
    BOOST_TEST_REQUIRE(!coap::oscore_core::protect_request(c.context, m, out, c.binding));
    return out;
  };
  // Block `num` of `whole` in blocks of 2^(szx+4) bytes, as a CON datagram.
  auto block = [&](const coap::message& whole, std::uint32_t num, std::uint8_t szx) {
    coap::message b = whole;
    const coap::block_value v{num, (num + 1) * (std::size_t{16} << szx) < whole.payload().size(), szx};
    b.keep_payload_range(v.offset(), v.size());
    b.add_uint_option(static_cast<std::uint16_t>(coap::option_number::block1), coap::encode(v));
    b.set_type(coap::message_type::confirmable);
    b.set_message_id(++mid);
    bytes wire;
    BOOST_TEST_REQUIRE(!coap::udp_codec::encode(b, wire));
    return wire;
  };
  auto block1_of = [](const coap::message& m) {
    coap::block_value v;
    const auto o = m.find(coap::option_number::block1);
    BOOST_TEST_REQUIRE(o.has_value());
    BOOST_TEST_REQUIRE(!coap::decode_block(o->value(), v));
    return v;
  };

  std::string body(3000, 'x');
  for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>('a' + i % 26);
  const coap::message whole = protect_put(body);
  const auto blocks = static_cast<std::uint32_t>((whole.payload().size() + 511) / 512);
  BOOST_TEST_REQUIRE(blocks == 6u);
  for (std::uint32_t n = 0; n + 1 < blocks; ++n) {
    const auto answer = exchange(block(whole, n, 5));
    BOOST_TEST(answer.code() == coap::code(coap::response_code::continue_));
    BOOST_TEST(!answer.find(coap::option_number::oscore));  // 2.31 is the intermediary's business: outer
    BOOST_TEST((block1_of(answer) == coap::block_value{n, true, 5}));
  }
  const auto last = exchange(block(whole, blocks - 1, 5));
  BOOST_TEST((block1_of(last) == coap::block_value{blocks - 1, false, 5}));
  BOOST_TEST(last.find(coap::option_number::oscore).has_value());
  coap::message plain;
  const auto ec = coap::oscore_core::unprotect_response(c.context, c.binding, last, plain);
  BOOST_TEST_REQUIRE(!ec, ec.message());
  BOOST_TEST(plain.code() == coap::code(coap::response_code::changed));
  BOOST_TEST(stored == body);

  // Out of order (block 2 after block 0): 4.08, and what was kept is dropped.
  const coap::message again = protect_put("second");
  const coap::message big = protect_put(std::string(2000, 'y'));
  BOOST_TEST(exchange(block(big, 0, 4)).code() == coap::code(coap::response_code::continue_));
  BOOST_TEST(exchange(block(big, 2, 4)).code() == coap::code(coap::response_code::request_entity_incomplete));
  BOOST_TEST(exchange(block(big, 1, 4)).code() == coap::code(coap::response_code::request_entity_incomplete));
  // Past MAX_UNFRAGMENTED_SIZE (16384 by default): 4.13 with Size1, nothing stored.
  const coap::message huge = protect_put(std::string(17000, 'z'));
  coap::message answer;
  std::uint32_t n = 0;
  for (; n < 20; ++n) {
    answer = exchange(block(huge, n, 6));
    if (answer.code() != coap::code(coap::response_code::continue_)) break;
  }
  BOOST_TEST(n == 16u);
  BOOST_TEST(answer.code() == coap::code(coap::response_code::request_entity_too_large));
  BOOST_TEST(answer.find(coap::option_number::size1)->as_uint() == 16384u);
  BOOST_TEST(stored == body);
  // A retransmitted block gets the same answer (deduplication), and the session goes on: a
  // message of one block is verified as it is.
  const bytes one = block(again, 0, 6);
  const auto single = exchange(one);
  BOOST_TEST(single.code() == coap::code(coap::response_code::changed));
  BOOST_TEST(stored == "second");
  BOOST_TEST(exchange(one).message_id() == single.message_id());
  const auto after = exchange(c.protected_get(0x5ff));
  BOOST_TEST(after.code() == coap::code(coap::response_code::changed));  // the outer code (section 4.2)
  BOOST_TEST(after.find(coap::option_number::oscore).has_value());
}

// ---- the client's side of section 8.4 ----

// A peer on a raw socket that answers each request of an OSCORE client session as `answer`
// says: `answer(request, reply)` fills the reply's code, options and payload; it goes back as
// the ACK of the request.
struct fake_peer {
  using answer_fn = std::function<void(const coap::message_view&, coap::message&)>;
  asio::ip::udp::socket socket;
  answer_fn answer;
  bytes in = bytes(1500);
  asio::ip::udp::endpoint from;

  fake_peer(asio::io_context& io, answer_fn a) : socket(io, {loopback, 0}), answer(std::move(a)) { serve(); }

  void serve() {
    socket.async_receive_from(asio::buffer(in), from, [this](boost::system::error_code ec, std::size_t n) {
      if (ec) return;
      coap::message_view v;
      if (coap::udp_codec::parse({in.data(), n}, v) || !v.code().is_request()) return serve();
      coap::message reply;
      answer(v, reply);
      reply.set_type(coap::message_type::acknowledgement);
      reply.set_message_id(v.message_id());
      (void)reply.set_token(v.token());
      bytes wire;
      BOOST_TEST_REQUIRE(!coap::udp_codec::encode(reply, wire));
      socket.send_to(asio::buffer(wire), from);
      serve();
    });
  }

  coap::session<coap::udp, coap::oscore> client_of(coap::context& ctx) {
    std::error_code ec;
    auto s = coap::session<coap::udp, coap::oscore>::create_client(
        ctx, {loopback, socket.local_endpoint().port()}, quick(), coap::oscore_client_config{params(true)}, ec);
    BOOST_TEST_REQUIRE(!ec);
    return s;
  }
};

BOOST_AUTO_TEST_CASE(client_refuses_what_does_not_verify) {
  // A fake server answers each request with (1) an unprotected 2.05 and (2) a "protected"
  // 2.04 whose ciphertext is garbage: the requests fail with the OSCORE error codes.
  int answered = 0;
  fake_peer fake(io, [&](const coap::message_view&, coap::message& reply) {
    reply.set_code(answered == 0 ? coap::response_code::content : coap::response_code::changed);
    if (answered == 1) {
      reply.add_option(coap::option_number::oscore, bytes{});
      reply.set_payload(bytes(16, 0x55));
    } else {
      reply.set_payload(std::string_view("forged"));
    }
    ++answered;
  });
  auto s = fake.client_of(client);
  auto r = ask(s, request(coap::method::get, "hello"));
  BOOST_TEST(r.ec == coap::oscore_error::not_protected);
  r = ask(s, request(coap::method::get, "hello"));
  BOOST_TEST(r.ec == coap::oscore_error::decryption_failed);
  BOOST_TEST(s.implementation()->security_channel().counters().refused == 2u);
}

// An intermediary between the client and an origin (server 0x02's context): it cuts the
// protected 2.05 of a `size`-byte body into Outer Block2 blocks of 1024 bytes and, the first
// time block 1 is asked for without an Echo, asks for one (RFC 9175 section 2.4,
// unprotected). It records what each request carried.
struct cutting_intermediary {
  coap::oscore_core::context origin{params(false)};
  std::string body;
  coap::message whole;                              // the protected answer, as the origin made it
  std::vector<std::string> oscore_values;           // the OSCORE option of each request
  std::vector<std::optional<std::uint32_t>> asked;  // the Block2 of each request
  std::vector<bytes> echoes;                        // the Echo of each request
  const bytes echo_value{0xec, 0x40, 0x01, 0x02};

  explicit cutting_intermediary(std::size_t size) : body(size, 'q') {}

  void answer(const coap::message_view& v, coap::message& reply) {
    const auto o = v.find(coap::option_number::oscore);
    oscore_values.emplace_back(o ? std::string(o->value().begin(), o->value().end()) : "");
    const auto b2 = v.find(coap::option_number::block2);
    asked.push_back(b2 ? std::optional(b2->as_uint()) : std::nullopt);
    const auto e = v.find(coap::option_number::echo);
    echoes.push_back(e ? bytes(e->value().begin(), e->value().end()) : bytes{});
    coap::block_value block;
    if (!b2) {
      coap::message plain;
      coap::oscore_core::request_binding b;
      BOOST_TEST_REQUIRE(!coap::oscore_core::unprotect_request(origin, v, plain, b));
      coap::message answer(coap::code(coap::response_code::content));
      answer.set_payload(body);
      BOOST_TEST_REQUIRE(!coap::oscore_core::protect_response(origin, b, answer, whole));
    } else {
      BOOST_TEST_REQUIRE(!coap::decode_block(b2->value(), block));
    }
    if (block.num == 1 && echoes.back().empty()) {
      reply.set_code(coap::response_code::unauthorized);
      reply.add_option(coap::option_number::echo, echo_value);
      return;
    }
    reply = whole;
    block = {block.num, (block.num + 1) * 1024 < whole.payload().size(), 6};
    reply.keep_payload_range(block.offset(), block.size());
    reply.add_uint_option(static_cast<std::uint16_t>(coap::option_number::block2), coap::encode(block));
  }

  // The client asked for blocks 0, 1 (refused: Echo), 1, 2, ... with one protected request,
  // the Echo outside from then on, and got the whole body verified.
  template <class Outcome, class Session>
  void check(const Outcome& r, Session& s) {
    BOOST_TEST_REQUIRE(!r.ec, r.ec.message());
    BOOST_TEST(r.response.code() == coap::code(coap::response_code::content));
    BOOST_TEST(r.response.payload_string() == body);
    BOOST_TEST(!r.response.find(coap::option_number::block2));
    const std::size_t blocks = (whole.payload().size() + 1023) / 1024;
    BOOST_TEST_REQUIRE(asked.size() == blocks + 1);
    BOOST_TEST(!asked[0].has_value());
    BOOST_TEST(*asked[1] == coap::encode(coap::block_value{1, false, 6}));
    for (std::uint32_t n = 1; n < blocks; ++n) {
      BOOST_TEST(*asked[n + 1] == coap::encode(coap::block_value{n, false, 6}));
      BOOST_TEST(echoes[n + 1] == echo_value);
    }
    for (const auto& value : oscore_values) BOOST_TEST(value == oscore_values[0]);
    BOOST_TEST(s.implementation()->security_channel().counters().outer_blocks == blocks);
  }
};

BOOST_AUTO_TEST_CASE(client_puts_outer_block2_blocks_together) {
  // Section 4.1.3.4.2 from the client's side, over UDP: the next block is asked for with the
  // same protected request under a new Message ID, the refused one again with the Echo
  // outside, and the whole verified.
  cutting_intermediary cut(2500);
  fake_peer fake(io, [&](const coap::message_view& v, coap::message& reply) { cut.answer(v, reply); });
  auto s = fake.client_of(client);
  cut.check(ask(s, request(coap::method::get, "big")), s);
}

BOOST_AUTO_TEST_CASE(tcp_client_puts_outer_block2_blocks_together) {
  // The same over coap+tcp (RFC 8323), where the session keeps no copy of what it sent: the
  // OSCORE layer keeps the protected request for the blocks that follow.
  cutting_intermediary cut(3500);
  asio::ip::tcp::acceptor acceptor(io, {loopback, 0});
  asio::ip::tcp::socket peer(io);
  bytes stream, chunk(4096);
  std::function<void()> read = [&] {
    peer.async_read_some(asio::buffer(chunk), [&](boost::system::error_code ec, std::size_t n) {
      if (ec) return;
      stream.insert(stream.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(n));
      std::uint64_t size = 0;
      while (!coap::tcp_codec::frame_size(stream, size) && size && stream.size() >= size) {
        coap::message_view v;
        BOOST_TEST_REQUIRE(!coap::tcp_codec::parse({stream.data(), static_cast<std::size_t>(size)}, v));
        if (v.code().is_request()) {
          coap::message reply;
          cut.answer(v, reply);
          (void)reply.set_token(v.token());
          bytes wire;
          BOOST_TEST_REQUIRE(!coap::tcp_codec::encode(reply, wire));
          asio::write(peer, asio::buffer(wire));
        }
        stream.erase(stream.begin(), stream.begin() + static_cast<std::ptrdiff_t>(size));
      }
      read();
    });
  };
  acceptor.async_accept(peer, [&](boost::system::error_code ec) {
    if (ec) return;
    const std::uint8_t csm[] = {0x00, 0xe1};  // RFC 8323 section 5.3: an empty CSM
    asio::write(peer, asio::buffer(csm));
    read();
  });
  std::error_code ec;
  auto s = coap::session<coap::tcp, coap::oscore>::create_client(
      client, {loopback, acceptor.local_endpoint().port()}, quick(), coap::oscore_client_config{params(true)}, ec);
  BOOST_TEST_REQUIRE(!ec);
  cut.check(ask(s, request(coap::method::get, "big")), s);
}

BOOST_AUTO_TEST_CASE(sessions_with_the_same_parameters_share_sequence_numbers) {
  // Section 7.2.1: two client sessions of one context must not both start at 0 (nonce reuse).
  auto a = connect<coap::udp>();
  auto b = connect<coap::udp>();
  BOOST_TEST(ask(a, request(coap::method::get, "hello")).response.payload_string() == "world");
  BOOST_TEST(ask(b, request(coap::method::get, "hello")).response.payload_string() == "world");
  BOOST_TEST(ask(a, request(coap::method::get, "hello")).response.payload_string() == "world");
}

BOOST_AUTO_TEST_CASE(recipients_of_one_sender_share_its_sequence_number) {
  // Section 7.2.1 with libcoap's several recipient_id lines: the server's contexts for 0x01
  // and 0x03 have one Sender Context, so the Partial IVs of their notifications (the Observe
  // values the clients see, section 4.1.3.5.2) never repeat.
  auto third = params(false);
  third.recipient_id = {0x03};
  BOOST_TEST_REQUIRE(!coap::set_oscore(server, third));
  auto other = params(true);
  other.sender_id = {0x03};
  auto a = connect<coap::udp>();
  auto b = connect<coap::udp>(other);
  auto reg = [] {
    auto r = request(coap::method::get, "obs");
    r.add_uint_option(static_cast<std::uint16_t>(coap::option_number::observe), 0);
    return r;
  };
  const auto first = ask(a, reg()).response.find(coap::option_number::observe);
  const auto second = ask(b, reg()).response.find(coap::option_number::observe);
  BOOST_TEST_REQUIRE((first && second));
  BOOST_TEST(first->as_uint() != second->as_uint());
}

BOOST_AUTO_TEST_CASE(configuration_errors) {
  // No configuration: the client cannot be made; a duplicate recipient is refused.
  BOOST_TEST(coap::set_oscore(server, params(false)) == coap::oscore_error::invalid_context_parameters);
  auto p = params(true);
  p.recipient_id = p.sender_id;
  std::error_code ec;
  auto s = coap::session<coap::udp, coap::oscore>::create_client(client, {loopback, udp_port}, quick(),
                                                                  coap::oscore_client_config{p}, ec);
  BOOST_TEST(ec == coap::oscore_error::invalid_context_parameters);
}

BOOST_AUTO_TEST_SUITE_END()
