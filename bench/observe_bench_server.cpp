// RFC 7641 section 4 and RFC 7959 section 2.2: the coap-cpp server that bench/run_observe_bench
// measures against libcoap (bench/libcoap_observe_server.c, the same program on libcoap 4.3.1).
//   GET /obs   observable; answers 2.05, text/plain, the number of notify rounds so far (8 digits).
//   POST /go   starts notifying: ctx.notify_observers("obs") back to back, one round per turn
//              of the io_context (so that ACKs and RSTs are read between rounds), or one round
//              every --interval-us.
//   POST /stop stops notifying.
//   GET /big   a --big-size byte body (default 1 MiB), served block-wise (Block2, stateless:
//              the handler produces the whole body for every block request).
//
// Context limits are the defaults but for max_observers_per_session, raised to
// --observers-per-session (default 256, the default too; the benchmark needs 10). --non-only
// sets observe_con_every to 0: no CON notifications (but one per observe_con_interval, 24 h),
// like libcoap's COAP_RESOURCE_FLAGS_NOTIFY_NON_ALWAYS.
//
// Global operator new is counted: from the --warmup-rounds'th round after /go to /stop the
// server counts its allocations and the notifications it sent, and prints them (with the
// observers left at /stop) on SIGTERM/SIGINT, or after --duration seconds.
//
// Usage: observe_bench_server [--host 127.0.0.1] [--port 5683] [--warmup-rounds 20]
//                             [--interval-us 0] [--big-size 1048576] [--duration 0]
//                             [--observers-per-session 256] [--non-only]
// Prints "observe_bench_server listening on HOST:PORT" once bound, and one line of
// key=value pairs starting with "observe_bench_server" at the end.
#include "bench/bench_server.hpp"

#include <coap/context.hpp>
#include <coap/resource.hpp>
#include <coap/transports/udp.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

namespace {

[[noreturn]] void usage(const char* what) { bench::usage_error("observe_bench_server", what); }

struct options : bench::address_options {
  std::uint64_t warmup_rounds = 20;
  std::int64_t interval_us = 0;
  std::size_t big_size = std::size_t{1} << 20;
  double duration = 0;  // 0: until a signal
  std::size_t observers_per_session = 256;
  bool non_only = false;
};

options parse_options(int argc, char** argv) {
  options o;
  bench::parse_arguments(argc, argv, 1, usage, o, [&o](std::string_view a, auto& value) {
    if (a == "--warmup-rounds") o.warmup_rounds = std::stoull(value());
    else if (a == "--interval-us") o.interval_us = std::stoll(value());
    else if (a == "--big-size") o.big_size = std::stoul(value());
    else if (a == "--duration") o.duration = std::stod(value());
    else if (a == "--observers-per-session") o.observers_per_session = std::stoul(value());
    else if (a == "--non-only") o.non_only = true;
    else return false;
    return true;
  });
  if (o.observers_per_session < 10) usage("--observers-per-session must be at least 10");
  return o;
}

// The notifying loop and what it counts.
class notifier {
 public:
  notifier(boost::asio::io_context& io, coap::context& ctx, const options& o)
      : io_(io), ctx_(ctx), timer_(io), o_(o) {}

  std::uint64_t rounds() const noexcept { return rounds_; }

  void start() {
    if (running_) return;
    running_ = true;
    ++starts_;
    observers_at_go_ = ctx_.observer_count();
    schedule();
  }
  void stop() {
    if (!running_) return;
    running_ = false;
    timer_.cancel();
    end_allocations_ = bench::allocations();
    end_sent_ = sent_;
    end_rounds_ = rounds_;
    observers_at_stop_ = ctx_.observer_count();
  }

  void print(std::size_t sessions) const {
    const bool warm = warm_rounds_ > 0 && end_rounds_ > warm_rounds_;
    const std::uint64_t counted = warm ? end_sent_ - warm_sent_ : 0;
    const std::uint64_t allocs = warm ? end_allocations_ - warm_allocations_ : 0;
    std::printf(
        "observe_bench_server starts=%llu rounds=%llu notifications_sent=%llu observers_at_go=%zu "
        "observers_at_stop=%zu observers_now=%zu sessions=%zu counted_notifications=%llu allocations=%llu "
        "allocs_per_notification=%.4f%s\n",
        static_cast<unsigned long long>(starts_), static_cast<unsigned long long>(rounds_),
        static_cast<unsigned long long>(sent_), observers_at_go_, observers_at_stop_, ctx_.observer_count(), sessions,
        static_cast<unsigned long long>(counted), static_cast<unsigned long long>(allocs),
        counted ? static_cast<double>(allocs) / static_cast<double>(counted) : 0.0,
        warm ? "" : " (warm-up not reached)");
  }

 private:
  void schedule() {
    if (o_.interval_us > 0) {
      timer_.expires_after(std::chrono::microseconds(o_.interval_us));
      timer_.async_wait([this](const boost::system::error_code& ec) {
        if (!ec) round();
      });
    } else {
      // Posted, not looped: the io_context reads the socket (ACKs, RSTs) between rounds.
      boost::asio::post(io_, [this] { round(); });
    }
  }
  void round() {
    if (!running_) return;
    sent_ += ctx_.notify_observers("obs");
    if (++rounds_ == std::max<std::uint64_t>(o_.warmup_rounds, 1)) {
      warm_rounds_ = rounds_;
      warm_sent_ = sent_;
      warm_allocations_ = bench::allocations();
    }
    schedule();
  }

  boost::asio::io_context& io_;
  coap::context& ctx_;
  boost::asio::steady_timer timer_;
  const options& o_;
  bool running_ = false;
  std::uint64_t starts_ = 0, rounds_ = 0, sent_ = 0;
  std::uint64_t warm_rounds_ = 0, warm_sent_ = 0, warm_allocations_ = 0;
  std::uint64_t end_rounds_ = 0, end_sent_ = 0, end_allocations_ = 0;
  std::size_t observers_at_go_ = 0, observers_at_stop_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  const options o = parse_options(argc, argv);
  boost::asio::io_context io(1);
  coap::context_config config;
  config.max_observers_per_session = o.observers_per_session;
  // One load generator at full speed, as libcoap's server is measured: no per-peer rate limit
  // (RFC 8516) nor amplification limit (RFC 9175 section 2.4; docs/options.md).
  config.session.max_request_rate = 0;
  config.session.amplification_factor = 0;
  if (o.non_only) config.observe_con_every = 0;  // CON only once per observe_con_interval (24 h)
  coap::context ctx(io.get_executor(), config);
  notifier n(io, ctx, o);

  ctx.add_resource("obs")
      .on(coap::method::get,
          [&n](const coap::request&, coap::basic_response<>& res) {
            char text[24];
            // Fixed width, so that the notification keeps its size (and its buffers their capacity).
            const int len = std::snprintf(text, sizeof text, "%08llu", static_cast<unsigned long long>(n.rounds()));
            res.set(coap::response_code::content, std::string_view(text, static_cast<std::size_t>(len)),
                    coap::content_format::text_plain);
          })
      .observable();
  ctx.add_resource("go").on(coap::method::post, [&n](const coap::request&, coap::basic_response<>& res) {
    n.start();
    res.set_code(coap::response_code::changed);
  });
  ctx.add_resource("stop").on(coap::method::post, [&n](const coap::request&, coap::basic_response<>& res) {
    n.stop();
    res.set_code(coap::response_code::changed);
  });
  // Bytes 0..255 repeated: a client can check what it reassembled.
  std::vector<std::uint8_t> big(o.big_size);
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<std::uint8_t>(i);
  ctx.add_resource("big").on(coap::method::get, [&big](const coap::request&, coap::basic_response<>& res) {
    res.set_code(coap::response_code::content);
    res.set_content_format(coap::content_format::octet_stream);
    res.set_payload(std::span<const std::uint8_t>(big));
  });

  if (!bench::listen<coap::udp>(ctx, o.host, o.port, "observe_bench_server", usage)) return 1;
  std::size_t sessions = 0;
  bench::run_until_stopped(io, o.duration, [&] {
    n.stop();
    sessions = ctx.session_count();
    ctx.stop();
  });
  n.print(sessions);
  return 0;
}
