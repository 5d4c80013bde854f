// RFC 7641 section 3 (Observe, client side): freshness (section 3.4) and the notification
// buffer without sockets; then over loopback: a hand-made UDP server in this file
// (notifications, re-registration after Max-Age, the ends of an observation, RST after
// forget), libcoap's coap-server /time over UDP and TCP when it is on PATH, every completion
// token kind, completion on a strand of a 2-thread io_context, and per-operation cancellation.
#include <coap/observation.hpp>

#define BOOST_TEST_MODULE observe_client
#include <boost/test/unit_test.hpp>

#include <coap/security/psk.hpp>
#include <coap/session.hpp>
#include <coap/transports/tcp.hpp>
#include <coap/transports/udp.hpp>
#include <coap/udp_codec.hpp>

#include <boost/asio.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include "support/libcoap_server.hpp"

#include <atomic>
#include <cstdlib>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;
using udp_session = coap::session<coap::udp>;
using tcp_session = coap::session<coap::tcp>;

namespace {

const auto loopback = asio::ip::make_address("127.0.0.1");

// ---- section 3.4 and the buffer, no sockets ----

BOOST_AUTO_TEST_CASE(freshness_with_wrap_around) {
  using coap::detail::notification_is_newer;
  const auto t = clock_type::now();
  BOOST_TEST(notification_is_newer(1, t, 2, t));
  BOOST_TEST(!notification_is_newer(2, t, 1, t));
  BOOST_TEST(!notification_is_newer(5, t, 5, t));
  // 24-bit wrap: 0xFFFFFF is followed by 0.
  BOOST_TEST(notification_is_newer(0xffffff, t, 0, t));
  BOOST_TEST(!notification_is_newer(0, t, 0xffffff, t));
  // Half the space apart (2^23) is not newer either way; one less is.
  BOOST_TEST(!notification_is_newer(0, t, 1u << 23, t));
  BOOST_TEST(notification_is_newer(0, t, (1u << 23) - 1, t));
  BOOST_TEST(notification_is_newer(1u << 23, t, 0, t) == false);
  BOOST_TEST(notification_is_newer((1u << 23) + 1, t, 0, t));
  // After 128 s anything is newer.
  BOOST_TEST(notification_is_newer(10, t, 3, t + 129s));
  BOOST_TEST(!notification_is_newer(10, t, 3, t + 128s));
}

BOOST_AUTO_TEST_CASE(buffer_drops_the_oldest) {
  coap::detail::notification_buffer<coap::message> b({}, 2);
  for (int i = 0; i < 3; ++i) {
    coap::message m(coap::response_code::content);
    m.set_payload(std::to_string(i));
    BOOST_TEST(b.push(std::move(m)));
  }
  BOOST_TEST(b.size() == 2u);
  BOOST_TEST(b.dropped() == 1u);
  BOOST_TEST(b.pop()->payload_string() == "1");
  BOOST_TEST(b.pop()->payload_string() == "2");
  BOOST_TEST(!b.pop());
  coap::detail::notification_buffer<coap::message> zero({}, 0);  // holds one at least
  BOOST_TEST(zero.push(coap::message(coap::response_code::content)));
  BOOST_TEST(zero.size() == 1u);
}

BOOST_AUTO_TEST_CASE(empty_handle_is_safe) {
  coap::observation o;
  BOOST_TEST(!o.active());
  BOOST_TEST(o.token().empty());
  o.cancel();
  o.forget();
  auto f = o.async_next(asio::use_future);
  auto [ec, m] = f.get();
  BOOST_TEST((ec == std::error_code(boost::system::error_code(asio::error::bad_descriptor))));
}

// ---- a hand-made UDP server ----
struct raw_server {
  asio::ip::udp::socket socket;
  asio::ip::udp::endpoint client;
  std::vector<coap::message> received;
  std::uint16_t mid = 100;

  explicit raw_server(asio::io_context& io) : socket(io, {loopback, 0}) { socket.non_blocking(true); }
  void poll() {
    std::uint8_t buffer[2048];
    boost::system::error_code ec;
    for (;;) {
      const auto n = socket.receive_from(asio::buffer(buffer), client, 0, ec);
      if (ec) return;
      coap::message_view v;
      if (!coap::udp_codec::parse({buffer, n}, v)) received.emplace_back(v);
    }
  }
  void send(coap::message m) {
    std::vector<std::uint8_t> wire;
    BOOST_TEST_REQUIRE(!coap::udp_codec::encode(m, wire));
    boost::system::error_code ec;
    socket.send_to(asio::buffer(wire), client, 0, ec);
  }
  // A piggybacked answer to `req`.
  void answer(const coap::message& req, coap::message r) {
    r.set_type(coap::message_type::acknowledgement);
    r.set_message_id(req.message_id());
    r.set_token(req.token_value());
    send(std::move(r));
  }
  // A notification (CON or NON) with the registration's token.
  void notify(const coap::token& t, coap::message r, coap::message_type type = coap::message_type::non_confirmable) {
    r.set_type(type);
    r.set_message_id(++mid);
    r.set_token(t);
    send(std::move(r));
  }
};

coap::message content(std::string_view payload, std::optional<std::uint32_t> observe, std::optional<std::uint32_t> max_age = {}) {
  coap::message r(coap::response_code::content);
  if (observe) r.add(coap::options::observe{}, *observe);
  if (max_age) r.add(coap::options::max_age{}, *max_age);
  r.set_payload(payload);
  return r;
}

coap::message get(std::string_view path) {
  coap::message m(coap::method::get);
  m.add(coap::options::uri_path{}, path);
  return m;
}

struct next_outcome {
  std::error_code ec;
  coap::message m;
  bool done = false;
};

struct fixture {
  asio::io_context io;
  coap::context client{io.get_executor()};
  raw_server server{io};
  udp_session session;

  fixture() {
    std::error_code ec;
    session = udp_session::create_client(client, server.socket.local_endpoint(), ec);
    BOOST_TEST_REQUIRE(!ec);
  }
  template <class Pred>
  bool run_until(Pred done, std::chrono::milliseconds limit = 5s) {
    const auto end = clock_type::now() + limit;
    while (!done()) {
      if (clock_type::now() >= end) return false;
      io.run_for(2ms);
      io.restart();
      server.poll();
    }
    return true;
  }
  const coap::message& wait_request(std::size_t index, std::chrono::milliseconds limit = 5s) {
    BOOST_TEST_REQUIRE(run_until([&] { return server.received.size() > index; }, limit));
    return server.received[index];
  }
  // Registers; the server answers with `first`.
  coap::observation observe(coap::message first) {
    std::optional<std::pair<std::error_code, coap::observation>> out;
    session.async_observe(get("obs"), [&](std::error_code ec, coap::observation o) { out.emplace(ec, std::move(o)); });
    const auto req = wait_request(0);
    BOOST_TEST(req.get(coap::options::observe{}).value() == 0u);
    BOOST_TEST(!req.token().empty());
    server.answer(req, std::move(first));
    BOOST_TEST_REQUIRE(run_until([&] { return out.has_value(); }));
    BOOST_TEST_REQUIRE(!out->first, out->first.message());
    return std::move(out->second);
  }
  next_outcome next(coap::observation& o, std::chrono::milliseconds limit = 5s) {
    next_outcome out;
    o.async_next([&](std::error_code ec, coap::message m) { out = {ec, std::move(m), true}; });
    BOOST_TEST_REQUIRE(run_until([&] { return out.done; }, limit));
    return out;
  }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(raw, fixture)

BOOST_AUTO_TEST_CASE(notifications_in_order_fresh_and_acknowledged) {
  auto o = observe(content("0", 10));
  const auto tok = o.token();
  BOOST_TEST(o.active());
  server.notify(tok, content("1", 11), coap::message_type::confirmable);
  server.notify(tok, content("old", 9));  // older than 11: dropped (section 3.4)
  server.notify(tok, content("2", 12));
  BOOST_TEST(next(o).m.payload_string() == "0");
  BOOST_TEST(next(o).m.payload_string() == "1");
  BOOST_TEST(next(o).m.payload_string() == "2");
  // The CON notification was acknowledged.
  BOOST_TEST(run_until([&] {
    for (auto& m : server.received)
      if (m.type() == coap::message_type::acknowledgement) return true;
    return false;
  }));
  // cancel(): a GET with Observe=1 and the same token; then operation_aborted.
  o.cancel();
  const auto& dereg = wait_request(server.received.size());
  BOOST_TEST(dereg.get(coap::options::observe{}).value() == 1u);
  BOOST_TEST((dereg.token_value() == tok));
  BOOST_TEST((next(o).ec == coap::detail::operation_aborted()));
  BOOST_TEST(!o.active());
}

BOOST_AUTO_TEST_CASE(buffer_keeps_the_latest) {
  session.config().observation_buffer = 2;
  auto o = observe(content("0", 1));
  for (std::uint32_t i = 2; i <= 5; ++i) server.notify(o.token(), content(std::to_string(i), i));
  BOOST_TEST(run_until([&] { return false; }, 100ms) == false);  // let them arrive
  BOOST_TEST(next(o).m.payload_string() == "4");
  BOOST_TEST(next(o).m.payload_string() == "5");
}

BOOST_AUTO_TEST_CASE(answer_without_observe_is_delivered_then_ends) {
  auto o = observe(content("plain", std::nullopt));
  BOOST_TEST(next(o).m.payload_string() == "plain");
  BOOST_TEST((next(o).ec == coap::error::not_observable));
  BOOST_TEST((next(o).ec == coap::error::not_observable));  // every time
}

BOOST_AUTO_TEST_CASE(error_notification_is_delivered_then_ends) {
  auto o = observe(content("0", 1));
  server.notify(o.token(), coap::message(coap::response_code::not_found));
  BOOST_TEST(next(o).m.payload_string() == "0");
  BOOST_TEST(coap::to_string(next(o).m.code()) == "4.04 Not Found");
  BOOST_TEST((next(o).ec == coap::error::not_observable));
}

BOOST_AUTO_TEST_CASE(forget_answers_the_next_notification_with_rst) {
  auto o = observe(content("0", 1));
  o.forget();
  BOOST_TEST((next(o).ec == coap::detail::operation_aborted()));
  const auto before = server.received.size();
  server.notify(o.token(), content("1", 2), coap::message_type::confirmable);
  const auto& rst = wait_request(before);
  BOOST_TEST((rst.type() == coap::message_type::reset));
}

// Section 3.3.1: Max-Age runs out: the same registration again (same token, Observe=0).
BOOST_AUTO_TEST_CASE(reregisters_after_max_age) {
  auto o = observe(content("0", 1, 1));
  BOOST_TEST(next(o).m.payload_string() == "0");
  const auto& again = wait_request(1, 3s);
  BOOST_TEST(again.get(coap::options::observe{}).value() == 0u);
  BOOST_TEST((again.token_value() == o.token()));
  server.answer(again, content("re", 2, 60));
  BOOST_TEST(next(o).m.payload_string() == "re");
  BOOST_TEST(o.active());
}

BOOST_AUTO_TEST_CASE(reregistration_failure_ends_it) {
  session.config().ack_timeout = 50ms;
  session.config().max_retransmit = 1;
  auto o = observe(content("0", 1, 1));
  BOOST_TEST(next(o).m.payload_string() == "0");
  auto end = next(o, 5s);  // the re-registration is never answered
  BOOST_TEST((end.ec == coap::error::timeout), end.ec.message());
}

BOOST_AUTO_TEST_CASE(session_close_ends_it) {
  auto o = observe(content("0", 1));
  session.close();
  BOOST_TEST(next(o).m.payload_string() == "0");  // what was buffered first
  BOOST_TEST((next(o).ec == coap::error::session_closed));
}

BOOST_AUTO_TEST_CASE(async_next_cancellation_keeps_the_observation) {
  auto o = observe(content("0", 1));
  BOOST_TEST(next(o).m.payload_string() == "0");
  asio::cancellation_signal signal;
  next_outcome out;
  o.async_next(asio::bind_cancellation_slot(signal.slot(), [&](std::error_code ec, coap::message m) {
    out = {ec, std::move(m), true};
  }));
  run_until([] { return false; }, 20ms);
  signal.emit(asio::cancellation_type::terminal);
  BOOST_TEST_REQUIRE(run_until([&] { return out.done; }));
  BOOST_TEST((out.ec == coap::detail::operation_aborted()));
  BOOST_TEST(o.active());
  server.notify(o.token(), content("1", 2));
  BOOST_TEST(next(o).m.payload_string() == "1");
}

BOOST_AUTO_TEST_CASE(not_a_get_or_fetch) {
  std::optional<std::error_code> out;
  session.async_observe(coap::message(coap::method::post), [&](std::error_code ec, coap::observation) { out = ec; });
  BOOST_TEST_REQUIRE(run_until([&] { return out.has_value(); }));
  BOOST_TEST((*out == coap::error::invalid_message));
}

// Every completion token kind, for async_observe and async_next.
BOOST_AUTO_TEST_CASE(completion_tokens) {
  // deferred: nothing is sent until the operation is invoked.
  auto op = session.async_observe(get("obs"), asio::deferred);
  run_until([] { return false; }, 20ms);
  BOOST_TEST(server.received.empty());
  std::optional<coap::observation> got;
  std::move(op)([&](std::error_code ec, coap::observation o) {
    BOOST_TEST(!ec);
    got = std::move(o);
  });
  server.answer(wait_request(0), content("0", 1));
  BOOST_TEST_REQUIRE(run_until([&] { return got.has_value(); }));
  // use_awaitable, C++20 coroutines.
  std::vector<std::string> seen;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        for (int i = 0; i < 2; ++i) {
          auto [ec, m] = co_await got->async_next(asio::use_awaitable);
          if (ec) break;
          seen.emplace_back(m.payload_string());
        }
      },
      asio::detached);
  server.notify(got->token(), content("1", 2));
  BOOST_TEST_REQUIRE(run_until([&] { return seen.size() == 2; }));
  BOOST_TEST(seen[1] == "1");
  // use_future, with the context running on another thread.
  auto fut = got->async_next(asio::use_future);
  server.notify(got->token(), content("2", 3));
  BOOST_TEST_REQUIRE(run_until([&] { return fut.wait_for(0s) == std::future_status::ready; }));
  BOOST_TEST(std::get<1>(fut.get()).payload_string() == "2");
}

BOOST_AUTO_TEST_SUITE_END()

// ---- Asio's contract: completions on the handler's executor (a strand of a 2-thread
// io_context), against our own server. ----
BOOST_AUTO_TEST_CASE(completions_run_on_the_handlers_strand) {
  asio::io_context io(2);
  auto session_strand = asio::make_strand(io);
  auto user_strand = asio::make_strand(io);
  coap::context server(session_strand);
  coap::context client(session_strand);
  server.add_resource("hello").on(coap::method::get, [](const coap::request&, coap::basic_response<>& res) {
    res.set(coap::response_code::content, "world");
  });
  std::uint16_t port = 0;
  BOOST_TEST_REQUIRE(!server.add_endpoint<coap::udp>(loopback, 0, &port));
  std::error_code ec;
  auto s = udp_session::create_client(client, {loopback, port}, ec);
  BOOST_TEST_REQUIRE(!ec);
  std::atomic<int> on_strand{0}, done{0};
  constexpr int n = 20;
  auto work = asio::make_work_guard(io);
  std::thread a([&] { io.run(); }), b([&] { io.run(); });
  for (int i = 0; i < n; ++i) {
    asio::post(session_strand, [&] {
      s.async_request(get("hello"), asio::bind_executor(user_strand, [&](std::error_code e, coap::message m) {
                        if (!e && m.payload_string() == "world" && user_strand.running_in_this_thread()) ++on_strand;
                        ++done;
                      }));
    });
  }
  const auto end = clock_type::now() + 10s;
  while (done < n && clock_type::now() < end) std::this_thread::sleep_for(5ms);
  asio::post(session_strand, [&] {
    s.release();
    client.stop();
    server.stop();
  });
  work.reset();
  std::this_thread::sleep_for(50ms);
  io.stop();
  a.join();
  b.join();
  BOOST_TEST(done.load() == n);
  BOOST_TEST(on_strand.load() == n);
}

// ---- libcoap's coap-server /time (a notification each second), when installed ----
namespace {
using coap::test::find_program;  // tests/support/libcoap_server.hpp

template <class Session>
void observe_libcoap_time(std::string_view scheme) {
  const auto program = find_program({"coap-server", "coap-server-notls"});
  if (!program) {
    BOOST_TEST_MESSAGE("coap-server (libcoap) is not on PATH: skipped");
    return;
  }
  const coap::test::libcoap_server server(*program);
  const auto port = std::to_string(server.port);

  asio::io_context io;
  coap::context ctx(io.get_executor());
  std::error_code ec;
  auto s = Session::create_client(ctx, std::string(scheme) + "://127.0.0.1:" + port, ec);
  BOOST_TEST_REQUIRE(!ec);
  auto registered = s.async_observe(get("time"), asio::use_future);
  io.run_for(1s);
  io.restart();
  BOOST_TEST_REQUIRE((registered.wait_for(0s) == std::future_status::ready));
  auto [rec, obs] = registered.get();
  BOOST_TEST_REQUIRE(!rec, rec.message());
  std::vector<std::uint32_t> sequence;
  for (int i = 0; i < 3; ++i) {
    auto next = obs.async_next(asio::use_future);
    const auto end = clock_type::now() + 4s;
    while (next.wait_for(0s) != std::future_status::ready && clock_type::now() < end) {
      io.run_for(10ms);
      io.restart();
    }
    BOOST_TEST_REQUIRE((next.wait_for(0s) == std::future_status::ready));
    auto [nec, m] = next.get();
    BOOST_TEST_REQUIRE(!nec, nec.message());
    BOOST_TEST(coap::to_string(m.code()) == "2.05 Content");
    BOOST_TEST_REQUIRE(m.get(coap::options::observe{}).has_value());
    sequence.push_back(*m.get(coap::options::observe{}));
  }
  BOOST_TEST(sequence[1] != sequence[0]);
  BOOST_TEST(sequence[2] != sequence[1]);
  obs.cancel();
  auto last = obs.async_next(asio::use_future);
  io.run_for(200ms);
  BOOST_TEST_REQUIRE((last.wait_for(0s) == std::future_status::ready));
  BOOST_TEST((std::get<0>(last.get()) == coap::detail::operation_aborted()));
}
}  // namespace

BOOST_AUTO_TEST_CASE(libcoap_time_udp) { observe_libcoap_time<udp_session>("coap"); }
BOOST_AUTO_TEST_CASE(libcoap_time_tcp) { observe_libcoap_time<tcp_session>("coap+tcp"); }

// ---- against our own server (RFC 7641 section 4, RFC 7959 Block2 on the server side), over
// UDP, TCP and DTLS with a PSK ----
namespace {
template <class Transport, class Security>
void observe_our_server() {
  asio::io_context io;
  coap::context server(io.get_executor());
  coap::context client(io.get_executor());
  int state = 0;
  server.add_resource("counter").observable().on(coap::method::get, [&](const coap::request&, coap::basic_response<>& res) {
    res.set(coap::response_code::content, std::to_string(state));
  });
  // A state larger than one message: notifications carry Block2 and the client fetches the rest.
  server.add_resource("big").observable().on(coap::method::get, [&](const coap::request&, coap::basic_response<>& res) {
    res.set(coap::response_code::content, std::string(3000, static_cast<char>('a' + state % 26)));
  });
  std::vector<std::uint8_t> key = {'s', 'e', 'c', 'r', 'e', 't'};
  if constexpr (Security::secure) {
    coap::security::psk_server_config cfg;
    cfg.key = key;
    BOOST_TEST_REQUIRE(!coap::security::set_psk(server, cfg));
  }
  std::uint16_t port = 0;
  BOOST_TEST_REQUIRE(!(server.add_endpoint<Transport, Security>(loopback, 0, &port)));
  std::error_code ec;
  coap::session<Transport, Security> s;
  if constexpr (Security::secure) {
    coap::security::psk_client_config c;
    c.identity = "alice";
    c.key = key;
    s = coap::session<Transport, Security>::create_client(client, {loopback, port}, c, ec);
  } else {
    s = coap::session<Transport, Security>::create_client(client, {loopback, port}, ec);
  }
  BOOST_TEST_REQUIRE(!ec);
  auto run_until = [&](auto done) {
    const auto end = clock_type::now() + 10s;
    while (!done() && clock_type::now() < end) {
      io.run_for(2ms);
      io.restart();
    }
    return done();
  };
  for (const char* path : {"counter", "big"}) {
    state = 0;
    std::optional<coap::observation> obs;
    s.async_observe(get(path), [&](std::error_code e, coap::observation o) {
      BOOST_TEST(!e, e.message());
      obs = std::move(o);
    });
    BOOST_TEST_REQUIRE(run_until([&] { return obs.has_value(); }));
    std::vector<std::string> seen;
    std::function<void()> wait = [&] {
      obs->async_next([&](std::error_code e, coap::message m) {
        if (e) return;
        seen.emplace_back(m.payload_string());
        BOOST_TEST(!m.find(coap::option_number::block2));
        wait();
      });
    };
    wait();
    BOOST_TEST_REQUIRE(run_until([&] { return seen.size() == 1; }));
    for (int i = 1; i <= 3; ++i) {
      state = i;
      BOOST_TEST(server.notify_observers(path) == 1u);
      BOOST_TEST_REQUIRE(run_until([&] { return seen.size() == static_cast<std::size_t>(i) + 1; }), path);
    }
    if (std::string_view(path) == "counter") {
      BOOST_TEST(seen.back() == "3");
    } else {
      BOOST_TEST(seen.back() == std::string(3000, 'd'));
    }
    obs->cancel();
    BOOST_TEST(run_until([&] { return !obs->active(); }));
  }
  s.release();
  client.stop();
  server.stop();
  io.restart();
  io.run_for(100ms);
}
}  // namespace

BOOST_AUTO_TEST_CASE(our_server_udp) { observe_our_server<coap::udp, coap::no_sec>(); }
BOOST_AUTO_TEST_CASE(our_server_tcp) { observe_our_server<coap::tcp, coap::no_sec>(); }
BOOST_AUTO_TEST_CASE(our_server_dtls_psk) { observe_our_server<coap::udp, coap::psk>(); }
