// RFC 7252 section 5.2.1: the coap-cpp server that bench/run_udp_bench measures against
// libcoap's coap-server. GET /x answers like libcoap's GET /time: 2.05 with Max-Age 1 and the
// current time as "%b %d %H:%M:%S" (15 bytes), piggybacked in the ACK.
//
// Global operator new and delete are replaced by counting versions. After the first
// --warmup-requests requests (counted in the handler) the allocation count is snapshot; on
// SIGTERM/SIGINT, or after --duration seconds, the server prints the allocations made per
// request since then (the goal is 0 at steady state) and exits.
//
// Usage: udp_bench_server [--host 127.0.0.1] [--port 5683] [--warmup-requests N]
//                         [--duration seconds] [--max-sessions N]
// Prints "udp_bench_server listening on HOST:PORT" once bound, and one line of key=value
// pairs starting with "udp_bench_server" at the end.
#include <coap/context.hpp>
#include <coap/option.hpp>
#include <coap/resource.hpp>
#include <coap/transports/udp.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <new>
#include <string>
#include <string_view>

// ---- Allocation counting ----

namespace {
std::atomic<std::uint64_t> allocations{0};
std::atomic<std::uint64_t> allocated_bytes{0};

void* counted_allocate(std::size_t size) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  allocated_bytes.fetch_add(size, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void* counted_allocate_aligned(std::size_t size, std::align_val_t alignment) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  allocated_bytes.fetch_add(size, std::memory_order_relaxed);
  const auto a = static_cast<std::size_t>(alignment);
  if (void* p = std::aligned_alloc(a, (size + a - 1) / a * a)) return p;
  throw std::bad_alloc();
}
}  // namespace

void* operator new(std::size_t size) { return counted_allocate(size); }
void* operator new[](std::size_t size) { return counted_allocate(size); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  try {
    return counted_allocate(size);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t size, const std::nothrow_t& t) noexcept { return operator new(size, t); }
void* operator new(std::size_t size, std::align_val_t a) { return counted_allocate_aligned(size, a); }
void* operator new[](std::size_t size, std::align_val_t a) { return counted_allocate_aligned(size, a); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

namespace {

struct options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 5683;
  std::uint64_t warmup_requests = 100000;
  double duration = 0;  // 0: until a signal
  std::size_t max_sessions = 4096;
};

[[noreturn]] void usage(const char* what) {
  std::fprintf(stderr, "udp_bench_server: %s\n", what);
  std::exit(2);
}

options parse_options(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage("missing option value");
      return argv[++i];
    };
    if (a == "--host") o.host = value();
    else if (a == "--port") o.port = static_cast<std::uint16_t>(std::stoul(value()));
    else if (a == "--warmup-requests") o.warmup_requests = std::stoull(value());
    else if (a == "--duration") o.duration = std::stod(value());
    else if (a == "--max-sessions") o.max_sessions = std::stoul(value());
    else usage(("unknown option " + std::string(a)).c_str());
  }
  return o;
}

double cpu_seconds() noexcept {
  rusage u;
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// What the handler counts; the snapshot is taken when request number warmup_requests is served.
struct counters {
  std::uint64_t warmup_requests = 0;
  std::uint64_t requests = 0;
  std::uint64_t allocations_at_warmup = 0;
  std::uint64_t bytes_at_warmup = 0;
  std::chrono::steady_clock::time_point warm_at{};
  double cpu_at_warmup = 0;
};

}  // namespace

int main(int argc, char** argv) {
  const options o = parse_options(argc, argv);
  boost::asio::io_context io(1);
  coap::context_config config;
  config.max_sessions = o.max_sessions;
  coap::context ctx(io.get_executor(), config);

  counters c;
  c.warmup_requests = o.warmup_requests;
  auto snapshot = [&c] {
    c.allocations_at_warmup = allocations.load(std::memory_order_relaxed);
    c.bytes_at_warmup = allocated_bytes.load(std::memory_order_relaxed);
    c.warm_at = std::chrono::steady_clock::now();
    c.cpu_at_warmup = cpu_seconds();
  };
  if (c.warmup_requests == 0) snapshot();

  ctx.add_resource("x").on(coap::method::get, [&c, &snapshot](const coap::request&, coap::basic_response<>& res) {
    // libcoap's coap-server hnd_get_time: the current time, Max-Age 1, text/plain.
    char text[32];
    const std::time_t now = std::time(nullptr);
    std::tm tm;
    gmtime_r(&now, &tm);
    const std::size_t n = std::strftime(text, sizeof text, "%b %d %H:%M:%S", &tm);
    res.message().add_uint_option(static_cast<std::uint16_t>(coap::option_number::max_age), 1);
    res.set_payload(std::string_view(text, n));
    if (++c.requests == c.warmup_requests) snapshot();
  });

  boost::system::error_code bec;
  const auto address = boost::asio::ip::make_address(o.host, bec);
  if (bec) usage("--host must be a numeric address");
  std::uint16_t bound = 0;
  if (auto ec = ctx.add_endpoint<coap::udp>(address, o.port, &bound)) {
    std::fprintf(stderr, "udp_bench_server: cannot listen on %s:%u: %s\n", o.host.c_str(), o.port,
                 ec.message().c_str());
    return 1;
  }
  std::printf("udp_bench_server listening on %s:%u\n", o.host.c_str(), bound);
  std::fflush(stdout);

  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  boost::asio::steady_timer deadline(io);
  auto stop = [&] {
    signals.cancel();
    deadline.cancel();
    ctx.stop();
  };
  signals.async_wait([&](const boost::system::error_code& ec, int) {
    if (!ec) stop();
  });
  if (o.duration > 0) {
    deadline.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(o.duration)));
    deadline.async_wait([&](const boost::system::error_code& ec) {
      if (!ec) stop();
    });
  }
  io.run();

  // Read everything before printing (printf may allocate its buffer).
  const std::uint64_t allocs_now = allocations.load(std::memory_order_relaxed);
  const std::uint64_t bytes_now = allocated_bytes.load(std::memory_order_relaxed);
  const bool warm = c.requests >= c.warmup_requests;
  const std::uint64_t counted = warm ? c.requests - c.warmup_requests : 0;
  const std::uint64_t allocs = warm ? allocs_now - c.allocations_at_warmup : 0;
  const std::uint64_t bytes = warm ? bytes_now - c.bytes_at_warmup : 0;
  const double seconds =
      warm ? std::chrono::duration<double>(std::chrono::steady_clock::now() - c.warm_at).count() : 0.0;
  const double cpu = warm ? cpu_seconds() - c.cpu_at_warmup : 0.0;
  std::printf(
      "udp_bench_server requests=%llu warmup_requests=%llu counted_requests=%llu allocations=%llu "
      "allocated_bytes=%llu allocs_per_request=%.4f counted_s=%.2f server_cpu_pct=%.1f%s\n",
      static_cast<unsigned long long>(c.requests), static_cast<unsigned long long>(c.warmup_requests),
      static_cast<unsigned long long>(counted), static_cast<unsigned long long>(allocs),
      static_cast<unsigned long long>(bytes), counted ? static_cast<double>(allocs) / static_cast<double>(counted) : 0.0,
      seconds, seconds > 0 ? 100.0 * cpu / seconds : 0.0, warm ? "" : " (warm-up not reached)");
  return 0;
}
