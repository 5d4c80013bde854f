// Where a session's memory comes from (issue 6): with std::pmr::polymorphic_allocator as the
// Allocator, every allocation of sessions, endpoints and exchanges goes to the context's
// memory resource; after warm-up, request/response traffic over UDP and TCP makes no global
// allocation at all (this binary replaces global operator new and delete to count them) and
// takes nothing new from a fixed arena. When the allocator refuses, new requests fail with
// coap::error::no_memory, servers refuse new peers, and existing sessions go on.
#include <coap/session.hpp>

#define BOOST_TEST_MODULE allocation
#include <boost/test/unit_test.hpp>

#include <coap/transports/tcp.hpp>
#include <coap/transports/udp.hpp>

#include "support/arena_allocator.hpp"
#include "support/run_until.hpp"

#include <boost/asio/bind_allocator.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <initializer_list>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

// ---- Global operator new and delete, every form, counted ----

namespace {
std::atomic<std::size_t> global_allocations{0};

void* counted_allocate(std::size_t size, std::size_t alignment) noexcept {
  global_allocations.fetch_add(1, std::memory_order_relaxed);
  if (size == 0) size = 1;
  if (alignment <= alignof(std::max_align_t)) return std::malloc(size);
  void* p = nullptr;
  return posix_memalign(&p, alignment, size) == 0 ? p : nullptr;
}
void* counted_allocate_or_throw(std::size_t size, std::size_t alignment) {
  if (void* p = counted_allocate(size, alignment)) return p;
  throw std::bad_alloc();
}
constexpr std::size_t plain = alignof(std::max_align_t);
}  // namespace

void* operator new(std::size_t n) { return counted_allocate_or_throw(n, plain); }
void* operator new[](std::size_t n) { return counted_allocate_or_throw(n, plain); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return counted_allocate(n, plain); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return counted_allocate(n, plain); }
void* operator new(std::size_t n, std::align_val_t a) { return counted_allocate_or_throw(n, static_cast<std::size_t>(a)); }
void* operator new[](std::size_t n, std::align_val_t a) { return counted_allocate_or_throw(n, static_cast<std::size_t>(a)); }
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return counted_allocate(n, static_cast<std::size_t>(a));
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return counted_allocate(n, static_cast<std::size_t>(a));
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }

namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using coap::test::pmr_allocator;
using pmr_context = coap::basic_context<pmr_allocator>;
using pmr_message = coap::basic_message<pmr_allocator>;

const auto loopback = asio::ip::make_address("127.0.0.1");

void add_hello(pmr_context& server) {
  server.add_resource("hello").on(coap::method::get,
                                  [](const coap::request&, coap::basic_response<pmr_allocator>& res) {
                                    res.set(coap::response_code::content, "world", coap::content_format::text_plain);
                                  });
}

pmr_message get(std::string_view path, const pmr_allocator& alloc, std::size_t payload = 0) {
  pmr_message m(coap::method::get, coap::message_type::confirmable, alloc);
  m.add(coap::options::uri_path{}, path);
  if (payload) m.set_payload(std::string(payload, 'x'));
  return m;
}

// Client and server in one process and one io_context, each context on its own fixed arena.
// A chain of requests: each completion (with its handler memory bound to the client's arena)
// starts the next one. The counters are read inside the chain, at the end of warm-up and at
// the end, so that nothing but the traffic runs between them.
template <class Transport>
struct round_trips {
  using session_type = coap::session<Transport, coap::no_sec, pmr_allocator>;

  static constexpr std::size_t warm_up = 600;  // beyond the server's 512 deduplication entries
  static constexpr std::size_t measured = 2000;

  struct snapshot {
    std::size_t global = 0, client_requests = 0, server_requests = 0, client_carved = 0, server_carved = 0;
  };

  asio::io_context io{1};
  coap::test::fixed_arena server_arena{16 << 20};
  coap::test::fixed_arena client_arena{16 << 20};
  // The endpoint's deduplication store made as used (4096 GET entries by default): smaller
  // here, so that warm-up fills it.
  static coap::context_config server_config() {
    coap::context_config c;
    c.dedup_droppable_capacity = 512;
    return c;
  }
  pmr_context server{io.get_executor(), server_config(), server_arena.allocator()};
  pmr_context client{io.get_executor(), {}, client_arena.allocator()};
  session_type session;
  std::size_t completed = 0;
  std::size_t failures = 0;
  snapshot before, after;

  // The completion handler: a plain function object, given an associated allocator below.
  struct next {
    round_trips* self;
    void operator()(std::error_code ec, pmr_message response) const { self->on_response(ec, response); }
  };

  round_trips() {
    add_hello(server);
    std::uint16_t port = 0;
    BOOST_TEST_REQUIRE(!server.template add_endpoint<Transport>(loopback, 0, &port));
    std::error_code ec;
    session = session_type::create_client(client, {loopback, port}, ec);
    BOOST_TEST_REQUIRE(!ec, ec.message());
  }

  snapshot take() const {
    return {global_allocations.load(), client_arena.requests().allocations(), server_arena.requests().allocations(),
            client_arena.carved().allocations(), server_arena.carved().allocations()};
  }

  void start() {
    // asio::bind_allocator: the type-erased handler (any_completion_handler) is stored in the
    // client's arena, not on the global heap.
    session.async_request(get("hello", client_arena.allocator()), asio::bind_allocator(client_arena.allocator(), next{this}));
  }

  void on_response(std::error_code ec, const pmr_message& response) {
    if (ec || response.payload_string() != "world") ++failures;
    ++completed;
    if (completed == warm_up) before = take();
    if (completed == warm_up + measured) {
      after = take();
      return;
    }
    start();
  }

  void run() {
    start();
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (completed < warm_up + measured && std::chrono::steady_clock::now() < deadline) io.run_one_for(1s);
    BOOST_TEST_REQUIRE(completed == warm_up + measured);
    BOOST_TEST(failures == 0u);
    const auto n = static_cast<double>(measured);
    BOOST_TEST_MESSAGE(Transport::name << ": " << measured << " round trips after " << warm_up << " of warm-up: "
                                       << after.global - before.global << " global allocations; arena allocations per "
                                       << "round trip: client " << static_cast<double>(after.client_requests - before.client_requests) / n
                                       << ", server " << static_cast<double>(after.server_requests - before.server_requests) / n
                                       << "; arena bytes carved in total: client " << client_arena.carved().live_bytes()
                                       << ", server " << server_arena.carved().live_bytes());
    // Not one global allocation in steady state.
    BOOST_TEST(after.global - before.global == 0u);
    // The client's exchanges did allocate (the exchange, the response message, the handler),
    // all of it from its arena, which reused what was freed: nothing new came out of the
    // fixed buffer on either side.
    BOOST_TEST(after.client_requests - before.client_requests >= measured);
    BOOST_TEST(after.client_carved == before.client_carved);
    BOOST_TEST(after.server_carved == before.server_carved);
  }

  ~round_trips() {
    session.release();
    client.stop();
    server.stop();
    io.restart();
    io.run_for(200ms);
  }
};

}  // namespace

BOOST_AUTO_TEST_CASE(udp_round_trips_make_no_global_allocation) {
  round_trips<coap::udp> t;
  t.run();
}

BOOST_AUTO_TEST_CASE(tcp_round_trips_make_no_global_allocation) {
  round_trips<coap::tcp> t;
  t.run();
}

// ---- Exhaustion: a byte budget that throws std::bad_alloc beyond it ----

namespace {

// One server and one client context, each on a counting resource with a budget.
template <class Transport>
struct bounded {
  using session_type = coap::session<Transport, coap::no_sec, pmr_allocator>;

  coap::test::counting_resource server_memory;
  coap::test::counting_resource client_memory;
  // The requests themselves are the application's: their memory is not under test.
  pmr_allocator user{std::pmr::new_delete_resource()};
  asio::io_context io{1};
  std::optional<pmr_context> server, client;
  std::uint16_t port = 0;

  bounded() {
    coap::context_config config;
    // A small deduplication ring, so that a warmed-up server session needs nothing more.
    config.session.dedup_capacity = 4;
    config.dedup_capacity = 4;
    config.dedup_droppable_capacity = 4;
    server.emplace(io.get_executor(), config, server_memory.allocator());
    client.emplace(io.get_executor(), coap::context_config{}, client_memory.allocator());
    add_hello(*server);
    // A response that needs more of the server's memory than a warmed-up session has.
    server->add_resource("big").on(coap::method::get, [](const coap::request&, coap::basic_response<pmr_allocator>& res) {
      static const std::string body(1000, 'y');
      res.set_payload(body);
    });
    BOOST_TEST_REQUIRE(!server->template add_endpoint<Transport>(loopback, 0, &port));
  }

  session_type connect(std::error_code& ec) { return session_type::create_client(*client, {loopback, port}, ec); }
  session_type connect() {
    std::error_code ec;
    auto s = connect(ec);
    BOOST_TEST_REQUIRE(!ec, ec.message());
    return s;
  }

  struct outcome {
    std::error_code ec;
    std::string code;
    std::string payload;
  };
  // One request; with `bind_handler`, the handler's memory is the client context's too.
  outcome request(session_type& s, std::size_t payload = 0, bool bind_handler = false,
                  std::string_view path = "hello") {
    outcome out;
    bool done = false;
    auto handler = [&](std::error_code ec, pmr_message m) {
      out.ec = ec;
      out.code = coap::to_string(m.code());
      out.payload = std::string(m.payload_string());
      done = true;
    };
    if (bind_handler) s.async_request(get(path, user, payload), asio::bind_allocator(client_memory.allocator(), handler));
    else s.async_request(get(path, user, payload), handler);
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!done && std::chrono::steady_clock::now() < deadline) io.run_one_for(100ms);
    BOOST_TEST_REQUIRE(done);
    return out;
  }
  bool served(session_type& s) {
    const auto out = request(s);
    return !out.ec && out.payload == "world";
  }
  void unbounded() {
    server_memory.set_budget(static_cast<std::size_t>(-1));
    client_memory.set_budget(static_cast<std::size_t>(-1));
  }

  // Everything the contexts allocated is given back once they are gone.
  void finish(std::initializer_list<session_type*> sessions) {
    for (auto* s : sessions) s->release();
    client->stop();
    server->stop();
    io.restart();
    io.run_for(500ms);
    client.reset();
    server.reset();
    io.restart();
    io.run_for(100ms);
    BOOST_TEST(server_memory.live_bytes() == 0u);
    BOOST_TEST(client_memory.live_bytes() == 0u);
  }
};

// Over a budget that leaves no room, a new request fails with no_memory however it runs out
// (its exchange, its response message or its handler's storage); a new client session fails
// the same way; with a little room, small requests go on and a large one fails.
template <class Transport>
void client_runs_out() {
  bounded<Transport> t;
  auto s = t.connect();
  for (int i = 0; i < 3; ++i) BOOST_TEST_REQUIRE(t.served(s));

  t.client_memory.set_budget(t.client_memory.live_bytes());
  BOOST_TEST((t.request(s).ec == coap::error::no_memory));
  BOOST_TEST((t.request(s, 0, true).ec == coap::error::no_memory));  // the handler's own storage
  std::error_code ec;
  auto refused = t.connect(ec);
  BOOST_TEST((ec == coap::error::no_memory));
  BOOST_TEST(!refused);

  t.client_memory.set_budget(t.client_memory.live_bytes() + 1024);
  BOOST_TEST(t.served(s));
  BOOST_TEST((t.request(s, 4000).ec == coap::error::no_memory));
  BOOST_TEST(t.served(s));
  BOOST_TEST(t.client_memory.refusals() >= 4u);

  t.unbounded();
  BOOST_TEST(t.served(s));
  t.finish({&s});
}

// A server without memory for a new peer refuses it (UDP: 5.03 with Max-Age; TCP: CSM and
// Abort) and goes on serving the sessions it has; once memory is back, the peer is served.
template <class Transport>
void server_runs_out() {
  bounded<Transport> t;
  auto a = t.connect();
  for (int i = 0; i < 8; ++i) BOOST_TEST_REQUIRE(t.served(a));
  BOOST_TEST(t.server->session_count() == 1u);

  t.server_memory.set_budget(t.server_memory.live_bytes());
  auto b = t.connect();
  const auto refused = t.request(b);
  if constexpr (Transport::reliable) {
    BOOST_TEST((refused.ec == coap::error::aborted_by_peer), refused.ec.message());
  } else {
    BOOST_TEST(!refused.ec);
    BOOST_TEST(refused.code == "5.03 Service Unavailable");
    BOOST_TEST(refused.payload == "out of memory");
  }
  BOOST_TEST(t.server_memory.refusals() >= 1u);
  BOOST_TEST(t.server->session_count() == 1u);
  for (int i = 0; i < 8; ++i) BOOST_TEST(t.served(a));  // the existing session goes on
  // A request whose answer needs memory gets 5.03 (RFC 7252 section 5.9.3.4), the session
  // goes on.
  const auto refusals = t.server_memory.refusals();
  const auto big = t.request(a, 0, false, "big");
  BOOST_TEST(!big.ec, big.ec.message());
  BOOST_TEST(big.code == "5.03 Service Unavailable");
  BOOST_TEST(t.server_memory.refusals() > refusals);
  BOOST_TEST(t.served(a));

  t.unbounded();
  auto c = t.connect();
  BOOST_TEST(t.served(c));
  if constexpr (!Transport::reliable) BOOST_TEST(t.served(b));
  BOOST_TEST(t.served(a));
  t.finish({&a, &b, &c});
}

}  // namespace

// Issue 16: a UDP server session makes its timer only when it has something to time. One that
// only answered piggybacked holds none: a second peer's session costs its object and little
// more (its control block, table node and deduplication entry's answer: about 130 bytes; no
// answer message nor deferred-response room, which the context lends and defer() makes; a
// timer would add 128 bytes). A CON notifier makes it once: each later CON notification
// allocates only the copy it retransmits. Once the observer is gone and the last wait ended,
// the idle session gives the timer back.
BOOST_AUTO_TEST_CASE(udp_server_session_holds_a_timer_only_to_time) {
  using server_session = coap::transports::udp_session_impl<coap::no_sec, pmr_allocator>;
  bounded<coap::udp> t;
  t.server->config().session.ack_timeout = 50ms;
  int state = 0;
  t.server->add_resource("tick").observable().on(coap::method::get,
                                                 [&](const coap::request&, coap::basic_response<pmr_allocator>& res) {
                                                   res.notify_confirmable();
                                                   res.set_payload(std::to_string(state));
                                                 });
  auto a = t.connect();
  BOOST_TEST_REQUIRE(t.served(a));
  auto b = t.connect();
  const auto before = t.server_memory.live_bytes();
  BOOST_TEST_REQUIRE(t.served(b));
  const auto idle_session = t.server_memory.live_bytes() - before;
  BOOST_TEST(idle_session < sizeof(server_session) + 192, idle_session);

  // The observer is a client of its own (std::allocator): its memory is not under test.
  coap::context observer_context{t.io.get_executor()};
  std::error_code ec;
  auto c = coap::session<coap::udp>::create_client(observer_context, {loopback, t.port}, ec);
  BOOST_TEST_REQUIRE(!ec);
  coap::message observe(coap::method::get, coap::message_type::confirmable);
  observe.add(coap::options::uri_path{}, "tick");
  std::optional<std::pair<std::error_code, coap::observation>> registered;
  c.async_observe(std::move(observe), [&](std::error_code e, coap::observation o) { registered.emplace(e, std::move(o)); });
  BOOST_TEST_REQUIRE(coap::test::run_until(t.io, [&] { return registered.has_value(); }, 2s, 2ms));
  BOOST_TEST_REQUIRE(!registered->first);
  auto& observation = registered->second;
  std::size_t received = 0;
  // One CON notification, delivered and acknowledged; the server's allocations it made.
  auto notify = [&] {
    const auto allocations = t.server_memory.allocations();
    ++state;
    BOOST_TEST_REQUIRE(t.server->notify_observers("tick") == 1u);
    observation.async_next([&](std::error_code e, coap::message) { received += !e; });
    const auto expected = received + 1;
    BOOST_TEST_REQUIRE(coap::test::run_until(t.io, [&] { return received == expected; }, 2s, 2ms));
    t.io.run_for(10ms);  // the ACK reaches the server
    t.io.restart();
    return t.server_memory.allocations() - allocations;
  };
  observation.async_next([&](std::error_code e, coap::message) { received += !e; });  // the registration's answer
  BOOST_TEST_REQUIRE(coap::test::run_until(t.io, [&] { return received == 1u; }, 2s, 2ms));
  BOOST_TEST(notify() >= 2u);  // the timer, the exchange table, the copy to retransmit
  for (int i = 0; i < 3; ++i) BOOST_TEST(notify() == 1u);  // the copy to retransmit only

  // Forgotten by the client: the next CON notification is rejected (RST) and the observer goes.
  // The earlier notifications' waits end first (their deadlines, at most 75 ms on); this one's
  // retransmission deadline (ACK_TIMEOUT 300 ms here, at least) is still ahead when the RST has
  // come: the timer is there until that wait ends, then goes.
  t.io.run_for(150ms);
  t.io.restart();
  t.server->config().session.ack_timeout = 300ms;
  observation = {};
  ++state;
  BOOST_TEST(t.server->notify_observers("tick") == 1u);
  BOOST_TEST_REQUIRE(coap::test::run_until(t.io, [&] { return t.server->observer_count() == 0u; }, 2s, 2ms));
  const auto with_timer = t.server_memory.live_bytes();
  t.io.run_for(800ms);  // the last wait (a retransmission's deadline) ends
  t.io.restart();
  BOOST_TEST(t.server_memory.live_bytes() + sizeof(boost::asio::steady_timer) <= with_timer);
  c.release();
  observer_context.stop();
  t.finish({&a, &b});
}

BOOST_AUTO_TEST_CASE(udp_client_requests_fail_with_no_memory) { client_runs_out<coap::udp>(); }
BOOST_AUTO_TEST_CASE(tcp_client_requests_fail_with_no_memory) { client_runs_out<coap::tcp>(); }
BOOST_AUTO_TEST_CASE(udp_server_refuses_peers_it_cannot_allocate) { server_runs_out<coap::udp>(); }
BOOST_AUTO_TEST_CASE(tcp_server_refuses_peers_it_cannot_allocate) { server_runs_out<coap::tcp>(); }

// The counter above is live: a global allocation shows.
BOOST_AUTO_TEST_CASE(global_allocations_are_counted) {
  const auto before = global_allocations.load();
  auto* p = new std::string(100, 'x');
  asm volatile("" : : "g"(p) : "memory");
  delete p;
  BOOST_TEST(global_allocations.load() > before);
}
