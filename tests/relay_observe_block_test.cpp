// RFC 7959 (block-wise) and RFC 7641 (Observe) over a network that drops, duplicates and
// reorders datagrams (RFC 7252 section 4: CON retransmission and deduplication underneath):
// a client and a server on real loopback sockets with tests/support/lossy_udp_proxy.hpp
// between them. A block-wise PUT must reach the handler whole and once; an observation must
// keep receiving, in order.
#include <coap/transports/udp.hpp>

#define BOOST_TEST_MODULE relay_observe_block
#include <boost/test/unit_test.hpp>

#include <coap/session.hpp>

#include "support/lossy_udp_proxy.hpp"

#include <boost/asio.hpp>

#include <chrono>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using proxy = coap::test::lossy_udp_proxy;

namespace {

const auto loopback = asio::ip::make_address("127.0.0.1");

// Fast retransmission so that a lossy run stays short; enough retries to survive 20% loss.
coap::session_config lossy_config() {
  coap::session_config c;
  c.ack_timeout = 60ms;
  c.ack_random_factor = 1.0;
  c.max_retransmit = 8;
  c.response_timeout = 5s;
  return c;
}

// Drops 20%, duplicates 10% and delays 10% (so that later datagrams overtake them) of the
// datagrams in both directions, from a fixed seed.
proxy::policy misbehaving(unsigned seed) {
  auto rng = std::make_shared<std::mt19937>(seed);
  return [rng](proxy::direction, std::size_t, std::span<const std::uint8_t>) {
    const int roll = std::uniform_int_distribution<int>(0, 99)(*rng);
    if (roll < 20) return proxy::action::drop;
    if (roll < 30) return proxy::action::duplicate;
    if (roll < 40) return proxy::action::delay;
    return proxy::action::forward;
  };
}

template <class Done>
bool run_until(asio::io_context& io, Done done, std::chrono::seconds limit = 20s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done() && std::chrono::steady_clock::now() < deadline) io.run_for(10ms);
  return done();
}

std::string body_of(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 64) % 26);
  return s;
}

}  // namespace

BOOST_AUTO_TEST_CASE(block_wise_put_arrives_whole_and_once) {
  asio::io_context io;
  coap::context server(io.get_executor());
  server.config().session = lossy_config();
  std::string stored;
  int puts = 0;
  server.add_resource("file")
      .on(coap::method::put,
          [&](const coap::request& r, coap::basic_response<>& res) {
            ++puts;
            stored.assign(r.payload_string());
            res.set_code(coap::response_code::changed);
          })
      .on(coap::method::get, [&](const coap::request&, coap::basic_response<>& res) {
        res.set(coap::response_code::content, stored);
      });
  std::uint16_t port = 0;
  BOOST_REQUIRE(!server.add_endpoint<coap::udp>(loopback, 0, &port));
  proxy relay(io.get_executor(), {loopback, port}, misbehaving(7));

  coap::context client(io.get_executor());
  std::error_code ec;
  auto s = coap::session<coap::udp>::create_client(client, relay.endpoint(), lossy_config(), ec);
  BOOST_REQUIRE(!ec);

  const std::string body = body_of(20000);  // 20 blocks of 1024 bytes
  coap::message put(coap::method::put);
  put.add(coap::options::uri_path{}, "file");
  put.set_payload(body);
  std::optional<std::error_code> put_result;
  coap::message put_response;
  s.async_request(put, [&](std::error_code e, coap::message m) {
    put_result = e;
    put_response = std::move(m);
  });
  BOOST_REQUIRE(run_until(io, [&] { return put_result.has_value(); }));
  BOOST_TEST(put_result->message() == std::error_code().message());
  BOOST_TEST(coap::to_string(put_response.code()) == "2.04 Changed");
  BOOST_TEST(puts == 1);
  BOOST_TEST(stored.size() == body.size());
  BOOST_TEST((stored == body));
  BOOST_TEST(relay.seen(proxy::direction::to_server) >= 20u);

  // And back, block by block, through the same misbehaving network.
  coap::message get(coap::method::get);
  get.add(coap::options::uri_path{}, "file");
  std::optional<std::error_code> get_result;
  coap::message got;
  s.async_request(get, [&](std::error_code e, coap::message m) {
    get_result = e;
    got = std::move(m);
  });
  BOOST_REQUIRE(run_until(io, [&] { return get_result.has_value(); }));
  BOOST_TEST(get_result->message() == std::error_code().message());
  BOOST_TEST(got.payload_string().size() == body.size());
  BOOST_TEST((got.payload_string() == body));
}

BOOST_AUTO_TEST_CASE(observation_keeps_receiving_in_order) {
  asio::io_context io;
  coap::context server(io.get_executor());
  server.config().session = lossy_config();
  int state = 0;
  server.add_resource("state")
      .on(coap::method::get,
          [&](const coap::request&, coap::basic_response<>& res) {
            res.set(coap::response_code::content, std::to_string(state));
          })
      .observable();
  std::uint16_t port = 0;
  BOOST_REQUIRE(!server.add_endpoint<coap::udp>(loopback, 0, &port));
  proxy relay(io.get_executor(), {loopback, port}, misbehaving(11));

  coap::context client(io.get_executor());
  std::error_code ec;
  auto s = coap::session<coap::udp>::create_client(client, relay.endpoint(), lossy_config(), ec);
  BOOST_REQUIRE(!ec);

  coap::message get(coap::method::get);
  get.add(coap::options::uri_path{}, "state");
  std::optional<std::error_code> registered;
  coap::observation obs;
  s.async_observe(get, [&](std::error_code e, coap::observation o) {
    registered = e;
    obs = std::move(o);
  });
  BOOST_REQUIRE(run_until(io, [&] { return registered.has_value(); }));
  BOOST_REQUIRE(!*registered);

  std::vector<int> seen;
  std::optional<std::error_code> ended;
  std::function<void()> next = [&] {
    obs.async_next([&](std::error_code e, coap::message m) {
      if (e) {
        ended = e;
        return;
      }
      seen.push_back(std::stoi(std::string(m.payload_string())));
      next();
    });
  };
  next();

  // 40 new states, 40 ms apart; every 5th notification is CON (and retransmitted).
  asio::steady_timer ticker(io);
  int ticks = 0;
  std::function<void()> tick = [&] {
    ticker.expires_after(40ms);
    ticker.async_wait([&](boost::system::error_code e) {
      if (e || ++ticks > 40) return;
      ++state;
      server.notify_observers("state");
      tick();
    });
  };
  tick();
  run_until(io, [&] { return ticks > 40; });
  io.run_for(500ms);  // the last retransmissions

  BOOST_TEST(!ended.has_value());
  BOOST_TEST(obs.active());
  BOOST_TEST(server.observer_count() == 1u);
  // With 20% loss each way, most of the 41 states arrive; never one twice, never backwards.
  BOOST_TEST(seen.size() >= 20u);
  for (std::size_t i = 1; i < seen.size(); ++i) BOOST_TEST(seen[i] > seen[i - 1]);
  // The newest state arrives: the last notification before this point was ... at least one
  // of the final CONs is retransmitted until acknowledged.
  BOOST_TEST(!seen.empty());
  if (!seen.empty()) BOOST_TEST(seen.back() >= 35);
}
