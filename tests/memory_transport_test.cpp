// A transport written from docs/policies.md ("Writing a transport"): basic_udp over a
// datagram_socket of our own that never touches the kernel (support/memory_datagram_socket.hpp).
// RFC 7252's message layer, RFC 7641 Observe, RFC 7959 block-wise and DTLS (RFC 6347 with a
// PSK) all run over it unchanged: the transport policy is the socket, nothing else.
#include <coap/transports/udp.hpp>

#define BOOST_TEST_MODULE memory_transport
#include <boost/test/unit_test.hpp>

#include <coap/security/psk.hpp>
#include <coap/session.hpp>

#include "support/memory_datagram_socket.hpp"

#include <boost/asio.hpp>

#include <chrono>
#include <optional>
#include <string>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using socket_type = coap::test::memory_datagram_socket;
using memory_udp = coap::basic_udp<socket_type>;

static_assert(coap::datagram_socket<socket_type>);
static_assert(coap::transport_policy<memory_udp>);
static_assert(coap::transport_supports<memory_udp, coap::no_sec>);
static_assert(coap::transport_supports<memory_udp, coap::psk>);
// A transport of its own: not the same type as Asio's UDP.
static_assert(!std::is_same_v<coap::session<memory_udp>, coap::session<coap::udp>>);

namespace {

const auto here = asio::ip::make_address("127.0.0.1");

struct fixture {
  asio::io_context io;
  coap::context server{io.get_executor()};
  coap::context client{io.get_executor()};
  std::string stored;
  int state = 0;
  std::uint16_t port = 0;

  fixture() {
    server.add_resource("hello").on(coap::method::get, [](const coap::request&, coap::basic_response<>& res) {
      res.set(coap::response_code::content, "world");
    });
    server.add_resource("file")
        .on(coap::method::put,
            [this](const coap::request& r, coap::basic_response<>& res) {
              stored.assign(r.payload_string());
              res.set_code(coap::response_code::changed);
            })
        .on(coap::method::get, [this](const coap::request&, coap::basic_response<>& res) {
          res.set(coap::response_code::content, stored);
        });
    server.add_resource("state")
        .on(coap::method::get,
            [this](const coap::request&, coap::basic_response<>& res) {
              res.set(coap::response_code::content, std::to_string(state));
            })
        .observable();
  }

  template <class Done>
  bool run_until(Done done) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!done() && std::chrono::steady_clock::now() < deadline) io.run_for(5ms);
    return done();
  }

  template <class Session>
  std::pair<std::error_code, coap::message> request(Session& s, coap::message m) {
    std::optional<std::pair<std::error_code, coap::message>> out;
    s.async_request(std::move(m), [&](std::error_code ec, coap::message r) { out.emplace(ec, std::move(r)); });
    BOOST_REQUIRE(run_until([&] { return out.has_value(); }));
    return std::move(*out);
  }
};

coap::message get(std::string_view path) {
  coap::message m(coap::method::get);
  m.add(coap::options::uri_path{}, path);
  return m;
}

}  // namespace

BOOST_FIXTURE_TEST_CASE(requests_blocks_and_observe_over_memory, fixture) {
  const auto before = socket_type::stats().delivered;
  BOOST_REQUIRE(!server.add_endpoint<memory_udp>(here, 5683, &port));
  BOOST_TEST(port == 5683);
  std::error_code ec;
  auto s = coap::session<memory_udp>::create_client(client, {here, port}, ec);
  BOOST_REQUIRE(!ec);
  BOOST_TEST(std::string(s.description()).ends_with("127.0.0.1:5683 UDP"));

  auto [e1, hello] = request(s, get("hello"));
  BOOST_TEST(!e1);
  BOOST_TEST(hello.payload_string() == "world");

  // RFC 7959: 5000 bytes go as Block1 blocks and come back as Block2 blocks.
  std::string body(5000, '\0');
  for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>('a' + i % 26);
  coap::message put(coap::method::put);
  put.add(coap::options::uri_path{}, "file");
  put.set_payload(body);
  auto [e2, changed] = request(s, put);
  BOOST_TEST(!e2);
  BOOST_TEST(coap::to_string(changed.code()) == "2.04 Changed");
  BOOST_TEST(stored == body);
  auto [e3, back] = request(s, get("file"));
  BOOST_TEST(!e3);
  BOOST_TEST((back.payload_string() == body));

  // RFC 7641: registration, then two notifications in order.
  std::optional<std::error_code> registered;
  coap::observation obs;
  s.async_observe(get("state"), [&](std::error_code e, coap::observation o) {
    registered = e;
    obs = std::move(o);
  });
  BOOST_REQUIRE(run_until([&] { return registered.has_value(); }));
  BOOST_REQUIRE(!*registered);
  std::vector<std::string> seen;
  std::function<void()> next = [&] {
    obs.async_next([&](std::error_code e, coap::message m) {
      if (e) return;
      seen.emplace_back(m.payload_string());
      next();
    });
  };
  next();
  BOOST_REQUIRE(run_until([&] { return seen.size() == 1; }));
  for (int i = 1; i <= 2; ++i) {
    state = i;
    BOOST_TEST(server.notify_observers("state") == 1u);
    BOOST_REQUIRE(run_until([&] { return seen.size() == static_cast<std::size_t>(i) + 1; }));
  }
  BOOST_TEST((seen == std::vector<std::string>{"0", "1", "2"}));
  BOOST_TEST(server.observer_count() == 1u);

  // Every exchange went through the memory network.
  BOOST_TEST(socket_type::stats().delivered - before >= 20u);
  server.stop();
}

BOOST_FIXTURE_TEST_CASE(dtls_psk_over_memory, fixture) {
  coap::security::psk_server_config server_psk;
  server_psk.key = {'s', 'e', 'c', 'r', 'e', 't'};
  BOOST_REQUIRE(!coap::security::set_psk(server, server_psk));
  BOOST_REQUIRE(!(server.add_endpoint<memory_udp, coap::psk>(here, 5684, &port)));
  coap::security::psk_client_config client_psk;
  client_psk.identity = "memory-client";
  client_psk.key = server_psk.key;
  std::error_code ec;
  auto s = coap::session<memory_udp, coap::psk>::create_client(client, {here, port}, client_psk, ec);
  BOOST_REQUIRE(!ec);
  BOOST_TEST(std::string(s.description()).ends_with("127.0.0.1:5684 DTLS"));
  auto [e, hello] = request(s, get("hello"));
  BOOST_TEST(!e, e.message());
  BOOST_TEST(hello.payload_string() == "world");
  BOOST_TEST(s.authenticated_peer().empty());  // the client's view: no PSK identity of the server
  server.stop();
}

BOOST_AUTO_TEST_CASE(an_unbound_address_drops_like_udp) {
  asio::io_context io;
  coap::context client(io.get_executor());
  coap::session_config fast;
  fast.ack_timeout = 20ms;
  fast.max_retransmit = 1;
  std::error_code ec;
  auto s = coap::session<memory_udp>::create_client(client, {here, 9}, fast, ec);
  BOOST_REQUIRE(!ec);
  std::optional<std::error_code> out;
  s.async_request(get("nobody"), [&](std::error_code e, coap::message) { out = e; });
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!out && std::chrono::steady_clock::now() < deadline) io.run_for(5ms);
  BOOST_REQUIRE(out.has_value());
  BOOST_TEST((*out == coap::error::timeout));
}
