// coap/shards.hpp (issue 16, a multi-core server): two shards on one port over real loopback
// sockets. Many clients (each its own source port) all get answers and both shards serve some;
// a peer stays with one shard and every session is touched by one thread only (the handler
// and the session events record their thread; `bazel test --config=tsan` checks the rest);
// observers on either shard hear notifications triggered from the test's thread and from the
// other shard's handler; stop joins cleanly while observations are open.
#include <coap/shards.hpp>

#define BOOST_TEST_MODULE shards
#include <boost/test/unit_test.hpp>

#include <coap/session.hpp>
#include <coap/transports/tcp.hpp>
#include <coap/transports/udp.hpp>

#include <boost/asio/io_context.hpp>

#include "support/run_until.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

const auto loopback = asio::ip::make_address("127.0.0.1");

// What one shard saw. Written only by that shard's thread, read by the test after stop()
// (which joins the thread): no lock, and ThreadSanitizer would report a second writer.
struct shard_record {
  std::map<std::string, int> requests_by_session;  // by coap_session_str
  std::set<std::string> event_sessions;
  std::set<std::thread::id> threads;
};

// A group of two shards serving "who" (GET: the shard's index) and "state" (observable; GET:
// "shard:value"; POST sets the value and notifies every shard's observers).
struct server {
  // Declared before the group, which stops (joins) first when the test ends early.
  std::vector<shard_record> records = std::vector<shard_record>(2);
  std::atomic<int> state{0};
  std::uint16_t port = 0;
  coap::shard_group group{2};

  explicit server(bool tcp = false) {
    const auto ec = group.setup([&](coap::context& ctx, std::size_t i) {
      auto& record = records[i];
      ctx.config().session.max_request_rate = 0;
      ctx.set_event_handler([&record](coap::session_event, std::string_view description, std::error_code) {
        record.threads.insert(std::this_thread::get_id());
        record.event_sessions.emplace(description);
      });
      auto seen = [&record](const coap::request& r) {
        record.threads.insert(std::this_thread::get_id());
        ++record.requests_by_session[std::string(r.session())];
      };
      ctx.add_resource("who").on(coap::method::get, [seen, i](const coap::request& r, coap::basic_response<>& res) {
        seen(r);
        res.set(coap::response_code::content, std::to_string(i));
      });
      ctx.add_resource("state")
          .observable()
          .on(coap::method::get,
              [this, seen, i](const coap::request& r, coap::basic_response<>& res) {
                seen(r);
                res.set(coap::response_code::content, std::to_string(i) + ":" + std::to_string(state.load()));
              })
          .on(coap::method::post, [this, seen](const coap::request& r, coap::basic_response<>& res) {
            seen(r);
            state = std::stoi(std::string(r.payload_string()));
            group.notify_observers("state");  // from this shard's thread to both shards
            res.set_code(coap::response_code::changed);
          });
      // Shard 0 binds port 0 and the others the port it got.
      if (tcp) return ctx.add_endpoint<coap::tcp>(loopback, port, &port);
      return ctx.add_endpoint<coap::udp>(loopback, port, &port);
    });
    BOOST_TEST_REQUIRE(!ec, ec.message());
    BOOST_TEST_REQUIRE(port != 0);
    group.start();
  }
};

// The clients: one context on the test's thread, a session (a socket) per client.
struct clients {
  asio::io_context io;
  coap::context ctx{io.get_executor()};

  template <class Pred>
  bool run_until(Pred&& done, std::chrono::milliseconds limit = 10s) {
    return coap::test::run_until(io, done, limit, 5ms);
  }
};

std::string text_of(const coap::message& m) { return std::string(m.payload().begin(), m.payload().end()); }

coap::message get(std::string_view path) {
  coap::message m(coap::method::get);
  m.add(coap::options::uri_path{}, path);
  return m;
}

// `count` clients of `Session` ask "who" `rounds` times each; returns each client's answers.
template <class Session>
std::vector<std::vector<std::string>> ask_who(clients& c, std::uint16_t port, int count, int rounds) {
  std::vector<Session> sessions;
  for (int i = 0; i < count; ++i) {
    std::error_code ec;
    sessions.push_back(Session::create_client(c.ctx, {loopback, port}, ec));
    BOOST_TEST_REQUIRE(!ec, ec.message());
  }
  std::vector<std::vector<std::string>> answers(static_cast<std::size_t>(count));
  for (int round = 0; round < rounds; ++round) {
    int done = 0;
    for (std::size_t i = 0; i < sessions.size(); ++i)
      sessions[i].async_request(get("who"), [&, i](std::error_code ec, coap::message m) {
        ++done;
        BOOST_TEST(!ec, ec.message());
        if (!ec) answers[i].push_back(text_of(m));
      });
    BOOST_TEST_REQUIRE(c.run_until([&] { return done == count; }));
  }
  return answers;
}

// Each client always reached the same shard, both shards served some, and no session (or
// thread) appears in both shards' records.
void check_spread(const server& s, const std::vector<std::vector<std::string>>& answers, int rounds) {
  std::map<std::string, int> clients_per_shard;
  for (const auto& a : answers) {
    BOOST_TEST_REQUIRE(a.size() == static_cast<std::size_t>(rounds));
    BOOST_TEST(std::set<std::string>(a.begin(), a.end()).size() == 1u);  // a peer stays with its shard
    ++clients_per_shard[a.front()];
  }
  // With 24 or 16 peers hashed over two sockets, all on one shard has odds of 2^-23 or 2^-15.
  BOOST_TEST(clients_per_shard["0"] > 0);
  BOOST_TEST(clients_per_shard["1"] > 0);
  const auto& a = s.records[0];
  const auto& b = s.records[1];
  BOOST_TEST(a.threads.size() == 1u);
  BOOST_TEST(b.threads.size() == 1u);
  BOOST_TEST(*a.threads.begin() != *b.threads.begin());
  BOOST_TEST(*a.threads.begin() != std::this_thread::get_id());
  for (const auto& [session, n] : a.requests_by_session) BOOST_TEST(!b.requests_by_session.count(session), session);
  for (const auto& session : a.event_sessions) BOOST_TEST(!b.event_sessions.count(session), session);
  BOOST_TEST(a.requests_by_session.size() + b.requests_by_session.size() == answers.size());
}

}  // namespace

BOOST_AUTO_TEST_CASE(udp_peers_spread_over_shards_and_stay) {
  server s;
  clients c;
  const auto answers = ask_who<coap::session<coap::udp>>(c, s.port, 24, 5);
  s.group.stop();
  check_spread(s, answers, 5);
}

BOOST_AUTO_TEST_CASE(tcp_connections_spread_over_shards) {
  server s(true);
  clients c;
  const auto answers = ask_who<coap::session<coap::tcp>>(c, s.port, 16, 3);
  s.group.stop();
  check_spread(s, answers, 3);
}

// Observers on both shards; the state changes from the test's thread (group.notify_observers)
// and then from a POST that one shard serves: every observer hears both.
BOOST_AUTO_TEST_CASE(notifications_cross_shards) {
  server s;
  clients c;
  constexpr int count = 16;
  std::vector<coap::session<coap::udp>> sessions;
  std::vector<coap::observation> observations(count);
  std::vector<std::string> shard_of(count), last(count);
  int registered = 0;
  for (int i = 0; i < count; ++i) {
    std::error_code ec;
    sessions.push_back(coap::session<coap::udp>::create_client(c.ctx, {loopback, s.port}, ec));
    BOOST_TEST_REQUIRE(!ec, ec.message());
    sessions.back().async_observe(get("state"), [&, i](std::error_code e, coap::observation o) {
      BOOST_TEST(!e, e.message());
      observations[static_cast<std::size_t>(i)] = std::move(o);
      ++registered;
    });
  }
  BOOST_TEST_REQUIRE(c.run_until([&] { return registered == count; }));

  // Waits for every observer's next message; records "shard:value" per observer.
  auto next_all = [&] {
    int got = 0;
    for (std::size_t i = 0; i < observations.size(); ++i)
      observations[i].async_next([&, i](std::error_code e, coap::message m) {
        BOOST_TEST(!e, e.message());
        const auto text = text_of(m);
        shard_of[i] = text.substr(0, text.find(':'));
        last[i] = text.substr(text.find(':') + 1);
        ++got;
      });
    return c.run_until([&] { return got == count; });
  };
  BOOST_TEST_REQUIRE(next_all());  // the registrations' answers
  BOOST_TEST(std::set<std::string>(last.begin(), last.end()) == std::set<std::string>{"0"});
  const std::set<std::string> shards(shard_of.begin(), shard_of.end());
  BOOST_TEST(shards.count("0") == 1u);
  BOOST_TEST(shards.count("1") == 1u);
  const auto registered_on = shard_of;

  // From this thread, which is neither shard's.
  s.state = 7;
  s.group.notify_observers("state");
  BOOST_TEST_REQUIRE(next_all());
  BOOST_TEST(std::set<std::string>(last.begin(), last.end()) == std::set<std::string>{"7"});
  BOOST_TEST(shard_of == registered_on, boost::test_tools::per_element());

  // From the handler of whichever shard serves this client's POST.
  coap::message post(coap::method::post);
  post.add(coap::options::uri_path{}, "state");
  post.set_payload(std::string_view("9"));
  bool posted = false;
  sessions.front().async_request(std::move(post), [&](std::error_code e, coap::message m) {
    BOOST_TEST(!e, e.message());
    BOOST_TEST(coap::to_string(m.code()) == "2.04 Changed");
    posted = true;
  });
  BOOST_TEST_REQUIRE(c.run_until([&] { return posted; }));
  BOOST_TEST_REQUIRE(next_all());
  BOOST_TEST(std::set<std::string>(last.begin(), last.end()) == std::set<std::string>{"9"});

  // Stopping with the observations open: the shards close their sessions on their threads.
  s.group.stop();
  s.group.stop();  // idempotent
  BOOST_TEST(s.records[0].threads.size() == 1u);
  BOOST_TEST(s.records[1].threads.size() == 1u);
}

// Stop before start, stop after start without traffic, and the destructor alone: each joins
// (a hang here fails the test by its time limit).
BOOST_AUTO_TEST_CASE(stop_joins_cleanly) {
  {
    coap::shard_group g(3);
    std::uint16_t port = 0;
    BOOST_TEST(!g.setup([&](coap::context& ctx, std::size_t) { return ctx.add_endpoint<coap::udp>(loopback, port, &port); }));
    g.stop();  // never started: the endpoints close on this thread
    BOOST_TEST(g[0].endpoint_count() == 0u);
  }
  {
    coap::shard_group g(2);
    std::uint16_t port = 0;
    BOOST_TEST(!g.setup([&](coap::context& ctx, std::size_t) { return ctx.add_endpoint<coap::udp>(loopback, port, &port); }));
    g.start();
    std::atomic<int> ran{0};
    g.post_each([&](coap::context& ctx, std::size_t) { ran += static_cast<int>(ctx.endpoint_count()); });
    const auto end = std::chrono::steady_clock::now() + 5s;
    while (ran != 2 && std::chrono::steady_clock::now() < end) std::this_thread::sleep_for(1ms);
    BOOST_TEST(ran == 2);
  }  // the destructor stops and joins
  {
    // Without reuse_port the same port cannot be bound twice: the option is what shares it.
    asio::io_context io;
    coap::context first(io.get_executor()), second(io.get_executor());
    std::uint16_t port = 0;
    BOOST_TEST_REQUIRE(!first.add_endpoint<coap::udp>(loopback, port, &port));
    const auto ec = second.add_endpoint<coap::udp>(loopback, port);
    BOOST_TEST((ec == std::errc::address_in_use), ec.message());
  }
}
