// RFC 7967 (No-Response), RFC 8132 (FETCH, PATCH, iPATCH), RFC 9175 (Echo, Request-Tag) and
// RFC 8516 (4.29 Too Many Requests), both roles, over real loopback sockets: a raw client
// scripted here (or a raw server, for what a peer of ours might send), and coap-cpp's own
// sessions. Bad input: an Echo value over 40 bytes both ways, a No-Response of 2 bytes, and
// 100,000 requests from one peer (4.29, memory bounded).
#include <coap/detail/server_options.hpp>

#define BOOST_TEST_MODULE options
#include <boost/test/unit_test.hpp>

#include <coap/detail/method_properties.hpp>
#include <coap/session.hpp>
#include <coap/transports/tcp.hpp>
#include <coap/transports/udp.hpp>
#include <coap/udp_codec.hpp>

#include <boost/asio.hpp>

#include "support/arena_allocator.hpp"
#include "support/run_until.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using bytes = std::vector<std::uint8_t>;

namespace {

const auto loopback = asio::ip::make_address("127.0.0.1");
constexpr auto echo_number = static_cast<std::uint16_t>(coap::option_number::echo);
constexpr auto request_tag_number = static_cast<std::uint16_t>(coap::option_number::request_tag);

std::string code_of(const coap::message& m) { return coap::to_string(m.code()); }
bytes option_bytes(const coap::message& m, std::uint16_t number) {
  auto o = m.find(number);
  return o ? bytes(o->value().begin(), o->value().end()) : bytes{};
}
bytes body_of(std::size_t n, unsigned seed = 3) {
  bytes b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::uint8_t>((i * 7 + seed) % 251);
  return b;
}

coap::message request_of(coap::method m, std::string_view path, std::uint64_t token = 0x11) {
  coap::message r(m);
  r.set_token(coap::token::from_uint(token, 2));
  r.add(coap::options::uri_path{}, path);
  return r;
}

// A server with a resource for each feature, and a client context beside it.
struct fixture {
  asio::io_context io;
  coap::context server{io.get_executor()};
  coap::context client{io.get_executor()};
  std::uint16_t port = 0;
  std::uint16_t tcp_port = 0;
  int gets = 0, patches = 0, ipatches = 0, fresh_puts = 0, checked = 0, big_gets = 0;
  bytes last_body;
  std::vector<bytes> uploads;
  std::vector<coap::deferred_response> owed;
  std::string state = "{\"a\":1,\"b\":2}";

  fixture() {
    server.add_resource("x").on(coap::method::get, [this](const coap::request&, coap::basic_response<>& res) {
      ++gets;
      res.set(coap::response_code::content, "x");
    });
    // RFC 8132: FETCH answers the part of the state its body names; PATCH and iPATCH change it.
    // 4.15 for a format other than JSON merge-patch (RFC 8132 section 3.1), 4.22 for an empty
    // patch, 4.09 for a patch that contradicts the state ("conflict").
    server.add_resource("doc")
        .observable()
        .on(coap::method::get, [this](const coap::request&, coap::basic_response<>& res) {
          res.set(coap::response_code::content, state);
        })
        .on(coap::method::fetch,
            [this](const coap::request& r, coap::basic_response<>& res) {
              last_body.assign(r.payload().begin(), r.payload().end());
              if (r.payload().size() > 100) return res.set(coap::response_code::content, std::string(2000, 'f'));
              const auto key = std::string("\"") + std::string(r.payload_string()) + "\":";
              const auto at = state.find(key);
              if (at == std::string::npos) return res.set(coap::response_code::content, "");
              res.set(coap::response_code::content, state.substr(at, key.size() + 1));
            })
        .on(coap::method::patch,
            [this](const coap::request& r, coap::basic_response<>& res) {
              ++patches;
              if (r.content_format() != coap::content_format::merge_patch)
                return res.set(coap::response_code::unsupported_content_format, "");
              if (r.payload().empty()) return res.set(coap::response_code::unprocessable_entity, "");
              if (r.payload_string() == "conflict") return res.set(coap::response_code::conflict, "");
              state = std::string(r.payload_string());
              res.set_code(coap::response_code::changed);
            })
        .on(coap::method::ipatch, [this](const coap::request& r, coap::basic_response<>& res) {
          ++ipatches;
          last_body.assign(r.payload().begin(), r.payload().end());
          state = std::string(r.payload_string().substr(0, 40));
          res.set_code(coap::response_code::changed);
        });
    server.add_resource("big").on(coap::method::get, [this](const coap::request&, coap::basic_response<>& res) {
      ++big_gets;
      res.set(coap::response_code::content, std::string(500, 'b'));
    });
    server.add_resource("fresh").fresh_only().on(coap::method::put,
                                                 [this](const coap::request& r, coap::basic_response<>& res) {
                                                   BOOST_TEST(r.fresh());
                                                   ++fresh_puts;
                                                   res.set_code(coap::response_code::changed);
                                                 });
    server.add_resource("check").on(coap::method::post, [this](const coap::request& r, coap::basic_response<>& res) {
      ++checked;
      if (!r.fresh()) return res.require_fresh();
      res.set(coap::response_code::changed, "done");
    });
    server.add_resource("sink").on(coap::method::put, [this](const coap::request& r, coap::basic_response<>& res) {
      uploads.emplace_back(r.payload().begin(), r.payload().end());
      res.set_code(coap::response_code::changed);
    });
    server.add_resource("slow").on(coap::method::get, [this](const coap::request&, coap::basic_response<>& res) {
      owed.push_back(res.defer());
    });
  }

  void start() {
    BOOST_TEST_REQUIRE(!server.add_endpoint<coap::udp>(loopback, 0, &port));
    BOOST_TEST_REQUIRE(!server.add_endpoint<coap::tcp>(loopback, 0, &tcp_port));
  }

  template <class Pred>
  bool run_until(Pred done, std::chrono::milliseconds limit = 3s) {
    return coap::test::run_until(io, done, limit, 1ms);
  }

  coap::session<coap::udp> udp_session(const coap::session_config& config = {}) {
    std::error_code ec;
    auto s = coap::session<coap::udp>::create_client(client, asio::ip::udp::endpoint(loopback, port), config, ec);
    BOOST_TEST_REQUIRE(!ec);
    return s;
  }
  coap::session<coap::tcp> tcp_session() {
    std::error_code ec;
    auto s = coap::session<coap::tcp>::create_client(client, asio::ip::tcp::endpoint(loopback, tcp_port), ec);
    BOOST_TEST_REQUIRE(!ec);
    return s;
  }

  template <class Session>
  std::pair<std::error_code, coap::message> request(Session& s, coap::message m, std::chrono::milliseconds limit = 5s) {
    std::optional<std::pair<std::error_code, coap::message>> got;
    s.async_request(std::move(m), [&](std::error_code ec, coap::message r) { got.emplace(ec, std::move(r)); });
    BOOST_TEST_REQUIRE(run_until([&] { return got.has_value(); }, limit));
    return std::move(*got);
  }
};

// A raw CoAP-over-UDP peer: messages built with the codec (or by hand, for what the codec
// refuses to encode), message IDs of its own.
struct raw_peer {
  fixture& f;
  asio::ip::udp::socket socket;
  asio::ip::udp::endpoint to;
  asio::ip::udp::endpoint last_from;
  std::uint16_t next_id = 0x3000;

  raw_peer(fixture& fx, std::uint16_t port, std::uint16_t bind_port = 0)
      : f(fx), socket(fx.io, {loopback, bind_port}), to(loopback, port) {
    socket.non_blocking(true);
  }
  bytes send(coap::message m, coap::message_type t = coap::message_type::confirmable) {
    m.set_type(t);
    m.set_message_id(next_id++);
    bytes wire;
    BOOST_TEST_REQUIRE(!coap::udp_codec::encode(m, wire));
    send_raw(wire);
    return wire;
  }
  void send_raw(const bytes& wire) { socket.send_to(asio::buffer(wire), to); }
  // One datagram if it arrives within `limit`.
  std::optional<coap::message> receive(std::chrono::milliseconds limit = 2s) {
    std::optional<coap::message> got;
    std::uint8_t buf[4096];
    f.run_until(
        [&] {
          boost::system::error_code ec;
          const auto n = socket.receive_from(asio::buffer(buf), last_from, 0, ec);
          if (ec) return false;
          coap::message_view v;
          BOOST_TEST_REQUIRE(!coap::udp_codec::parse({buf, n}, v));
          got.emplace(v);
          return true;
        },
        limit);
    return got;
  }
  coap::message exchange(coap::message m, coap::message_type t = coap::message_type::confirmable) {
    send(std::move(m), t);
    auto r = receive();
    BOOST_TEST_REQUIRE(r.has_value());
    return *r;
  }
};

// A request the codec will not encode: `options` are appended, already encoded, after a
// Uri-Path of `path` (the first option: delta 11).
bytes hand_made(coap::message_type t, coap::code c, std::uint16_t mid, std::string_view path, const bytes& options) {
  bytes w{static_cast<std::uint8_t>(0x40 | (static_cast<unsigned>(t) << 4) | 2), c.raw(),
          static_cast<std::uint8_t>(mid >> 8), static_cast<std::uint8_t>(mid), 0x12, 0x34};
  w.push_back(static_cast<std::uint8_t>(0xB0 | path.size()));
  w.insert(w.end(), path.begin(), path.end());
  w.insert(w.end(), options.begin(), options.end());
  return w;
}
// One option of `length` bytes (13..268) at `delta` (13..268) from the previous one.
bytes long_option(unsigned delta, const bytes& value) {
  bytes o{0xDD, static_cast<std::uint8_t>(delta - 13), static_cast<std::uint8_t>(value.size() - 13)};
  o.insert(o.end(), value.begin(), value.end());
  return o;
}

}  // namespace

// ---- RFC 7967: No-Response ----

BOOST_AUTO_TEST_CASE(no_response_bits) {
  using coap::detail::suppresses;
  BOOST_TEST(!suppresses(0, coap::response_code::content));
  BOOST_TEST(suppresses(2, coap::response_code::content));
  BOOST_TEST(!suppresses(2, coap::response_code::not_found));
  BOOST_TEST(suppresses(8, coap::response_code::not_found));
  BOOST_TEST(!suppresses(8, coap::response_code::internal_server_error));
  BOOST_TEST(suppresses(16, coap::response_code::internal_server_error));
  BOOST_TEST(suppresses(26, coap::response_code::changed));
  BOOST_TEST(!suppresses(26, coap::code()));  // an empty message is no response class
  coap::message m(coap::method::get);
  m.add(coap::options::no_response{}, 26u);
  BOOST_TEST(coap::detail::expects_no_response(m));
  m.remove_option(static_cast<std::uint16_t>(coap::option_number::no_response));
  m.add(coap::options::no_response{}, 2u);
  BOOST_TEST(!coap::detail::expects_no_response(m));
  BOOST_TEST(coap::detail::response_suppressed(m, coap::response_code::content));
}

BOOST_FIXTURE_TEST_CASE(server_suppresses_the_classes_named, fixture) {
  start();
  raw_peer c(*this, port);
  auto quiet = request_of(coap::method::get, "x");
  quiet.add(coap::options::no_response{}, 2u);  // not interested in 2.xx
  c.send(quiet, coap::message_type::non_confirmable);
  BOOST_TEST(!c.receive(300ms).has_value());
  BOOST_TEST(gets == 1);  // the handler ran; only its answer was not sent
  // A 4.04 is still of interest.
  auto missing = request_of(coap::method::get, "nothing-here");
  missing.add(coap::options::no_response{}, 2u);
  auto r = c.exchange(missing, coap::message_type::non_confirmable);
  BOOST_TEST(code_of(r) == "4.04 Not Found");
  // A CON is still acknowledged: an empty ACK, and the same for its duplicate.
  const auto wire = c.send(quiet);
  auto ack = c.receive();
  BOOST_TEST_REQUIRE(ack.has_value());
  BOOST_TEST((ack->type() == coap::message_type::acknowledgement));
  BOOST_TEST(ack->code().is_empty());
  c.send_raw(wire);
  auto again = c.receive();
  BOOST_TEST_REQUIRE(again.has_value());
  BOOST_TEST(again->code().is_empty());
  BOOST_TEST(gets == 2);
  // Value 0: interested in everything.
  auto all = request_of(coap::method::get, "x");
  all.add(coap::options::no_response{}, 0u);
  BOOST_TEST(code_of(c.exchange(all, coap::message_type::non_confirmable)) == "2.05 Content");
}

BOOST_FIXTURE_TEST_CASE(no_response_of_two_bytes_is_ignored, fixture) {
  start();
  raw_peer c(*this, port);
  // No-Response (258) after Uri-Path (11): delta 247, length 2 (its bounds are 0..1): treated
  // as an unrecognized elective option (RFC 7252 section 5.4.3), so the answer is sent.
  const bytes option{0xD2, 247 - 13, 0x00, 0x02};
  c.send_raw(hand_made(coap::message_type::non_confirmable, coap::method::get, 0x4000, "x", option));
  auto r = c.receive();
  BOOST_TEST_REQUIRE(r.has_value());
  BOOST_TEST(code_of(*r) == "2.05 Content");
}

BOOST_FIXTURE_TEST_CASE(deferred_answer_is_suppressed_too, fixture) {
  start();
  raw_peer c(*this, port);
  auto m = request_of(coap::method::get, "slow");
  m.add(coap::options::no_response{}, 2u);
  c.send(m, coap::message_type::non_confirmable);
  BOOST_TEST_REQUIRE(run_until([&] { return owed.size() == 1; }));
  BOOST_TEST(owed.front().send(coap::response_code::content, "late"));
  BOOST_TEST(!c.receive(300ms).has_value());
}

BOOST_FIXTURE_TEST_CASE(client_does_not_wait_when_it_asked_for_nothing, fixture) {
  start();
  auto s = udp_session();
  auto m = request_of(coap::method::get, "x");
  m.set_type(coap::message_type::non_confirmable);
  m.add(coap::options::no_response{}, 26u);
  const auto started = std::chrono::steady_clock::now();
  auto [ec, r] = request(s, std::move(m));
  BOOST_TEST(!ec);
  BOOST_TEST(r.code().is_empty());
  BOOST_TEST((std::chrono::steady_clock::now() - started < 1s));
  BOOST_TEST(run_until([&] { return gets == 1; }));
  // A CON asking for nothing is done with the server's empty ACK.
  auto con = request_of(coap::method::get, "x", 0x21);
  con.add(coap::options::no_response{}, 26u);
  const auto con_started = std::chrono::steady_clock::now();
  auto [con_ec, con_r] = request(s, std::move(con));
  BOOST_TEST(!con_ec);
  BOOST_TEST(con_r.code().is_empty());
  BOOST_TEST((std::chrono::steady_clock::now() - con_started < 1s));
  BOOST_TEST(gets == 2);
  // Over TCP the same request completes at once too, and the server sends nothing.
  auto t = tcp_session();
  auto m2 = request_of(coap::method::get, "x", 0x22);
  m2.add(coap::options::no_response{}, 26u);
  auto [ec2, r2] = request(t, std::move(m2));
  BOOST_TEST(!ec2);
  BOOST_TEST(r2.code().is_empty());
  BOOST_TEST(run_until([&] { return gets == 3; }));
  // The connection is still in order: the next request is answered.
  auto [ec3, r3] = request(t, request_of(coap::method::get, "x", 0x23));
  BOOST_TEST(!ec3);
  BOOST_TEST(code_of(r3) == "2.05 Content");
}

// ---- RFC 8132: FETCH, PATCH, iPATCH ----

BOOST_AUTO_TEST_CASE(method_properties) {
  using coap::detail::is_idempotent;
  BOOST_TEST(is_idempotent(coap::method::get));
  BOOST_TEST(is_idempotent(coap::method::fetch));
  BOOST_TEST(is_idempotent(coap::method::put));
  BOOST_TEST(is_idempotent(coap::method::delete_));
  BOOST_TEST(is_idempotent(coap::method::ipatch));
  BOOST_TEST(!is_idempotent(coap::method::patch));
  BOOST_TEST(!is_idempotent(coap::method::post));
  BOOST_TEST(coap::to_string(coap::response_code::conflict) == "4.09 Conflict");
  BOOST_TEST(coap::to_string(coap::response_code::unsupported_content_format) == "4.15 Unsupported Content-Format");
  BOOST_TEST(coap::to_string(coap::response_code::unprocessable_entity) == "4.22 Unprocessable Entity");
}

BOOST_FIXTURE_TEST_CASE(fetch_patch_ipatch_are_dispatched, fixture) {
  start();
  for (int transport = 0; transport < 2; ++transport) {
    BOOST_TEST_CONTEXT((transport ? "TCP" : "UDP")) {
      state = "{\"a\":1,\"b\":2}";
      patches = ipatches = 0;
      auto u = udp_session();
      auto t = tcp_session();
      auto run = [&](coap::message m) { return transport ? request(t, std::move(m)) : request(u, std::move(m)); };
      auto fetch = request_of(coap::method::fetch, "doc");
      fetch.set_content_format(coap::content_format::text_plain);
      fetch.set_payload(std::string_view("b"));
      auto [ec, r] = run(fetch);
      BOOST_TEST(!ec);
      BOOST_TEST(code_of(r) == "2.05 Content");  // FETCH's default success code, as GET's
      BOOST_TEST(r.payload_string() == "\"b\":2");
      auto patch = request_of(coap::method::patch, "doc");
      patch.set_content_format(coap::content_format::merge_patch);
      patch.set_payload(std::string_view("{\"a\":5}"));
      BOOST_TEST(code_of(run(patch).second) == "2.04 Changed");
      BOOST_TEST(state == "{\"a\":5}");
      patch.set_payload(std::string_view("conflict"));
      BOOST_TEST(code_of(run(patch).second) == "4.09 Conflict");
      patch.set_payload(std::string_view(""));
      BOOST_TEST(code_of(run(patch).second) == "4.22 Unprocessable Entity");
      patch.set_content_format(coap::content_format::text_plain);
      patch.set_payload(std::string_view("x"));
      BOOST_TEST(code_of(run(patch).second) == "4.15 Unsupported Content-Format");
      auto ipatch = request_of(coap::method::ipatch, "doc");
      ipatch.set_payload(std::string_view("{\"c\":3}"));
      BOOST_TEST(code_of(run(ipatch).second) == "2.04 Changed");
      BOOST_TEST(patches == 4);
      BOOST_TEST(ipatches == 1);
      // A method with no handler: 4.05.
      BOOST_TEST(code_of(run(request_of(coap::method::ipatch, "x")).second) == "4.05 Method Not Allowed");
    }
  }
}

BOOST_FIXTURE_TEST_CASE(patch_and_ipatch_retransmissions_are_answered_once, fixture) {
  start();
  raw_peer c(*this, port);
  for (auto m : {coap::method::patch, coap::method::ipatch}) {
    auto req = request_of(m, "doc");
    req.set_content_format(coap::content_format::merge_patch);
    req.set_payload(std::string_view("{\"z\":0}"));
    const auto wire = c.send(req);
    auto first = c.receive();
    c.send_raw(wire);  // the same message ID: a retransmission
    auto second = c.receive();
    BOOST_TEST_REQUIRE((first && second));
    BOOST_TEST(code_of(*first) == "2.04 Changed");
    BOOST_TEST(first->message_id() == second->message_id());
    BOOST_TEST(code_of(*second) == "2.04 Changed");
  }
  BOOST_TEST(patches == 1);   // not run again for its retransmission
  BOOST_TEST(ipatches == 1);  // nor iPATCH (idempotent, but answered from the same cache)
}

BOOST_FIXTURE_TEST_CASE(fetch_and_ipatch_bodies_go_block_wise, fixture) {
  start();
  for (int transport = 0; transport < 2; ++transport) {
    BOOST_TEST_CONTEXT((transport ? "TCP" : "UDP")) {
      auto u = udp_session();
      auto t = tcp_session();
      auto run = [&](coap::message m) { return transport ? request(t, std::move(m)) : request(u, std::move(m)); };
      const auto body = body_of(3000, 5 + static_cast<unsigned>(transport));
      auto fetch = request_of(coap::method::fetch, "doc");
      fetch.set_payload(body);
      auto [ec, r] = run(fetch);
      BOOST_TEST(!ec);
      BOOST_TEST(code_of(r) == "2.05 Content");
      BOOST_TEST(r.payload().size() == 2000u);  // a Block2 answer fetched whole
      BOOST_TEST(last_body == body, boost::test_tools::per_element());
      auto ipatch = request_of(coap::method::ipatch, "doc");
      ipatch.set_payload(body_of(2500, 9));
      BOOST_TEST(code_of(run(ipatch).second) == "2.04 Changed");
      BOOST_TEST(last_body == body_of(2500, 9), boost::test_tools::per_element());
    }
  }
}

BOOST_FIXTURE_TEST_CASE(fetch_is_observable, fixture) {
  start();
  auto s = udp_session();
  auto fetch = request_of(coap::method::fetch, "doc");
  fetch.set_payload(std::string_view("a"));
  std::optional<std::pair<std::error_code, coap::observation>> got;
  s.async_observe(fetch, [&](std::error_code ec, coap::observation o) { got.emplace(ec, std::move(o)); });
  BOOST_TEST_REQUIRE(run_until([&] { return got.has_value(); }));
  BOOST_TEST_REQUIRE(!got->first);
  BOOST_TEST(server.observer_count() == 1u);
  auto next = [&] {
    std::optional<std::pair<std::error_code, coap::message>> n;
    got->second.async_next([&](std::error_code ec, coap::message m) { n.emplace(ec, std::move(m)); });
    BOOST_TEST_REQUIRE(run_until([&] { return n.has_value(); }));
    return std::move(*n);
  };
  auto [ec0, first] = next();
  BOOST_TEST(!ec0);
  BOOST_TEST(first.payload_string() == "\"a\":1");
  state = "{\"a\":7}";
  BOOST_TEST(server.notify_observers("doc") == 1u);
  auto [ec1, changed] = next();
  BOOST_TEST(!ec1);
  BOOST_TEST(changed.payload_string() == "\"a\":7");  // the FETCH body selects, as registered
}

// ---- RFC 9175: Echo and Request-Tag ----

BOOST_FIXTURE_TEST_CASE(large_answer_to_unverified_address_is_an_echo_challenge, fixture) {
  start();
  raw_peer c(*this, port);
  // A small answer goes out as it is.
  BOOST_TEST(code_of(c.exchange(request_of(coap::method::get, "x"))) == "2.05 Content");
  // 500 bytes to a 13-byte request: more than 3 times, to an address not yet verified.
  auto r = c.exchange(request_of(coap::method::get, "big"));
  BOOST_TEST(code_of(r) == "4.01 Unauthorized");
  BOOST_TEST(r.payload().empty());
  const auto echo = option_bytes(r, echo_number);
  BOOST_TEST(echo.size() == 8u);
  // A wrong value does not verify the address.
  auto wrong = request_of(coap::method::get, "big");
  bytes forged = echo;
  forged[0] ^= 1;
  wrong.add(coap::options::echo{}, forged);
  BOOST_TEST(code_of(c.exchange(wrong)) == "4.01 Unauthorized");
  // The request again with our value: answered, and the address verified from then on.
  auto again = request_of(coap::method::get, "big");
  again.add(coap::options::echo{}, echo);
  auto ok = c.exchange(again);
  BOOST_TEST(code_of(ok) == "2.05 Content");
  BOOST_TEST(ok.payload().size() == 500u);
  BOOST_TEST(code_of(c.exchange(request_of(coap::method::get, "big"))) == "2.05 Content");
  // Another address is another peer: challenged again.
  raw_peer other(*this, port);
  BOOST_TEST(code_of(other.exchange(request_of(coap::method::get, "big"))) == "4.01 Unauthorized");
}

BOOST_FIXTURE_TEST_CASE(amplification_factor_is_configurable, fixture) {
  server.config().session.amplification_factor = 0;  // no limit
  start();
  raw_peer c(*this, port);
  BOOST_TEST(code_of(c.exchange(request_of(coap::method::get, "big"))) == "2.05 Content");
}

BOOST_FIXTURE_TEST_CASE(client_repeats_with_echo_once, fixture) {
  start();
  auto s = udp_session();
  auto [ec, r] = request(s, request_of(coap::method::get, "big"));
  BOOST_TEST(!ec);
  BOOST_TEST(code_of(r) == "2.05 Content");
  BOOST_TEST(r.payload().size() == 500u);
  BOOST_TEST(big_gets == 2);  // the first answer was replaced by the challenge
  // A fresh_only resource: the same, the handler running once, with a fresh request.
  auto put = request_of(coap::method::put, "fresh");
  put.set_payload(std::string_view("on"));
  auto [ec2, r2] = request(s, put);
  BOOST_TEST(!ec2);
  BOOST_TEST(code_of(r2) == "2.04 Changed");
  BOOST_TEST(fresh_puts == 1);
  // A handler's own check (req.fresh(), res.require_fresh()); over TCP as well.
  auto post = request_of(coap::method::post, "check");
  BOOST_TEST(code_of(request(s, post).second) == "2.04 Changed");
  BOOST_TEST(checked == 2);
  auto t = tcp_session();
  auto [ec3, r3] = request(t, post);
  BOOST_TEST(!ec3);
  BOOST_TEST(r3.payload_string() == "done");
  BOOST_TEST(checked == 4);
}

BOOST_FIXTURE_TEST_CASE(freshness_needs_a_recent_echo, fixture) {
  server.config().session.echo_freshness = 500ms;
  start();
  raw_peer c(*this, port);
  auto put = request_of(coap::method::put, "fresh");
  auto challenge = c.exchange(put);
  BOOST_TEST(code_of(challenge) == "4.01 Unauthorized");
  BOOST_TEST(challenge.payload_string() == "fresh Echo required");
  BOOST_TEST(fresh_puts == 0);  // the handler did not run
  const auto echo = option_bytes(challenge, echo_number);
  BOOST_TEST_REQUIRE(echo.size() == 8u);
  auto with_echo = put;
  with_echo.add(coap::options::echo{}, echo);
  BOOST_TEST(code_of(c.exchange(with_echo)) == "2.04 Changed");
  BOOST_TEST(fresh_puts == 1);
  std::this_thread::sleep_for(700ms);
  auto stale = c.exchange(with_echo);  // the same value, now too old
  BOOST_TEST(code_of(stale) == "4.01 Unauthorized");
  BOOST_TEST(option_bytes(stale, echo_number) != echo);  // a new value
  BOOST_TEST(fresh_puts == 1);
}

BOOST_FIXTURE_TEST_CASE(echo_over_40_bytes_is_not_fresh, fixture) {
  start();
  raw_peer c(*this, port);
  // Echo (252) after Uri-Path (11): delta 241, 41 bytes (its bounds are 1..40).
  c.send_raw(hand_made(coap::message_type::confirmable, coap::method::put, 0x4100, "fresh",
                       long_option(241, bytes(41, 0xAB))));
  auto r = c.receive();
  BOOST_TEST_REQUIRE(r.has_value());
  BOOST_TEST(code_of(*r) == "4.01 Unauthorized");
  BOOST_TEST(option_bytes(*r, echo_number).size() == 8u);
  BOOST_TEST(fresh_puts == 0);
}

BOOST_FIXTURE_TEST_CASE(client_ignores_an_echo_over_40_bytes, fixture) {
  // A raw server answering 4.01 with a 41-byte Echo: the client does not repeat the request
  // (the option is invalid: RFC 7252 section 5.4.3) and completes with the 4.01.
  raw_peer peer(*this, 0);
  port = peer.socket.local_endpoint().port();
  auto s = udp_session();
  std::optional<std::pair<std::error_code, coap::message>> got;
  s.async_request(request_of(coap::method::get, "x"), [&](std::error_code ec, coap::message r) { got.emplace(ec, std::move(r)); });
  auto req = peer.receive();
  BOOST_TEST_REQUIRE(req.has_value());
  bytes answer{static_cast<std::uint8_t>(0x60 | req->token().size()), coap::code(coap::response_code::unauthorized).raw(),
               static_cast<std::uint8_t>(req->message_id() >> 8), static_cast<std::uint8_t>(req->message_id())};
  answer.insert(answer.end(), req->token().begin(), req->token().end());
  const auto echo = long_option(252, bytes(41, 0xCD));
  answer.insert(answer.end(), echo.begin(), echo.end());
  peer.socket.send_to(asio::buffer(answer), peer.last_from);
  BOOST_TEST_REQUIRE(run_until([&] { return got.has_value(); }));
  BOOST_TEST(!got->first);
  BOOST_TEST(code_of(got->second) == "4.01 Unauthorized");
  BOOST_TEST(!peer.receive(300ms).has_value());  // not repeated
}

BOOST_FIXTURE_TEST_CASE(concurrent_uploads_carry_distinct_request_tags, fixture) {
  start();
  // The client's blocks as a raw server sees them: each body has its own Request-Tag.
  {
    raw_peer peer(*this, 0);
    const auto saved = port;
    port = peer.socket.local_endpoint().port();
    auto s = udp_session();
    auto put = request_of(coap::method::put, "sink");
    put.set_payload(body_of(3000));
    s.async_request(put, [](std::error_code, coap::message) {});
    s.async_request(put, [](std::error_code, coap::message) {});
    std::vector<bytes> tags;
    for (int i = 0; i < 2; ++i) {
      auto m = peer.receive();
      BOOST_TEST_REQUIRE(m.has_value());
      BOOST_TEST(m->find(coap::option_number::block1).has_value());
      tags.push_back(option_bytes(*m, request_tag_number));
      BOOST_TEST(tags.back().size() == 4u);
      coap::message cont(coap::response_code::continue_, coap::message_type::acknowledgement);
      cont.set_message_id(m->message_id());
      cont.set_token(m->token_value());
      cont.add_uint_option(static_cast<std::uint16_t>(coap::option_number::block1), 0x0e);  // 0, M, 1024
      bytes wire;
      BOOST_TEST_REQUIRE(!coap::udp_codec::encode(cont, wire));
      peer.socket.send_to(asio::buffer(wire), peer.last_from);
    }
    BOOST_TEST(tags[0] != tags[1]);
    port = saved;
  }
  // Against our server, both bodies arrive whole and apart, their blocks interleaved.
  auto s = udp_session();
  auto a = request_of(coap::method::put, "sink", 1);
  a.set_payload(body_of(3000, 1));
  auto b = request_of(coap::method::put, "sink", 2);
  b.set_payload(body_of(3000, 2));
  int done = 0;
  s.async_request(a, [&](std::error_code ec, coap::message r) { done += !ec && code_of(r) == "2.04 Changed"; });
  s.async_request(b, [&](std::error_code ec, coap::message r) { done += !ec && code_of(r) == "2.04 Changed"; });
  BOOST_TEST_REQUIRE(run_until([&] { return done == 2; }, 5s));
  BOOST_TEST_REQUIRE(uploads.size() == 2u);
  BOOST_TEST(((uploads[0] == body_of(3000, 1) && uploads[1] == body_of(3000, 2)) ||
              (uploads[0] == body_of(3000, 2) && uploads[1] == body_of(3000, 1))));
}

// ---- RFC 8516: 4.29 Too Many Requests ----

BOOST_FIXTURE_TEST_CASE(over_the_rate_is_answered_4_29_with_max_age, fixture) {
  server.config().session.max_request_rate = 1;
  server.config().session.max_request_burst = 2;
  start();
  raw_peer c(*this, port);
  BOOST_TEST(code_of(c.exchange(request_of(coap::method::get, "x"))) == "2.05 Content");
  BOOST_TEST(code_of(c.exchange(request_of(coap::method::get, "x"))) == "2.05 Content");
  auto r = c.exchange(request_of(coap::method::get, "x"));
  BOOST_TEST(code_of(r) == "4.29 Too Many Requests");
  BOOST_TEST(r.find(coap::option_number::max_age)->as_uint() == 1u);
  BOOST_TEST(gets == 2);  // the handler did not run
  // Another peer has its own bucket.
  raw_peer other(*this, port);
  BOOST_TEST(code_of(other.exchange(request_of(coap::method::get, "x"))) == "2.05 Content");
  std::this_thread::sleep_for(1100ms);  // one token back
  BOOST_TEST(code_of(c.exchange(request_of(coap::method::get, "x"))) == "2.05 Content");
}

BOOST_FIXTURE_TEST_CASE(too_many_deferred_answers_are_answered_4_29, fixture) {
  server.config().session.max_pending_responses = 2;
  start();
  raw_peer c(*this, port);
  for (int i = 0; i < 2; ++i) {
    c.send(request_of(coap::method::get, "slow", static_cast<std::uint64_t>(i)));
    auto ack = c.receive();
    BOOST_TEST_REQUIRE(ack.has_value());
    BOOST_TEST(ack->code().is_empty());
  }
  auto r = c.exchange(request_of(coap::method::get, "slow", 9));
  BOOST_TEST(code_of(r) == "4.29 Too Many Requests");
  BOOST_TEST(r.find(coap::option_number::max_age)->as_uint() == 1u);
  BOOST_TEST(owed.size() == 2u);
  BOOST_TEST(owed[0].send(coap::response_code::content, "1"));
  auto separate = c.receive();
  BOOST_TEST_REQUIRE(separate.has_value());
  BOOST_TEST(separate->payload_string() == "1");
  coap::message ack(coap::code(), coap::message_type::acknowledgement);
  ack.set_message_id(separate->message_id());
  bytes wire;
  BOOST_TEST_REQUIRE(!coap::udp_codec::encode(ack, wire));
  c.send_raw(wire);
  // One answer owed less: a new request is taken.
  c.send(request_of(coap::method::get, "slow", 10));
  BOOST_TEST_REQUIRE(run_until([&] { return owed.size() == 3; }));
}

BOOST_FIXTURE_TEST_CASE(client_holds_requests_for_max_age, fixture) {
  server.config().session.max_request_rate = 1;
  server.config().session.max_request_burst = 1;
  start();
  auto s = udp_session();
  BOOST_TEST(code_of(request(s, request_of(coap::method::get, "x")).second) == "2.05 Content");
  auto [ec, r] = request(s, request_of(coap::method::get, "x"));
  BOOST_TEST(!ec);  // the 4.29 is the answer, as data
  BOOST_TEST(code_of(r) == "4.29 Too Many Requests");
  BOOST_TEST(r.find(coap::option_number::max_age)->as_uint() == 1u);
  const int before = gets;
  auto [held, nothing] = request(s, request_of(coap::method::get, "x"));
  BOOST_TEST((held == coap::error::too_many_requests));
  BOOST_TEST(!coap::is_fatal(held));
  std::this_thread::sleep_for(1100ms);
  BOOST_TEST(code_of(request(s, request_of(coap::method::get, "x")).second) == "2.05 Content");
  BOOST_TEST(gets == before + 1);
}

// 100,000 requests from one peer: answered (4.29 beyond the rate) and the server's memory,
// counted through its allocator, does not grow once warm.
BOOST_AUTO_TEST_CASE(a_flood_from_one_peer_is_bounded) {
  using coap::test::pmr_allocator;
  coap::test::counting_resource memory;
  asio::io_context io;
  coap::context_config config;
  config.session.max_request_rate = 1000;
  config.session.max_request_burst = 1000;
  coap::basic_context<pmr_allocator> server(io.get_executor(), config, memory.allocator());
  server.add_resource("x").on(coap::method::get, [](const coap::request&, coap::basic_response<pmr_allocator>& res) {
    res.set(coap::response_code::content, "x");
  });
  std::uint16_t port = 0;
  BOOST_TEST_REQUIRE(!server.add_endpoint<coap::udp>(loopback, 0, &port));
  asio::ip::udp::socket socket(io, {loopback, 0});
  socket.non_blocking(true);
  const asio::ip::udp::endpoint to(loopback, port);

  auto wire_of = [](std::uint16_t mid) {
    coap::message m(coap::method::get, coap::message_type::non_confirmable);
    m.set_message_id(mid);
    m.set_token(coap::token::from_uint(mid, 2));
    m.add(coap::options::uri_path{}, "x");
    bytes w;
    (void)coap::udp_codec::encode(m, w);
    return w;
  };
  std::size_t sent = 0, answered = 0, too_many = 0, content = 0;
  std::size_t warm_bytes = 0;
  const std::size_t total = 100000, batch = 100;
  std::uint8_t buf[512];
  const auto started = std::chrono::steady_clock::now();
  while (sent < total) {
    for (std::size_t i = 0; i < batch; ++i) socket.send_to(asio::buffer(wire_of(static_cast<std::uint16_t>(sent++))), to);
    coap::test::run_until(
        io,
        [&] {
          boost::system::error_code ec;
          asio::ip::udp::endpoint from;
          for (;;) {
            const auto n = socket.receive_from(asio::buffer(buf), from, 0, ec);
            if (ec) break;
            coap::message_view v;
            if (coap::udp_codec::parse({buf, n}, v)) continue;
            ++answered;
            if (v.code() == coap::code(coap::response_code::too_many_requests)) {
              ++too_many;
              BOOST_TEST(v.find(coap::option_number::max_age).has_value());
            } else if (v.code() == coap::code(coap::response_code::content)) {
              ++content;
            }
          }
          return answered >= sent;
        },
        2s, 1ms);
    if (sent == 20000) warm_bytes = memory.live_bytes();
  }
  BOOST_TEST_MESSAGE("answered " << answered << " of " << sent << ": " << content << " 2.05, " << too_many
                                 << " 4.29; live bytes " << warm_bytes << " after 20,000, " << memory.live_bytes()
                                 << " after 100,000, peak " << memory.peak_bytes());
  // The bucket admits its burst and then its rate: however slow the machine, no more than that
  // many 2.05, and every other request a 4.29.
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  BOOST_TEST(answered >= total * 99 / 100);
  BOOST_TEST(content >= 1000u);
  BOOST_TEST(static_cast<double>(content) <= 1000 + 1000 * seconds + 10);
  BOOST_TEST(too_many + content == answered);
  BOOST_TEST(memory.live_bytes() <= warm_bytes);
}
