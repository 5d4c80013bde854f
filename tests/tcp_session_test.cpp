// RFC 8323 over real loopback connections: CSM exchange and Max-Message-Size, requests
// waiting for the CSM, Ping/Pong, Release and Abort both ways, bad input (malformed and
// oversized frames, a missing CSM, a stalled partial frame), refused connections, keepalive,
// the idle pool and the session cap; frames cut by reads, a peer that does not read, and a
// handler writing to a second connection (the buffers a context's connections share).
#include <coap/transports/tcp.hpp>

#define BOOST_TEST_MODULE tcp_session
#include <boost/test/unit_test.hpp>

#include <coap/session.hpp>
#include <coap/tcp_codec.hpp>

#include <boost/asio.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>

#include "support/tcp_frames.hpp"
#include "support/run_until.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using tcp_session = coap::session<coap::tcp>;
using bytes = std::vector<std::uint8_t>;

namespace {

const auto loopback = asio::ip::make_address("127.0.0.1");

bytes frame(const coap::message& m) { return coap::test::tcp_frame(m); }
bytes csm(std::optional<std::uint32_t> max_size = std::nullopt) {
  coap::message m{coap::code(coap::signal_code::csm)};
  if (max_size) m.add_uint_option(2, *max_size);
  return frame(m);
}

struct fixture {
  asio::io_context io;
  coap::context server{io.get_executor()};
  coap::context client{io.get_executor()};
  std::uint16_t port = 0;
  std::vector<coap::deferred_response> parked;

  fixture() {
    server.add_resource("hello").on(coap::method::get, [](const coap::request&, coap::basic_response<>& res) {
      res.set(coap::response_code::content, "world");
    });
    server.add_resource("echo").on(coap::method::put, [](const coap::request& r, coap::basic_response<>& res) {
      res.set_payload(r.payload());
    });
    server.add_resource("hold").on(coap::method::get, [this](const coap::request&, coap::basic_response<>& res) {
      parked.push_back(res.defer());
    });
    BOOST_TEST_REQUIRE(!server.add_endpoint<coap::tcp>(loopback, 0, &port));
  }
  ~fixture() {
    server.set_event_handler(nullptr);
    client.set_event_handler(nullptr);
  }

  static coap::session_config fast() {
    coap::session_config c;
    c.response_timeout = 2s;
    c.csm_timeout = 300ms;
    c.connect_timeout = 1s;
    return c;
  }
  tcp_session connect(std::uint16_t to, coap::session_config cfg = fast()) {
    std::error_code ec;
    auto s = tcp_session::create_client(client, {loopback, to}, cfg, ec);
    BOOST_TEST_REQUIRE(!ec, ec.message());
    return s;
  }

  template <class Pred>
  bool run_until(Pred done, std::chrono::milliseconds limit = 5s) {
    return coap::test::run_until(io, done, limit, 5ms);
  }

  struct outcome {
    std::error_code ec;
    coap::message response;
    bool done = false;
  };
  outcome request(tcp_session& s, coap::message req) {
    outcome out;
    s.async_request(std::move(req), [&](std::error_code ec, coap::message m) {
      out.ec = ec;
      out.response = std::move(m);
      out.done = true;
    });
    BOOST_TEST_REQUIRE(run_until([&] { return out.done; }));
    return out;
  }
};

coap::message get(std::string_view path) {
  coap::message m(coap::method::get);
  m.add(coap::options::uri_path{}, path);
  return m;
}

// A scripted peer: a real socket that reads whole frames and writes raw bytes.
struct raw_peer : coap::test::tcp_frame_reader {
  asio::ip::tcp::socket socket;

  explicit raw_peer(asio::ip::tcp::socket s) : socket(std::move(s)) { socket.non_blocking(true); }
  void send(const bytes& b) { asio::write(socket, asio::buffer(b)); }
  // The next whole frame, waiting up to `limit`.
  std::optional<coap::message> next(fixture& f, std::chrono::milliseconds limit = 2s) {
    std::optional<coap::message> got;
    f.run_until(
        [&] {
          return step(socket, [&](std::error_code ec, const coap::message_view& v) {
                   if (!ec) got.emplace(v);
                 }) ||
                 eof;
        },
        limit);
    return got;
  }
  // True once the other side has closed the connection.
  bool closed(fixture& f, std::chrono::milliseconds limit = 2s) {
    while (!eof && next(f, limit)) {
    }
    return eof;
  }
};

// A listening socket the test accepts from by hand (to script the server side).
struct raw_server {
  asio::ip::tcp::acceptor acceptor;
  explicit raw_server(asio::io_context& io) : acceptor(io, {loopback, 0}) { acceptor.non_blocking(true); }
  std::uint16_t port() const { return acceptor.local_endpoint().port(); }
  raw_peer accept(fixture& f) {
    std::optional<asio::ip::tcp::socket> s;
    f.run_until([&] {
      boost::system::error_code ec;
      auto sock = acceptor.accept(ec);
      if (!ec) s.emplace(std::move(sock));
      return s.has_value();
    });
    BOOST_TEST_REQUIRE(s.has_value());
    return raw_peer(std::move(*s));
  }
};

raw_peer dial(fixture& f) {
  asio::ip::tcp::socket s(f.io);
  s.connect({loopback, f.port});
  return raw_peer(std::move(s));
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(tcp_sessions, fixture)

BOOST_AUTO_TEST_CASE(get_over_tcp) {
  auto s = connect(port);
  auto out = request(s, get("hello"));
  BOOST_TEST(!out.ec, out.ec.message());
  BOOST_TEST(coap::to_string(out.response.code()) == "2.05 Content");
  BOOST_TEST(out.response.payload_string() == "world");
  // The server announced 65536 + 8 bytes (session_config::max_message_size).
  BOOST_TEST(s.max_pdu_size() == 65544u);
  BOOST_TEST(std::string(s.description()).ends_with(":" + std::to_string(port) + " TCP"));
  BOOST_TEST(coap::to_string(request(s, get("missing")).response.code()) == "4.04 Not Found");
  coap::message put(coap::method::put);
  put.add(coap::options::uri_path{}, "echo");
  put.set_payload(std::string(3000, 'z'));
  BOOST_TEST(request(s, put).response.payload().size() == 3000u);
}

BOOST_AUTO_TEST_CASE(peer_max_message_size_bounds_what_we_send) {
  raw_server srv(io);
  auto s = connect(srv.port());
  auto peer = srv.accept(*this);
  // Our CSM comes first, and says how much we accept.
  auto first = peer.next(*this);
  BOOST_TEST_REQUIRE(first.has_value());
  BOOST_TEST((first->code() == coap::code(coap::signal_code::csm)));
  BOOST_TEST(first->find(2)->as_uint() == 65544u);
  // A request made now waits for the peer's CSM.
  outcome big, small;
  coap::message m(coap::method::post);
  m.set_payload(std::string(600, 'x'));
  s.async_request(m, [&](std::error_code ec, coap::message) { big.ec = ec; big.done = true; });
  s.async_request(get("a"), [&](std::error_code ec, coap::message r) {
    small.ec = ec;
    small.response = std::move(r);
    small.done = true;
  });
  BOOST_TEST(!peer.next(*this, 100ms).has_value());
  peer.send(csm(500));
  BOOST_TEST(run_until([&] { return big.done; }));
  BOOST_TEST((big.ec == coap::error::message_too_large));
  BOOST_TEST(s.max_pdu_size() == 500u);
  auto req = peer.next(*this);
  BOOST_TEST_REQUIRE(req.has_value());
  BOOST_TEST((req->code() == coap::code(coap::method::get)));
  // Answer it by token.
  coap::message resp(coap::response_code::content);
  resp.set_token(req->token());
  resp.set_payload(std::string_view("fine"));
  peer.send(frame(resp));
  BOOST_TEST(run_until([&] { return small.done; }));
  BOOST_TEST(small.response.payload_string() == "fine");
}

BOOST_AUTO_TEST_CASE(csm_timeout) {
  raw_server srv(io);
  auto s = connect(srv.port());
  auto peer = srv.accept(*this);
  auto out = request(s, get("x"));
  BOOST_TEST((out.ec == coap::error::csm_timeout));
}

// Issue 11 item 1: a Ping cancelled through its handler's slot completes with
// operation_aborted at once; the Pong that comes later is dropped, and the connection goes on.
BOOST_AUTO_TEST_CASE(ping_cancelled_through_its_slot) {
  raw_server srv(io);
  auto s = connect(srv.port());
  auto peer = srv.accept(*this);
  peer.send(csm());
  asio::cancellation_signal signal;
  outcome out;
  int completions = 0;
  s.async_ping(asio::bind_cancellation_slot(signal.slot(), [&](std::error_code ec, coap::message) {
    out.ec = ec;
    out.done = true;
    ++completions;
  }));
  // Our CSM, then the Ping (queued until the peer's CSM was in).
  std::optional<coap::message> ping;
  for (int i = 0; i < 3 && !ping; ++i)
    if (auto m = peer.next(*this); m && m->code() == coap::code(coap::signal_code::ping)) ping = std::move(m);
  BOOST_TEST_REQUIRE(ping.has_value());
  signal.emit(asio::cancellation_type::terminal);
  BOOST_TEST(run_until([&] { return out.done; }));
  BOOST_TEST((out.ec == std::error_code(boost::system::error_code(asio::error::operation_aborted))), out.ec.message());
  // The late Pong matches nothing.
  coap::message pong(coap::code(coap::signal_code::pong));
  pong.set_token(ping->token_value());
  peer.send(frame(pong));
  io.run_for(50ms);
  io.restart();
  BOOST_TEST(completions == 1);
  BOOST_TEST(s.is_open());
}

BOOST_AUTO_TEST_CASE(ping_pong_both_ways) {
  auto s = connect(port);
  outcome out;
  s.async_ping([&](std::error_code ec, coap::message) { out.ec = ec; out.done = true; });
  BOOST_TEST(run_until([&] { return out.done; }));
  BOOST_TEST(!out.ec);
  // A raw client pings our server, with Custody.
  auto peer = dial(*this);
  peer.send(csm());
  coap::message ping(coap::code(coap::signal_code::ping));
  ping.set_token(coap::token::from_uint(0x77, 1));
  ping.add_empty_option(2);
  peer.send(frame(ping));
  BOOST_TEST_REQUIRE(peer.next(*this).has_value());  // the server's CSM
  auto pong = peer.next(*this);
  BOOST_TEST_REQUIRE(pong.has_value());
  BOOST_TEST((pong->code() == coap::code(coap::signal_code::pong)));
  BOOST_TEST((pong->token_value() == coap::token::from_uint(0x77, 1)));
}

BOOST_AUTO_TEST_CASE(release_and_abort_from_peer_fail_pending_requests) {
  for (auto signal : {coap::signal_code::release, coap::signal_code::abort}) {
    raw_server srv(io);
    std::vector<std::string> events;
    client.set_event_handler([&](coap::session_event e, std::string_view, std::error_code) {
      events.emplace_back(coap::to_string(e));
    });
    auto s = connect(srv.port());
    auto peer = srv.accept(*this);
    peer.send(csm());
    outcome out;
    s.async_request(get("x"), [&](std::error_code ec, coap::message) { out.ec = ec; out.done = true; });
    peer.next(*this);  // our CSM
    BOOST_TEST_REQUIRE(peer.next(*this).has_value());  // the request
    peer.send(frame(coap::message(coap::code(signal))));
    BOOST_TEST(run_until([&] { return out.done; }));
    if (signal == coap::signal_code::release) {
      BOOST_TEST((out.ec == coap::error::session_closed));
      BOOST_TEST((events == std::vector<std::string>{"connected", "closed"}));
    } else {
      BOOST_TEST((out.ec == coap::error::aborted_by_peer));
      BOOST_TEST((events == std::vector<std::string>{"connected", "failed"}));
    }
    BOOST_TEST(!s.is_open());
    BOOST_TEST(peer.closed(*this));
    client.set_event_handler(nullptr);
  }
}

BOOST_AUTO_TEST_CASE(closing_sends_release) {
  raw_server srv(io);
  auto s = connect(srv.port());
  auto peer = srv.accept(*this);
  peer.send(csm(1000));
  BOOST_TEST_REQUIRE(peer.next(*this).has_value());  // our CSM
  BOOST_TEST(run_until([&] { return s.max_pdu_size() == 1000u; }));  // the peer's CSM is in
  s.release();  // the last handle: the session closes in good order
  auto release = peer.next(*this);
  BOOST_TEST_REQUIRE(release.has_value());
  BOOST_TEST((release->code() == coap::code(coap::signal_code::release)));
  BOOST_TEST(peer.closed(*this));
}

BOOST_AUTO_TEST_CASE(bad_input_is_aborted) {
  auto expect_abort = [&](const bytes& input, std::string_view reason) {
    auto peer = dial(*this);
    peer.send(input);
    BOOST_TEST_REQUIRE(peer.next(*this).has_value());  // the server's CSM
    auto abort = peer.next(*this);
    BOOST_TEST_REQUIRE(abort.has_value(), reason);
    BOOST_TEST((abort->code() == coap::code(coap::signal_code::abort)), reason);
    BOOST_TEST(!abort->payload().empty(), reason);  // a diagnostic
    BOOST_TEST(peer.closed(*this), reason);
    return *abort;
  };
  // TKL 9 is reserved.
  auto malformed = csm();
  malformed.insert(malformed.end(), {0x09, 0x01});
  expect_abort(malformed, "malformed frame");
  // A request before any CSM.
  expect_abort(frame(get("hello")), "no CSM first");
  // A frame beyond our Max-Message-Size, announced by its header alone.
  auto huge = csm();
  huge.insert(huge.end(), {0xf0, 0x00, 0x10, 0x00, 0x00, 0x01});
  expect_abort(huge, "too large");
  // An unknown critical CSM option: Abort names it in Bad-CSM-Option.
  coap::message odd(coap::code(coap::signal_code::csm));
  odd.add_empty_option(9);
  auto abort = expect_abort(frame(odd), "bad CSM option");
  BOOST_TEST(abort.find(2)->as_uint() == 9u);
  // Nothing was left behind.
  BOOST_TEST(run_until([&] { return server.session_count() == 0u; }));
}

BOOST_AUTO_TEST_CASE(stalled_partial_frame_is_closed) {
  server.config().session.partial_frame_timeout = 100ms;
  auto peer = dial(*this);
  auto bytes_ = csm();
  bytes_.insert(bytes_.end(), {0xd0, 0x40, 0x01});  // announces 77 bytes, sends none
  peer.send(bytes_);
  const auto start = std::chrono::steady_clock::now();
  BOOST_TEST(peer.closed(*this, 2s));
  BOOST_TEST((std::chrono::steady_clock::now() - start >= 90ms));
}

BOOST_AUTO_TEST_CASE(refused_connection_is_an_error) {
  raw_server srv(io);
  const auto closed_port = srv.port();
  srv.acceptor.close();
  auto s = connect(closed_port);
  auto out = request(s, get("x"));
  BOOST_TEST((out.ec == std::errc::connection_refused), out.ec.message());
}

BOOST_AUTO_TEST_CASE(server_close_fails_pending) {
  auto s = connect(port);
  outcome out;
  s.async_request(get("hold"), [&](std::error_code ec, coap::message) { out.ec = ec; out.done = true; });
  BOOST_TEST(run_until([&] { return parked.size() == 1; }));
  server.stop();
  BOOST_TEST(run_until([&] { return out.done; }));
  BOOST_TEST((out.ec == coap::error::session_closed));
}

BOOST_AUTO_TEST_CASE(keepalive_pings) {
  raw_server srv(io);
  auto cfg = fast();
  cfg.keepalive_interval = 50ms;
  auto s = connect(srv.port(), cfg);
  auto peer = srv.accept(*this);
  peer.send(csm());
  peer.next(*this);  // CSM
  auto ping = peer.next(*this, 1s);
  BOOST_TEST_REQUIRE(ping.has_value());
  BOOST_TEST((ping->code() == coap::code(coap::signal_code::ping)));
}

BOOST_AUTO_TEST_CASE(idle_pool_and_cap) {
  server.config().max_sessions = 1;
  auto a = connect(port);
  outcome held;
  a.async_request(get("hold"), [&](std::error_code ec, coap::message) { held.ec = ec; held.done = true; });
  BOOST_TEST(run_until([&] { return parked.size() == 1; }));
  // The cap is reached and a's session is busy: a new connection is refused with Abort.
  auto peer = dial(*this);
  BOOST_TEST_REQUIRE(peer.next(*this).has_value());
  auto abort = peer.next(*this);
  BOOST_TEST_REQUIRE(abort.has_value());
  BOOST_TEST(abort->payload_string() == "session limit");
  // Once a's exchange is done its session is idle: the next connection evicts it.
  parked[0].send(coap::response_code::content, "done");
  BOOST_TEST(run_until([&] { return held.done; }));
  auto b = connect(port);
  BOOST_TEST(request(b, get("hello")).response.payload_string() == "world");
  BOOST_TEST(server.session_count() == 1u);
  // With no idle timeout, b's session is freed once idle.
  server.config().idle_session_timeout = 0s;
  BOOST_TEST(run_until([&] { return server.session_count() == 0u; }));
}

// Plain connections read into their context's buffer (detail/stream_scratch.hpp) and keep
// bytes of their own only for a frame a read cut in two. 2,000 pipelined GETs (20 KB) are
// more than one read of that buffer, so a frame is cut at its end; a PUT comes in three pieces
// and a GET one byte at a time. Every answer comes back, in order.
BOOST_AUTO_TEST_CASE(frames_cut_by_reads_are_put_together) {
  auto peer = dial(*this);
  bytes all = csm();
  constexpr int gets = 2000;
  for (int i = 0; i < gets; ++i) {
    auto m = get("hello");
    m.set_token(coap::token::from_uint(static_cast<std::uint64_t>(i), 2));
    const auto f = frame(m);
    all.insert(all.end(), f.begin(), f.end());
  }
  BOOST_TEST_REQUIRE(all.size() > 16384u);
  peer.send(all);
  BOOST_TEST_REQUIRE(peer.next(*this).has_value());  // the server's CSM
  for (int i = 0; i < gets; ++i) {
    auto r = peer.next(*this);
    BOOST_TEST_REQUIRE(r.has_value(), "answer " << i);
    BOOST_TEST_REQUIRE((r->token_value() == coap::token::from_uint(static_cast<std::uint64_t>(i), 2)));
    BOOST_TEST_REQUIRE(r->payload_string() == "world");
  }
  coap::message put(coap::method::put);
  put.add(coap::options::uri_path{}, "echo");
  put.set_token(coap::token::from_uint(9, 1));
  const std::string body(1000, 'x');
  put.set_payload(body);
  const auto pieces = frame(put);
  for (std::size_t at = 0; at < pieces.size(); at += 400) {
    peer.send(bytes(pieces.begin() + static_cast<std::ptrdiff_t>(at),
                    pieces.begin() + static_cast<std::ptrdiff_t>(std::min(at + 400, pieces.size()))));
    run_until([] { return false; }, 20ms);
  }
  auto echoed = peer.next(*this);
  BOOST_TEST_REQUIRE(echoed.has_value());
  BOOST_TEST(echoed->payload_string() == body);
  auto one = get("hello");
  one.set_token(coap::token::from_uint(10, 1));
  for (auto b : frame(one)) {
    peer.send(bytes{b});
    run_until([] { return false; }, 5ms);
  }
  auto last = peer.next(*this);
  BOOST_TEST_REQUIRE(last.has_value());
  BOOST_TEST((last->token_value() == coap::token::from_uint(10, 1)));
  BOOST_TEST(last->payload_string() == "world");
}

// A peer that does not read: its answers wait in its own connection's buffers, in order,
// while another connection is answered from the shared one.
BOOST_AUTO_TEST_CASE(answers_to_a_peer_that_does_not_read_wait_in_its_own_buffers) {
  asio::ip::tcp::socket slow_socket(io);
  slow_socket.open(asio::ip::tcp::v4());
  slow_socket.set_option(asio::socket_base::receive_buffer_size(4096));
  slow_socket.connect({loopback, port});
  raw_peer slow(std::move(slow_socket));
  bytes all = csm();
  constexpr int puts = 60;
  for (int i = 0; i < puts; ++i) {
    coap::message m(coap::method::put);
    m.add(coap::options::uri_path{}, "echo");
    m.set_token(coap::token::from_uint(static_cast<std::uint64_t>(i), 1));
    m.set_payload(std::string(1000, static_cast<char>('a' + i % 26)));
    const auto f = frame(m);
    all.insert(all.end(), f.begin(), f.end());
  }
  slow.send(all);
  run_until([] { return false; }, 200ms);  // the server answers into a full socket
  auto quick = dial(*this);
  auto g = get("hello");
  g.set_token(coap::token::from_uint(1, 1));
  bytes q = csm();
  const auto f = frame(g);
  q.insert(q.end(), f.begin(), f.end());
  quick.send(q);
  BOOST_TEST_REQUIRE(quick.next(*this).has_value());
  auto answer = quick.next(*this);
  BOOST_TEST_REQUIRE(answer.has_value());
  BOOST_TEST(answer->payload_string() == "world");
  BOOST_TEST_REQUIRE(slow.next(*this).has_value());  // its CSM
  for (int i = 0; i < puts; ++i) {
    auto r = slow.next(*this);
    BOOST_TEST_REQUIRE(r.has_value(), "answer " << i);
    BOOST_TEST_REQUIRE((r->token_value() == coap::token::from_uint(static_cast<std::uint64_t>(i), 1)));
    BOOST_TEST_REQUIRE(r->payload_string() == std::string(1000, static_cast<char>('a' + i % 26)));
  }
}

// A handler that answers on a second connection while the first has answers framed in the
// shared buffer (two requests in one read): the second connection's answer goes out from its
// own buffers, and both connections get theirs.
BOOST_AUTO_TEST_CASE(a_handler_writes_to_another_connection_in_the_middle_of_a_read) {
  server.add_resource("release").on(coap::method::put, [this](const coap::request&, coap::basic_response<>& res) {
    BOOST_TEST_REQUIRE(parked.size() == 1u);
    parked[0].send(coap::response_code::content, "later");
    res.set_code(coap::response_code::changed);
  });
  auto waiting = dial(*this);
  auto hold = get("hold");
  hold.set_token(coap::token::from_uint(11, 1));
  bytes w = csm();
  auto f = frame(hold);
  w.insert(w.end(), f.begin(), f.end());
  waiting.send(w);
  BOOST_TEST_REQUIRE(run_until([&] { return parked.size() == 1u; }));
  auto other = dial(*this);
  bytes o = csm();
  auto first = get("hello");
  first.set_token(coap::token::from_uint(1, 1));
  coap::message release(coap::method::put);
  release.add(coap::options::uri_path{}, "release");
  release.set_token(coap::token::from_uint(2, 1));
  for (const auto& m : {first, release}) {
    f = frame(m);
    o.insert(o.end(), f.begin(), f.end());
  }
  other.send(o);
  BOOST_TEST_REQUIRE(other.next(*this).has_value());  // CSM
  auto a1 = other.next(*this);
  auto a2 = other.next(*this);
  BOOST_TEST_REQUIRE((a1.has_value() && a2.has_value()));
  BOOST_TEST(a1->payload_string() == "world");
  BOOST_TEST((a2->token_value() == coap::token::from_uint(2, 1)));
  BOOST_TEST(coap::to_string(a2->code()) == "2.04 Changed");
  BOOST_TEST_REQUIRE(waiting.next(*this).has_value());  // CSM
  auto later = waiting.next(*this);
  BOOST_TEST_REQUIRE(later.has_value());
  BOOST_TEST((later->token_value() == coap::token::from_uint(11, 1)));
  BOOST_TEST(later->payload_string() == "later");
}

BOOST_AUTO_TEST_SUITE_END()
