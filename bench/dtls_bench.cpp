// RFC 7252 section 9.1.3.1 (DTLS PreSharedKey mode) under load: coap-cpp's DTLS-PSK server
// and the load generator that bench/run_dtls_bench runs against it and against libcoap's
// coap-server-openssl, in one binary. With --tls, the same over TLS on TCP (RFC 8323 section 9,
// coap::session<tcp, psk>): libcoap's server listens for TLS on the port after its -p. The generator is a coap-cpp client (coap::session<udp,
// psk>): it is the same for both servers, so their figures are comparable, but it costs as
// much per request as a server does (Botan encrypts and decrypts on both sides), so on a
// 2-core machine it may set the pace (load_cpu_pct near 100).
//
//   dtls_bench server [--host 127.0.0.1] [--port 5684] [--key secretPSK] [--hint CoAP]
//                     [--warmup-requests N] [--duration S] [--max-sessions N]
//       GET /x answers like libcoap's GET /time (2.05, Max-Age 1, "%b %d %H:%M:%S"). Global
//       operator new is counted (on the main thread, which runs the server): after --warmup-requests requests the count is snapshot, and
//       at exit (SIGTERM/SIGINT or --duration) one line "dtls_bench_server ..." reports the
//       allocations per request since then (Botan's included: it allocates internally).
//   dtls_bench handshakes --port P [--path x] [--concurrency 16] [--warmup S] [--duration S]
//       New DTLS-PSK sessions, each from its own socket (its own port): up to C at a time,
//       each does one CON GET after its handshake and is then closed (close_notify). Counts
//       the sessions completed per second over --duration after --warmup, and the failures.
//   dtls_bench requests --port P [--path x] [--sessions 16] [--window 4] [--warmup S] [--duration S]
//       E sessions established once (nstart = W), each keeping W CON GETs outstanding, closed
//       loop. Requests per second, latency p50/p99 (request issued to response handler),
//       errors.
//   dtls_bench probe --port P [--path x] [--timeout S]
//       One session, one GET: exit 0 when answered 2.xx (used to wait for a server).
// Common generator options: --host 127.0.0.1 --identity bench --key secretPSK.
// --tls (every mode, server included): TLS over TCP instead of DTLS over UDP.
// The generator prints one line of key=value pairs starting with "dtls_load"; "suite" is the
// cipher suite the first session negotiated (Botan's name).
#include "bench/bench_server.hpp"

#include <coap/context.hpp>
#include <coap/resource.hpp>
#include <coap/security/psk.hpp>
#include <coap/session.hpp>
#include <coap/transports/tcp.hpp>
#include <coap/transports/udp.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

// Global operator new is counted per thread (//bench:counting_new_per_thread).

namespace {

using clock_type = std::chrono::steady_clock;
struct options : bench::address_options {
  options() { port = 5684; }
  std::string mode;
  std::string path = "x";
  std::string identity = "bench";
  std::string key = "secretPSK";
  std::string hint = "CoAP";
  std::size_t concurrency = 16;
  std::size_t sessions = 16;
  unsigned window = 4;
  double warmup = 1.0;
  double duration = 3.0;
  double timeout = 2.0;
  std::uint64_t warmup_requests = 20000;
  std::size_t max_sessions = 4096;
  bool tls = false;
};

[[noreturn]] void usage(const char* what) {
  std::fprintf(stderr, "dtls_bench: %s\n", what);
  std::fprintf(stderr,
               "usage: dtls_bench server|handshakes|requests|probe [--host A] [--port P] [--path x] [--key K]\n"
               "       [--identity I] [--hint H] [--concurrency C] [--sessions E] [--window W] [--warmup S]\n"
               "       [--duration S] [--timeout S] [--warmup-requests N] [--max-sessions N] [--tls]\n");
  std::exit(2);
}

options parse_options(int argc, char** argv) {
  options o;
  if (argc < 2) usage("missing mode");
  o.mode = argv[1];
  if (o.mode != "server" && o.mode != "handshakes" && o.mode != "requests" && o.mode != "probe")
    usage("mode is server, handshakes, requests or probe");
  if (o.mode == "server") o.duration = 0;
  bench::parse_arguments(argc, argv, 2, usage, o, [&o](std::string_view a, auto& value) {
    if (a == "--path") o.path = value();
    else if (a == "--tls") o.tls = true;
    else if (a == "--identity") o.identity = value();
    else if (a == "--key") o.key = value();
    else if (a == "--hint") o.hint = value();
    else if (a == "--concurrency") o.concurrency = std::stoul(value());
    else if (a == "--sessions") o.sessions = std::stoul(value());
    else if (a == "--window") o.window = static_cast<unsigned>(std::stoul(value()));
    else if (a == "--warmup") o.warmup = std::stod(value());
    else if (a == "--duration") o.duration = std::stod(value());
    else if (a == "--timeout") o.timeout = std::stod(value());
    else if (a == "--warmup-requests") o.warmup_requests = std::stoull(value());
    else if (a == "--max-sessions") o.max_sessions = std::stoul(value());
    else return false;
    return true;
  });
  if (o.concurrency == 0 || o.sessions == 0 || o.window == 0) usage("--concurrency, --sessions, --window must be > 0");
  return o;
}

using bench::cpu_seconds;

clock_type::duration seconds(double s) {
  return std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(s));
}

std::int64_t nanoseconds(clock_type::duration d) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
}

std::vector<std::uint8_t> bytes_of(const std::string& s) { return {s.begin(), s.end()}; }

// ==================== server ====================

template <class Transport>
int run_server(const options& o) {
  boost::asio::io_context io(1);
  coap::context_config config;
  config.max_sessions = o.max_sessions;
  // One load generator at full speed, as libcoap's server is measured: no per-peer rate limit
  // (RFC 8516) nor amplification limit (RFC 9175 section 2.4; docs/options.md).
  config.session.max_request_rate = 0;
  config.session.amplification_factor = 0;
  coap::context ctx(io.get_executor(), config);

  bench::request_counter c(o.warmup_requests);
  ctx.add_resource("x").on(coap::method::get, [&c](const coap::request&, coap::basic_response<>& res) {
    bench::answer_time(res);  // like libcoap's GET /time
    c.count();
  });

  coap::security::psk_server_config psk;
  psk.hint = o.hint;
  psk.key = bytes_of(o.key);
  if (auto ec = coap::security::set_psk(ctx, psk)) {
    std::fprintf(stderr, "dtls_bench server: set_psk: %s\n", ec.message().c_str());
    return 1;
  }
  if (!bench::listen<Transport, coap::psk>(ctx, o.host, o.port, "dtls_bench_server", usage, "dtls_bench server"))
    return 1;
  std::size_t sessions_at_stop = 0;
  bench::run_until_stopped(io, o.duration, [&] {
    sessions_at_stop = ctx.session_count();
    ctx.stop();
  });

  const auto t = c.measure();
  const double per = t.counted ? 1.0 / static_cast<double>(t.counted) : 0.0;
  std::printf(
      "dtls_bench_server requests=%llu warmup_requests=%llu counted_requests=%llu allocations=%llu "
      "allocated_bytes=%llu allocs_per_request=%.2f bytes_per_request=%.0f sessions_at_stop=%zu counted_s=%.2f "
      "server_cpu_pct=%.1f%s\n",
      static_cast<unsigned long long>(t.requests), static_cast<unsigned long long>(t.warmup_requests),
      static_cast<unsigned long long>(t.counted), static_cast<unsigned long long>(t.allocations),
      static_cast<unsigned long long>(t.bytes), static_cast<double>(t.allocations) * per,
      static_cast<double>(t.bytes) * per, sessions_at_stop, t.seconds, t.cpu_pct(),
      t.warm ? "" : " (warm-up not reached)");
  return 0;
}

// ==================== generator ====================

template <class Transport>
class generator {
  using psk_session = coap::session<Transport, coap::psk>;

 public:
  explicit generator(const options& o) : o_(o), ctx_(io_.get_executor()), start_timer_(io_), end_timer_(io_) {
    boost::system::error_code bec;
    const auto address = boost::asio::ip::make_address(o.host, bec);
    if (bec) usage("--host must be a numeric address");
    server_ = typename psk_session::endpoint_type(address, o.port);
    psk_.identity = o.identity;
    psk_.key = bytes_of(o.key);
    config_ = ctx_.config().session;
    config_.handshake_timeout = std::chrono::milliseconds(static_cast<long long>(std::max(o.timeout, 1.0) * 1000));
    config_.nstart = o.mode == "requests" ? o.window : 1;
    config_.max_queued_requests = std::max<std::size_t>(1024, o.window);
    request_ = coap::message(coap::method::get);
    std::string_view path = o.path;
    while (!path.empty()) {
      const auto slash = path.find('/');
      request_.add(coap::options::uri_path{}, path.substr(0, slash));
      path = slash == std::string_view::npos ? std::string_view() : path.substr(slash + 1);
    }
  }

  int run() {
    if (o_.mode == "probe") return probe();
    const bool handshakes = o_.mode == "handshakes";
    slots_.resize(handshakes ? o_.concurrency : o_.sessions);
    measuring_ = o_.warmup <= 0;
    if (measuring_) begin_measurement();
    else {
      start_timer_.expires_after(seconds(o_.warmup));
      start_timer_.async_wait([this](const boost::system::error_code& ec) {
        if (!ec) begin_measurement();
      });
    }
    end_timer_.expires_after(seconds(std::max(o_.warmup, 0.0) + o_.duration));
    end_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) finish();
    });
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      if (handshakes) start_session(i);
      else start_established(i);
    }
    io_.run();
    report();
    return 0;
  }

 private:
  struct slot {
    psk_session session;
    clock_type::time_point created{};
  };

  void begin_measurement() {
    measuring_ = true;
    measure_start_ = clock_type::now();
    cpu_start_ = cpu_seconds();
    completed_ = failures_ = errors_ = 0;
    latency_.clear();
  }

  void finish() {
    if (done_) return;
    done_ = true;
    measure_end_ = clock_type::now();
    cpu_end_ = cpu_seconds();
    // Close every session (pending requests fail with session_closed: not counted), then let
    // the close_notify records go out.
    for (auto& s : slots_) s.session.close();
    slots_.clear();
    end_timer_.expires_after(std::chrono::milliseconds(100));
    end_timer_.async_wait([this](const boost::system::error_code&) { io_.stop(); });
  }

  void note_error(const std::error_code& ec) {
    auto& n = error_kinds_[ec ? ec.message() : std::string("non-2.xx response")];
    ++n;
  }

  void note_suite(const psk_session& s) {
    if (suite_.empty() && s.implementation()) suite_ = s.implementation()->security_channel().cipher_suite();
  }

  // ---- handshakes: a new session per GET ----
  void start_session(std::size_t i) {
    if (done_) return;
    std::error_code ec;
    auto s = psk_session::create_client(ctx_, server_, config_, psk_, ec);
    if (ec) {
      if (measuring_) ++failures_;
      note_error(ec);
      // Try again later rather than spinning (e.g. out of ports or descriptors).
      auto t = std::make_shared<boost::asio::steady_timer>(io_, std::chrono::milliseconds(10));
      t->async_wait([this, i, t](const boost::system::error_code&) { start_session(i); });
      return;
    }
    auto& sl = slots_[i];
    sl.session = s;
    sl.created = clock_type::now();
    const auto generation = ++generation_;
    sl_generation_.resize(slots_.size());
    sl_generation_[i] = generation;
    s.async_request(request_, [this, i, generation](std::error_code ec, coap::message response) {
      if (done_ || i >= slots_.size() || sl_generation_[i] != generation) return;
      auto& sl = slots_[i];
      const bool ok = !ec && response.code().code_class() == 2;
      if (ok) note_suite(sl.session);
      if (measuring_) {
        if (ok) {
          ++completed_;
          latency_.add(nanoseconds(clock_type::now() - sl.created));
        } else {
          ++failures_;
        }
      }
      if (!ok) note_error(ec);
      // Close this session (close_notify) and start the next, outside the session's callback.
      boost::asio::post(io_, [this, i] {
        if (done_ || i >= slots_.size()) return;
        slots_[i].session.close();
        slots_[i].session.release();
        start_session(i);
      });
    });
  }

  // ---- requests: E established sessions, W outstanding each ----
  void start_established(std::size_t i) {
    std::error_code ec;
    auto s = psk_session::create_client(ctx_, server_, config_, psk_, ec);
    if (ec) {
      std::fprintf(stderr, "dtls_load: create_client: %s\n", ec.message().c_str());
      std::exit(1);
    }
    slots_[i].session = s;
    for (unsigned w = 0; w < o_.window; ++w) issue(i);
  }

  void issue(std::size_t i) {
    if (done_ || i >= slots_.size()) return;
    const auto t0 = clock_type::now();
    slots_[i].session.async_request(request_, [this, i, t0](std::error_code ec, coap::message response) {
      if (done_) return;
      const bool ok = !ec && response.code().code_class() == 2;
      if (ok) note_suite(slots_[i].session);
      if (measuring_) {
        ++completed_;
        if (ok) latency_.add(nanoseconds(clock_type::now() - t0));
        else ++errors_;
      }
      if (!ok) note_error(ec);
      if (ec && !slots_[i].session.is_open()) {
        // The session failed (handshake or otherwise): a new one takes its place.
        ++reconnects_;
        boost::asio::post(io_, [this, i] {
          if (done_ || slots_[i].session.is_open()) return;
          slots_[i].session.release();
          start_established(i);
        });
        return;
      }
      issue(i);
    });
  }

  int probe() {
    std::error_code ec;
    auto s = psk_session::create_client(ctx_, server_, config_, psk_, ec);
    if (ec) return 1;
    bool ok = false;
    s.async_request(request_, [&](std::error_code e, coap::message r) {
      ok = !e && r.code().code_class() == 2;
      if (ok) note_suite(s);
      io_.stop();
    });
    io_.run_for(seconds(o_.timeout));
    s.close();
    io_.restart();
    io_.run_for(std::chrono::milliseconds(20));
    std::printf("dtls_load mode=probe ok=%d suite=%s\n", ok ? 1 : 0, suite_.empty() ? "-" : suite_.c_str());
    return ok ? 0 : 1;
  }

  void report() {
    const double secs = std::chrono::duration<double>(measure_end_ - measure_start_).count();
    const double cpu = cpu_end_ - cpu_start_;
    std::string kinds;
    for (const auto& [what, n] : error_kinds_) {
      if (!kinds.empty()) kinds += ';';
      kinds += what + ":" + std::to_string(n);
    }
    for (auto& c : kinds)
      if (c == ' ') c = '_';
    const double rate = secs > 0 ? static_cast<double>(completed_) / secs : 0.0;
    if (o_.mode == "handshakes") {
      std::printf(
          "dtls_load mode=handshakes concurrency=%zu duration_s=%.3f completed=%llu hs_per_s=%.0f failures=%llu "
          "p50_us=%zu p99_us=%zu load_cpu_pct=%.1f suite=%s error_kinds=%s\n",
          o_.concurrency, secs, static_cast<unsigned long long>(completed_), rate,
          static_cast<unsigned long long>(failures_), latency_.percentile(0.50), latency_.percentile(0.99),
          secs > 0 ? 100.0 * cpu / secs : 0.0, suite_.empty() ? "-" : suite_.c_str(),
          kinds.empty() ? "-" : kinds.c_str());
    } else {
      std::printf(
          "dtls_load mode=requests sessions=%zu window=%u duration_s=%.3f completed=%llu req_per_s=%.0f errors=%llu "
          "reconnects=%llu p50_us=%zu p99_us=%zu p999_us=%zu load_cpu_pct=%.1f suite=%s error_kinds=%s\n",
          o_.sessions, o_.window, secs, static_cast<unsigned long long>(completed_), rate,
          static_cast<unsigned long long>(errors_), static_cast<unsigned long long>(reconnects_),
          latency_.percentile(0.50), latency_.percentile(0.99), latency_.percentile(0.999),
          secs > 0 ? 100.0 * cpu / secs : 0.0, suite_.empty() ? "-" : suite_.c_str(),
          kinds.empty() ? "-" : kinds.c_str());
    }
    std::fflush(stdout);
  }

  const options& o_;
  boost::asio::io_context io_{1};
  coap::context ctx_;
  boost::asio::steady_timer start_timer_, end_timer_;
  typename psk_session::endpoint_type server_;
  coap::security::psk_client_config psk_;
  coap::session_config config_;
  coap::message request_;
  std::vector<slot> slots_;
  std::vector<std::uint64_t> sl_generation_;
  std::uint64_t generation_ = 0;
  bool measuring_ = false, done_ = false;
  clock_type::time_point measure_start_{}, measure_end_{};
  double cpu_start_ = 0, cpu_end_ = 0;
  std::uint64_t completed_ = 0, failures_ = 0, errors_ = 0, reconnects_ = 0;
  bench::histogram latency_{2'000'000};  // 1 us buckets up to 2 s
  std::string suite_;
  std::map<std::string, std::uint64_t> error_kinds_;
};

}  // namespace

int main(int argc, char** argv) {
  const options o = parse_options(argc, argv);
  if (o.mode == "server") return o.tls ? run_server<coap::tcp>(o) : run_server<coap::udp>(o);
  if (o.tls) return generator<coap::tcp>(o).run();
  return generator<coap::udp>(o).run();
}
