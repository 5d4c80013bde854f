// What the coap-cpp benchmark servers (bench/udp_bench_server.cpp, tcp_bench_server.cpp,
// observe_bench_server.cpp, dtls_bench.cpp's server) do alike: count global operator new
// (bench/counting_new.cpp), listen and say so, serve until a signal or a deadline, and count
// allocations per request after a warm-up.
#pragma once

#include "bench/bench_support.hpp"

#include <coap/context.hpp>
#include <coap/option.hpp>
#include <coap/resource.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <string>
#include <string_view>

namespace bench {

// Calls to global operator new (any form) and the bytes they asked for, since the program
// started: on every thread (//bench:counting_new) or on the calling thread
// (//bench:counting_new_per_thread). Defined in bench/counting_new.cpp.
std::uint64_t allocations() noexcept;
std::uint64_t allocated_bytes() noexcept;

// Listens on host:port (host numeric, else usage()) with Transport and Security, and prints
// "NAME listening on HOST:PORT" once bound; or prints "ERROR_PREFIX: cannot listen on ..."
// (ERROR_PREFIX: NAME when null) and returns false.
template <class Transport, class... Security>
bool listen(coap::context& ctx, const std::string& host, std::uint16_t port, const char* name,
            void (*usage)(const char*), const char* error_prefix = nullptr) {
  boost::system::error_code bec;
  const auto address = boost::asio::ip::make_address(host, bec);
  if (bec) usage("--host must be a numeric address");
  std::uint16_t bound = 0;
  if (auto ec = ctx.add_endpoint<Transport, Security...>(address, port, &bound)) {
    std::fprintf(stderr, "%s: cannot listen on %s:%u: %s\n", error_prefix ? error_prefix : name, host.c_str(), port,
                 ec.message().c_str());
    return false;
  }
  std::printf("%s listening on %s:%u\n", name, host.c_str(), bound);
  std::fflush(stdout);
  return true;
}

// libcoap's coap-server hnd_get_time: the current time as "%b %d %H:%M:%S" (15 bytes),
// Max-Age 1.
inline void answer_time(coap::basic_response<>& res) {
  char text[32];
  const std::time_t now = std::time(nullptr);
  std::tm tm;
  gmtime_r(&now, &tm);
  const std::size_t n = std::strftime(text, sizeof text, "%b %d %H:%M:%S", &tm);
  res.message().add_uint_option(static_cast<std::uint16_t>(coap::option_number::max_age), 1);
  res.set_payload(std::string_view(text, n));
}

// Runs `io` until SIGINT/SIGTERM or, when duration_s > 0, for duration_s seconds; then
// stop() (which stops what keeps `io` busy: the context, a notifier).
template <class Stop>
void run_until_stopped(boost::asio::io_context& io, double duration_s, Stop&& stop) {
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  boost::asio::steady_timer deadline(io);
  auto finish = [&] {
    stop();
    signals.cancel();
    deadline.cancel();
  };
  signals.async_wait([&](const boost::system::error_code& ec, int) {
    if (!ec) finish();
  });
  if (duration_s > 0) {
    deadline.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(duration_s)));
    deadline.async_wait([&](const boost::system::error_code& ec) {
      if (!ec) finish();
    });
  }
  io.run();
}

// Requests served, and the allocations, bytes, wall and CPU time since request number
// `warmup_requests` (the snapshot).
class request_counter {
 public:
  explicit request_counter(std::uint64_t warmup_requests) : warmup_requests_(warmup_requests) {
    if (warmup_requests_ == 0) snapshot();
  }
  // One request served (from the handler).
  void count() {
    if (++requests_ == warmup_requests_) snapshot();
  }

  struct totals {
    std::uint64_t requests = 0, warmup_requests = 0;
    bool warm = false;
    std::uint64_t counted = 0, allocations = 0, bytes = 0;
    double seconds = 0, cpu_seconds = 0;
    double cpu_pct() const noexcept { return seconds > 0 ? 100.0 * cpu_seconds / seconds : 0.0; }
  };
  // Everything is read before anything is printed (printf may allocate its buffer).
  totals measure() const {
    const std::uint64_t allocs_now = bench::allocations();
    const std::uint64_t bytes_now = bench::allocated_bytes();
    totals t;
    t.requests = requests_;
    t.warmup_requests = warmup_requests_;
    t.warm = requests_ >= warmup_requests_;
    t.counted = t.warm ? requests_ - warmup_requests_ : 0;
    t.allocations = t.warm ? allocs_now - allocations_at_warmup_ : 0;
    t.bytes = t.warm ? bytes_now - bytes_at_warmup_ : 0;
    t.seconds =
        t.warm ? std::chrono::duration<double>(std::chrono::steady_clock::now() - warm_at_).count() : 0.0;
    t.cpu_seconds = t.warm ? bench::cpu_seconds() - cpu_at_warmup_ : 0.0;
    return t;
  }
  // One line "NAME requests=... warmup_requests=... counted_requests=... allocations=...
  // allocated_bytes=... allocs_per_request=... counted_s=... server_cpu_pct=...".
  void print(const char* name) const {
    const totals t = measure();
    std::printf(
        "%s requests=%llu warmup_requests=%llu counted_requests=%llu allocations=%llu "
        "allocated_bytes=%llu allocs_per_request=%.4f counted_s=%.2f server_cpu_pct=%.1f%s\n",
        name, static_cast<unsigned long long>(t.requests), static_cast<unsigned long long>(t.warmup_requests),
        static_cast<unsigned long long>(t.counted), static_cast<unsigned long long>(t.allocations),
        static_cast<unsigned long long>(t.bytes),
        t.counted ? static_cast<double>(t.allocations) / static_cast<double>(t.counted) : 0.0, t.seconds, t.cpu_pct(),
        t.warm ? "" : " (warm-up not reached)");
  }

 private:
  void snapshot() {
    allocations_at_warmup_ = bench::allocations();
    bytes_at_warmup_ = bench::allocated_bytes();
    warm_at_ = std::chrono::steady_clock::now();
    cpu_at_warmup_ = bench::cpu_seconds();
  }

  std::uint64_t warmup_requests_ = 0;
  std::uint64_t requests_ = 0;
  std::uint64_t allocations_at_warmup_ = 0;
  std::uint64_t bytes_at_warmup_ = 0;
  std::chrono::steady_clock::time_point warm_at_{};
  double cpu_at_warmup_ = 0;
};

}  // namespace bench
