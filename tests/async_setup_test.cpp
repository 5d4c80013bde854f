// Asynchronous set-up (session::async_create_client): resolve, make, connect and handshake
// without blocking the executor, completing with an established session or the error that
// ended it (RFC 7252 section 6 URIs; RFC 8323 section 5.3 CSM; RFC 6347 / RFC 5246 handshakes),
// on real loopback sockets, with every completion token kind and on a strand.
#include <coap/session.hpp>

#define BOOST_TEST_MODULE async_setup
#include <boost/test/unit_test.hpp>

#include <coap/security/psk.hpp>
#include <coap/transports/tcp.hpp>
#include <coap/transports/udp.hpp>

#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>

#include <chrono>
#include <future>
#include <optional>
#include <string>
#include <thread>

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

const auto loopback = asio::ip::make_address("127.0.0.1");
const std::vector<std::uint8_t> psk_key = {'s', 'e', 'c', 'r', 'e', 't'};

struct fixture {
  asio::io_context io;
  coap::context server{io.get_executor()};
  coap::context client{io.get_executor()};
  std::uint16_t udp_port = 0, tcp_port = 0, dtls_port = 0, tls_port = 0;

  fixture() {
    server.add_resource("hello").on(coap::method::get, [](const coap::request&, coap::basic_response<>& res) {
      res.set(coap::response_code::content, "world");
    });
    coap::security::psk_server_config psk;
    psk.key = psk_key;
    BOOST_TEST_REQUIRE(!coap::security::set_psk(server, psk));
    BOOST_TEST_REQUIRE(!server.add_endpoint<coap::udp>(loopback, 0, &udp_port));
    BOOST_TEST_REQUIRE(!server.add_endpoint<coap::tcp>(loopback, 0, &tcp_port));
    BOOST_TEST_REQUIRE(!(server.add_endpoint<coap::udp, coap::psk>(loopback, 0, &dtls_port)));
    BOOST_TEST_REQUIRE(!(server.add_endpoint<coap::tcp, coap::psk>(loopback, 0, &tls_port)));
  }

  template <class Done>
  bool run_until(Done done, std::chrono::milliseconds limit = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      io.run_for(5ms);
      io.restart();
    }
    return done();
  }

  std::string uri(std::string_view scheme, std::uint16_t port) const {
    return std::string(scheme) + "://127.0.0.1:" + std::to_string(port) + "/";
  }

  template <class Session>
  std::string get_hello(Session& s) {
    coap::message m(coap::method::get);
    m.add(coap::options::uri_path{}, "hello");
    std::optional<std::string> out;
    s.async_request(m, [&](std::error_code ec, coap::message r) { out = ec ? ec.message() : std::string(r.payload_string()); });
    BOOST_REQUIRE(run_until([&] { return out.has_value(); }));
    return *out;
  }

  template <class Session, class... Args>
  std::pair<std::error_code, Session> create(Args&&... args) {
    std::optional<std::pair<std::error_code, Session>> out;
    Session::async_create_client(client, std::forward<Args>(args)...,
                                 [&](std::error_code ec, Session s) { out.emplace(ec, std::move(s)); });
    BOOST_REQUIRE(run_until([&] { return out.has_value(); }, 20s));
    return std::move(*out);
  }
};

coap::security::psk_client_config psk_client(std::vector<std::uint8_t> key = psk_key) {
  coap::security::psk_client_config c;
  c.identity = "async-client";
  c.key = std::move(key);
  return c;
}

}  // namespace

BOOST_FIXTURE_TEST_CASE(each_session_type_completes_established, fixture) {
  auto [e1, udp] = create<coap::session<coap::udp>>(uri("coap", udp_port));
  BOOST_TEST(!e1, e1.message());
  BOOST_TEST(udp.established());
  BOOST_TEST(get_hello(udp) == "world");

  auto [e2, tcp] = create<coap::session<coap::tcp>>(uri("coap+tcp", tcp_port));
  BOOST_TEST(!e2, e2.message());
  BOOST_TEST(tcp.established());
  BOOST_TEST(tcp.peer_csm_received());  // established means the server's CSM is in
  BOOST_TEST(get_hello(tcp) == "world");

  auto [e3, dtls] = create<coap::session<coap::udp, coap::psk>>(uri("coaps", dtls_port), psk_client());
  BOOST_TEST(!e3, e3.message());
  BOOST_TEST(dtls.established());
  BOOST_TEST(dtls.cipher_suite() == "PSK_WITH_AES_128_CCM_8");  // the handshake is done already
  BOOST_TEST(get_hello(dtls) == "world");

  auto [e4, tls] = create<coap::session<coap::tcp, coap::psk>>(uri("coaps+tcp", tls_port), psk_client());
  BOOST_TEST(!e4, e4.message());
  BOOST_TEST(tls.established());
  BOOST_TEST(!tls.cipher_suite().empty());
  BOOST_TEST(get_hello(tls) == "world");
}

BOOST_FIXTURE_TEST_CASE(failures_complete_with_their_error_and_an_empty_handle, fixture) {
  // A scheme that is not this session type's.
  auto [e1, s1] = create<coap::session<coap::udp>>(uri("coap+tcp", tcp_port));
  BOOST_TEST((e1 == coap::error::unsupported_scheme));
  BOOST_TEST(!s1);
  // Not a URI.
  auto [e2, s2] = create<coap::session<coap::udp>>(std::string("not a uri"));
  BOOST_TEST(e2);
  BOOST_TEST(!s2);
  // Nobody listens on the port: the TCP connect is refused.
  asio::ip::tcp::acceptor probe(io, {loopback, 0});
  const auto closed_port = probe.local_endpoint().port();
  probe.close();
  auto [e3, s3] = create<coap::session<coap::tcp>>(uri("coap+tcp", closed_port));
  BOOST_TEST((e3 == std::errc::connection_refused), e3.message());
  BOOST_TEST(!s3);
  // A wrong key: the handshake fails (TLS: an alert; DTLS drops bad records, so a timeout).
  coap::session_config quick;
  quick.handshake_timeout = 1500ms;
  auto [e4, s4] = create<coap::session<coap::tcp, coap::psk>>(uri("coaps+tcp", tls_port), quick,
                                                               psk_client({'w', 'r', 'o', 'n', 'g'}));
  BOOST_TEST(e4);
  BOOST_TEST(!s4);
  auto [e5, s5] = create<coap::session<coap::udp, coap::psk>>(uri("coaps", dtls_port), quick,
                                                               psk_client({'w', 'r', 'o', 'n', 'g'}));
  BOOST_TEST(e5);
  BOOST_TEST(!s5);
  BOOST_TEST(client.session_count() == 0u);
}

BOOST_FIXTURE_TEST_CASE(every_token_kind, fixture) {
  // use_future: completed by the io_context running on another thread.
  auto future = coap::session<coap::udp>::async_create_client(client, uri("coap", udp_port), asio::use_future);
  std::thread runner([&] { io.run_for(3s); });
  // std::error_code is not Asio's error type: the future holds both values.
  const auto [ec, s] = future.get();
  runner.join();
  io.restart();
  BOOST_TEST(!ec);
  BOOST_TEST(s.established());

  // use_awaitable, raced against a timer with awaitable operators (Boost 1.81 has no cancel_after).
  using namespace asio::experimental::awaitable_operators;
  std::optional<bool> won;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        asio::steady_timer timer(co_await asio::this_coro::executor, 5s);
        auto result = co_await (coap::session<coap::tcp>::async_create_client(
                                    client, uri("coap+tcp", tcp_port), asio::as_tuple(asio::use_awaitable)) ||
                                timer.async_wait(asio::use_awaitable));
        won = result.index() == 0 && !std::get<0>(std::get<0>(result));
      },
      asio::detached);
  BOOST_REQUIRE(run_until([&] { return won.has_value(); }));
  BOOST_TEST(*won);

  // The default token (deferred): co_await the operations directly.
  std::optional<std::string> awaited;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        auto [e, s] = co_await coap::session<coap::udp>::async_create_client(client, uri("coap", udp_port),
                                                                             asio::deferred);
        coap::message m(coap::method::get);
        m.add(coap::options::uri_path{}, "hello");
        auto [request_error, response] = co_await s.async_request(m);
        awaited = e || request_error ? std::string("error") : std::string(response.payload_string());
      },
      asio::detached);
  BOOST_REQUIRE(run_until([&] { return awaited.has_value(); }));
  BOOST_TEST(*awaited == "world");

  // deferred: nothing happens until the operation is started.
  auto op = coap::session<coap::udp>::async_create_client(client, uri("coap", udp_port), asio::deferred);
  std::optional<std::error_code> deferred_result;
  std::move(op)([&](std::error_code ec, coap::session<coap::udp>) { deferred_result = ec; });
  BOOST_REQUIRE(run_until([&] { return deferred_result.has_value(); }));
  BOOST_TEST(!*deferred_result);
}

// Per-operation cancellation (issue 11): a request raced against a timer with awaitable
// operators loses, completes with operation_aborted, and the server's late answer is dropped;
// the session goes on. Cancelling twice, or after completion, does nothing.
BOOST_FIXTURE_TEST_CASE(a_request_raced_with_a_timer_is_cancelled, fixture) {
  std::vector<coap::deferred_response> parked;
  server.add_resource("slow").on(coap::method::get, [&](const coap::request&, coap::basic_response<>& res) {
    parked.push_back(res.defer());
  });
  auto [ec, s] = create<coap::session<coap::udp>>(uri("coap", udp_port));
  BOOST_REQUIRE(!ec);
  using namespace asio::experimental::awaitable_operators;
  std::optional<std::size_t> winner;
  std::optional<std::error_code> request_result;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        coap::message slow(coap::method::get);
        slow.add(coap::options::uri_path{}, "slow");
        asio::steady_timer timer(co_await asio::this_coro::executor, 100ms);
        auto result = co_await (s.async_request(slow, asio::as_tuple(asio::use_awaitable)) ||
                                timer.async_wait(asio::use_awaitable));
        winner = result.index();
        if (result.index() == 0) request_result = std::get<0>(std::get<0>(result));
      },
      asio::detached);
  BOOST_REQUIRE(run_until([&] { return winner.has_value(); }));
  BOOST_TEST(*winner == 1u);  // the timer won: the request was cancelled
  BOOST_REQUIRE(parked.size() == 1u);
  BOOST_TEST(parked[0].send(coap::response_code::content, "late"));  // the answer nobody waits for
  io.run_for(200ms);
  io.restart();
  BOOST_TEST(get_hello(s) == "world");  // the session goes on

  // Through a cancellation slot: twice, then after completion.
  asio::cancellation_signal signal;
  std::optional<std::error_code> cancelled;
  coap::message slow(coap::method::get);
  slow.add(coap::options::uri_path{}, "slow");
  s.async_request(slow, asio::bind_cancellation_slot(signal.slot(), [&](std::error_code e, coap::message) {
    cancelled = e;
  }));
  io.run_for(20ms);
  io.restart();
  signal.emit(asio::cancellation_type::terminal);
  signal.emit(asio::cancellation_type::terminal);
  BOOST_REQUIRE(run_until([&] { return cancelled.has_value(); }));
  BOOST_TEST((*cancelled == std::error_code(boost::system::error_code(asio::error::operation_aborted))), cancelled->message());
  signal.emit(asio::cancellation_type::terminal);
  io.run_for(50ms);
  io.restart();
  BOOST_TEST(get_hello(s) == "world");
  (void)request_result;
}

BOOST_AUTO_TEST_CASE(completion_runs_on_the_handlers_strand) {
  // Two threads run the io_context; the handler is bound to a strand and must run on it.
  asio::io_context io;
  auto work = asio::make_work_guard(io);
  coap::context server(io.get_executor()), client(io.get_executor());
  std::uint16_t port = 0;
  std::promise<void> listening;
  asio::post(io, [&] {
    BOOST_TEST(!server.add_endpoint<coap::udp>(loopback, 0, &port));
    listening.set_value();
  });
  std::thread t1([&] { io.run(); }), t2([&] { io.run(); });
  listening.get_future().wait();
  auto strand = asio::make_strand(io);
  std::promise<bool> on_strand;
  coap::session<coap::udp> kept;
  coap::session<coap::udp>::async_create_client(
      client, "coap://127.0.0.1:" + std::to_string(port) + "/",
      asio::bind_executor(strand, [&](std::error_code ec, coap::session<coap::udp> s) {
        kept = std::move(s);
        on_strand.set_value(!ec && strand.running_in_this_thread());
      }));
  auto result = on_strand.get_future();
  BOOST_TEST((result.wait_for(5s) == std::future_status::ready));
  BOOST_TEST(result.get());
  // Handles are released on this thread; the close runs on the context's executor.
  asio::post(io, [&] { kept.release(); server.stop(); });
  work.reset();
  io.stop();
  t1.join();
  t2.join();
}
