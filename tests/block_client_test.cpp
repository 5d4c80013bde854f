// RFC 7959 (block-wise transfer, client side) and RFC 8323 section 6 (BERT) over loopback:
// against libcoap's coap-server (a large PUT then GET of /example_data, over UDP and TCP), and
// against a hand-made UDP server in this file (ETag changes, 4.08 and 4.13 delivered as they
// are, a smaller SZX from the server, early negotiation, max_body_size, cancellation).
#include <coap/detail/block_client.hpp>

#define BOOST_TEST_MODULE block_client
#include <boost/test/unit_test.hpp>

#include <coap/session.hpp>
#include <coap/transports/tcp.hpp>
#include <coap/transports/udp.hpp>
#include <coap/udp_codec.hpp>

#include <boost/asio.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>

#include "support/libcoap_server.hpp"
#include "support/run_until.hpp"

#include <cstdlib>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using udp_session = coap::session<coap::udp>;
using tcp_session = coap::session<coap::tcp>;

namespace {

const auto loopback = asio::ip::make_address("127.0.0.1");

// libcoap's coap-server, when installed (tests/support/libcoap_server.hpp).
using coap::test::find_program;
using coap::test::libcoap_server;

struct outcome {
  std::error_code ec;
  coap::message response;
  bool done = false;
};

struct fixture {
  asio::io_context io;
  coap::context client{io.get_executor()};

  template <class Pred>
  bool run_until(Pred done, std::chrono::milliseconds limit = 5s) {
    return coap::test::run_until(io, done, limit, 2ms);
  }
  template <class Session>
  outcome request(Session& s, coap::message m, std::chrono::milliseconds limit = 10s) {
    outcome out;
    s.async_request(std::move(m), [&](std::error_code ec, coap::message r) {
      out = {ec, std::move(r), true};
    });
    BOOST_TEST_REQUIRE(run_until([&] { return out.done; }, limit));
    return out;
  }
};

coap::message make(coap::method method, std::string_view path, std::string_view payload = {}) {
  coap::message m(method);
  m.add(coap::options::uri_path{}, path);
  if (!payload.empty()) m.set_payload(payload);
  return m;
}

std::string body(std::size_t n) {
  std::string s(n, ' ');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 26) % 26);
  return s;
}

std::optional<coap::detail::wire_block> block_of(const coap::message& m, coap::option_number n) {
  return coap::detail::find_block(m, n);
}
std::uint32_t block(std::uint32_t num, bool more, std::uint8_t szx) { return (num << 4) | (more ? 8u : 0u) | szx; }

// ---- a hand-made UDP server: every datagram goes to `answer`, whose reply (if any) goes back
// piggybacked on the ACK. It records what it was asked. ----
struct raw_server {
  asio::ip::udp::socket socket;
  std::vector<coap::message> requests;
  std::function<std::optional<coap::message>(const coap::message&)> answer;

  explicit raw_server(asio::io_context& io) : socket(io, {loopback, 0}) { socket.non_blocking(true); }
  asio::ip::udp::endpoint endpoint() const { return socket.local_endpoint(); }

  void poll() {
    std::uint8_t buffer[2048];
    asio::ip::udp::endpoint from;
    boost::system::error_code ec;
    for (;;) {
      const auto n = socket.receive_from(asio::buffer(buffer), from, 0, ec);
      if (ec) return;
      coap::message_view v;
      if (coap::udp_codec::parse({buffer, n}, v)) continue;
      coap::message m(v);
      requests.push_back(m);
      if (!answer) continue;
      auto reply = answer(m);
      if (!reply) continue;
      reply->set_type(coap::message_type::acknowledgement);
      reply->set_message_id(m.message_id());
      reply->set_token(m.token_value());
      std::vector<std::uint8_t> wire;
      BOOST_TEST_REQUIRE(!coap::udp_codec::encode(*reply, wire));
      socket.send_to(asio::buffer(wire), from, 0, ec);
    }
  }
};

struct raw_fixture : fixture {
  raw_server server{io};
  udp_session session;
  explicit raw_fixture(coap::session_config cfg = {}) {
    std::error_code ec;
    session = udp_session::create_client(client, server.endpoint(), cfg, ec);
    BOOST_TEST_REQUIRE(!ec);
  }
  outcome exchange(coap::message m, std::chrono::milliseconds limit = 5s) {
    outcome out;
    session.async_request(std::move(m), [&](std::error_code ec, coap::message r) { out = {ec, std::move(r), true}; });
    BOOST_TEST_REQUIRE(run_until(
        [&] {
          server.poll();
          return out.done;
        },
        limit));
    return out;
  }
};

coap::message response(coap::response_code c, std::string_view payload = {}) {
  coap::message r(c, coap::message_type::acknowledgement);
  if (!payload.empty()) r.set_payload(payload);
  return r;
}

// A representation served in 2^(szx+4)-byte blocks with an ETag.
std::optional<coap::message> serve_block(const coap::message& req, const std::string& data, std::uint8_t szx,
                                         std::uint8_t etag) {
  const auto asked = block_of(req, coap::option_number::block2);
  const std::uint8_t use = asked ? std::min(asked->szx, szx) : szx;
  const std::size_t size = std::size_t{16} << use;
  const std::size_t num = asked ? asked->num * (std::size_t{16} << asked->szx) / size : 0;
  auto r = response(coap::response_code::content);
  const std::uint8_t tag[1] = {etag};
  r.add(coap::options::etag{}, std::span<const std::uint8_t>(tag));
  const bool more = (num + 1) * size < data.size();
  r.add(coap::options::block2{}, block(static_cast<std::uint32_t>(num), more, use));
  r.set_payload(std::string_view(data).substr(num * size, size));
  return r;
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(block_client, fixture)

// ---- against libcoap 4.3.1 ----

template <class Session>
void libcoap_put_then_get(fixture& f, std::string_view scheme, coap::session_config cfg, bool small_mtu) {
  const auto program = find_program({"coap-server", "coap-server-notls"});
  if (!program) {
    BOOST_TEST_MESSAGE("coap-server (libcoap) is not on PATH: skipped");
    return;
  }
  libcoap_server server(*program);
  std::error_code ec;
  auto s = Session::create_client(f.client, std::string(scheme) + "://127.0.0.1:" + std::to_string(server.port), ec);
  BOOST_TEST_REQUIRE(!ec, ec.message());
  s.config() = cfg;
  if (small_mtu) s.set_mtu(1500);  // a TCP session then needs blocks too (BERT: 1024 per block)
  // The server is up: it answers (libcoap's /time).
  const auto time = f.request(s, make(coap::method::get, "time"));
  BOOST_TEST_REQUIRE(!time.ec, time.ec.message());
  const auto data = body(5000);
  auto put = make(coap::method::put, "example_data", data);
  put.set_content_format(coap::content_format::text_plain);
  auto stored = f.request(s, std::move(put));
  BOOST_TEST_REQUIRE(!stored.ec, stored.ec.message());
  BOOST_TEST(stored.response.code().code_class() == 2u, coap::to_string(stored.response.code()));
  auto got = f.request(s, make(coap::method::get, "example_data"));
  BOOST_TEST_REQUIRE(!got.ec, got.ec.message());
  BOOST_TEST(coap::to_string(got.response.code()) == "2.05 Content");
  BOOST_TEST(got.response.payload_string() == data);
  BOOST_TEST(!got.response.find(coap::option_number::block2));
  // Early negotiation: 64-byte blocks asked for by the request.
  auto small = make(coap::method::get, "example_data");
  small.add(coap::options::block2{}, block(0, false, 2));
  auto got_small = f.request(s, std::move(small));
  BOOST_TEST_REQUIRE(!got_small.ec, got_small.ec.message());
  BOOST_TEST(got_small.response.payload_string() == data);
}

BOOST_AUTO_TEST_CASE(libcoap_large_put_and_get_udp) { libcoap_put_then_get<udp_session>(*this, "coap", {}, false); }

BOOST_AUTO_TEST_CASE(libcoap_large_put_and_get_udp_small_blocks) {
  coap::session_config cfg;
  cfg.block_szx = 2;
  libcoap_put_then_get<udp_session>(*this, "coap", cfg, false);
}

BOOST_AUTO_TEST_CASE(libcoap_large_put_and_get_tcp_bert) {
  coap::session_config cfg;
  cfg.block_szx = 7;
  libcoap_put_then_get<tcp_session>(*this, "coap+tcp", cfg, true);
}

BOOST_AUTO_TEST_SUITE_END()

// ---- against a hand-made server ----

BOOST_AUTO_TEST_CASE(block2_download_and_etag_restart_once) {
  raw_fixture f;
  const auto first = body(600), second = body(700);
  int served = 0;
  f.server.answer = [&](const coap::message& req) {
    // Block 0 of version 1, then everything of version 2 (the ETag changes midway).
    return ++served == 1 ? serve_block(req, first, 4, 1) : serve_block(req, second, 4, 2);
  };
  auto out = f.exchange(make(coap::method::get, "x"));
  BOOST_TEST_REQUIRE(!out.ec, out.ec.message());
  BOOST_TEST(out.response.payload_string() == second);
  BOOST_TEST(!out.response.find(coap::option_number::block2));
  BOOST_TEST(out.response.find(coap::option_number::etag).has_value());
  // Block 0, block 1 (new ETag), then block 0 again and the rest: 2 + 3 requests.
  BOOST_TEST_REQUIRE(f.server.requests.size() == 5u);
  BOOST_TEST(block_of(f.server.requests[2], coap::option_number::block2)->num == 0u);
  BOOST_TEST(block_of(f.server.requests[4], coap::option_number::block2)->num == 2u);
  // Follow-ups keep the options and take new tokens.
  BOOST_TEST(f.server.requests[1].get(coap::options::uri_path{}).value() == "x");
  BOOST_TEST(!(f.server.requests[1].token_value() == f.server.requests[0].token_value()));
}

BOOST_AUTO_TEST_CASE(etag_changing_twice_fails) {
  raw_fixture f;
  std::uint8_t version = 0;
  const auto data = body(600);
  f.server.answer = [&](const coap::message& req) { return serve_block(req, data, 4, ++version); };
  auto out = f.exchange(make(coap::method::get, "x"));
  BOOST_TEST((out.ec == coap::error::etag_mismatch), out.ec.message());
}

BOOST_AUTO_TEST_CASE(download_beyond_max_body_size_fails) {
  coap::session_config cfg;
  cfg.max_body_size = 300;
  raw_fixture f(cfg);
  const auto data = body(2000);
  f.server.answer = [&](const coap::message& req) { return serve_block(req, data, 4, 1); };
  auto out = f.exchange(make(coap::method::get, "x"));
  BOOST_TEST((out.ec == coap::error::message_too_large), out.ec.message());
  BOOST_TEST(f.server.requests.size() == 2u);  // stopped at the block that went past 300 bytes
}

BOOST_AUTO_TEST_CASE(early_negotiation_uses_the_requests_block2) {
  raw_fixture f;
  const auto data = body(100);
  f.server.answer = [&](const coap::message& req) { return serve_block(req, data, 6, 1); };
  auto m = make(coap::method::get, "x");
  m.add(coap::options::block2{}, block(0, false, 1));  // 32-byte blocks
  auto out = f.exchange(std::move(m));
  BOOST_TEST_REQUIRE(!out.ec, out.ec.message());
  BOOST_TEST(out.response.payload_string() == data);
  BOOST_TEST(f.server.requests.size() == 4u);  // 32 + 32 + 32 + 4
}

// Section 2.5: the server takes smaller blocks than we offered; we continue with its size.
BOOST_AUTO_TEST_CASE(block1_upload_adopts_a_smaller_szx) {
  raw_fixture f;
  const auto data = body(3000);
  std::string received;
  f.server.answer = [&](const coap::message& req) -> std::optional<coap::message> {
    const auto b1 = block_of(req, coap::option_number::block1);
    if (!b1) return response(coap::response_code::bad_request);
    const std::size_t offset = b1->num * b1->size();
    if (offset != received.size()) return response(coap::response_code::request_entity_incomplete);
    received += std::string(req.payload_string());  // the whole block, whatever size we then ask for
    auto r = response(b1->more ? coap::response_code::continue_ : coap::response_code::changed);
    r.add(coap::options::block1{}, block(b1->num * (std::uint32_t(b1->size()) / 256), b1->more, 4));
    return r;
  };
  auto out = f.exchange(make(coap::method::put, "x", data));
  BOOST_TEST_REQUIRE(!out.ec, out.ec.message());
  BOOST_TEST(coap::to_string(out.response.code()) == "2.04 Changed");
  BOOST_TEST(received == data);
  const auto& reqs = f.server.requests;
  BOOST_TEST_REQUIRE(reqs.size() >= 3u);
  BOOST_TEST(block_of(reqs[0], coap::option_number::block1)->szx == 6u);  // offered 1024
  BOOST_TEST(reqs[0].get(coap::options::size1{}).value() == 3000u);
  BOOST_TEST(block_of(reqs[1], coap::option_number::block1)->szx == 4u);
  BOOST_TEST(block_of(reqs[1], coap::option_number::block1)->num == 4u);  // 1024 bytes in, as 256-byte blocks
  BOOST_TEST(reqs[1].payload().size() == 256u);
  BOOST_TEST(reqs.size() == 9u);  // 1024, then 1976 bytes in 256-byte steps
}

BOOST_AUTO_TEST_CASE(request_entity_too_large_is_delivered) {
  raw_fixture f;
  f.server.answer = [&](const coap::message&) {
    auto r = response(coap::response_code::request_entity_too_large);
    r.add(coap::options::size1{}, 1024u);
    return std::optional(r);
  };
  auto out = f.exchange(make(coap::method::put, "x", body(3000)));
  BOOST_TEST_REQUIRE(!out.ec, out.ec.message());
  BOOST_TEST(coap::to_string(out.response.code()) == "4.13 Request Entity Too Large");
  BOOST_TEST(out.response.get(coap::options::size1{}).value() == 1024u);
  BOOST_TEST(f.server.requests.size() == 1u);
}

BOOST_AUTO_TEST_CASE(request_entity_incomplete_is_delivered) {
  raw_fixture f;
  f.server.answer = [&](const coap::message& req) {
    const auto b1 = block_of(req, coap::option_number::block1);
    auto r = response(b1 && b1->num == 0 ? coap::response_code::continue_ : coap::response_code::request_entity_incomplete);
    if (b1 && b1->num == 0) r.add(coap::options::block1{}, block(0, true, b1->szx));
    return std::optional(r);
  };
  auto out = f.exchange(make(coap::method::post, "x", body(3000)));
  BOOST_TEST_REQUIRE(!out.ec, out.ec.message());
  BOOST_TEST(coap::to_string(out.response.code()) == "4.08 Request Entity Incomplete");
  BOOST_TEST(f.server.requests.size() == 2u);
}

BOOST_AUTO_TEST_CASE(small_requests_go_whole) {
  raw_fixture f;
  f.server.answer = [&](const coap::message&) { return std::optional(response(coap::response_code::changed, "ok")); };
  auto out = f.exchange(make(coap::method::put, "x", body(1000)));
  BOOST_TEST_REQUIRE(!out.ec, out.ec.message());
  BOOST_TEST_REQUIRE(f.server.requests.size() == 1u);
  BOOST_TEST(!f.server.requests[0].find(coap::option_number::block1));
  BOOST_TEST(f.server.requests[0].payload().size() == 1000u);
}

// Terminal cancellation through the handler's slot: operation_aborted at once; a late answer
// is dropped.
BOOST_AUTO_TEST_CASE(cancellation_through_the_handlers_slot) {
  raw_fixture f;
  asio::cancellation_signal signal;
  outcome out;
  f.session.async_request(make(coap::method::get, "x"),
                          asio::bind_cancellation_slot(signal.slot(), [&](std::error_code ec, coap::message r) {
                            out = {ec, std::move(r), true};
                          }));
  BOOST_TEST_REQUIRE(f.run_until([&] {
    f.server.poll();
    return !f.server.requests.empty();
  }));
  signal.emit(asio::cancellation_type::terminal);
  BOOST_TEST_REQUIRE(f.run_until([&] { return out.done; }, 1s));
  BOOST_TEST((out.ec == coap::detail::operation_aborted()), out.ec.message());
}
