// RFC 7641 (Observe) and RFC 7959 (block-wise transfer), the server's side, over real loopback
// sockets to a raw client scripted here: registration and notifications (NON, every fifth
// CON, ACK, RST, a CON never acknowledged), deregistration, error notifications, a removed
// resource, the observer caps, Block2 of a large representation, Block1 uploads with
// duplicated and reordered datagrams; over TCP (RFC 8323 sections 6 and 7) Observe and BERT.
#include <coap/transports/udp.hpp>

#define BOOST_TEST_MODULE observe_server
#include <boost/test/unit_test.hpp>

#include <coap/block.hpp>
#include <coap/tcp_codec.hpp>
#include <coap/transports/tcp.hpp>
#include <coap/udp_codec.hpp>

#include <boost/asio.hpp>

#include "support/tcp_frames.hpp"
#include "support/run_until.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using bytes = std::vector<std::uint8_t>;

namespace {

const auto loopback = asio::ip::make_address("127.0.0.1");

constexpr auto observe = static_cast<std::uint16_t>(coap::option_number::observe);
constexpr auto block1 = static_cast<std::uint16_t>(coap::option_number::block1);
constexpr auto block2 = static_cast<std::uint16_t>(coap::option_number::block2);
constexpr auto size2 = static_cast<std::uint16_t>(coap::option_number::size2);
constexpr auto etag = static_cast<std::uint16_t>(coap::option_number::etag);

// Bytes that differ from block to block (251 is prime: no period of a block size).
bytes body_of(std::size_t n) {
  bytes b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::uint8_t>((i * 7 + 3) % 251);
  return b;
}

std::optional<coap::block_value> block_option(const coap::message& m, std::uint16_t number) {
  auto o = m.find(number);
  if (!o) return std::nullopt;
  // Read by hand: SZX 7 (BERT) is not an RFC 7959 value.
  const std::uint32_t raw = o->as_uint();
  return coap::block_value{raw >> 4, (raw & 8u) != 0, static_cast<std::uint8_t>(raw & 7u)};
}
bytes option_bytes(const coap::message& m, std::uint16_t number) {
  auto o = m.find(number);
  return o ? bytes(o->value().begin(), o->value().end()) : bytes{};
}
bytes payload_of(const coap::message& m) { return bytes(m.payload().begin(), m.payload().end()); }
std::string code_of(const coap::message& m) { return coap::to_string(m.code()); }

coap::message get(std::string_view path, std::uint64_t token, std::optional<std::uint32_t> observe_value = std::nullopt,
                  std::optional<coap::block_value> b2 = std::nullopt) {
  coap::message m(coap::method::get);
  m.set_token(coap::token::from_uint(token, 2));
  if (observe_value) m.add(coap::options::observe{}, *observe_value);
  m.add(coap::options::uri_path{}, path);
  if (b2) m.add_uint_option(block2, coap::encode(*b2));
  return m;
}

// Block `num` of `body` in blocks of 2^(szx+4) bytes (1024 times `units` for BERT).
coap::message put_block(const bytes& body, std::uint32_t num, std::uint8_t szx, std::uint64_t token = 0x55) {
  const std::size_t size = coap::block_value{0, false, szx}.size();
  const std::size_t offset = num * size;
  const std::size_t length = std::min(size, body.size() - offset);
  coap::message m(coap::method::put);
  m.set_token(coap::token::from_uint(token, 2));
  m.add(coap::options::uri_path{}, "up");
  m.add_uint_option(block1, coap::encode({num, offset + length < body.size(), szx}));
  m.set_payload(std::span<const std::uint8_t>(body.data() + offset, length));
  return m;
}

// A server context with an observable counter ("x"), a large observable representation
// ("big") and an upload sink ("up").
struct fixture {
  asio::io_context io;
  coap::context server{io.get_executor()};
  std::uint16_t port = 0;
  int state = 0;
  int gets = 0;
  bool not_found = false;
  bool confirmable = false;
  bytes big = body_of(3000);
  std::vector<bytes> uploads;

  fixture() {
    // The scripted client answers no Echo challenge: no amplification limit (RFC 9175 section
    // 2.4, tests/options_test.cpp) for its large answers.
    server.config().session.amplification_factor = 0;
    server.add_resource("x").observable().on(coap::method::get,
                                             [this](const coap::request&, coap::basic_response<>& res) {
                                               ++gets;
                                               if (not_found) return res.set(coap::response_code::not_found, "gone");
                                               if (confirmable) res.notify_confirmable();
                                               res.set(coap::response_code::content, std::to_string(state));
                                             });
    server.add_resource("big").observable().on(coap::method::get,
                                               [this](const coap::request&, coap::basic_response<>& res) {
                                                 res.set_code(coap::response_code::content);
                                                 res.set_payload(std::span<const std::uint8_t>(big));
                                               });
    server.add_resource("up").on(coap::method::put, [this](const coap::request& r, coap::basic_response<>& res) {
      uploads.emplace_back(r.payload().begin(), r.payload().end());
      res.set_code(coap::response_code::changed);
    });
  }

  // The endpoint is added by each test, after it set the configuration its sessions take.
  void start_udp() { BOOST_TEST_REQUIRE(!server.add_endpoint<coap::udp>(loopback, 0, &port)); }
  void start_tcp() { BOOST_TEST_REQUIRE(!server.add_endpoint<coap::tcp>(loopback, 0, &port)); }

  template <class Pred>
  bool run_until(Pred done, std::chrono::milliseconds limit = 2s) {
    return coap::test::run_until(io, done, limit, 2ms);
  }
  // The one upload the "up" handler received is `body`.
  void expect_one_upload(const bytes& body) {
    BOOST_TEST_REQUIRE(uploads.size() == 1u);
    BOOST_TEST(uploads.front() == body, boost::test_tools::per_element());
  }
};

// A raw CoAP-over-UDP client: messages built with the codec, message IDs of its own.
struct udp_client {
  fixture& f;
  asio::ip::udp::socket socket;
  asio::ip::udp::endpoint server;
  std::uint16_t next_id = 0x2000;

  udp_client(fixture& fx, std::uint16_t port) : f(fx), socket(fx.io, {loopback, 0}), server(loopback, port) {
    socket.non_blocking(true);
  }
  // Sends `m` as a CON (unless typed otherwise) with a fresh message ID; returns the datagram.
  bytes send(coap::message m) {
    m.set_message_id(next_id++);
    bytes wire;
    BOOST_TEST_REQUIRE(!coap::udp_codec::encode(m, wire));
    send_raw(wire);
    return wire;
  }
  void send_raw(const bytes& wire) { socket.send_to(asio::buffer(wire), server); }
  void send_empty(coap::message_type t, std::uint16_t id) {
    coap::message m{coap::code(), t};
    m.set_message_id(id);
    bytes wire;
    BOOST_TEST_REQUIRE(!coap::udp_codec::encode(m, wire));
    send_raw(wire);
  }
  std::optional<coap::message> receive(std::chrono::milliseconds limit = 1s) {
    std::optional<coap::message> got;
    std::uint8_t buf[2048];
    f.run_until(
        [&] {
          boost::system::error_code ec;
          asio::ip::udp::endpoint from;
          const auto n = socket.receive_from(asio::buffer(buf), from, 0, ec);
          if (ec) return false;
          coap::message_view v;
          BOOST_TEST_REQUIRE(!coap::udp_codec::parse({buf, n}, v));
          got.emplace(v);
          return true;
        },
        limit);
    return got;
  }
  // The answer to `request` (sent now).
  coap::message exchange(coap::message request) {
    const auto wire = send(std::move(request));
    auto r = receive();
    BOOST_TEST_REQUIRE(r.has_value());
    BOOST_TEST(r->message_id() == static_cast<std::uint16_t>(next_id - 1));
    return *r;
  }
};

std::uint32_t observe_of(const coap::message& m) {
  auto o = m.find(observe);
  BOOST_TEST_REQUIRE(o.has_value());
  return o->as_uint();
}

// Registers token `token` on `path`; the answer must carry Observe.
coap::message register_observer(udp_client& c, std::string_view path, std::uint64_t token) {
  auto r = c.exchange(get(path, token, 0));
  BOOST_TEST(code_of(r) == "2.05 Content");
  BOOST_TEST(r.find(observe).has_value());
  return r;
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(observe_over_udp, fixture)

BOOST_AUTO_TEST_CASE(registration_and_notifications) {
  start_udp();
  udp_client c(*this, port);
  auto r = register_observer(c, "x", 1);
  BOOST_TEST((r.type() == coap::message_type::acknowledgement));
  BOOST_TEST((r.token_value() == coap::token::from_uint(1, 2)));
  BOOST_TEST(r.payload_string() == "0");
  BOOST_TEST(server.observer_count() == 1u);
  std::uint32_t last = observe_of(r);
  for (int i = 1; i <= 3; ++i) {
    state = i;
    BOOST_TEST(server.notify_observers("x") == 1u);
    auto n = c.receive();
    BOOST_TEST_REQUIRE(n.has_value());
    BOOST_TEST(code_of(*n) == "2.05 Content");
    BOOST_TEST((n->type() == coap::message_type::non_confirmable));
    BOOST_TEST((n->token_value() == coap::token::from_uint(1, 2)));
    BOOST_TEST(n->payload_string() == std::to_string(i));
    const auto seq = observe_of(*n);
    BOOST_TEST(seq > last);
    last = seq;
  }
  BOOST_TEST(gets == 4);
}

BOOST_AUTO_TEST_CASE(every_fifth_notification_is_confirmable) {
  server.config().session.ack_timeout = 40ms;
  start_udp();
  udp_client c(*this, port);
  register_observer(c, "x", 1);
  std::vector<coap::message_type> types;
  std::optional<coap::message> con;
  for (int i = 1; i <= 5; ++i) {
    state = i;
    server.notify_observers("x");
    auto n = c.receive();
    BOOST_TEST_REQUIRE(n.has_value());
    types.push_back(n->type());
    if (n->type() == coap::message_type::confirmable) con = n;
  }
  const std::vector<coap::message_type> expected{
      coap::message_type::non_confirmable, coap::message_type::non_confirmable, coap::message_type::non_confirmable,
      coap::message_type::non_confirmable, coap::message_type::confirmable};
  BOOST_TEST((types == expected));
  BOOST_TEST_REQUIRE(con.has_value());
  BOOST_TEST(con->payload_string() == "5");
  c.send_empty(coap::message_type::acknowledgement, con->message_id());
  // Acknowledged: no retransmission follows, and the observation goes on.
  BOOST_TEST(!c.receive(200ms).has_value());
  BOOST_TEST(server.observer_count() == 1u);
  state = 6;
  BOOST_TEST(server.notify_observers("x") == 1u);
  auto n = c.receive();
  BOOST_TEST_REQUIRE(n.has_value());
  BOOST_TEST((n->type() == coap::message_type::non_confirmable));
  BOOST_TEST(n->payload_string() == "6");
}

BOOST_AUTO_TEST_CASE(rst_to_a_non_notification_ends_the_observation) {
  start_udp();
  udp_client c(*this, port);
  register_observer(c, "x", 1);
  server.notify_observers("x");
  auto n = c.receive();
  BOOST_TEST_REQUIRE(n.has_value());
  BOOST_TEST_REQUIRE((n->type() == coap::message_type::non_confirmable));
  c.send_empty(coap::message_type::reset, n->message_id());
  BOOST_TEST(run_until([&] { return server.observer_count() == 0u; }, 1s));
  BOOST_TEST(server.notify_observers("x") == 0u);
  BOOST_TEST(!c.receive(100ms).has_value());
}

BOOST_AUTO_TEST_CASE(observe_1_deregisters) {
  start_udp();
  udp_client c(*this, port);
  register_observer(c, "x", 1);
  auto r = c.exchange(get("x", 1, 1));
  BOOST_TEST(code_of(r) == "2.05 Content");
  BOOST_TEST(!r.find(observe).has_value());
  BOOST_TEST(server.observer_count() == 0u);
  BOOST_TEST(server.notify_observers("x") == 0u);
  BOOST_TEST(!c.receive(100ms).has_value());
}

BOOST_AUTO_TEST_CASE(an_unacknowledged_con_notification_ends_the_observation) {
  server.config().session.ack_timeout = 20ms;
  server.config().session.max_retransmit = 2;
  confirmable = true;  // the handler asks for CON
  start_udp();
  udp_client c(*this, port);
  register_observer(c, "x", 1);
  BOOST_TEST(server.notify_observers("x") == 1u);
  std::vector<coap::message> copies;
  while (auto n = c.receive(400ms)) copies.push_back(*n);
  BOOST_TEST_REQUIRE(copies.size() == 3u);  // the first transmission and MAX_RETRANSMIT (2)
  for (const auto& m : copies) {
    BOOST_TEST((m.type() == coap::message_type::confirmable));
    BOOST_TEST(m.message_id() == copies.front().message_id());
  }
  BOOST_TEST(run_until([&] { return server.observer_count() == 0u; }, 500ms));
  BOOST_TEST(server.notify_observers("x") == 0u);
}

BOOST_AUTO_TEST_CASE(an_error_notification_is_the_last) {
  start_udp();
  udp_client c(*this, port);
  register_observer(c, "x", 1);
  not_found = true;
  server.notify_observers("x");
  auto n = c.receive();
  BOOST_TEST_REQUIRE(n.has_value());
  BOOST_TEST(code_of(*n) == "4.04 Not Found");
  BOOST_TEST((n->token_value() == coap::token::from_uint(1, 2)));
  BOOST_TEST(!n->find(observe).has_value());  // section 4.2: not a notification any more
  BOOST_TEST(server.observer_count() == 0u);
  BOOST_TEST(server.notify_observers("x") == 0u);
}

BOOST_AUTO_TEST_CASE(a_removed_resource_tells_its_observers) {
  start_udp();
  udp_client c(*this, port);
  register_observer(c, "x", 1);
  BOOST_TEST(server.remove_resource("x"));
  auto n = c.receive();
  BOOST_TEST_REQUIRE(n.has_value());
  BOOST_TEST(code_of(*n) == "4.04 Not Found");
  BOOST_TEST((n->token_value() == coap::token::from_uint(1, 2)));
  BOOST_TEST(!n->find(observe).has_value());
  BOOST_TEST(server.observer_count() == 0u);
  if (n->type() == coap::message_type::confirmable) c.send_empty(coap::message_type::acknowledgement, n->message_id());
  BOOST_TEST(!c.receive(100ms).has_value());
}

BOOST_AUTO_TEST_CASE(one_session_gets_at_most_its_share_of_observers) {
  server.config().max_observers_per_session = 3;
  start_udp();
  udp_client c(*this, port);
  int observed = 0;
  for (std::uint64_t t = 1; t <= 10; ++t) {
    auto r = c.exchange(get("x", t, 0));
    BOOST_TEST(code_of(r) == "2.05 Content");  // answered as a plain GET past the cap
    observed += r.find(observe).has_value();
  }
  BOOST_TEST(observed == 3);
  BOOST_TEST(server.observer_count() == 3u);
  BOOST_TEST(server.notify_observers("x") == 3u);
}

BOOST_AUTO_TEST_CASE(one_resource_gets_at_most_its_share_of_observers) {
  server.config().max_observers_per_resource = 2;
  start_udp();
  udp_client a(*this, port), b(*this, port), c(*this, port);
  BOOST_TEST(a.exchange(get("x", 1, 0)).find(observe).has_value());
  BOOST_TEST(b.exchange(get("x", 1, 0)).find(observe).has_value());
  BOOST_TEST(!c.exchange(get("x", 1, 0)).find(observe).has_value());
  BOOST_TEST(server.observer_count() == 2u);
  // One leaves: room for another.
  BOOST_TEST(!a.exchange(get("x", 1, 1)).find(observe).has_value());
  BOOST_TEST(c.exchange(get("x", 1, 0)).find(observe).has_value());
  BOOST_TEST(server.observer_count() == 2u);
}

BOOST_AUTO_TEST_CASE(a_large_representation_goes_block_by_block) {
  start_udp();
  udp_client c(*this, port);
  auto first = register_observer(c, "big", 9);
  BOOST_TEST((block_option(first, block2) == coap::block_value{0, true, 6}));
  BOOST_TEST_REQUIRE(first.find(size2).has_value());
  BOOST_TEST(first.find(size2)->as_uint() == 3000u);
  BOOST_TEST(first.payload().size() == 1024u);
  bytes whole = payload_of(first);
  for (std::uint32_t num = 1; num <= 2; ++num) {
    auto r = c.exchange(get("big", 20 + num, std::nullopt, coap::block_value{num, false, 6}));
    BOOST_TEST(code_of(r) == "2.05 Content");
    BOOST_TEST((block_option(r, block2) == coap::block_value{num, num < 2, 6}));
    BOOST_TEST(option_bytes(r, etag) == option_bytes(first, etag), boost::test_tools::per_element());
    BOOST_TEST(!r.find(observe).has_value());
    const auto p = payload_of(r);
    whole.insert(whole.end(), p.begin(), p.end());
  }
  BOOST_TEST(whole == big, boost::test_tools::per_element());
  // Past the end.
  BOOST_TEST(code_of(c.exchange(get("big", 30, std::nullopt, coap::block_value{3, false, 6}))) == "4.02 Bad Option");
  // A notification is block 0 again, with Observe (RFC 7959 section 3.4).
  BOOST_TEST(server.observer_count() == 1u);
  big[0] ^= 0xff;
  BOOST_TEST(server.notify_observers("big") == 1u);
  auto n = c.receive();
  BOOST_TEST_REQUIRE(n.has_value());
  BOOST_TEST(n->find(observe).has_value());
  BOOST_TEST((n->token_value() == coap::token::from_uint(9, 2)));
  BOOST_TEST((block_option(*n, block2) == coap::block_value{0, true, 6}));
  BOOST_TEST(payload_of(*n) == bytes(big.begin(), big.begin() + 1024), boost::test_tools::per_element());
  BOOST_TEST((option_bytes(*n, etag) != option_bytes(first, etag)));  // another representation
}

BOOST_AUTO_TEST_CASE(a_re_registration_is_one_observer) {
  start_udp();
  udp_client c(*this, port);
  const auto wire = c.send(get("x", 1, 0));
  BOOST_TEST_REQUIRE(c.receive().has_value());
  c.send_raw(wire);  // the same datagram again: answered from the cache
  BOOST_TEST_REQUIRE(c.receive().has_value());
  register_observer(c, "x", 1);  // the same token, a new message: a re-registration
  BOOST_TEST(server.observer_count() == 1u);
  BOOST_TEST(server.notify_observers("x") == 1u);
  BOOST_TEST(c.receive().has_value());
  BOOST_TEST(!c.receive(100ms).has_value());
}

BOOST_AUTO_TEST_CASE(rst_to_a_con_notification_ends_the_observation) {
  confirmable = true;
  start_udp();
  udp_client c(*this, port);
  register_observer(c, "x", 1);
  server.notify_observers("x");
  auto n = c.receive();
  BOOST_TEST_REQUIRE(n.has_value());
  BOOST_TEST_REQUIRE((n->type() == coap::message_type::confirmable));
  c.send_empty(coap::message_type::reset, n->message_id());
  BOOST_TEST(run_until([&] { return server.observer_count() == 0u; }, 1s));
  BOOST_TEST(!c.receive(100ms).has_value());  // and no retransmission
}

BOOST_AUTO_TEST_CASE(notifications_run_the_handler_on_the_registration) {
  server.add_resource("q").observable().on(coap::method::get,
                                           [this](const coap::request& r, coap::basic_response<>& res) {
                                             res.set(coap::response_code::content,
                                                     std::string(r.query("unit").value_or("none")) + ":" +
                                                         std::to_string(state));
                                           });
  start_udp();
  udp_client c(*this, port);
  auto m = get("q", 3, 0);
  m.add(coap::options::uri_query{}, "unit=C");
  BOOST_TEST(c.exchange(m).payload_string() == "C:0");
  state = 4;
  BOOST_TEST(server.notify_observers("q") == 1u);
  auto n = c.receive();
  BOOST_TEST_REQUIRE(n.has_value());
  BOOST_TEST(n->payload_string() == "C:4");
}

BOOST_AUTO_TEST_CASE(a_handler_may_notify_while_it_answers) {
  // The common pattern: a PUT changes the state and notifies the observers at once.
  server.add_resource("x").on(coap::method::put, [this](const coap::request& r, coap::basic_response<>& res) {
    state = std::stoi(std::string(r.payload_string()));
    server.notify_observers("x");
    res.set_code(coap::response_code::changed);
  });
  start_udp();
  udp_client watcher(*this, port), writer(*this, port);
  register_observer(watcher, "x", 1);
  register_observer(writer, "x", 2);  // the writer observes too: its own session notifies
  coap::message put(coap::method::put);
  put.set_token(coap::token::from_uint(3, 2));
  put.add(coap::options::uri_path{}, "x");
  put.set_payload(std::string_view("42"));
  writer.send(put);
  std::vector<coap::message> to_writer;
  while (auto m = writer.receive(200ms)) to_writer.push_back(*m);
  BOOST_TEST_REQUIRE(to_writer.size() == 2u);  // the notification and the answer, in some order
  int changed = 0, notified = 0;
  for (const auto& m : to_writer) {
    if (code_of(m) == "2.04 Changed") ++changed;
    if (code_of(m) == "2.05 Content" && m.payload_string() == "42" && m.find(observe)) ++notified;
  }
  BOOST_TEST(changed == 1);
  BOOST_TEST(notified == 1);
  auto n = watcher.receive();
  BOOST_TEST_REQUIRE(n.has_value());
  BOOST_TEST(n->payload_string() == "42");
}

BOOST_AUTO_TEST_CASE(observers_of_another_resource_hear_nothing) {
  start_udp();
  udp_client c(*this, port);
  register_observer(c, "x", 1);
  register_observer(c, "big", 2);
  BOOST_TEST(server.observer_count() == 2u);
  BOOST_TEST(server.notify_observers("x") == 1u);
  auto n = c.receive();
  BOOST_TEST_REQUIRE(n.has_value());
  BOOST_TEST((n->token_value() == coap::token::from_uint(1, 2)));
  BOOST_TEST(!c.receive(100ms).has_value());
}

BOOST_AUTO_TEST_CASE(the_context_caps_all_observers) {
  server.config().max_observers = 1;
  start_udp();
  udp_client a(*this, port), b(*this, port);
  BOOST_TEST(a.exchange(get("x", 1, 0)).find(observe).has_value());
  BOOST_TEST(!b.exchange(get("big", 1, 0)).find(observe).has_value());
  BOOST_TEST(server.observer_count() == 1u);
}

BOOST_AUTO_TEST_CASE(early_negotiation_sets_the_notification_block_size) {
  start_udp();
  udp_client c(*this, port);
  // Registration asking for 64-byte blocks (RFC 7959 section 2.4).
  auto r = c.exchange(get("big", 5, 0, coap::block_value{0, false, 2}));
  BOOST_TEST(r.find(observe).has_value());
  BOOST_TEST((block_option(r, block2) == coap::block_value{0, true, 2}));
  BOOST_TEST(r.payload().size() == 64u);
  server.notify_observers("big");
  auto n = c.receive();
  BOOST_TEST_REQUIRE(n.has_value());
  BOOST_TEST((block_option(*n, block2) == coap::block_value{0, true, 2}));
  BOOST_TEST(payload_of(*n) == bytes(big.begin(), big.begin() + 64), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(bert_is_not_for_udp) {
  start_udp();
  udp_client c(*this, port);
  BOOST_TEST(code_of(c.exchange(get("big", 5, std::nullopt, coap::block_value{0, false, 7}))) == "4.02 Bad Option");
}

BOOST_AUTO_TEST_CASE(only_an_observable_resource_that_answers_2_xx_is_observed) {
  server.add_resource("plain").on(coap::method::get, [](const coap::request&, coap::basic_response<>& res) {
    res.set(coap::response_code::content, "p");
  });
  start_udp();
  udp_client c(*this, port);
  auto plain = c.exchange(get("plain", 1, 0));
  BOOST_TEST(code_of(plain) == "2.05 Content");
  BOOST_TEST(!plain.find(observe).has_value());
  auto missing = c.exchange(get("missing", 2, 0));
  BOOST_TEST(code_of(missing) == "4.04 Not Found");
  BOOST_TEST(!missing.find(observe).has_value());
  not_found = true;
  auto refused = c.exchange(get("x", 3, 0));
  BOOST_TEST(code_of(refused) == "4.04 Not Found");
  BOOST_TEST(!refused.find(observe).has_value());
  BOOST_TEST(server.observer_count() == 0u);
}

BOOST_AUTO_TEST_CASE(a_registration_that_cannot_be_kept_is_not_counted) {
  // A GET Observe=0 that parses and is served, but that the codec would not encode again
  // (Max-Age twice: elective, so section 5.4.5 lets it through as unrecognized-and-ignored).
  // Either it is observed or it is not; it must not be counted without an observer.
  start_udp();
  udp_client c(*this, port);
  for (std::uint8_t i = 0; i < 3; ++i) {
    const bytes wire{0x42, 0x01, 0x30, i,  // CON GET, token of 2 bytes
                     0xab, i,
                     0x60,             // Observe (6): 0
                     0x51, 'x',        // Uri-Path (11): "x"
                     0x31, 0x3c,       // Max-Age (14): 60
                     0x01, 0x3c};      // Max-Age again
    c.send_raw(wire);
    auto r = c.receive();
    BOOST_TEST_REQUIRE(r.has_value());
    BOOST_TEST(code_of(*r) == "2.05 Content");
    const bool observed = server.notify_observers("x") == 1u;
    if (observed) BOOST_TEST_REQUIRE(c.receive().has_value());
    BOOST_TEST(r->find(observe).has_value() == observed, "registration " << int(i));
    BOOST_TEST(server.observer_count() == (observed ? i + 1u : 0u), "registration " << int(i));
  }
}

BOOST_AUTO_TEST_CASE(a_deferred_answer_still_registers) {
  // RFC 7641 section 4.1 does not tie registration to a piggybacked response: a handler that
  // answers later (RFC 7252 section 5.2.2) registers its observer like any other.
  std::vector<coap::deferred_response> parked;
  server.add_resource("later").observable().on(coap::method::get,
                                               [&](const coap::request&, coap::basic_response<>& res) {
                                                 parked.push_back(res.defer());
                                               });
  start_udp();
  udp_client c(*this, port);
  c.send(get("later", 1, 0));
  auto ack = c.receive();
  BOOST_TEST_REQUIRE(ack.has_value());
  BOOST_TEST(ack->code().is_empty());
  BOOST_TEST_REQUIRE(parked.size() == 1u);
  BOOST_TEST(parked.front().send(coap::response_code::content, "late"));
  auto r = c.receive();
  BOOST_TEST_REQUIRE(r.has_value());
  BOOST_TEST(r->payload_string() == "late");
  BOOST_TEST(r->find(observe).has_value());
  BOOST_TEST(server.observer_count() == 1u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_FIXTURE_TEST_SUITE(block1_over_udp, fixture)

BOOST_AUTO_TEST_CASE(an_upload_in_64_byte_blocks_arrives_whole_once) {
  start_udp();
  udp_client c(*this, port);
  const auto body = body_of(5000);
  for (std::uint32_t num = 0; num <= 78; ++num) {
    auto r = c.exchange(put_block(body, num, 2));
    if (num < 78) {
      BOOST_TEST_REQUIRE(code_of(r) == "2.31 Continue", "block " << num);
      BOOST_TEST((block_option(r, block1) == coap::block_value{num, true, 2}));
      BOOST_TEST(uploads.empty());
    } else {
      BOOST_TEST(code_of(r) == "2.04 Changed");
      BOOST_TEST((block_option(r, block1) == coap::block_value{78, false, 2}));
    }
  }
  expect_one_upload(body);
}

BOOST_AUTO_TEST_CASE(duplicated_blocks_are_answered_and_not_kept_twice) {
  start_udp();
  udp_client c(*this, port);
  const auto body = body_of(5000);
  for (std::uint32_t num = 0; num <= 78; ++num) {
    const auto wire = c.send(put_block(body, num, 2));
    auto r = c.receive();
    BOOST_TEST_REQUIRE(r.has_value());
    if (num == 10) {
      // The same datagram again (RFC 7252 section 4.5: the same answer, from the cache).
      c.send_raw(wire);
      auto again = c.receive();
      BOOST_TEST_REQUIRE(again.has_value());
      BOOST_TEST(again->message_id() == r->message_id());
      BOOST_TEST(code_of(*again) == "2.31 Continue");
      BOOST_TEST((block_option(*again, block1) == coap::block_value{10, true, 2}));
    }
    if (num == 20) {
      // The same block in a new message (its 2.31 got lost): answered again (RFC 7959 2.5).
      auto again = c.exchange(put_block(body, num, 2));
      BOOST_TEST(code_of(again) == "2.31 Continue");
      BOOST_TEST((block_option(again, block1) == coap::block_value{20, true, 2}));
    }
  }
  expect_one_upload(body);
}

BOOST_AUTO_TEST_CASE(a_retransmitted_last_block_does_not_run_the_handler_again) {
  start_udp();
  udp_client c(*this, port);
  const auto body = body_of(300);
  for (std::uint32_t num = 0; num <= 3; ++num) c.exchange(put_block(body, num, 2));
  const auto wire = c.send(put_block(body, 4, 2));
  auto first = c.receive();
  BOOST_TEST_REQUIRE(first.has_value());
  c.send_raw(wire);  // its answer was lost: the same datagram again
  auto again = c.receive();
  BOOST_TEST_REQUIRE(again.has_value());
  BOOST_TEST(code_of(*again) == "2.04 Changed");
  BOOST_TEST((block_option(*again, block1) == coap::block_value{4, false, 2}));
  BOOST_TEST(uploads.size() == 1u);
}

BOOST_AUTO_TEST_CASE(an_unrecognized_critical_option_is_refused_at_the_first_block) {
  // RFC 7252 section 5.4.1: a CON with an unrecognized critical option is answered 4.02 and
  // not processed, a NON is dropped; a Block1 body carrying one must not be collected first.
  constexpr std::uint16_t unknown_critical = 2049;
  start_udp();
  udp_client c(*this, port);
  const auto body = body_of(300);
  auto con = put_block(body, 0, 2);
  con.add_uint_option(unknown_critical, 1);
  auto r = c.exchange(con);
  BOOST_TEST(code_of(r) == "4.02 Bad Option");
  auto non = put_block(body, 0, 2, 0x56);
  non.set_type(coap::message_type::non_confirmable);
  non.add_uint_option(unknown_critical, 1);
  c.send(non);
  BOOST_TEST(!c.receive(150ms).has_value());
}

BOOST_AUTO_TEST_CASE(reordered_blocks_are_4_08_and_the_client_starts_over) {
  start_udp();
  udp_client c(*this, port);
  const auto body = body_of(5000);
  for (std::uint32_t num = 0; num <= 9; ++num) BOOST_TEST(code_of(c.exchange(put_block(body, num, 2))) == "2.31 Continue");
  // Block 11 overtakes block 10: the server cannot go on (RFC 7959 section 2.9.2, 4.08).
  BOOST_TEST(code_of(c.exchange(put_block(body, 11, 2))) == "4.08 Request Entity Incomplete");
  BOOST_TEST(code_of(c.exchange(put_block(body, 10, 2))) == "4.08 Request Entity Incomplete");
  BOOST_TEST(uploads.empty());
  for (std::uint32_t num = 0; num <= 78; ++num) {
    auto r = c.exchange(put_block(body, num, 2));
    BOOST_TEST_REQUIRE(code_of(r) == (num < 78 ? "2.31 Continue" : "2.04 Changed"), "block " << num);
  }
  expect_one_upload(body);
}

BOOST_AUTO_TEST_CASE(too_many_uploads_at_once_is_5_03) {
  server.config().session.max_partial_uploads = 1;
  server.add_resource("up2").on(coap::method::put, [](const coap::request&, coap::basic_response<>& res) {
    res.set_code(coap::response_code::changed);
  });
  start_udp();
  udp_client c(*this, port);
  const auto body = body_of(300);
  BOOST_TEST(code_of(c.exchange(put_block(body, 0, 2))) == "2.31 Continue");
  auto other = put_block(body, 0, 2, 0x66);
  other.remove_option(static_cast<std::uint16_t>(coap::option_number::uri_path));
  other.add(coap::options::uri_path{}, "up2");
  auto busy = c.exchange(other);
  BOOST_TEST(code_of(busy) == "5.03 Service Unavailable");
  BOOST_TEST(busy.find(coap::option_number::max_age).has_value());
  // The first upload is not disturbed.
  for (std::uint32_t num = 1; num <= 4; ++num) c.exchange(put_block(body, num, 2));
  expect_one_upload(body);
}

BOOST_AUTO_TEST_CASE(a_large_post_with_a_large_answer) {
  // RFC 7959 section 2.7: the Block1 transfer of the request, whose last exchange carries
  // block 0 of the response; the client then asks for the further blocks "similar to the
  // requests in the Block1 phase, but leaves out the Block1 Options". The POST is done once.
  int posts = 0;
  server.add_resource("post").on(coap::method::post, [&](const coap::request& r, coap::basic_response<>& res) {
    ++posts;
    bytes answer(r.payload().begin(), r.payload().end());
    answer.insert(answer.end(), r.payload().begin(), r.payload().end());
    res.set_code(coap::response_code::changed);
    res.set_payload(std::span<const std::uint8_t>(answer));
  });
  start_udp();
  udp_client c(*this, port);
  const auto body = body_of(2000);
  auto post_block = [&](std::uint32_t num) {
    auto m = put_block(body, num, 6);
    m.set_code(coap::method::post);
    m.remove_option(static_cast<std::uint16_t>(coap::option_number::uri_path));
    m.add(coap::options::uri_path{}, "post");
    return m;
  };
  BOOST_TEST(code_of(c.exchange(post_block(0))) == "2.31 Continue");
  auto last = c.exchange(post_block(1));
  BOOST_TEST_REQUIRE(code_of(last) == "2.04 Changed");
  BOOST_TEST((block_option(last, block1) == coap::block_value{1, false, 6}));
  BOOST_TEST((block_option(last, block2) == coap::block_value{0, true, 6}));
  bytes whole = payload_of(last);
  for (std::uint32_t num = 1; num <= 3; ++num) {
    coap::message m(coap::method::post);
    m.set_token(coap::token::from_uint(0x55, 2));
    m.add(coap::options::uri_path{}, "post");
    m.add_uint_option(block2, coap::encode({num, false, 6}));
    auto r = c.exchange(m);
    BOOST_TEST_REQUIRE(code_of(r) == "2.04 Changed",
                       "block " << num << ": " << code_of(r) << " \"" << r.payload_string() << "\", POST handler ran "
                                << posts << " times");
    const auto p = payload_of(r);
    whole.insert(whole.end(), p.begin(), p.end());
  }
  bytes expected = body;
  expected.insert(expected.end(), body.begin(), body.end());
  BOOST_TEST(whole == expected, boost::test_tools::per_element());
  BOOST_TEST(posts == 1);
}

BOOST_AUTO_TEST_SUITE_END()

// ---- RFC 8323: Observe (section 7) and BERT (section 6) over TCP ----

namespace {

// A raw CoAP-over-TCP client.
struct tcp_client : coap::test::tcp_frame_reader {
  fixture& f;
  asio::ip::tcp::socket socket;

  tcp_client(fixture& fx, std::uint16_t port) : f(fx), socket(fx.io) {
    socket.connect({loopback, port});
    socket.non_blocking(true);
  }
  void send(const coap::message& m) { asio::write(socket, asio::buffer(coap::test::tcp_frame(m))); }
  std::optional<coap::message> next(std::chrono::milliseconds limit = 1s) {
    std::optional<coap::message> got;
    f.run_until(
        [&] {
          return step(socket, [&](std::error_code ec, const coap::message_view& v) {
            BOOST_TEST_REQUIRE(!ec);
            got.emplace(v);
          });
        },
        limit);
    return got;
  }
  // Section 5.3: CSMs both ways; returns the server's.
  coap::message handshake(std::optional<std::uint32_t> max_message_size, bool block_wise) {
    coap::message csm{coap::code(coap::signal_code::csm)};
    if (max_message_size) csm.add_uint_option(2, *max_message_size);
    if (block_wise) csm.add_empty_option(4);
    send(csm);
    auto theirs = next();
    BOOST_TEST_REQUIRE(theirs.has_value());
    BOOST_TEST_REQUIRE((theirs->code() == coap::code(coap::signal_code::csm)));
    return *theirs;
  }
  coap::message exchange(const coap::message& request) {
    send(request);
    auto r = next();
    BOOST_TEST_REQUIRE(r.has_value());
    BOOST_TEST((r->token_value() == request.token_value()));
    return *r;
  }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(over_tcp, fixture)

BOOST_AUTO_TEST_CASE(observe_over_tcp) {
  start_tcp();
  tcp_client c(*this, port);
  const auto theirs = c.handshake(std::nullopt, false);
  BOOST_TEST(theirs.find(2).has_value());
  BOOST_TEST(theirs.find(4).has_value());  // Block-Wise-Transfer offered
  auto r = c.exchange(get("x", 7, 0));
  BOOST_TEST(code_of(r) == "2.05 Content");
  BOOST_TEST(r.payload_string() == "0");
  std::uint32_t last = observe_of(r);
  BOOST_TEST(server.observer_count() == 1u);
  for (int i = 1; i <= 2; ++i) {
    state = i;
    BOOST_TEST(server.notify_observers("x") == 1u);
    auto n = c.next();
    BOOST_TEST_REQUIRE(n.has_value());
    BOOST_TEST(code_of(*n) == "2.05 Content");
    BOOST_TEST((n->token_value() == coap::token::from_uint(7, 2)));
    BOOST_TEST(n->payload_string() == std::to_string(i));
    BOOST_TEST(observe_of(*n) > last);
    last = observe_of(*n);
  }
  // Observe=1 ends it.
  auto bye = c.exchange(get("x", 7, 1));
  BOOST_TEST(!bye.find(observe).has_value());
  BOOST_TEST(server.observer_count() == 0u);
}

BOOST_AUTO_TEST_CASE(bert_download) {
  server.config().session.block_szx = 7;
  big = body_of(10000);
  start_tcp();
  tcp_client c(*this, port);
  c.handshake(5000, true);
  // 5000 bytes a message: four 1024-byte units per block.
  bytes whole;
  std::uint32_t num = 0;
  for (int round = 0; round < 5; ++round) {
    auto r = c.exchange(get("big", 40 + static_cast<std::uint64_t>(round), std::nullopt, coap::block_value{num, false, 7}));
    BOOST_TEST_REQUIRE(code_of(r) == "2.05 Content");
    auto b = block_option(r, block2);
    BOOST_TEST_REQUIRE(b.has_value());
    BOOST_TEST(b->szx == 7);
    BOOST_TEST(b->num == num);
    BOOST_TEST(r.payload().size() % 1024 == (b->more ? 0u : 10000u % 1024));
    const auto p = payload_of(r);
    whole.insert(whole.end(), p.begin(), p.end());
    if (!b->more) break;
    num += static_cast<std::uint32_t>(p.size() / 1024);
  }
  BOOST_TEST(num == 8u);
  BOOST_TEST(whole == big, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(szx_7_without_bert_is_4_02) {
  server.config().session.block_szx = 7;
  big = body_of(10000);
  start_tcp();
  tcp_client c(*this, port);
  c.handshake(5000, false);  // no Block-Wise-Transfer: no BERT
  auto r = c.exchange(get("big", 1, std::nullopt, coap::block_value{0, false, 7}));
  BOOST_TEST(code_of(r) == "4.02 Bad Option");
  // Without the option, plain RFC 7959 blocks.
  auto plain = c.exchange(get("big", 2));
  BOOST_TEST((block_option(plain, block2) == coap::block_value{0, true, 6}));
}

BOOST_AUTO_TEST_CASE(observers_end_with_the_connection) {
  start_tcp();
  {
    tcp_client c(*this, port);
    c.handshake(std::nullopt, true);
    c.exchange(get("x", 7, 0));
    c.exchange(get("big", 8, 0));
    BOOST_TEST(server.observer_count() == 2u);
  }
  BOOST_TEST(run_until([&] { return server.observer_count() == 0u; }, 1s));
  BOOST_TEST(server.notify_observers("x") == 0u);
}

BOOST_AUTO_TEST_CASE(an_error_notification_is_the_last_over_tcp) {
  start_tcp();
  tcp_client c(*this, port);
  c.handshake(std::nullopt, true);
  c.exchange(get("x", 7, 0));
  not_found = true;
  server.notify_observers("x");
  auto n = c.next();
  BOOST_TEST_REQUIRE(n.has_value());
  BOOST_TEST(code_of(*n) == "4.04 Not Found");
  BOOST_TEST(!n->find(observe).has_value());
  BOOST_TEST(server.observer_count() == 0u);
}

BOOST_AUTO_TEST_CASE(bert_upload) {
  start_tcp();
  tcp_client c(*this, port);
  c.handshake(8192, true);
  const auto body = body_of(5000);
  // Two units (2048 bytes) a block.
  for (std::uint32_t num = 0; num <= 4; num += 2) {
    const std::size_t offset = num * 1024, length = std::min<std::size_t>(2048, body.size() - offset);
    const bool more = offset + length < body.size();
    coap::message m(coap::method::put);
    m.set_token(coap::token::from_uint(num + 1, 2));
    m.add(coap::options::uri_path{}, "up");
    m.add_uint_option(block1, (num << 4) | (more ? 8u : 0u) | 7u);
    m.set_payload(std::span<const std::uint8_t>(body.data() + offset, length));
    auto r = c.exchange(m);
    BOOST_TEST_REQUIRE(code_of(r) == (more ? "2.31 Continue" : "2.04 Changed"), "block " << num);
    BOOST_TEST((block_option(r, block1) == coap::block_value{num, more, 7}));
  }
  expect_one_upload(body);
}

BOOST_AUTO_TEST_SUITE_END()
