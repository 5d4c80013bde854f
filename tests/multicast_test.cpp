// RFC 7252 section 8 (group communication), RFC 7390 section 2.7, RFC 7967 section 2.1: the
// rules for requests that arrive at a group (pure), the leisure queue over real loopback
// sockets (no multicast route needed), then servers and the group client over real multicast
// on loopback in a network namespace of the test's own (root only: without the privilege
// those cases print why they are skipped; CI runs as root).
#include <coap/multicast.hpp>

#define BOOST_TEST_MODULE multicast
#include <boost/test/unit_test.hpp>

#include <coap/block.hpp>
#include <coap/context.hpp>
#include <coap/detail/multicast_answers.hpp>
#include <coap/detail/multicast_rules.hpp>
#include <coap/session.hpp>
#include <coap/transports/udp.hpp>
#include <coap/udp_codec.hpp>

#include "support/run_until.hpp"

#include <boost/asio.hpp>

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <thread>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using coap::test::run_until;
using clock_type = std::chrono::steady_clock;

namespace {

std::vector<std::uint8_t> encode(const coap::message& m) {
  std::vector<std::uint8_t> wire;
  BOOST_REQUIRE(!coap::udp_codec::encode(m, wire));
  return wire;
}

coap::message get(std::string_view path, coap::message_type t = coap::message_type::non_confirmable) {
  coap::message m(coap::method::get, t);
  m.add(coap::options::uri_path{}, path);
  m.set_token(coap::token::from_uint(0x1234, 4));
  m.set_message_id(7);
  return m;
}

}  // namespace

// ---- the rules (detail/multicast_rules.hpp) ----

BOOST_AUTO_TEST_CASE(only_non_requests_are_taken_from_a_group) {
  using coap::message_type;
  using coap::detail::group_request_accepted;
  BOOST_TEST(group_request_accepted(message_type::non_confirmable, coap::method::get));
  BOOST_TEST(!group_request_accepted(message_type::confirmable, coap::method::get));  // section 8.1
  BOOST_TEST(!group_request_accepted(message_type::non_confirmable, coap::response_code::content));
  BOOST_TEST(!group_request_accepted(message_type::non_confirmable, coap::code(0)));
  BOOST_TEST(!group_request_accepted(message_type::acknowledgement, coap::method::get));
  BOOST_TEST(!group_request_accepted(message_type::reset, coap::code(0)));
}

BOOST_AUTO_TEST_CASE(errors_and_empty_answers_are_suppressed_by_default) {
  using coap::response_code;
  using coap::detail::group_answer_sent;
  const std::optional<std::uint8_t> absent;
  BOOST_TEST(group_answer_sent(response_code::content, 5, absent));
  BOOST_TEST(!group_answer_sent(response_code::content, 0, absent));  // nothing to say
  BOOST_TEST(group_answer_sent(response_code::changed, 0, absent));   // the code is the news
  BOOST_TEST(group_answer_sent(response_code::deleted, 0, absent));
  BOOST_TEST(!group_answer_sent(response_code::not_found, 9, absent));
  BOOST_TEST(!group_answer_sent(response_code::bad_request, 0, absent));
  BOOST_TEST(!group_answer_sent(response_code::internal_server_error, 3, absent));
  BOOST_TEST(!group_answer_sent(response_code::service_unavailable, 0, absent));
  BOOST_TEST(!group_answer_sent(coap::code(0), 0, absent));
}

BOOST_AUTO_TEST_CASE(no_response_decides_alone_when_present) {
  using coap::response_code;
  using coap::detail::group_answer_sent;
  // RFC 7967 section 2.1: 0 is "interested in everything", errors included.
  BOOST_TEST(group_answer_sent(response_code::not_found, 9, std::uint8_t{0}));
  BOOST_TEST(group_answer_sent(response_code::internal_server_error, 0, std::uint8_t{0}));
  BOOST_TEST(group_answer_sent(response_code::content, 0, std::uint8_t{0}));
  // 2: no 2.xx; 8: no 4.xx; 16: no 5.xx.
  BOOST_TEST(!group_answer_sent(response_code::content, 5, std::uint8_t{2}));
  BOOST_TEST(group_answer_sent(response_code::not_found, 5, std::uint8_t{2}));
  BOOST_TEST(!group_answer_sent(response_code::not_found, 5, std::uint8_t{8}));
  BOOST_TEST(group_answer_sent(response_code::internal_server_error, 5, std::uint8_t{8}));
  BOOST_TEST(!group_answer_sent(response_code::internal_server_error, 5, std::uint8_t{16}));
  BOOST_TEST(!group_answer_sent(response_code::content, 5, std::uint8_t{26}));
  BOOST_TEST(!group_answer_sent(coap::code(0), 0, std::uint8_t{0}));  // an empty message never
}

BOOST_AUTO_TEST_CASE(no_response_is_read_from_the_request) {
  auto m = get("x");
  auto wire = encode(m);
  coap::message_view v;
  BOOST_REQUIRE(!coap::udp_codec::parse(wire, v));
  BOOST_TEST(!coap::detail::no_response_value(v).has_value());
  BOOST_TEST(!coap::detail::group_answer_sent(v, coap::response_code::not_found, 4));

  m.add_uint_option(static_cast<std::uint16_t>(coap::option_number::no_response), 0);
  wire = encode(m);
  BOOST_REQUIRE(!coap::udp_codec::parse(wire, v));
  BOOST_TEST((coap::detail::no_response_value(v) == std::optional<std::uint8_t>(0)));
  BOOST_TEST(coap::detail::group_answer_sent(v, coap::response_code::not_found, 4));

  // A value longer than one byte is malformed: ignored, the group default applies.
  coap::message bad = get("x");
  const std::uint8_t two[] = {0, 2};
  bad.add_option(static_cast<std::uint16_t>(coap::option_number::no_response), std::span<const std::uint8_t>(two));
  std::vector<std::uint8_t> bad_wire;
  if (!coap::udp_codec::encode(bad, bad_wire)) {  // the encoder may refuse it outright
    BOOST_REQUIRE(!coap::udp_codec::parse(bad_wire, v));
    BOOST_TEST(!coap::detail::no_response_value(v).has_value());
    BOOST_TEST(!coap::detail::group_answer_sent(v, coap::response_code::not_found, 4));
  }
}

BOOST_AUTO_TEST_CASE(leisure_is_within_bounds_and_spread) {
  using coap::detail::pick_leisure;
  BOOST_TEST(pick_leisure(0ms, 12345).count() == 0);
  BOOST_TEST(pick_leisure(-5ms, 12345).count() == 0);
  BOOST_TEST(pick_leisure(5000ms, 0).count() == 0);
  BOOST_TEST(pick_leisure(5000ms, 5000).count() == 5000);
  BOOST_TEST(pick_leisure(5000ms, 5001).count() == 0);
  coap::detail::os_random random;
  std::chrono::milliseconds lo = 5000ms, hi = 0ms;
  for (int i = 0; i < 1000; ++i) {
    const auto d = pick_leisure(5000ms, random.next());
    BOOST_TEST_REQUIRE((d >= 0ms && d <= 5000ms));
    lo = std::min(lo, d);
    hi = std::max(hi, d);
  }
  // 1000 uniform draws: the extremes are within 100 ms of the ends (failure odds ~1e-8).
  BOOST_TEST(lo.count() < 100);
  BOOST_TEST(hi.count() > 4900);
}

// ---- the leisure queue (detail/multicast_answers.hpp) over loopback ----

namespace {

struct queue_fixture {
  asio::io_context io;
  coap::context ctx{io.get_executor()};
  asio::ip::udp::socket server{io, {asio::ip::make_address("127.0.0.1"), 0}};
  asio::ip::udp::socket client{io, {asio::ip::make_address("127.0.0.1"), 0}};
  std::shared_ptr<coap::detail::delayed_group_answers<asio::ip::udp::socket, std::allocator<std::uint8_t>>> queue;
  std::vector<std::uint8_t> request_wire = encode(get("x"));
  coap::message_view request;

  queue_fixture() {
    server.non_blocking(true);
    client.non_blocking(true);
    BOOST_REQUIRE(!coap::udp_codec::parse(request_wire, request));
  }
  void make_queue() {
    queue = std::make_shared<typename decltype(queue)::element_type>(ctx, server);
  }
  void answer(coap::response_code c, std::string_view payload, std::uint16_t mid) {
    coap::message response(c);
    response.set_payload(payload);
    queue->answer(request, response, mid, client.local_endpoint(), 1152);
  }
  // What the client received, with arrival times.
  std::vector<std::pair<clock_type::time_point, coap::message>> received;
  void drain() {
    std::uint8_t buf[2048];
    asio::ip::udp::endpoint from;
    boost::system::error_code ec;
    for (;;) {
      const auto n = client.receive_from(asio::buffer(buf), from, 0, ec);
      if (ec) return;
      coap::message_view v;
      BOOST_REQUIRE(!coap::udp_codec::parse({buf, n}, v));
      received.emplace_back(clock_type::now(), coap::message(v));
    }
  }
};

}  // namespace

BOOST_FIXTURE_TEST_CASE(answers_wait_their_leisure_and_go_non, queue_fixture) {
  ctx.config().multicast_leisure = 400ms;
  make_queue();
  const auto start = clock_type::now();
  for (std::uint16_t i = 0; i < 12; ++i) answer(coap::response_code::content, "hi", static_cast<std::uint16_t>(100 + i));
  BOOST_TEST(queue->pending() == 12u);
  BOOST_TEST(run_until(io, [&] { drain(); return received.size() == 12; }, 2000ms, 5ms));
  auto first = received.front().first, last = received.front().first;
  for (auto& [when, m] : received) {
    BOOST_TEST((m.type() == coap::message_type::non_confirmable));
    BOOST_TEST((m.code() == coap::code(coap::response_code::content)));
    BOOST_TEST(std::ranges::equal(m.token(), request.token()));
    BOOST_TEST((when - start < 400ms + 150ms));
    first = std::min(first, when);
    last = std::max(last, when);
  }
  // Spread over the leisure, not sent together (odds of 12 draws within 40 ms: ~1e-11).
  BOOST_TEST((last - first > 40ms));
  BOOST_TEST(queue->counters().sent == 12u);
  BOOST_TEST(queue->pending() == 0u);
}

BOOST_FIXTURE_TEST_CASE(pending_answers_are_capped, queue_fixture) {
  ctx.config().multicast_leisure = 200ms;
  ctx.config().max_pending_group_answers = 3;
  make_queue();
  for (std::uint16_t i = 0; i < 10; ++i) answer(coap::response_code::content, "hi", i);
  BOOST_TEST(queue->pending() == 3u);
  BOOST_TEST(queue->counters().dropped == 7u);
  BOOST_TEST(run_until(io, [&] { drain(); return received.size() == 3; }, 1000ms, 5ms));
  io.run_for(300ms);
  drain();
  BOOST_TEST(received.size() == 3u);
  // Slots free again once sent.
  answer(coap::response_code::content, "again", 50);
  BOOST_TEST(queue->pending() == 1u);
  BOOST_TEST(run_until(io, [&] { drain(); return received.size() == 4; }, 1000ms, 5ms));
}

BOOST_FIXTURE_TEST_CASE(suppressed_answers_are_not_queued, queue_fixture) {
  ctx.config().multicast_leisure = 50ms;
  make_queue();
  answer(coap::response_code::not_found, "Not Found", 1);
  answer(coap::response_code::internal_server_error, "", 2);
  answer(coap::response_code::content, "", 3);
  BOOST_TEST(queue->pending() == 0u);
  BOOST_TEST(queue->counters().suppressed == 3u);
  io.run_for(200ms);
  drain();
  BOOST_TEST(received.empty());
}

BOOST_FIXTURE_TEST_CASE(a_closed_queue_sends_nothing, queue_fixture) {
  ctx.config().multicast_leisure = 100ms;
  make_queue();
  answer(coap::response_code::content, "hi", 1);
  queue->close();
  io.run_for(250ms);
  drain();
  BOOST_TEST(received.empty());
}

// ---- what join_group refuses, before any network traffic ----

BOOST_AUTO_TEST_CASE(join_group_refuses_what_it_cannot_do) {
  asio::io_context io;
  coap::context ctx(io.get_executor());
  const auto group = asio::ip::make_address("224.0.1.187");
  BOOST_TEST((ctx.join_group(group) == std::errc::operation_not_supported));  // no endpoint
  BOOST_REQUIRE(!ctx.add_endpoint<coap::udp>(asio::ip::make_address("127.0.0.1"), 0));
  BOOST_TEST((ctx.join_group(asio::ip::make_address("127.0.0.1")) == std::errc::invalid_argument));
  BOOST_TEST((ctx.join_group(asio::ip::make_address("ff02::fd")) == std::errc::operation_not_supported));  // no IPv6 endpoint
  BOOST_TEST((ctx.join_group(group, "no-such-if0") == std::errc::no_such_device));
}

// ---- real multicast on loopback, in a network namespace of our own ----

namespace {

// Moves the process into a new network namespace with loopback up and a multicast route on it
// (the host's namespace is left alone). False, with the reason printed, without the privilege.
bool own_network_namespace() {
  static const bool ok = [] {
    if (::unshare(CLONE_NEWNET) != 0) {
      std::cout << "skipped: multicast over loopback needs a network namespace of its own (unshare: "
                << std::strerror(errno) << "; run as root)\n";
      return false;
    }
    const int rc = std::system("PATH=/usr/sbin:/sbin:$PATH; ip link set lo up && ip route add 224.0.0.0/4 dev lo src 127.0.0.1");
    BOOST_REQUIRE_MESSAGE(rc == 0, "ip could not set up loopback in the test's network namespace");
    return true;
  }();
  return ok;
}

// IPv4 multicast loops back on lo with a route; IPv6 multicast does not use lo, so IPv6 groups
// are tried on one end of a veth pair (DAD off: its link-local address at once).
bool veth_pair() {
  static const bool ok = own_network_namespace() &&
                         std::system("PATH=/usr/sbin:/sbin:$PATH; "
                                     "sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 && "
                                     "ip link add mc0 type veth peer name mc1 && ip link set mc0 up && ip link set mc1 up") == 0;
  return ok;
}

const auto group_v4 = asio::ip::make_address("224.0.1.187");

// Two servers in one group on one port, each on its own unicast address, saying who they are.
struct group_fixture {
  asio::io_context io;
  coap::context a{io.get_executor()};
  coap::context b{io.get_executor()};
  std::uint16_t port = 0;
  int big_calls = 0;

  void serve(coap::context& ctx, std::string name) {
    ctx.config().multicast_leisure = 300ms;
    ctx.add_resource("hello").on(coap::method::get, [name](const coap::request&, coap::basic_response<>& res) {
      res.set(coap::response_code::content, "hello from " + name, coap::content_format::text_plain);
    });
    ctx.add_resource("empty").on(coap::method::get, [](const coap::request&, coap::basic_response<>& res) {
      res.set_code(coap::response_code::content);
    });
    ctx.add_resource("off").on(coap::method::put, [](const coap::request&, coap::basic_response<>& res) {
      res.set_code(coap::response_code::changed);
    });
    ctx.add_resource("private")
        .on(coap::method::get, [](const coap::request&, coap::basic_response<>& res) {
          res.set(coap::response_code::content, "unicast only", coap::content_format::text_plain);
        })
        .multicast(false);
    ctx.add_resource("big").on(coap::method::get, [this](const coap::request&, coap::basic_response<>& res) {
      ++big_calls;
      res.set(coap::response_code::content, std::string(3000, 'b'), coap::content_format::text_plain);
    });
  }

  bool start() {
    if (!own_network_namespace()) return false;
    serve(a, "a");
    serve(b, "b");
    BOOST_REQUIRE(!a.add_endpoint<coap::udp>(asio::ip::make_address("127.0.0.1"), 0, &port));
    BOOST_REQUIRE(!b.add_endpoint<coap::udp>(asio::ip::make_address("127.0.0.2"), port));
    BOOST_REQUIRE(!a.join_group(group_v4, "lo"));
    BOOST_REQUIRE(!b.join_group(group_v4, "lo"));
    return true;
  }

  struct gathered {
    std::error_code ec;
    std::size_t count = 0;
    bool done = false;
    std::vector<coap::group_answer> answers;
    std::vector<clock_type::duration> after;
  };
  // One group request through coap::async_group_request, run to completion.
  gathered ask(coap::message request, std::chrono::milliseconds window = 800ms) {
    gathered g;
    const auto start = clock_type::now();
    coap::async_group_request(
        io.get_executor(), {group_v4, port}, std::move(request), window,
        [&](const coap::group_answer& answer) {
          g.answers.push_back(answer);
          g.after.push_back(clock_type::now() - start);
        },
        [&](std::error_code ec, std::size_t n) {
          g.ec = ec;
          g.count = n;
          g.done = true;
        });
    BOOST_TEST(run_until(io, [&] { return g.done; }, window + 2000ms, 5ms));
    return g;
  }
  std::set<std::string> payloads(const gathered& g) {
    std::set<std::string> out;
    for (auto& x : g.answers) out.insert(std::string(x.response.payload_string()));
    return out;
  }
};

}  // namespace

BOOST_FIXTURE_TEST_CASE(a_group_request_gathers_every_member, group_fixture) {
  if (!start()) return;
  const auto request = get("hello");
  auto g = ask(request);
  BOOST_TEST(!g.ec);
  BOOST_TEST(g.count == 2u);
  BOOST_TEST((payloads(g) == std::set<std::string>{"hello from a", "hello from b"}));
  std::set<std::string> sources;
  for (std::size_t i = 0; i < g.answers.size(); ++i) {
    auto& x = g.answers[i];
    sources.insert(x.from.address().to_string() + ":" + std::to_string(x.from.port()));
    BOOST_TEST((x.response.type() == coap::message_type::non_confirmable));
    BOOST_TEST(std::ranges::equal(x.response.token(), request.token()));  // one token, every responder
    BOOST_TEST((g.after[i] < 300ms + 200ms));                             // within the leisure
  }
  // Answered from each server's unicast address, not the group's.
  BOOST_TEST((sources == std::set<std::string>{"127.0.0.1:" + std::to_string(port), "127.0.0.2:" + std::to_string(port)}));
}

BOOST_FIXTURE_TEST_CASE(errors_and_empty_answers_stay_home_unless_asked_for, group_fixture) {
  if (!start()) return;
  BOOST_TEST(ask(get("nothing-here"), 600ms).count == 0u);  // 4.04 suppressed
  BOOST_TEST(ask(get("empty"), 600ms).count == 0u);         // 2.05 without payload
  coap::message put(coap::method::put, coap::message_type::non_confirmable);
  put.add(coap::options::uri_path{}, "off");
  BOOST_TEST(ask(put, 600ms).count == 2u);  // 2.04 Changed: its code is the news
  // RFC 7967: No-Response 0 asks for everything, errors included.
  auto wants_all = get("nothing-here");
  wants_all.add_uint_option(static_cast<std::uint16_t>(coap::option_number::no_response), 0);
  auto g = ask(wants_all, 600ms);
  BOOST_TEST(g.count == 2u);
  for (auto& x : g.answers) BOOST_TEST((x.response.code() == coap::code(coap::response_code::not_found)));
  // No-Response 2: no 2.xx.
  auto no_success = get("hello");
  no_success.add_uint_option(static_cast<std::uint16_t>(coap::option_number::no_response), 2);
  BOOST_TEST(ask(no_success, 600ms).count == 0u);
}

BOOST_FIXTURE_TEST_CASE(a_resource_can_opt_out_of_multicast, group_fixture) {
  if (!start()) return;
  BOOST_TEST(ask(get("private"), 600ms).count == 0u);
  // Unicast it is served.
  std::error_code ec;
  auto s = coap::session<coap::udp>::create_client(a, asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.2"), port), ec);
  BOOST_REQUIRE(!ec);
  std::optional<coap::message> answer;
  s.async_request(get("private", coap::message_type::confirmable), [&](std::error_code e, coap::message m) {
    BOOST_TEST(!e);
    answer = std::move(m);
  });
  BOOST_TEST(run_until(io, [&] { return answer.has_value(); }, 2000ms, 5ms));
  if (answer) BOOST_TEST(answer->payload_string() == "unicast only");
}

BOOST_FIXTURE_TEST_CASE(a_confirmable_group_request_gets_nothing_back, group_fixture) {
  if (!start()) return;
  // Section 8.1: no ACK (from every member at once), no RST, no answer.
  asio::ip::udp::socket raw(io, asio::ip::udp::endpoint(asio::ip::udp::v4(), 0));
  raw.set_option(asio::ip::multicast::enable_loopback(true));
  raw.non_blocking(true);
  for (std::uint16_t i = 0; i < 20; ++i) {
    auto con = get("hello", coap::message_type::confirmable);
    con.set_message_id(static_cast<std::uint16_t>(1000 + i));
    raw.send_to(asio::buffer(encode(con)), asio::ip::udp::endpoint(group_v4, port));
  }
  io.run_for(700ms);  // past the leisure
  std::uint8_t buf[2048];
  asio::ip::udp::endpoint from;
  boost::system::error_code ec;
  std::size_t datagrams = 0;
  while (raw.receive_from(asio::buffer(buf), from, 0, ec), !ec) ++datagrams;
  BOOST_TEST(datagrams == 0u);
}

BOOST_FIXTURE_TEST_CASE(block2_follow_up_goes_unicast_to_the_responder, group_fixture) {
  if (!start()) return;
  // A raw client, so that block 1 is asked of the server that sent block 0, from the same
  // address (the server's session for this client keeps the representation).
  asio::ip::udp::socket raw(io, asio::ip::udp::endpoint(asio::ip::udp::v4(), 0));
  raw.non_blocking(true);
  raw.send_to(asio::buffer(encode(get("big"))), asio::ip::udp::endpoint(group_v4, port));
  std::uint8_t buf[2048];
  asio::ip::udp::endpoint from;
  std::optional<coap::message> first;
  asio::ip::udp::endpoint responder;
  BOOST_TEST(run_until(io, [&] {
    boost::system::error_code ec;
    const auto n = raw.receive_from(asio::buffer(buf), from, 0, ec);
    if (ec) return false;
    coap::message_view v;
    if (coap::udp_codec::parse({buf, n}, v)) return false;
    first.emplace(v);
    responder = from;
    return true;
  }, 1500ms, 5ms));
  BOOST_REQUIRE(first);
  auto b2 = first->find(coap::option_number::block2);
  BOOST_REQUIRE(b2.has_value());
  coap::block_value block0;
  BOOST_REQUIRE(!coap::decode_block(b2->value(), block0));
  BOOST_TEST(block0.num == 0u);
  BOOST_TEST(block0.more);
  const auto etag = first->find(coap::option_number::etag);
  BOOST_REQUIRE(etag.has_value());
  const std::vector<std::uint8_t> etag0(etag->value().begin(), etag->value().end());
  BOOST_TEST(responder.address().to_string().starts_with("127.0.0."));  // unicast

  // Block 1, unicast, NON as the group request was.
  auto next = get("big");
  next.set_message_id(8);
  next.add_uint_option(static_cast<std::uint16_t>(coap::option_number::block2),
                       coap::encode(coap::block_value{1, false, block0.szx}));
  raw.send_to(asio::buffer(encode(next)), responder);
  std::optional<coap::message> second;
  BOOST_TEST(run_until(io, [&] {
    boost::system::error_code ec;
    const auto n = raw.receive_from(asio::buffer(buf), from, 0, ec);
    // The other group members' answers to the group request may still be arriving (their
    // leisure): only the responder's answer is the follow-up's.
    if (ec || from != responder) return false;
    coap::message_view v;
    if (coap::udp_codec::parse({buf, n}, v)) return false;
    second.emplace(v);
    return true;
  }, 500ms, 5ms));  // unicast: no leisure
  BOOST_REQUIRE(second);
  BOOST_TEST(from == responder);
  BOOST_TEST((second->code() == coap::code(coap::response_code::content)));
  auto b2b = second->find(coap::option_number::block2);
  BOOST_REQUIRE(b2b.has_value());
  coap::block_value block1;
  BOOST_REQUIRE(!coap::decode_block(b2b->value(), block1));
  BOOST_TEST(block1.num == 1u);
  const auto etag1 = second->find(coap::option_number::etag);
  BOOST_REQUIRE(etag1.has_value());
  BOOST_TEST(std::ranges::equal(etag1->value(), etag0));  // the same representation
  BOOST_TEST(second->payload().size() == block1.size());
  // Each member ran its handler once, for the group request; block 1 came from what the
  // responder kept for this client (RFC 7959 section 2.4), not from another call.
  BOOST_TEST(big_calls == 2);
}

// The group socket and the unicast socket are read side by side: a group request read between
// a unicast read and its handler must not change whom that unicast datagram is from. More
// unicast datagrams than one drain takes are queued, so that the unicast socket's next read
// completes at once while the group socket's read waits its turn.
BOOST_FIXTURE_TEST_CASE(group_requests_do_not_change_the_sender_of_unicast_ones, group_fixture) {
  if (!start()) return;
  const asio::ip::udp::endpoint to_b(asio::ip::make_address("127.0.0.2"), port);
  asio::ip::udp::socket uni(io, asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  asio::ip::udp::socket grp(io, asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  uni.non_blocking(true);
  grp.non_blocking(true);
  constexpr std::uint16_t unicast_requests = 200, group_requests = 40;
  for (std::uint16_t round = 0; round < 5; ++round) {
    for (std::uint16_t i = 0; i < unicast_requests / 5; ++i) {
      auto con = get("hello", coap::message_type::confirmable);
      const auto n = static_cast<std::uint16_t>(round * (unicast_requests / 5) + i);
      con.set_message_id(n);
      con.set_token(coap::token::from_uint(0x10000u + n, 4));
      uni.send_to(asio::buffer(encode(con)), to_b);
    }
    for (std::uint16_t i = 0; i < group_requests / 5; ++i) {
      auto non = get("hello");
      const auto n = static_cast<std::uint16_t>(round * (group_requests / 5) + i);
      non.set_message_id(n);
      non.set_token(coap::token::from_uint(0x20000u + n, 4));
      grp.send_to(asio::buffer(encode(non)), asio::ip::udp::endpoint(group_v4, port));
    }
  }
  std::set<std::uint16_t> acked;
  std::size_t unicast_strays = 0, group_answers = 0, group_strays = 0;
  std::uint8_t buf[2048];
  auto drain = [&] {
    asio::ip::udp::endpoint from;
    boost::system::error_code ec;
    for (std::size_t n; n = uni.receive_from(asio::buffer(buf), from, 0, ec), !ec;) {
      coap::message_view v;
      if (!coap::udp_codec::parse({buf, n}, v) && v.type() == coap::message_type::acknowledgement &&
          std::ranges::equal(coap::token::from_uint(0x10000u + v.message_id(), 4).bytes(), v.token()) && from == to_b)
        acked.insert(v.message_id());
      else
        ++unicast_strays;
    }
    for (std::size_t n; n = grp.receive_from(asio::buffer(buf), from, 0, ec), !ec;) {
      coap::message_view v;
      if (!coap::udp_codec::parse({buf, n}, v) && v.type() == coap::message_type::non_confirmable &&
          v.token().size() == 4 && v.token()[1] == 0x02)
        ++group_answers;
      else
        ++group_strays;
    }
    return acked.size() == unicast_requests && group_answers == 2u * group_requests;
  };
  BOOST_TEST(run_until(io, drain, 3000ms, 5ms));
  io.run_for(400ms);  // past the leisure: anything that went astray has arrived
  drain();
  BOOST_TEST(acked.size() == unicast_requests);
  BOOST_TEST(unicast_strays == 0u);
  BOOST_TEST(group_answers == 2u * group_requests);
  BOOST_TEST(group_strays == 0u);
}

BOOST_FIXTURE_TEST_CASE(pending_group_answers_are_capped_per_endpoint, group_fixture) {
  a.config().max_pending_group_answers = 1;  // b keeps the default
  if (!start()) return;
  std::vector<gathered> results(3);
  std::size_t done = 0;
  std::size_t from_a = 0, from_b = 0;
  for (int i = 0; i < 3; ++i) {
    coap::async_group_request(
        io.get_executor(), {group_v4, port}, get("hello"), 800ms,
        [&](const coap::group_answer& x) {
          (x.response.payload_string() == "hello from a" ? from_a : from_b)++;
        },
        [&](std::error_code, std::size_t) { ++done; });
  }
  BOOST_TEST(run_until(io, [&] { return done == 3; }, 3000ms, 5ms));
  BOOST_TEST(from_a == 1u);  // one pending at a time: the other two were dropped
  BOOST_TEST(from_b == 3u);
}

BOOST_FIXTURE_TEST_CASE(a_group_request_can_be_cancelled, group_fixture) {
  if (!start()) return;
  asio::cancellation_signal cancel;
  std::optional<std::error_code> result;
  auto strand = asio::make_strand(io);
  bool on_strand = false;
  coap::async_group_request(io.get_executor(), {group_v4, port}, get("hello"), 5000ms,
                            [](const coap::group_answer&) {},
                            asio::bind_cancellation_slot(cancel.slot(), asio::bind_executor(strand, [&](std::error_code ec, std::size_t) {
                              on_strand = strand.running_in_this_thread();
                              result = ec;
                            })));
  io.run_for(50ms);
  cancel.emit(asio::cancellation_type::terminal);
  BOOST_TEST(run_until(io, [&] { return result.has_value(); }, 1000ms, 5ms));
  BOOST_TEST((result && *result == coap::detail::operation_aborted()));
  BOOST_TEST(on_strand);
}

BOOST_FIXTURE_TEST_CASE(every_completion_token_kind, group_fixture) {
  if (!start()) return;
  const asio::ip::udp::endpoint to(group_v4, port);
  std::atomic<int> answers{0};
  auto count = [&](const coap::group_answer&) { ++answers; };
  auto work = asio::make_work_guard(io);
  std::thread runner([&] { io.run(); });
  // use_future: with std::error_code in the signature, (error_code, count) rather than a throw.
  auto [fec, fn] = coap::async_group_request(io.get_executor(), to, get("hello"), 500ms, count, asio::use_future).get();
  BOOST_TEST(!fec);
  BOOST_TEST(fn == 2u);
  // deferred: nothing is sent until the operation is invoked.
  auto op = coap::async_group_request(io.get_executor(), to, get("hello"), 500ms, count, asio::deferred);
  std::this_thread::sleep_for(400ms);
  BOOST_TEST(answers.load() == 2);
  std::promise<std::size_t> deferred_count;
  std::move(op)([&](std::error_code, std::size_t n) { deferred_count.set_value(n); });
  BOOST_TEST(deferred_count.get_future().get() == 2u);
  // use_awaitable with a C++20 coroutine.
  std::promise<std::size_t> awaited;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        auto [ec, n] = co_await coap::async_group_request(io.get_executor(), to, get("hello"), 500ms, count,
                                                          asio::use_awaitable);
        awaited.set_value(ec ? 99 : n);
      },
      asio::detached);
  BOOST_TEST(awaited.get_future().get() == 2u);
  BOOST_TEST(answers.load() == 6);
  work.reset();
  asio::post(io, [&] { a.stop(); b.stop(); });
  runner.join();
}

BOOST_AUTO_TEST_CASE(a_unicast_address_is_not_a_group) {
  asio::io_context io;
  std::optional<std::error_code> result;
  coap::async_group_request(io.get_executor(), {asio::ip::make_address("127.0.0.1"), 5683}, get("x"), 100ms,
                            [](const coap::group_answer&) {}, [&](std::error_code ec, std::size_t) { result = ec; });
  io.run_for(200ms);
  BOOST_TEST((result && *result == std::errc::invalid_argument));
}

BOOST_AUTO_TEST_CASE(ipv6_link_local_group_on_a_link) {
  if (!own_network_namespace()) return;
  BOOST_REQUIRE_MESSAGE(veth_pair(), "ip could not make a veth pair (mc0, mc1) in the test's network namespace");
  asio::io_context io;
  coap::context server(io.get_executor());
  server.config().multicast_leisure = 100ms;
  server.add_resource("hello").on(coap::method::get, [](const coap::request&, coap::basic_response<>& res) {
    res.set(coap::response_code::content, "hello over IPv6", coap::content_format::text_plain);
  });
  std::uint16_t port = 0;
  BOOST_REQUIRE(!server.add_endpoint<coap::udp>(asio::ip::make_address("::"), 0, &port));
  BOOST_REQUIRE(!server.join_group(coap::detail::all_coap_nodes_link_local(), "mc0"));
  BOOST_REQUIRE(!server.join_group(coap::detail::all_coap_nodes_site_local(), "mc0"));
  BOOST_TEST((server.join_group(coap::detail::all_coap_nodes_site_local(), "mc0") == std::errc::address_in_use));
  auto group = asio::ip::make_address_v6("ff02::fd");
  group.scope_id(::if_nametoindex("mc0"));
  std::vector<coap::group_answer> answers;
  bool done = false;
  coap::group_request_config config;
  config.interface = "mc0";
  coap::async_group_request(io.get_executor(), {group, port}, get("hello"), 500ms,
                            [&](const coap::group_answer& x) { answers.push_back(x); },
                            [&](std::error_code ec, std::size_t) {
                              BOOST_TEST(!ec);
                              done = true;
                            },
                            config);
  BOOST_TEST(run_until(io, [&] { return done; }, 2000ms, 5ms));
  BOOST_REQUIRE(answers.size() == 1u);
  BOOST_TEST(answers[0].from.address().to_v6().is_link_local());  // the server's own address on mc0
  BOOST_TEST(answers[0].from.port() == port);
  BOOST_TEST(answers[0].response.payload_string() == "hello over IPv6");
}
