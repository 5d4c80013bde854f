// RFC 7252 sections 4 and 5 over real loopback sockets: requests and responses (piggybacked,
// separate, NON), retransmission and timeout, deduplication, RST and ping, rejections, NSTART,
// the idle pool and the session cap, handles, and every Asio completion-token kind.
#include <coap/transports/udp.hpp>

#define BOOST_TEST_MODULE udp_session
#include <boost/test/unit_test.hpp>

#include <coap/session.hpp>
#include <coap/udp_codec.hpp>

#include "support/lossy_udp_proxy.hpp"

#include <boost/asio.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include <chrono>
#include <future>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using udp_session = coap::session<coap::udp>;
using proxy = coap::test::lossy_udp_proxy;

namespace {

const auto loopback = asio::ip::make_address("127.0.0.1");

// A server context on an ephemeral loopback port, with a few resources that count their calls.
struct fixture {
  asio::io_context io;
  coap::context server{io.get_executor()};
  coap::context client{io.get_executor()};
  std::uint16_t port = 0;
  int posts = 0;
  std::vector<coap::deferred_response> parked;

  fixture() {
    server.add_resource("hello")
        .on(coap::method::get,
            [](const coap::request& r, coap::basic_response<>& res) {
              res.set(coap::response_code::content, "world", coap::content_format::text_plain);
              if (auto q = r.query("name")) res.set_payload("hello " + std::string(*q));
            })
        .attribute("rt", "greeting")
        .attribute("title", "Hello \"world\"");
    server.add_resource("counter").on(coap::method::post, [this](const coap::request&, coap::basic_response<>& res) {
      res.set(coap::response_code::changed, std::to_string(++posts));
    });
    server.add_resource("slow").on(coap::method::get, [this](const coap::request&, coap::basic_response<>& res) {
      auto later = res.defer();
      auto timer = std::make_shared<asio::steady_timer>(io, 60ms);
      timer->async_wait([timer, later](auto) { later.send(coap::response_code::content, "finally"); });
    });
    server.add_resource("hold").on(coap::method::get, [this](const coap::request&, coap::basic_response<>& res) {
      parked.push_back(res.defer());  // answered by the test, or never
    });
    server.add_resource("throws").on(coap::method::get, [](const coap::request&, coap::basic_response<>&) {
      throw std::runtime_error("boom");
    });
    BOOST_TEST_REQUIRE(!server.add_endpoint<coap::udp>(loopback, 0, &port));
  }

  asio::ip::udp::endpoint server_endpoint() const { return {loopback, port}; }

  udp_session connect(asio::ip::udp::endpoint to, coap::session_config cfg = fast()) {
    std::error_code ec;
    auto s = udp_session::create_client(client, to, cfg, ec);
    BOOST_TEST_REQUIRE(!ec, ec.message());
    return s;
  }
  udp_session connect() { return connect(server_endpoint()); }

  // Short timers so that retransmission tests take milliseconds.
  static coap::session_config fast() {
    coap::session_config c;
    c.ack_timeout = 40ms;
    c.max_retransmit = 3;
    c.response_timeout = 1s;
    return c;
  }

  template <class Pred>
  bool run_until(Pred done, std::chrono::milliseconds limit = 5s) {
    // The predicate may consume input: it is called until it first says yes, never after.
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!done()) {
      if (std::chrono::steady_clock::now() >= end) return false;
      io.run_for(5ms);
      io.restart();
    }
    return true;
  }

  struct outcome {
    std::error_code ec;
    coap::message response;
    bool done = false;
  };
  outcome request(udp_session& s, coap::message req, std::chrono::milliseconds limit = 5s) {
    outcome out;
    s.async_request(std::move(req), [&](std::error_code ec, coap::message m) {
      out.ec = ec;
      out.response = std::move(m);
      out.done = true;
    });
    BOOST_TEST_REQUIRE(run_until([&] { return out.done; }, limit));
    return out;
  }
};

coap::message get(std::string_view path, coap::message_type t = coap::message_type::confirmable) {
  coap::message m(coap::method::get, t);
  m.add(coap::options::uri_path{}, path);
  return m;
}

coap::message post(std::string_view path) {
  coap::message m(coap::method::post);
  m.add(coap::options::uri_path{}, path);
  return m;
}

// A raw UDP socket to speak malformed CoAP at the server.
struct raw_peer {
  asio::ip::udp::socket socket;
  explicit raw_peer(asio::io_context& io) : socket(io, {loopback, 0}) { socket.non_blocking(true); }
  void send(std::vector<std::uint8_t> bytes, asio::ip::udp::endpoint to) { socket.send_to(asio::buffer(bytes), to); }
  // Waits up to `limit` for one datagram.
  std::optional<std::vector<std::uint8_t>> receive(fixture& f, std::chrono::milliseconds limit = 300ms) {
    std::vector<std::uint8_t> buf(2048);
    std::optional<std::vector<std::uint8_t>> got;
    f.run_until(
        [&] {
          boost::system::error_code ec;
          asio::ip::udp::endpoint from;
          const auto n = socket.receive_from(asio::buffer(buf), from, 0, ec);
          if (!ec) got.emplace(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
          return got.has_value();
        },
        limit);
    return got;
  }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(udp_sessions, fixture)

BOOST_AUTO_TEST_CASE(piggybacked_get) {
  auto s = connect();
  auto out = request(s, get("hello"));
  BOOST_TEST(!out.ec);
  BOOST_TEST(coap::to_string(out.response.code()) == "2.05 Content");
  BOOST_TEST(out.response.payload_string() == "world");
  BOOST_TEST((out.response.type() == coap::message_type::acknowledgement));
  BOOST_TEST(out.response.token().size() == 8u);  // random, 8 bytes by default
  BOOST_TEST(server.session_count() == 1u);
}

BOOST_AUTO_TEST_CASE(query_and_defaults) {
  auto s = connect();
  auto m = get("hello");
  m.add(coap::options::uri_query{}, "name=coap");
  BOOST_TEST(request(s, m).response.payload_string() == "hello coap");
  BOOST_TEST(coap::to_string(request(s, get("missing")).response.code()) == "4.04 Not Found");
  coap::message del(coap::method::delete_);
  del.add(coap::options::uri_path{}, "hello");
  BOOST_TEST(coap::to_string(request(s, del).response.code()) == "4.05 Method Not Allowed");
  auto failed = request(s, get("throws")).response;
  BOOST_TEST(coap::to_string(failed.code()) == "5.00 Internal Server Error");
  // The exception's text is the server's business, not the peer's.
  BOOST_TEST(failed.payload_string().empty());
}

BOOST_AUTO_TEST_CASE(well_known_core) {
  auto s = connect();
  auto m = get(".well-known");
  m.add(coap::options::uri_path{}, "core");
  auto out = request(s, m);
  BOOST_TEST(coap::to_string(out.response.code()) == "2.05 Content");
  BOOST_TEST(out.response.find(coap::option_number::content_format)->as_uint() == 40u);
  const auto body = std::string(out.response.payload_string());
  BOOST_TEST(body.find("</hello>;rt=\"greeting\";title=\"Hello \\\"world\\\"\"") != std::string::npos, body);
  BOOST_TEST(body.find("</counter>") != std::string::npos);
  // RFC 6690 section 4.1 filtering.
  m.add(coap::options::uri_query{}, "rt=greet*");
  BOOST_TEST(request(s, m).response.payload_string() == "</hello>;rt=\"greeting\";title=\"Hello \\\"world\\\"\"");
}

BOOST_AUTO_TEST_CASE(non_request_gets_non_response) {
  auto s = connect();
  auto out = request(s, get("hello", coap::message_type::non_confirmable));
  BOOST_TEST(!out.ec);
  BOOST_TEST((out.response.type() == coap::message_type::non_confirmable));
  BOOST_TEST(out.response.payload_string() == "world");
}

BOOST_AUTO_TEST_CASE(separate_response) {
  auto s = connect();
  auto out = request(s, get("slow"));
  BOOST_TEST(!out.ec);
  BOOST_TEST(out.response.payload_string() == "finally");
  // Section 5.2.2: the response came as a CON of its own, which the client acknowledged, so
  // the server side has nothing left in flight: its session is idle again.
  BOOST_TEST((out.response.type() == coap::message_type::confirmable));
  BOOST_TEST(run_until([&] { return server.session_count() == 1u; }));
}

BOOST_AUTO_TEST_CASE(retransmission_recovers_lost_datagrams) {
  // The first two copies of the request are lost on the way.
  proxy p(io.get_executor(), server_endpoint(), [](proxy::direction d, std::size_t n, auto) {
    return d == proxy::direction::to_server && n < 2 ? proxy::action::drop : proxy::action::forward;
  });
  auto s = connect(p.endpoint());
  const auto start = std::chrono::steady_clock::now();
  auto out = request(s, post("counter"));
  const auto elapsed = std::chrono::steady_clock::now() - start;
  BOOST_TEST(!out.ec, out.ec.message());
  BOOST_TEST(out.response.payload_string() == "1");
  BOOST_TEST(p.seen(proxy::direction::to_server) == 3u);
  // Two timeouts passed: at least ACK_TIMEOUT + 2 * ACK_TIMEOUT.
  BOOST_TEST(elapsed >= 120ms);
  BOOST_TEST(posts == 1);
}

BOOST_AUTO_TEST_CASE(timeout_after_max_retransmit) {
  proxy p(io.get_executor(), server_endpoint(), [](auto, auto, auto) { return proxy::action::drop; });
  auto s = connect(p.endpoint());
  const auto start = std::chrono::steady_clock::now();
  auto out = request(s, get("hello"));
  const auto elapsed = std::chrono::steady_clock::now() - start;
  BOOST_TEST((out.ec == coap::error::timeout));
  BOOST_TEST(p.seen(proxy::direction::to_server) == 4u);  // 1 + MAX_RETRANSMIT (3)
  // 40 + 80 + 160 + 320 ms at least, at most 1.5 times that plus scheduling slack.
  BOOST_TEST(elapsed >= 600ms);
  BOOST_TEST(elapsed < 1500ms);
}

BOOST_AUTO_TEST_CASE(duplicates_run_the_handler_once) {
  // Every request arrives twice, and the first response is lost so the client retransmits:
  // the server must answer each copy from its cache, not run the handler again.
  proxy p(io.get_executor(), server_endpoint(), [](proxy::direction d, std::size_t n, auto) {
    if (d == proxy::direction::to_server) return proxy::action::duplicate;
    return n < 2 ? proxy::action::drop : proxy::action::forward;
  });
  auto s = connect(p.endpoint());
  for (int i = 1; i <= 3; ++i) {
    auto out = request(s, post("counter"));
    BOOST_TEST(!out.ec);
    BOOST_TEST(out.response.payload_string() == std::to_string(i));
  }
  BOOST_TEST(posts == 3);
  BOOST_TEST(p.seen(proxy::direction::to_server) >= 4u);
}

BOOST_AUTO_TEST_CASE(reordered_responses_match_by_token) {
  // With NSTART 4, four requests are in flight; responses are delayed by different amounts.
  proxy p(io.get_executor(), server_endpoint(), [](proxy::direction d, std::size_t n, auto) {
    return d == proxy::direction::to_client && n % 2 == 0 ? proxy::action::delay : proxy::action::forward;
  });
  auto cfg = fast();
  cfg.nstart = 4;
  auto s = connect(p.endpoint(), cfg);
  int done = 0;
  for (int i = 0; i < 4; ++i) {
    auto m = get("hello");
    m.add(coap::options::uri_query{}, "name=" + std::to_string(i));
    s.async_request(m, [&, i](std::error_code ec, coap::message r) {
      BOOST_TEST(!ec);
      BOOST_TEST(r.payload_string() == "hello " + std::to_string(i));
      ++done;
    });
  }
  BOOST_TEST(run_until([&] { return done == 4; }));
}

BOOST_AUTO_TEST_CASE(reset_fails_the_request) {
  raw_peer peer(io);
  auto s = connect(peer.socket.local_endpoint());
  fixture::outcome out;
  s.async_request(get("x"), [&](std::error_code ec, coap::message) {
    out.ec = ec;
    out.done = true;
  });
  auto got = peer.receive(*this);
  BOOST_TEST_REQUIRE(got.has_value());
  // Answer with RST echoing the message ID.
  peer.socket.send_to(asio::buffer(std::vector<std::uint8_t>{0x70, 0x00, (*got)[2], (*got)[3]}),
                      s.local_endpoint());
  BOOST_TEST(run_until([&] { return out.done; }));
  BOOST_TEST((out.ec == coap::error::reset_by_peer));
}

BOOST_AUTO_TEST_CASE(ping_both_ways) {
  // Our client pings our server: an empty CON answered with RST.
  auto s = connect();
  fixture::outcome out;
  s.async_ping([&](std::error_code ec, coap::message m) {
    out.ec = ec;
    out.response = std::move(m);
    out.done = true;
  });
  BOOST_TEST(run_until([&] { return out.done; }));
  BOOST_TEST(!out.ec);
  // A raw peer pings our client session: it answers RST too.
  raw_peer peer(io);
  auto to_peer = connect(peer.socket.local_endpoint());
  peer.send({0x40, 0x00, 0x12, 0x34}, to_peer.local_endpoint());
  auto got = peer.receive(*this);
  BOOST_TEST_REQUIRE(got.has_value());
  BOOST_TEST((*got == std::vector<std::uint8_t>{0x70, 0x00, 0x12, 0x34}));
}

BOOST_AUTO_TEST_CASE(rejections) {
  raw_peer peer(io);
  const auto to = server_endpoint();
  // A CON with a format error (option nibble 15) gets RST with its message ID.
  peer.send({0x40, 0x01, 0xab, 0xcd, 0xf0}, to);
  auto got = peer.receive(*this);
  BOOST_TEST_REQUIRE(got.has_value());
  BOOST_TEST((*got == std::vector<std::uint8_t>{0x70, 0x00, 0xab, 0xcd}));
  // The same as a NON is dropped silently; an unknown version is ignored.
  peer.send({0x50, 0x01, 0xab, 0xce, 0xf0}, to);
  peer.send({0x80, 0x01, 0xab, 0xcf}, to);
  BOOST_TEST(!peer.receive(*this, 150ms).has_value());
  // A reserved code class (1.00) in a CON gets RST.
  peer.send({0x40, 0x20, 0x00, 0x07}, to);
  got = peer.receive(*this);
  BOOST_TEST_REQUIRE(got.has_value());
  BOOST_TEST((*got)[0] == 0x70);
  // An unrecognized critical option (number 9999 is odd: critical) in a CON: 4.02.
  coap::message bad(coap::method::get);
  bad.set_message_id(0x0101);
  bad.add(coap::options::uri_path{}, "hello");
  bad.add_option(9999, std::vector<std::uint8_t>{1});
  std::vector<std::uint8_t> wire;
  BOOST_TEST_REQUIRE(!coap::udp_codec::encode(bad, wire));
  peer.send(wire, to);
  got = peer.receive(*this);
  BOOST_TEST_REQUIRE(got.has_value());
  coap::message_view v;
  BOOST_TEST_REQUIRE(!coap::udp_codec::parse(*got, v));
  BOOST_TEST(coap::to_string(v.code()) == "4.02 Bad Option");
  BOOST_TEST(v.message_id() == 0x0101);
  // The same in a NON is rejected silently.
  bad.set_type(coap::message_type::non_confirmable);
  bad.set_message_id(0x0102);
  BOOST_TEST_REQUIRE(!coap::udp_codec::encode(bad, wire));
  peer.send(wire, to);
  BOOST_TEST(!peer.receive(*this, 150ms).has_value());
  // An unrecognized elective option (9998, even) is ignored: the request is served.
  coap::message elective(coap::method::get);
  elective.set_message_id(0x0103);
  elective.add(coap::options::uri_path{}, "hello");
  elective.add_option(9998, std::vector<std::uint8_t>{1});
  BOOST_TEST_REQUIRE(!coap::udp_codec::encode(elective, wire));
  peer.send(wire, to);
  got = peer.receive(*this);
  BOOST_TEST_REQUIRE(got.has_value());
  BOOST_TEST_REQUIRE(!coap::udp_codec::parse(*got, v));
  BOOST_TEST(coap::to_string(v.code()) == "2.05 Content");
}

BOOST_AUTO_TEST_CASE(nstart_queues_and_bounds) {
  auto cfg = fast();
  cfg.nstart = 1;
  cfg.max_queued_requests = 2;
  auto s = connect(server_endpoint(), cfg);
  std::vector<std::error_code> results;
  for (int i = 0; i < 4; ++i)
    s.async_request(get("hold"), [&](std::error_code ec, coap::message) { results.push_back(ec); });
  // One is in flight, two wait, the fourth is refused at once.
  BOOST_TEST(run_until([&] { return results.size() == 1 && parked.size() == 1; }));
  BOOST_TEST((results[0] == coap::error::queue_full));
  // The server saw only one: the others wait for the NSTART slot.
  io.run_for(100ms);
  io.restart();
  BOOST_TEST(parked.size() == 1u);
  // Answering each in turn lets the next one go.
  for (std::size_t i = 0; i < 3; ++i) {
    BOOST_TEST_REQUIRE(run_until([&] { return parked.size() == i + 1; }));
    parked[i].send(coap::response_code::content, "ok");
  }
  BOOST_TEST(run_until([&] { return results.size() == 4; }));
  BOOST_TEST(!results[1]);
  BOOST_TEST(!results[3]);
}

BOOST_AUTO_TEST_CASE(idle_server_sessions_are_freed) {
  server.config().idle_session_timeout = std::chrono::seconds(0);
  std::vector<std::string> events;
  server.set_event_handler([&](coap::session_event e, std::string_view, std::error_code) {
    events.emplace_back(coap::to_string(e));
  });
  auto s = connect();
  BOOST_TEST(!request(s, get("hello")).ec);
  BOOST_TEST(run_until([&] { return server.session_count() == 0u; }));
  BOOST_TEST((events == std::vector<std::string>{"session-created", "session-freed", "closed"}));
  // A new request makes a new session.
  BOOST_TEST(!request(s, get("hello")).ec);
  server.set_event_handler(nullptr);  // `events` dies before the fixture
}

// Issue 11 item 2: the event handler gets the session. A server's session_created event
// yields a ref whose as<session<udp>>() is that peer's session, usable as any handle; as<> of
// another type is empty; the ref outlives nothing (empty once the session is freed).
BOOST_AUTO_TEST_CASE(session_event_handler_gets_the_session) {
  int tag = 42;
  udp_session created;
  coap::session_ref kept;
  std::vector<std::string> events;
  std::size_t described_alike = 0;
  server.set_session_event_handler([&](coap::session_event e, const coap::session_ref& ref, std::error_code) {
    events.emplace_back(coap::to_string(e));
    if (e != coap::session_event::session_created) return;
    kept = ref;
    BOOST_TEST(!ref.is_client());
    BOOST_TEST(!(ref.as<coap::session<coap::udp, coap::no_sec, std::allocator<char>>>()));  // another type: empty
    created = ref.as<udp_session>();
    BOOST_TEST_REQUIRE(created.is_open());
    described_alike += created.description() == ref.description();
    created.set_app_data(&tag);
  });
  auto s = connect();
  BOOST_TEST(!request(s, get("hello")).ec);
  BOOST_TEST(described_alike == 1u);
  BOOST_TEST(created.app_data<int>() == &tag);
  // The handle is that peer's session: its remote address is the client's local one.
  BOOST_TEST(created.remote_endpoint() == s.local_endpoint());
  BOOST_TEST(kept.remote_address() == coap::detail::endpoint_string(s.local_endpoint()));
  BOOST_TEST(created.use_count() == 1u);
  // Closed through the ref, then released: the session is gone, and the ref says so.
  kept.close();
  BOOST_TEST(!created.is_open());
  BOOST_TEST(server.session_count() == 0u);
  created.release();
  BOOST_TEST(run_until([&] { return !kept.alive(); }));
  BOOST_TEST(kept.description().empty());
  BOOST_TEST(!kept.as<udp_session>());
  kept.close();  // nothing to do: no effect
  BOOST_TEST((events == std::vector<std::string>{"session-created", "closed"}));
  server.set_session_event_handler(nullptr);  // the captures die before the fixture
}

// Issue 16: an idle server session holds no copy of the configuration: it reads its context's
// (a change there reaches it) until config() is written through its handle, which gives it a
// copy of its own. A client session keeps its own from the start. Its description is written
// when asked, from the addresses.
BOOST_AUTO_TEST_CASE(server_session_reads_its_contexts_configuration) {
  udp_session created;
  server.set_session_event_handler([&](coap::session_event e, const coap::session_ref& ref, std::error_code) {
    if (e == coap::session_event::session_created) created = ref.as<udp_session>();
  });
  auto s = connect();
  BOOST_TEST(!request(s, get("hello")).ec);
  BOOST_TEST_REQUIRE(created.is_open());
  BOOST_TEST(&std::as_const(created).config() == &server.config().session);
  server.config().session.max_body_size = 1234;
  BOOST_TEST(std::as_const(created).config().max_body_size == 1234u);
  created.config().max_body_size = 77;  // its own copy now
  BOOST_TEST(&std::as_const(created).config() != &server.config().session);
  BOOST_TEST(server.config().session.max_body_size == 1234u);
  server.config().session.max_body_size = 4321;
  BOOST_TEST(std::as_const(created).config().max_body_size == 77u);
  created.set_mtu(300);
  BOOST_TEST(created.max_pdu_size() == 300u);
  BOOST_TEST(server.config().session.mtu != 300u);
  // The client's copy does not follow its context.
  BOOST_TEST(&std::as_const(s).config() != &client.config().session);
  const auto before = std::as_const(s).config().max_body_size;
  client.config().session.max_body_size = before + 1;
  BOOST_TEST(std::as_const(s).config().max_body_size == before);

  const std::string expected = "127.0.0.1:" + std::to_string(port) + " <-> 127.0.0.1:" +
                               std::to_string(s.local_endpoint().port()) + " UDP";
  BOOST_TEST(created.description() == expected);
  const auto kept = created.description();  // the object holds its text
  BOOST_TEST(kept.str() == expected);
  // A handler asking for it gets the same text (written for that request only).
  server.add_resource("whoami").on(coap::method::get, [](const coap::request& r, coap::basic_response<>& res) {
    res.set_payload(r.session());
  });
  BOOST_TEST(request(s, get("whoami")).response.payload_string() == expected);
  server.set_session_event_handler(nullptr);
  created.release();
}

// Issue 11 item 1: async_ping honours its handler's cancellation slot. A peer that never
// answers: the cancelled ping completes with operation_aborted at once, its retransmissions
// stop, a late RST is dropped, and the session goes on (a later ping is answered). Pinging a
// peer that answers, with a slot connected but never emitted, completes normally.
BOOST_AUTO_TEST_CASE(ping_cancelled_through_its_slot) {
  raw_peer peer(io);
  auto s = connect(peer.socket.local_endpoint());
  asio::cancellation_signal signal;
  fixture::outcome out;
  s.async_ping(asio::bind_cancellation_slot(signal.slot(), [&](std::error_code ec, coap::message) {
    out.ec = ec;
    out.done = true;
  }));
  auto first = peer.receive(*this);
  BOOST_TEST_REQUIRE(first.has_value());
  BOOST_TEST_REQUIRE(first->size() == 4u);  // an empty CON: no token on the wire
  signal.emit(asio::cancellation_type::terminal);
  BOOST_TEST(run_until([&] { return out.done; }, 100ms));
  BOOST_TEST((out.ec == std::error_code(boost::system::error_code(asio::error::operation_aborted))), out.ec.message());
  // No retransmission follows (the first would come after 40 to 60 ms), and a late RST
  // completes nothing more.
  BOOST_TEST(!peer.receive(*this, 200ms).has_value());
  peer.send({0x70, 0x00, (*first)[2], (*first)[3]}, s.local_endpoint());
  io.run_for(20ms);
  io.restart();
  // Emitting again, after completion, does nothing.
  out.done = false;
  signal.emit(asio::cancellation_type::terminal);
  io.run_for(20ms);
  io.restart();
  BOOST_TEST(!out.done);

  // Our server answers: a ping with a connected slot completes as before.
  auto to_server = connect();
  fixture::outcome ok;
  s.release();
  asio::cancellation_signal unused;
  to_server.async_ping(asio::bind_cancellation_slot(unused.slot(), [&](std::error_code ec, coap::message) {
    ok.ec = ec;
    ok.done = true;
  }));
  BOOST_TEST(run_until([&] { return ok.done; }));
  BOOST_TEST(!ok.ec);
  unused.emit(asio::cancellation_type::terminal);  // after completion: nothing happens
  io.run_for(20ms);
}

// Section 4.5 at the bound of the endpoint's deduplication store (detail/dedup_cache.hpp):
// POSTs are remembered for their lifetime and one more is refused with 5.03 and Max-Age,
// unprocessed; GETs are forgotten oldest first and a late duplicate is processed again.
BOOST_AUTO_TEST_CASE(deduplication_at_the_store_bound) {
  server.config().dedup_capacity = 2;
  server.config().dedup_droppable_capacity = 2;
  int gets = 0;
  server.add_resource("count").on(coap::method::get, [&](const coap::request&, coap::basic_response<>& res) {
    res.set(coap::response_code::content, std::to_string(++gets));
  });
  raw_peer peer(io);
  const auto to = server_endpoint();
  auto exchange = [&](coap::method m, std::string_view path, std::uint16_t mid) {
    coap::message req(m);
    req.set_message_id(mid);
    req.set_token(coap::token::from_uint(mid, 2));
    req.add(coap::options::uri_path{}, path);
    std::vector<std::uint8_t> wire;
    BOOST_TEST_REQUIRE(!coap::udp_codec::encode(req, wire));
    peer.send(wire, to);
    auto got = peer.receive(*this);
    BOOST_TEST_REQUIRE(got.has_value());
    coap::message_view v;
    BOOST_TEST_REQUIRE(!coap::udp_codec::parse(*got, v));
    BOOST_TEST(v.message_id() == mid);
    std::string payload(v.payload().begin(), v.payload().end());
    const auto age = v.find(coap::option_number::max_age);
    const std::uint32_t max_age = age ? age->as_uint() : 0;
    return std::tuple(coap::to_string(v.code()), payload, max_age);
  };
  BOOST_TEST(std::get<1>(exchange(coap::method::post, "counter", 1)) == "1");
  BOOST_TEST(std::get<1>(exchange(coap::method::post, "counter", 2)) == "2");
  const auto [code, payload, max_age] = exchange(coap::method::post, "counter", 3);
  BOOST_TEST(code == "5.03 Service Unavailable");
  BOOST_TEST(max_age >= 246u);
  BOOST_TEST(max_age <= 247u);
  BOOST_TEST(posts == 2);
  // A duplicate of a remembered POST gets its answer again, unprocessed.
  BOOST_TEST(std::get<1>(exchange(coap::method::post, "counter", 1)) == "1");
  BOOST_TEST(posts == 2);
  // GETs: a duplicate while remembered is not processed; after two newer ones it is.
  BOOST_TEST(std::get<1>(exchange(coap::method::get, "count", 10)) == "1");
  BOOST_TEST(std::get<1>(exchange(coap::method::get, "count", 10)) == "1");
  BOOST_TEST(std::get<1>(exchange(coap::method::get, "count", 11)) == "2");
  BOOST_TEST(std::get<1>(exchange(coap::method::get, "count", 12)) == "3");
  BOOST_TEST(std::get<1>(exchange(coap::method::get, "count", 10)) == "4");
  BOOST_TEST(gets == 4);
}

// A burst queued before the endpoint reads: read in batches and answered through the
// endpoint's outbox (detail/udp_batch.hpp on Linux), one answer per request, none lost or
// repeated, from two peers at once.
BOOST_AUTO_TEST_CASE(a_burst_is_answered_in_batches) {
  raw_peer a(io), b(io);
  const auto to = server_endpoint();
  constexpr std::uint16_t burst = 40;
  for (std::uint16_t mid = 1; mid <= burst; ++mid)
    for (auto* p : {&a, &b}) {
      coap::message req = get("hello");
      req.set_message_id(mid);
      req.set_token(coap::token::from_uint(mid, 2));
      std::vector<std::uint8_t> wire;
      BOOST_TEST_REQUIRE(!coap::udp_codec::encode(req, wire));
      p->send(wire, to);
    }
  for (auto* p : {&a, &b}) {
    std::vector<bool> seen(burst + 1, false);
    for (int i = 0; i < burst; ++i) {
      auto got = p->receive(*this, 2s);
      BOOST_TEST_REQUIRE(got.has_value());
      coap::message_view v;
      BOOST_TEST_REQUIRE(!coap::udp_codec::parse(*got, v));
      BOOST_TEST(coap::to_string(v.code()) == "2.05 Content");
      BOOST_TEST_REQUIRE(v.message_id() >= 1);
      BOOST_TEST_REQUIRE(v.message_id() <= burst);
      BOOST_TEST(!seen[v.message_id()]);
      seen[v.message_id()] = true;
    }
    BOOST_TEST(!p->receive(*this, 100ms).has_value());
  }
}

BOOST_AUTO_TEST_CASE(session_cap_evicts_idle_then_refuses) {
  server.config().max_sessions = 2;
  auto a = connect(), b = connect(), c = connect();
  // a and b hold their sessions busy (a deferred response never sent).
  int acked = 0;
  for (auto* s : {&a, &b})
    s->async_request(get("hold"), [&](std::error_code, coap::message) { ++acked; });
  BOOST_TEST(run_until([&] { return parked.size() == 2; }));
  BOOST_TEST(server.session_count() == 2u);
  auto out = request(c, get("hello"));
  BOOST_TEST(coap::to_string(out.response.code()) == "5.03 Service Unavailable");
  BOOST_TEST(server.session_count() == 2u);
  // Once a's exchange completes its session is idle, and c's traffic evicts it.
  parked[0].send(coap::response_code::content, "done");
  BOOST_TEST(run_until([&] { return acked == 1; }));
  out = request(c, get("hello"));
  BOOST_TEST(coap::to_string(out.response.code()) == "2.05 Content");
  BOOST_TEST(server.session_count() == 2u);
}

BOOST_AUTO_TEST_CASE(handles_count_references) {
  auto s = connect();
  BOOST_TEST(s.use_count() == 1u);
  {
    auto copy = s;
    BOOST_TEST(s.use_count() == 2u);
  }
  BOOST_TEST(s.use_count() == 1u);
  // The last release closes a client session and fails what it still waits for.
  fixture::outcome out;
  s.async_request(get("hold"), [&](std::error_code ec, coap::message) {
    out.ec = ec;
    out.done = true;
  });
  BOOST_TEST(run_until([&] { return parked.size() == 1; }));
  s.release();
  BOOST_TEST(!s);
  BOOST_TEST(run_until([&] { return out.done; }));
  BOOST_TEST((out.ec == coap::error::session_closed));
}

BOOST_AUTO_TEST_CASE(mtu_app_data_and_description) {
  auto s = connect();
  BOOST_TEST(s.max_pdu_size() == 1152u);  // libcoap's default MTU
  s.set_mtu(200);
  BOOST_TEST(s.max_pdu_size() == 200u);
  // Larger than a message: block-wise (RFC 7959) up to the body limit, then refused locally.
  coap::message big(coap::method::post);
  big.add(coap::options::uri_path{}, "counter");
  big.set_payload(std::string(300, 'x'));
  BOOST_TEST(!request(s, big).ec);
  s.config().max_body_size = 299;
  BOOST_TEST((request(s, big).ec == coap::error::message_too_large));

  int value = 42;
  s.set_app_data(&value);
  BOOST_TEST(s.app_data<int>() == &value);
  BOOST_TEST(s.app_data<double>() == nullptr);

  const std::string expected = "127.0.0.1:" + std::to_string(s.local_endpoint().port()) +
                               " <-> 127.0.0.1:" + std::to_string(port) + " UDP";
  BOOST_TEST(std::string(s.description()) == expected);
}

BOOST_AUTO_TEST_CASE(ipv6_and_default_port) {
  coap::context v6(io.get_executor());
  v6.add_resource("six").on(coap::method::get, [](const coap::request&, coap::basic_response<>& res) {
    res.set_payload(std::string_view("ok6"));
  });
  std::uint16_t p6 = 0;
  auto ec = v6.add_endpoint<coap::udp>(asio::ip::make_address("::1"), 0, &p6);
  BOOST_TEST_REQUIRE(!ec, ec.message());
  auto s = connect({asio::ip::make_address("::1"), p6});
  BOOST_TEST(request(s, get("six")).response.payload_string() == "ok6");
  BOOST_TEST(std::string(s.description()).find("<-> [::1]:") != std::string::npos);
  // No port: the default 5683 (coap_new_client_session).
  auto d = udp_session::create_client(client, {loopback, 0}, ec);
  BOOST_TEST(d.remote_endpoint().port() == 5683);
}

BOOST_AUTO_TEST_CASE(handler_removes_its_own_resource) {
  server.add_resource("once").on(coap::method::get, [this](const coap::request&, coap::basic_response<>& res) {
    server.resources().remove("once");
    res.set_payload(std::string_view("bye"));
  });
  auto s = connect();
  BOOST_TEST(request(s, get("once")).response.payload_string() == "bye");
  auto gone = request(s, get("once")).response;
  BOOST_TEST(coap::to_string(gone.code()) == "4.04 Not Found");
  BOOST_TEST(gone.payload_string() == "Not Found");  // the reason phrase, as libcoap sends it
}

BOOST_AUTO_TEST_CASE(server_that_comes_up_late) {
  // The first transmissions meet a closed port (ICMP port unreachable on the connected
  // socket); the session keeps listening, and a retransmission reaches the server once up.
  asio::ip::udp::socket probe(io, {loopback, 0});
  const auto late_port = probe.local_endpoint().port();
  probe.close();
  auto s = connect({loopback, late_port});
  fixture::outcome out;
  s.async_request(get("late"), [&](std::error_code ec, coap::message m) {
    out.ec = ec;
    out.response = std::move(m);
    out.done = true;
  });
  io.run_for(100ms);
  io.restart();
  coap::context late(io.get_executor());
  late.add_resource("late").on(coap::method::get, [](const coap::request&, coap::basic_response<>& res) {
    res.set_payload(std::string_view("here"));
  });
  BOOST_TEST_REQUIRE(!late.add_endpoint<coap::udp>(loopback, late_port));
  BOOST_TEST(run_until([&] { return out.done; }));
  BOOST_TEST(!out.ec, out.ec.message());
  BOOST_TEST(out.response.payload_string() == "here");
}

BOOST_AUTO_TEST_CASE(client_from_uri) {
  std::error_code ec;
  for (std::string host : {"127.0.0.1", "localhost"}) {
    auto s = udp_session::create_client(client, "coap://" + host + ":" + std::to_string(port) + "/ignored", ec);
    BOOST_TEST_REQUIRE(!ec, host << ": " << ec.message());
    BOOST_TEST(request(s, get("hello")).response.payload_string() == "world");
  }
  auto wrong = udp_session::create_client(client, "coaps://127.0.0.1/", ec);
  BOOST_TEST((ec == coap::error::unsupported_scheme));
  BOOST_TEST(!wrong);
  udp_session::create_client(client, "http://[::1", ec);
  BOOST_TEST(static_cast<bool>(ec));
}

BOOST_AUTO_TEST_CASE(completion_tokens) {
  auto s = connect();
  // use_future, with the context running on another thread.
  auto work = asio::make_work_guard(io);
  std::thread runner([&] { io.run(); });
  // With std::error_code in the signature, use_future and use_awaitable yield
  // (error_code, message) rather than throwing.
  auto fut = s.async_request(get("hello"), asio::use_future);
  auto [fec, fm] = fut.get();
  BOOST_TEST(!fec);
  BOOST_TEST(fm.payload_string() == "world");
  // deferred: nothing is sent until the operation is invoked.
  std::promise<std::string> p1;
  auto op = s.async_request(get("hello"), asio::deferred);
  std::move(op)([&](std::error_code, coap::message m) { p1.set_value(std::string(m.payload_string())); });
  BOOST_TEST(p1.get_future().get() == "world");
  // use_awaitable with a C++20 coroutine.
  std::promise<std::string> p2;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        auto [ec, m] = co_await s.async_request(get("hello"), asio::use_awaitable);
        p2.set_value(ec ? ec.message() : std::string(m.payload_string()));
      },
      asio::detached);
  BOOST_TEST(p2.get_future().get() == "world");
  work.reset();
  asio::post(io, [&] { s.release(); server.stop(); });
  runner.join();
}

BOOST_AUTO_TEST_SUITE_END()
