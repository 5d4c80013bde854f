// RFC 7252 sections 5.6 and 5.7, RFC 8768: coap::proxy on real loopback sockets. Origin
// servers are coap::contexts, the proxy another, the client a session to the proxy.
#include <coap/proxy.hpp>

#define BOOST_TEST_MODULE proxy
#include <boost/test/unit_test.hpp>

#include <coap/security/pki.hpp>
#include <coap/security/psk.hpp>
#include <coap/session.hpp>
#include <coap/transports/tcp.hpp>
#include <coap/transports/udp.hpp>

#include <boost/asio.hpp>

#include "support/cert_dir.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

const auto loopback = asio::ip::make_address("127.0.0.1");
const std::vector<std::uint8_t> psk_key = {'s', 'e', 'c', 'r', 'e', 't'};

using udp_session = coap::session<coap::udp>;
using tcp_session = coap::session<coap::tcp>;
using dtls_session = coap::session<coap::udp, coap::psk>;
using test_proxy = coap::proxy<udp_session, tcp_session, dtls_session>;

std::string body_of(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 64) % 26);
  return s;
}

coap::proxy_config quick_config() {
  coap::proxy_config c;
  c.upstream.ack_timeout = 100ms;
  c.upstream.ack_random_factor = 1.0;
  c.upstream.max_retransmit = 1;
  c.upstream.connect_timeout = 1s;
  c.upstream.csm_timeout = 1s;
  c.upstream_timeout = 3s;
  return c;
}

// An origin with counted resources on UDP, TCP and DTLS-PSK.
struct origin {
  coap::context ctx;
  std::uint16_t udp_port = 0, tcp_port = 0, dtls_port = 0;
  int hits = 0;
  std::optional<std::uint32_t> last_hop_limit;
  std::uint32_t max_age = 60;
  int validations = 0;
  // RFC 7641: an observable resource whose state the test sets; its handler's runs with
  // Observe=0 counted (registrations, and each notification before any notify_observers).
  std::string state = "s0";
  int observe_registrations = 0;
  std::optional<coap::response_code> state_error;

  explicit origin(asio::io_context& io) : ctx(io.get_executor()) {
    // Handler runs are counted here: the amplification limit (RFC 9175 section 2.4, on by
    // default) would run a large answer's handler once more for the proxy's Echo repetition.
    ctx.config().session.amplification_factor = 0;
    ctx.add_resource("hello").on(coap::method::get, [this](const coap::request& r, coap::basic_response<>& res) {
      ++hits;
      last_hop_limit.reset();
      if (auto h = r.message().find(coap::option_number::hop_limit)) last_hop_limit = h->as_uint();
      res.set(coap::response_code::content, "world", coap::content_format::text_plain);
      res.message().add_uint_option(static_cast<std::uint16_t>(coap::option_number::max_age), max_age);
    });
    ctx.add_resource("tagged").on(coap::method::get, [this](const coap::request& r, coap::basic_response<>& res) {
      ++hits;
      static const std::uint8_t tag[] = {1, 2, 3, 4};
      res.message().add_uint_option(static_cast<std::uint16_t>(coap::option_number::max_age), max_age);
      if (auto e = r.message().find(coap::option_number::etag);
          e && std::equal(e->value().begin(), e->value().end(), std::begin(tag), std::end(tag))) {
        ++validations;
        res.set_code(coap::response_code::valid);
        res.message().add_option(coap::option_number::etag, tag);
        return;
      }
      res.message().add_option(coap::option_number::etag, tag);
      res.set(coap::response_code::content, "tagged body");
    });
    ctx.add_resource("big").on(coap::method::get, [this](const coap::request&, coap::basic_response<>& res) {
      ++hits;
      res.set(coap::response_code::content, body_of(5000));
    });
    ctx.add_resource("obs").observable().on(coap::method::get, [this](const coap::request& r, coap::basic_response<>& res) {
      ++hits;
      if (auto o = r.message().find(coap::option_number::observe); o && o->as_uint() == 0) ++observe_registrations;
      if (state_error) return coap::detail::refuse(res, *state_error);
      res.set(coap::response_code::content, state, coap::content_format::text_plain);
    });
    ctx.add_resource("blob").on(coap::method::get, [this](const coap::request& r, coap::basic_response<>& res) {
      ++hits;
      res.set(coap::response_code::content, body_of(2000) + std::string(r.query("i").value_or("")));
    });
    ctx.add_resource("echo").on(coap::method::put, [this](const coap::request& r, coap::basic_response<>& res) {
      ++hits;
      res.set(coap::response_code::changed, std::string("got ") + std::to_string(r.payload().size()));
    });
    coap::security::psk_server_config psk;
    psk.key = psk_key;
    BOOST_TEST_REQUIRE(!coap::security::set_psk(ctx, psk));
    BOOST_TEST_REQUIRE(!ctx.add_endpoint<coap::udp>(loopback, 0, &udp_port));
    BOOST_TEST_REQUIRE(!ctx.add_endpoint<coap::tcp>(loopback, 0, &tcp_port));
    BOOST_TEST_REQUIRE(!(ctx.add_endpoint<coap::udp, coap::psk>(loopback, 0, &dtls_port)));
  }
};

struct fixture {
  asio::io_context io;
  origin server{io};
  coap::context proxy_ctx{io.get_executor()};
  coap::context client_ctx{io.get_executor()};
  std::uint16_t proxy_port = 0;
  std::optional<test_proxy> proxy;
  udp_session client;

  explicit fixture(coap::proxy_policy policy = coap::proxy_policy::allow({"127.0.0.1"}),
                   coap::proxy_config config = quick_config()) {
    BOOST_TEST_REQUIRE(!proxy_ctx.add_endpoint<coap::udp>(loopback, 0, &proxy_port));
    proxy.emplace(std::move(policy), config);
    proxy->install(proxy_ctx);
    coap::security::psk_client_config psk;
    psk.identity = "proxy";
    psk.key = psk_key;
    proxy->set_upstream_security<dtls_session>(psk);
    std::error_code ec;
    client = udp_session::create_client(client_ctx, asio::ip::udp::endpoint(loopback, proxy_port), ec);
    BOOST_TEST_REQUIRE(!ec);
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

  std::string target(std::string_view scheme, std::uint16_t port, std::string_view path) const {
    return std::string(scheme) + "://127.0.0.1:" + std::to_string(port) + "/" + std::string(path);
  }

  // A request through the proxy; the response (or nothing when the client gave up).
  std::optional<coap::message> ask(coap::message m) {
    std::optional<coap::message> out;
    bool done = false;
    client.async_request(std::move(m), [&](std::error_code ec, coap::message r) {
      done = true;
      if (!ec) out = std::move(r);
    });
    BOOST_TEST_REQUIRE(run_until([&] { return done; }, 15s));
    return out;
  }
  std::optional<coap::message> get_via(const std::string& proxy_uri, std::optional<std::uint32_t> hop_limit = {}) {
    coap::message m(coap::method::get);
    m.add(coap::options::proxy_uri{}, proxy_uri);
    if (hop_limit) m.add(coap::options::hop_limit{}, *hop_limit);
    return ask(std::move(m));
  }
};

// One downstream observation through the proxy: every message it yields, and how it ended.
struct watcher {
  coap::observation observation;
  std::vector<std::string> got;  // "2.05 Content s1"
  std::optional<std::error_code> ended;
  std::optional<std::error_code> failed;  // the registration itself

  void start(udp_session& s, coap::message m) {
    s.async_observe(std::move(m), [this](std::error_code ec, coap::observation o) {
      if (ec) {
        failed = ec;
        return;
      }
      observation = std::move(o);
      pull();
    });
  }
  void pull() {
    observation.async_next([this](std::error_code ec, coap::message m) {
      if (ec) {
        ended = ec;
        return;
      }
      got.push_back(coap::to_string(m.code()) + " " + std::string(m.payload_string()));
      pull();
    });
  }
  std::string last() const { return got.empty() ? "" : got.back(); }
};

std::string code_of(const std::optional<coap::message>& m) { return m ? coap::to_string(m->code()) : "none"; }
std::string code_of(const coap::message& m) { return coap::to_string(m.code()); }
std::string str(coap::response_code c) { return coap::to_string(coap::code(c)); }

}  // namespace

BOOST_AUTO_TEST_CASE(scheme_to_session_type_at_compile_time) {
  static_assert(test_proxy::serves<udp_session>(coap::scheme::coap));
  static_assert(test_proxy::serves<tcp_session>(coap::scheme::coap_tcp));
  static_assert(test_proxy::serves<dtls_session>(coap::scheme::coaps));
  static_assert(!test_proxy::supports(coap::scheme::coaps_tcp));
  static_assert(coap::proxy<udp_session>::supports(coap::scheme::coap));
  static_assert(!coap::proxy<udp_session>::supports(coap::scheme::coap_tcp));
}

BOOST_AUTO_TEST_CASE(forward_get_coap_to_coap) {
  fixture f;
  auto r = f.get_via(f.target("coap", f.server.udp_port, "hello"));
  BOOST_TEST_REQUIRE(r.has_value());
  BOOST_TEST(code_of(*r) == str(coap::response_code::content));
  BOOST_TEST(r->payload_string() == "world");
  BOOST_TEST(f.server.hits == 1);
  // RFC 8768: added with 16 when absent.
  BOOST_TEST(f.server.last_hop_limit.value_or(0) == 16u);
  BOOST_TEST(f.proxy->counters().forwarded == 1u);
}

BOOST_AUTO_TEST_CASE(forward_with_proxy_scheme_and_uri_options) {
  fixture f;
  coap::message m(coap::method::get);
  m.add(coap::options::uri_host{}, "127.0.0.1");
  m.add(coap::options::uri_port{}, f.server.tcp_port);
  m.add(coap::options::uri_path{}, "hello");
  m.add(coap::options::proxy_scheme{}, "coap+tcp");
  auto r = f.ask(std::move(m));
  BOOST_TEST_REQUIRE(r.has_value());
  BOOST_TEST(r->payload_string() == "world");
  BOOST_TEST(f.server.hits == 1);
}

BOOST_AUTO_TEST_CASE(forward_coap_to_coap_tcp_reuses_the_session) {
  fixture f;
  f.proxy_ctx.config().session = {};
  for (int i = 0; i < 3; ++i) {
    f.proxy->clear_cache();
    auto r = f.get_via(f.target("coap+tcp", f.server.tcp_port, "hello"));
    BOOST_TEST_REQUIRE(r.has_value());
    BOOST_TEST(r->payload_string() == "world");
  }
  BOOST_TEST(f.server.hits == 3);
  BOOST_TEST(f.proxy->counters().sessions_created == 1u);
  BOOST_TEST(f.proxy->upstream_session_count() == 1u);
}

BOOST_AUTO_TEST_CASE(forward_coap_to_coaps_psk) {
  fixture f;
  auto r = f.get_via(f.target("coaps", f.server.dtls_port, "hello"));
  BOOST_TEST_REQUIRE(r.has_value());
  BOOST_TEST(code_of(*r) == str(coap::response_code::content));
  BOOST_TEST(r->payload_string() == "world");
}

BOOST_AUTO_TEST_CASE(unsupported_scheme_is_5_05) {
  fixture f(coap::proxy_policy::allow_all());
  auto r = f.get_via("coaps+tcp://127.0.0.1:1/hello");
  BOOST_TEST(code_of(r) == str(coap::response_code::proxying_not_supported));
  BOOST_TEST(f.proxy->counters().forwarded == 0u);
}

BOOST_AUTO_TEST_CASE(block_wise_body_through_the_proxy) {
  fixture f;
  auto r = f.get_via(f.target("coap", f.server.udp_port, "big"));
  BOOST_TEST_REQUIRE(r.has_value());
  BOOST_TEST(code_of(*r) == str(coap::response_code::content));
  BOOST_TEST(r->payload_string() == body_of(5000));
  // Upstream fetched it once; the later blocks came from the proxy.
  BOOST_TEST(f.server.hits == 1);

  // An upload: Block1 on both legs.
  coap::message put(coap::method::put);
  put.add(coap::options::proxy_uri{}, f.target("coap+tcp", f.server.tcp_port, "echo"));
  put.set_payload(body_of(3000));
  auto p = f.ask(std::move(put));
  BOOST_TEST_REQUIRE(p.has_value());
  BOOST_TEST(code_of(*p) == str(coap::response_code::changed));
  BOOST_TEST(p->payload_string() == "got 3000");
}

BOOST_AUTO_TEST_CASE(hop_limit_is_decremented_and_reaches_zero) {
  fixture f;
  auto r = f.get_via(f.target("coap", f.server.udp_port, "hello"), 5);
  BOOST_TEST_REQUIRE(r.has_value());
  BOOST_TEST(f.server.last_hop_limit.value_or(0) == 4u);
  auto stopped = f.get_via(f.target("coap", f.server.udp_port, "hello"), 1);
  BOOST_TEST(code_of(stopped) == str(coap::response_code::hop_limit_reached));
  BOOST_TEST(f.server.hits == 1);
  BOOST_TEST(f.proxy->counters().hop_limit_reached == 1u);
}

BOOST_AUTO_TEST_CASE(default_policy_refuses_everything) {
  fixture f{coap::proxy_policy()};
  auto r = f.get_via(f.target("coap", f.server.udp_port, "hello"));
  BOOST_TEST(code_of(r) == str(coap::response_code::proxying_not_supported));
  BOOST_TEST(f.server.hits == 0);
  BOOST_TEST(f.proxy->counters().refused == 1u);
  BOOST_TEST(f.proxy->upstream_session_count() == 0u);
}

BOOST_AUTO_TEST_CASE(unlisted_host_and_scheme_are_refused_without_upstream_traffic) {
  auto policy = coap::proxy_policy::allow({"192.0.2.1"});
  fixture f{policy};
  std::vector<std::string> lines;
  f.proxy->set_logger([&](std::string_view l) { lines.emplace_back(l); });
  auto r = f.get_via(f.target("coap", f.server.udp_port, "hello"));
  BOOST_TEST(code_of(r) == str(coap::response_code::forbidden));

  auto only_tcp = coap::proxy_policy::allow({"127.0.0.1"});
  only_tcp.only({coap::scheme::coap_tcp});
  fixture g{only_tcp};
  auto s = g.get_via(g.target("coap", g.server.udp_port, "hello"));
  BOOST_TEST(code_of(s) == str(coap::response_code::proxying_not_supported));
  BOOST_TEST(f.server.hits == 0);
  BOOST_TEST(g.server.hits == 0);
  BOOST_TEST(f.proxy->counters().forwarded == 0u);
  BOOST_TEST(g.proxy->counters().refused == 1u);
  BOOST_TEST(lines.size() == 1u);
}

BOOST_AUTO_TEST_CASE(cache_hit_costs_no_upstream_request) {
  fixture f;
  auto a = f.get_via(f.target("coap", f.server.udp_port, "hello"));
  auto b = f.get_via(f.target("coap", f.server.udp_port, "hello"));
  BOOST_TEST_REQUIRE(b.has_value());
  BOOST_TEST(b->payload_string() == "world");
  BOOST_TEST(f.server.hits == 1);
  BOOST_TEST(f.proxy->counters().cache_hits == 1u);
  const auto max_age = b->get(coap::options::max_age{});
  BOOST_TEST(max_age.value_or(99) <= 60u);
  // Another form of the same target (Proxy-Scheme + Uri-*) shares the entry.
  coap::message m(coap::method::get);
  m.add(coap::options::uri_host{}, "127.0.0.1");
  m.add(coap::options::uri_port{}, f.server.udp_port);
  m.add(coap::options::uri_path{}, "hello");
  m.add(coap::options::proxy_scheme{}, "coap");
  auto c = f.ask(std::move(m));
  BOOST_TEST(f.server.hits == 1);
  BOOST_TEST(f.proxy->counters().cache_hits == 2u);
}

BOOST_AUTO_TEST_CASE(max_age_expiry_and_etag_revalidation) {
  fixture f;
  f.server.max_age = 1;
  auto a = f.get_via(f.target("coap", f.server.udp_port, "hello"));
  BOOST_TEST_REQUIRE(a.has_value());
  f.get_via(f.target("coap", f.server.udp_port, "hello"));
  BOOST_TEST(f.server.hits == 1);
  f.run_until([] { return false; }, 1100ms);
  auto c = f.get_via(f.target("coap", f.server.udp_port, "hello"));
  BOOST_TEST(f.server.hits == 2);  // stale: fetched again

  // With an ETag: a stale entry is validated, and 2.03 makes it fresh again.
  auto t1 = f.get_via(f.target("coap", f.server.udp_port, "tagged"));
  BOOST_TEST_REQUIRE(t1.has_value());
  BOOST_TEST(t1->payload_string() == "tagged body");
  f.run_until([] { return false; }, 1100ms);
  auto t2 = f.get_via(f.target("coap", f.server.udp_port, "tagged"));
  BOOST_TEST_REQUIRE(t2.has_value());
  BOOST_TEST(code_of(*t2) == str(coap::response_code::content));
  BOOST_TEST(t2->payload_string() == "tagged body");
  BOOST_TEST(f.server.validations == 1);
  BOOST_TEST(f.proxy->counters().revalidated == 1u);
  auto t3 = f.get_via(f.target("coap", f.server.udp_port, "tagged"));
  BOOST_TEST(f.server.validations == 1);  // fresh again: from the cache
}

BOOST_AUTO_TEST_CASE(cache_is_bounded) {
  auto config = quick_config();
  config.cache.max_entries = 2;
  fixture f{coap::proxy_policy::allow({"127.0.0.1"}), config};
  for (auto path : {"hello", "tagged", "big"}) f.get_via(f.target("coap", f.server.udp_port, path));
  BOOST_TEST(f.proxy->cache_entries() == 2u);
  f.get_via(f.target("coap", f.server.udp_port, "hello"));  // evicted first: fetched again
  BOOST_TEST(f.server.hits == 4);
}

BOOST_AUTO_TEST_CASE(origin_that_resets_is_5_02) {
  fixture f;
  // A UDP "origin" that answers every CON with RST (RFC 7252 section 4.2).
  asio::ip::udp::socket rst(f.io, asio::ip::udp::endpoint(loopback, 0));
  std::array<std::uint8_t, 1500> buffer{};
  asio::ip::udp::endpoint peer;
  std::function<void()> receive = [&] {
    rst.async_receive_from(asio::buffer(buffer), peer, [&](boost::system::error_code ec, std::size_t n) {
      if (ec) return;
      coap::udp_codec::header h{};
      if (!coap::udp_codec::parse_header(std::span(buffer.data(), n), h)) {
        std::array<std::uint8_t, coap::udp_codec::header_size> out{};
        coap::udp_codec::encode_empty(coap::message_type::reset, h.message_id, out);
        rst.send_to(asio::buffer(out), peer);
      }
      receive();
    });
  };
  receive();
  auto r = f.get_via(f.target("coap", rst.local_endpoint().port(), "hello"));
  BOOST_TEST(code_of(r) == str(coap::response_code::bad_gateway));
  BOOST_TEST(f.proxy->counters().bad_gateway == 1u);
}

BOOST_AUTO_TEST_CASE(refused_tcp_connection_is_5_02) {
  fixture f;
  std::uint16_t closed_port = 0;
  {
    asio::ip::tcp::acceptor a(f.io, asio::ip::tcp::endpoint(loopback, 0));
    closed_port = a.local_endpoint().port();
  }
  auto r = f.get_via(f.target("coap+tcp", closed_port, "hello"));
  BOOST_TEST(code_of(r) == str(coap::response_code::bad_gateway));
  BOOST_TEST(f.proxy->upstream_session_count() == 0u);
}

BOOST_AUTO_TEST_CASE(silent_origin_is_5_04) {
  fixture f;
  asio::ip::udp::socket silent(f.io, asio::ip::udp::endpoint(loopback, 0));
  auto r = f.get_via(f.target("coap", silent.local_endpoint().port(), "hello"));
  BOOST_TEST(code_of(r) == str(coap::response_code::gateway_timeout));
  BOOST_TEST(f.proxy->counters().gateway_timeout == 1u);
}

BOOST_AUTO_TEST_CASE(reverse_proxy_maps_a_path_prefix) {
  fixture f{coap::proxy_policy()};  // the policy is for forward requests; mappings are the operator's
  BOOST_TEST(!f.proxy->map("/sensors", "coap+tcp://127.0.0.1:" + std::to_string(f.server.tcp_port) + "/"));
  BOOST_TEST(f.proxy->map("/x", "coaps+tcp://127.0.0.1/") == coap::make_error_code(coap::error::unsupported_scheme));
  f.proxy_ctx.add_resource("local").on(coap::method::get, [](const coap::request&, coap::basic_response<>& res) {
    res.set(coap::response_code::content, "mine");
  });
  coap::message m(coap::method::get);
  m.add(coap::options::uri_path{}, "sensors");
  m.add(coap::options::uri_path{}, "hello");
  auto r = f.ask(std::move(m));
  BOOST_TEST_REQUIRE(r.has_value());
  BOOST_TEST(r->payload_string() == "world");
  coap::message l(coap::method::get);
  l.add(coap::options::uri_path{}, "local");
  BOOST_TEST(f.ask(std::move(l))->payload_string() == "mine");
  coap::message n(coap::method::get);
  n.add(coap::options::uri_path{}, "nothing");
  BOOST_TEST(code_of(f.ask(std::move(n))) == str(coap::response_code::not_found));
}

BOOST_AUTO_TEST_CASE(own_names_are_served_locally_and_next_hop_chains) {
  // A second proxy in front of the first: everything goes to the next hop, whose own name
  // "origin.local" is then... not ours: it forwards to the origin.
  fixture f;
  f.proxy->add_name("me.local");
  f.proxy_ctx.add_resource("local").on(coap::method::get, [](const coap::request&, coap::basic_response<>& res) {
    res.set(coap::response_code::content, "mine");
  });
  auto own = f.get_via("coap://me.local/local");
  BOOST_TEST_REQUIRE(own.has_value());
  BOOST_TEST(own->payload_string() == "mine");
  BOOST_TEST(f.proxy->counters().local == 1u);

  coap::context front_ctx(f.io.get_executor());
  std::uint16_t front_port = 0;
  BOOST_TEST_REQUIRE(!front_ctx.add_endpoint<coap::udp>(loopback, 0, &front_port));
  coap::proxy<udp_session> front(coap::proxy_policy::allow_all(), quick_config());
  BOOST_TEST(!front.set_next_hop("coap://127.0.0.1:" + std::to_string(f.proxy_port)));
  front.install(front_ctx);
  std::error_code ec;
  f.client = udp_session::create_client(f.client_ctx, asio::ip::udp::endpoint(loopback, front_port), ec);
  auto r = f.get_via(f.target("coap", f.server.udp_port, "hello"), 10);
  BOOST_TEST_REQUIRE(r.has_value());
  BOOST_TEST(r->payload_string() == "world");
  BOOST_TEST(f.server.last_hop_limit.value_or(0) == 8u);  // two proxies on the way
  BOOST_TEST(front.counters().forwarded == 1u);
  f.client.release();
}

// ---- RFC 7641 section 5: observing through the proxy ----

namespace {
coap::message observe_request(const std::string& proxy_uri) {
  coap::message m(coap::method::get);
  m.add(coap::options::proxy_uri{}, proxy_uri);
  return m;
}
const std::string content = str(coap::response_code::content);
}  // namespace

BOOST_AUTO_TEST_CASE(three_observers_share_one_upstream_observation) {
  for (auto scheme : {"coap", "coap+tcp"}) {
    BOOST_TEST_CONTEXT("upstream " << scheme) {
      fixture f;
      const auto target = f.target(scheme, std::string_view(scheme) == "coap" ? f.server.udp_port : f.server.tcp_port, "obs");
      // Three downstream sessions (three client ports), one observation each.
      std::vector<udp_session> clients;
      for (int i = 0; i < 3; ++i) {
        std::error_code ec;
        clients.push_back(udp_session::create_client(f.client_ctx, asio::ip::udp::endpoint(loopback, f.proxy_port), ec));
        BOOST_TEST_REQUIRE(!ec);
      }
      std::array<watcher, 3> w;
      for (int i = 0; i < 3; ++i) {
        w[i].start(clients[i], observe_request(target));
        // The first waits for the upstream registration, the others join it.
        BOOST_TEST_REQUIRE(f.run_until([&] { return w[i].got.size() == 1; }));
        BOOST_TEST(w[i].last() == content + " s0");
      }
      BOOST_TEST(f.server.observe_registrations == 1);
      BOOST_TEST(f.server.ctx.observer_count() == 1u);
      BOOST_TEST(f.proxy->counters().observations_started == 1u);
      BOOST_TEST(f.proxy->counters().observers_joined == 2u);
      BOOST_TEST(f.proxy_ctx.observer_count() == 3u);

      // Each upstream notification reaches every observer, with its own token.
      for (auto state : {"s1", "s2"}) {
        f.server.state = state;
        f.server.ctx.notify_observers("obs");
        BOOST_TEST_REQUIRE(f.run_until([&] {
          return std::all_of(w.begin(), w.end(), [&](const watcher& x) { return x.last() == content + " " + state; });
        }));
      }
      BOOST_TEST(f.proxy->counters().notifications == 2u);
      // The notifications refreshed the cache: a plain GET is a hit with the latest state.
      const auto hits = f.server.hits;
      auto plain = f.get_via(target);
      BOOST_TEST_REQUIRE(plain.has_value());
      BOOST_TEST(plain->payload_string() == "s2");
      BOOST_TEST(f.server.hits == hits);

      // Deregistration upstream only when the last observer left.
      w[0].observation.cancel();
      w[1].observation.cancel();
      f.run_until([&] { return f.proxy_ctx.observer_count() == 1u; });
      BOOST_TEST(f.proxy_ctx.observer_count() == 1u);
      f.run_until([] { return false; }, 200ms);
      BOOST_TEST(f.server.ctx.observer_count() == 1u);
      f.server.state = "s3";
      f.server.ctx.notify_observers("obs");
      BOOST_TEST_REQUIRE(f.run_until([&] { return w[2].last() == content + " s3"; }));
      w[2].observation.cancel();
      BOOST_TEST_REQUIRE(f.run_until([&] { return f.server.ctx.observer_count() == 0u; }));
      BOOST_TEST(f.proxy->observation_count() == 0u);
      BOOST_TEST(f.proxy->counters().observations_released == 1u);
      BOOST_TEST(w[0].got.size() == 3u);  // s0, s1, s2: nothing after its cancel
    }
  }
}

BOOST_AUTO_TEST_CASE(an_observer_that_resets_leaves_and_the_last_one_deregisters) {
  fixture f;
  const auto target = f.target("coap", f.server.udp_port, "obs");
  watcher w;
  w.start(f.client, observe_request(target));
  BOOST_TEST_REQUIRE(f.run_until([&] { return w.got.size() == 1; }));
  BOOST_TEST(f.server.ctx.observer_count() == 1u);
  // Forgotten locally: the next notification is answered with RST (RFC 7641 section 3.6),
  // the proxy's observer goes, and with it the upstream observation.
  w.observation.forget();
  f.run_until([] { return false; }, 50ms);
  f.proxy_ctx.config().observe_con_every = 1;  // a CON, so that the RST names it
  f.server.state = "s1";
  f.server.ctx.notify_observers("obs");
  BOOST_TEST_REQUIRE(f.run_until([&] { return f.server.ctx.observer_count() == 0u; }));
  BOOST_TEST(f.proxy_ctx.observer_count() == 0u);
  BOOST_TEST(f.proxy->counters().observations_released == 1u);
}

BOOST_AUTO_TEST_CASE(upstream_end_reaches_every_observer) {
  // The origin's error answer is each observer's last notification (RFC 7641 section 4.2).
  {
    fixture f;
    const auto target = f.target("coap", f.server.udp_port, "obs");
    std::array<watcher, 2> w;
    for (auto& x : w) {
      x.start(f.client, observe_request(target));
      BOOST_TEST_REQUIRE(f.run_until([&] { return x.got.size() == 1; }));
    }
    f.server.state_error = coap::response_code::service_unavailable;
    f.server.ctx.notify_observers("obs");
    BOOST_TEST_REQUIRE(f.run_until([&] { return w[0].ended && w[1].ended; }));
    for (auto& x : w) {
      BOOST_TEST(x.last() == str(coap::response_code::service_unavailable) + " Service Unavailable");
      BOOST_TEST((*x.ended == coap::make_error_code(coap::error::not_observable)));
    }
    BOOST_TEST(f.proxy->observation_count() == 0u);
    BOOST_TEST(f.proxy_ctx.observer_count() == 0u);
    BOOST_TEST(f.proxy->counters().observations_ended == 1u);
  }
  // The upstream session fails (the origin closes its TCP connections): 5.02.
  {
    fixture f;
    const auto target = f.target("coap+tcp", f.server.tcp_port, "obs");
    watcher w;
    w.start(f.client, observe_request(target));
    BOOST_TEST_REQUIRE(f.run_until([&] { return w.got.size() == 1; }));
    f.server.ctx.stop();
    BOOST_TEST_REQUIRE(f.run_until([&] { return w.ended.has_value(); }));
    BOOST_TEST(w.last() == str(coap::response_code::bad_gateway) + " Bad Gateway");
    BOOST_TEST(f.proxy->observation_count() == 0u);
  }
  // An origin that does not let it observe: a plain answer, not registered downstream either.
  {
    fixture f;
    const auto target = f.target("coap", f.server.udp_port, "hello");
    watcher w;
    w.start(f.client, observe_request(target));
    BOOST_TEST_REQUIRE(f.run_until([&] { return w.ended.has_value(); }));
    BOOST_TEST(w.last() == content + " world");
    BOOST_TEST((*w.ended == coap::make_error_code(coap::error::not_observable)));
    BOOST_TEST(f.proxy_ctx.observer_count() == 0u);
    BOOST_TEST(f.proxy->observation_count() == 0u);
  }
}

BOOST_AUTO_TEST_CASE(observations_are_capped) {
  auto config = quick_config();
  config.max_observations = 1;
  fixture f{coap::proxy_policy::allow({"127.0.0.1"}), config};
  watcher a, b;
  a.start(f.client, observe_request(f.target("coap", f.server.udp_port, "obs")));
  BOOST_TEST_REQUIRE(f.run_until([&] { return a.got.size() == 1; }));
  // A second target past the cap: a plain GET, answered without Observe.
  b.start(f.client, observe_request(f.target("coap+tcp", f.server.tcp_port, "obs")));
  BOOST_TEST_REQUIRE(f.run_until([&] { return b.ended.has_value(); }));
  BOOST_TEST(b.last() == content + " s0");
  BOOST_TEST(f.proxy->observation_count() == 1u);
  BOOST_TEST(f.server.ctx.observer_count() == 1u);
}

BOOST_AUTO_TEST_CASE(a_large_state_is_observed_block_wise_on_both_legs) {
  fixture f;
  f.server.state = body_of(3000);
  watcher w;
  w.start(f.client, observe_request(f.target("coap", f.server.udp_port, "obs")));
  BOOST_TEST_REQUIRE(f.run_until([&] { return w.got.size() == 1; }));
  BOOST_TEST(w.last() == content + " " + body_of(3000));
  f.server.state = body_of(4000);
  f.server.ctx.notify_observers("obs");
  BOOST_TEST_REQUIRE(f.run_until([&] { return w.got.size() == 2; }));
  BOOST_TEST(w.last() == content + " " + body_of(4000));
  BOOST_TEST(f.server.ctx.observer_count() == 1u);
  BOOST_TEST(f.proxy->counters().observations_started == 1u);
}

// ---- coaps+tcp upstream: TLS with certificates (RFC 8323 section 9, RFC 7252 section 9.1.3.3) ----

BOOST_AUTO_TEST_CASE(forward_coap_to_coaps_tcp_pki) {
  using tls_session = coap::session<coap::tcp, coap::pki>;
  using pki_proxy = coap::proxy<udp_session, tls_session>;
  static_assert(pki_proxy::serves<tls_session>(coap::scheme::coaps_tcp));
  namespace sec = coap::security;
  auto pki = [](const std::string& name) {
    sec::pki_config c;
    c.key = sec::pki_key::from_files(coap::test::cert("ca.crt"), coap::test::cert(name + ".crt"),
                                     coap::test::cert(name + ".key"));
    return c;
  };
  asio::io_context io;
  origin server(io);
  BOOST_TEST_REQUIRE(!sec::set_pki(server.ctx, pki("server")));
  std::uint16_t tls_port = 0;
  BOOST_TEST_REQUIRE(!(server.ctx.add_endpoint<coap::tcp, coap::pki>(loopback, 0, &tls_port)));
  coap::context proxy_ctx(io.get_executor()), client_ctx(io.get_executor());
  std::uint16_t proxy_port = 0;
  BOOST_TEST_REQUIRE(!proxy_ctx.add_endpoint<coap::udp>(loopback, 0, &proxy_port));
  pki_proxy proxy(coap::proxy_policy::allow({"127.0.0.1", "localhost"}), quick_config());
  proxy.set_upstream_security<tls_session>(pki("client"));
  proxy.install(proxy_ctx);
  std::error_code ec;
  auto client = udp_session::create_client(client_ctx, asio::ip::udp::endpoint(loopback, proxy_port), ec);
  BOOST_TEST_REQUIRE(!ec);
  auto run_until = [&](auto done) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      io.run_for(5ms);
      io.restart();
    }
    return done();
  };
  auto get = [&](const std::string& uri) {
    std::optional<coap::message> out;
    bool done = false;
    coap::message m(coap::method::get);
    m.add(coap::options::proxy_uri{}, uri);
    client.async_request(std::move(m), [&](std::error_code e, coap::message r) {
      done = true;
      if (!e) out = std::move(r);
    });
    BOOST_TEST_REQUIRE(run_until([&] { return done; }));
    return out;
  };
  const auto base = "coaps+tcp://127.0.0.1:" + std::to_string(tls_port) + "/";
  auto r = get(base + "hello");
  BOOST_TEST_REQUIRE(r.has_value());
  BOOST_TEST(code_of(*r) == str(coap::response_code::content));
  BOOST_TEST(r->payload_string() == "world");
  // A large body (block-wise: BERT upstream, 1024-byte blocks downstream).
  auto big = get(base + "big");
  BOOST_TEST_REQUIRE(big.has_value());
  BOOST_TEST(big->payload_string() == body_of(5000));
  // Observed over TLS.
  watcher w;
  w.start(client, observe_request(base + "obs"));
  BOOST_TEST_REQUIRE(run_until([&] { return w.got.size() == 1; }));
  server.state = "s1";
  server.ctx.notify_observers("obs");
  BOOST_TEST_REQUIRE(run_until([&] { return w.last() == content + " s1"; }));
  BOOST_TEST(proxy.counters().sessions_created == 1u);
  // A server whose certificate the proxy does not trust: 5.02, no answer from it.
  coap::context rogue(io.get_executor());
  BOOST_TEST_REQUIRE(!sec::set_pki(rogue, pki("untrusted")));
  std::uint16_t rogue_port = 0;
  BOOST_TEST_REQUIRE(!(rogue.add_endpoint<coap::tcp, coap::pki>(loopback, 0, &rogue_port)));
  auto refused = get("coaps+tcp://127.0.0.1:" + std::to_string(rogue_port) + "/hello");
  BOOST_TEST(code_of(refused) == str(coap::response_code::bad_gateway));
  w.observation.cancel();
  BOOST_TEST(run_until([&] { return server.ctx.observer_count() == 0u; }));
  client.release();
}

// ---- the cache's memory: the proxy context's Allocator, bounded in bytes ----

namespace {
struct allocation_stats {
  static inline std::size_t live = 0;
  static inline std::size_t calls = 0;
};
template <class T>
struct counting_allocator {
  using value_type = T;
  counting_allocator() = default;
  template <class U>
  counting_allocator(const counting_allocator<U>&) noexcept {}
  T* allocate(std::size_t n) {
    allocation_stats::live += n * sizeof(T);
    ++allocation_stats::calls;
    return std::allocator<T>().allocate(n);
  }
  void deallocate(T* p, std::size_t n) noexcept {
    allocation_stats::live -= n * sizeof(T);
    std::allocator<T>().deallocate(p, n);
  }
  template <class U>
  bool operator==(const counting_allocator<U>&) const noexcept {
    return true;
  }
};
}  // namespace

BOOST_AUTO_TEST_CASE(cache_memory_comes_from_the_allocator_and_is_bounded) {
  using alloc = counting_allocator<std::uint8_t>;
  using counted_session = coap::session<coap::udp, coap::no_sec, alloc>;
  asio::io_context io;
  origin server(io);
  coap::basic_context<alloc> proxy_ctx(io.get_executor());
  coap::context client_ctx(io.get_executor());
  std::uint16_t proxy_port = 0;
  BOOST_TEST_REQUIRE(!proxy_ctx.add_endpoint<coap::udp>(loopback, 0, &proxy_port));
  auto config = quick_config();
  config.cache.max_bytes = 16 * 1024;
  coap::proxy<counted_session> proxy(coap::proxy_policy::allow({"127.0.0.1"}), config);
  proxy.install(proxy_ctx);
  std::error_code ec;
  auto client = udp_session::create_client(client_ctx, asio::ip::udp::endpoint(loopback, proxy_port), ec);
  BOOST_TEST_REQUIRE(!ec);
  auto get = [&](const std::string& uri) {
    std::optional<coap::message> out;
    bool done = false;
    coap::message m(coap::method::get);
    m.add(coap::options::proxy_uri{}, uri);
    client.async_request(std::move(m), [&](std::error_code e, coap::message r) {
      done = true;
      if (!e) out = std::move(r);
    });
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!done && std::chrono::steady_clock::now() < deadline) {
      io.run_for(5ms);
      io.restart();
    }
    return out;
  };
  const auto base = "coap://127.0.0.1:" + std::to_string(server.udp_port) + "/blob?i=";
  // Twenty 2 KB representations: more than 16 KiB.
  for (int i = 0; i < 20; ++i) {
    auto r = get(base + std::to_string(i));
    BOOST_TEST_REQUIRE(r.has_value());
    BOOST_TEST(r->payload_string() == body_of(2000) + std::to_string(i));
  }
  BOOST_TEST(proxy.cache_bytes() <= config.cache.max_bytes);
  BOOST_TEST(proxy.cache_entries() >= 5u);
  BOOST_TEST(proxy.cache_entries() < 20u);
  // The latest are hits.
  const auto hits = server.hits;
  BOOST_TEST(get(base + "19")->payload_string() == body_of(2000) + "19");
  BOOST_TEST(server.hits == hits);
  // What the cache holds came from the allocator: clearing it gives back about what it counts.
  const auto counted = proxy.cache_bytes();
  const auto live = allocation_stats::live;
  proxy.clear_cache();
  const auto freed = live - allocation_stats::live;
  BOOST_TEST(freed > 0u);
  BOOST_TEST(freed <= counted);
  BOOST_TEST(freed >= counted * 9 / 10);
  BOOST_TEST(proxy.cache_bytes() == 0u);
  client.release();
}

// ---- RFC 7252 section 5.2.2: an answer ready within the delay goes piggybacked ----

BOOST_AUTO_TEST_CASE(a_quick_upstream_answer_is_piggybacked_a_slow_one_separate) {
  fixture f;
  BOOST_TEST(f.proxy_ctx.config().session.deferred_ack_delay == f.proxy->config().downstream_ack_delay);
  asio::ip::udp::socket raw(f.io, asio::ip::udp::endpoint(loopback, 0));
  const asio::ip::udp::endpoint proxy_endpoint(loopback, f.proxy_port);
  auto send = [&](std::uint16_t mid, const std::string& uri) {
    coap::message m(coap::method::get);
    m.set_message_id(mid);
    m.set_token(coap::token::from_uint(mid, 4));
    m.add(coap::options::proxy_uri{}, uri);
    std::vector<std::uint8_t> wire;
    BOOST_TEST_REQUIRE(!coap::udp_codec::encode(m, wire));
    raw.send_to(asio::buffer(wire), proxy_endpoint);
  };
  // The datagrams that come within `limit`, as "type code" strings.
  auto receive = [&](std::chrono::milliseconds limit) {
    std::vector<std::string> got;
    std::array<std::uint8_t, 1500> buffer{};
    asio::ip::udp::endpoint from;
    bool waiting = false;
    std::function<void()> next = [&] {
      waiting = true;
      raw.async_receive_from(asio::buffer(buffer), from, [&](boost::system::error_code ec, std::size_t n) {
        waiting = false;
        if (ec) return;
        coap::message_view v;
        if (!coap::udp_codec::parse(std::span(buffer.data(), n), v))
          got.push_back(std::to_string(static_cast<int>(v.type())) + " " + coap::to_string(v.code()));
        next();
      });
    };
    next();
    f.run_until([] { return false; }, limit);
    raw.cancel();
    f.run_until([&] { return !waiting; }, 1s);
    return got;
  };
  const std::string ack = std::to_string(static_cast<int>(coap::message_type::acknowledgement));
  const std::string con = std::to_string(static_cast<int>(coap::message_type::confirmable));
  send(1, f.target("coap", f.server.udp_port, "hello"));
  const auto quick = receive(300ms);
  BOOST_TEST_REQUIRE(quick.size() == 1u);
  BOOST_TEST(quick[0] == ack + " " + content);  // one datagram: the answer in the ACK
  // A silent origin: the empty ACK after the delay, the 5.04 later as a CON.
  asio::ip::udp::socket silent(f.io, asio::ip::udp::endpoint(loopback, 0));
  send(2, f.target("coap", silent.local_endpoint().port(), "hello"));
  const auto slow = receive(4s);
  BOOST_TEST_REQUIRE(slow.size() >= 2u);
  BOOST_TEST(slow[0] == ack + " 0.00");
  BOOST_TEST(slow[1] == con + " " + str(coap::response_code::gateway_timeout));
}
