// RFC 8613 sections 8.1 and 8.4 (with RFC 7252 sections 4.2 and 5.2): a closed-loop load
// generator of OSCORE-protected requests over UDP, for bench/run_oscore_bench. E client
// endpoints (one connected socket each, E server sessions) each keep one GET outstanding; every
// request is protected with oscore_core::protect_request under one client security context
// (the conf file's, shared by all endpoints: at most E requests are in flight under it, below
// the server's replay window of 32 as long as E <= 32), and every response is verified with
// oscore_core::unprotect_response.
//
// Appendix B.1.2: a server started with rfc8613_b_1_2 answers the first request of a context
// with a protected 4.01 carrying an Echo option; that request is sent again once, with the
// Echo, a new Partial IV and a new token. Separate responses (libcoap 4.3.5 answers every
// protected CON request with an empty ACK, then a CON response) are taken, and acknowledged.
// A request unanswered for --timeout-ms is sent again unchanged (a retransmission).
//
// Unlike bench/udp_load.cpp this generator is built on coap-cpp (its OSCORE core and codec):
// the protection is the point, and both servers are measured with the same generator.
// --plain sends the same GETs unprotected (the reference run).
//
// Usage: oscore_load --host 127.0.0.1 --port 5683 --conf client.conf [--path time]
//                    [--endpoints 16] [--duration 5] [--warmup 2] [--non] [--plain]
//                    [--timeout-ms 1000] [--server-pid PID] [--initial-sequence N]
//                    [--max-requests N] [--busy-poll]
// --server-pid: the server's CPU time (utime + stime from /proc/PID/stat) over the measured
// seconds, and so requests per server CPU-second. --initial-sequence: the first Sender
// Sequence Number (default: from the clock, so that runs one after another against one
// server never reuse a Partial IV).
// --busy-poll: never sleep in epoll_wait. A server's sendto over loopback wakes a sleeping
// receiver on the server's CPU time (sock_def_readable, try_to_wake_up): with a generator
// that sleeps between answers, a server's figure per CPU-second depends on how often the
// generator happens to be asleep (measured: libcoap 4.3.5 between 67,000 and 125,000
// requests per CPU-second under two builds of this generator). Busy-polling takes that cost
// out of both servers' figures; the generator then shows 100% CPU.
// Prints one line of key=value pairs starting with "oscore_load".
#include "bench/bench_support.hpp"

#include <coap/message.hpp>
#include <coap/message_view.hpp>
#include <coap/option.hpp>
#include <coap/security/oscore/conf_file.hpp>
#include <coap/security/oscore/context.hpp>
#include <coap/security/oscore/protect.hpp>
#include <coap/udp_codec.hpp>

#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace {

[[noreturn]] void die(const char* what) { bench::system_error("oscore_load", what); }
[[noreturn]] void usage(const char* what) { bench::usage_error("oscore_load", what); }

struct options : bench::address_options {
  std::string conf;
  std::string path = "time";
  std::size_t endpoints = 16;
  double duration = 5.0;
  double warmup = 2.0;
  bool non = false;
  bool plain = false;
  std::int64_t timeout_ms = 1000;
  int server_pid = 0;
  std::optional<std::uint64_t> initial_sequence;
  std::uint64_t max_requests = 2'000'000'000;
  bool busy_poll = false;
};

options parse_options(int argc, char** argv) {
  options o;
  bench::parse_arguments(argc, argv, 1, usage, o, [&o](std::string_view a, auto& value) {
    if (a == "--conf") o.conf = value();
    else if (a == "--path") o.path = value();
    else if (a == "--endpoints") o.endpoints = std::stoul(value());
    else if (a == "--duration") o.duration = std::stod(value());
    else if (a == "--warmup") o.warmup = std::stod(value());
    else if (a == "--non") o.non = true;
    else if (a == "--plain") o.plain = true;
    else if (a == "--timeout-ms") o.timeout_ms = std::stoll(value());
    else if (a == "--server-pid") o.server_pid = std::stoi(value());
    else if (a == "--initial-sequence") o.initial_sequence = std::stoull(value());
    else if (a == "--max-requests") o.max_requests = std::stoull(value());
    else if (a == "--busy-poll") o.busy_poll = true;
    else return false;
    return true;
  });
  if (o.endpoints == 0 || o.endpoints > 4096) usage("--endpoints must be 1..4096");
  if (!o.plain && o.conf.empty()) usage("--conf is required (or --plain)");
  return o;
}

using bench::now_ns;
namespace core = coap::oscore_core;

// Section 7.2.1 across runs: microseconds of the wall clock modulo 10^6 seconds stay below
// 2^40 and grow faster than any run uses numbers, so a run never repeats a Partial IV an
// earlier run against the same server used (until the count wraps, every 11.6 days).
std::uint64_t clock_sequence_number() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec % 1'000'000) * 1'000'000 + static_cast<std::uint64_t>(ts.tv_nsec / 1000);
}

core::context make_context(const options& o) {
  core::conf conf;
  core::conf_diagnostic where;
  if (auto ec = core::load_conf(o.conf, conf, where)) usage(("--conf: " + where.to_string()).c_str());
  core::context_params p;
  if (auto ec = conf.params(0, p)) usage(("--conf: " + ec.message()).c_str());
  p.initial_sequence_number = o.initial_sequence ? *o.initial_sequence : clock_sequence_number();
  std::error_code ec;
  auto c = core::context::make(p, ec);
  if (!c) usage(("--conf: " + ec.message()).c_str());
  return std::move(*c);
}

constexpr std::size_t max_datagram = 1152;

struct endpoint {
  int fd = -1;
  std::uint16_t next_message_id = 0;
  std::uint32_t sequence = 0;
  bool busy = false;
  bool acknowledged = false;  // an empty ACK came: the response will be separate
  bool echoed = false;        // this request already carries an Echo
  std::uint16_t message_id = 0;
  std::array<std::uint8_t, 8> token{};
  core::request_binding binding;
  std::int64_t first_sent = 0;
  std::int64_t last_sent = 0;
  std::array<std::uint8_t, max_datagram> datagram{};
  std::size_t datagram_size = 0;
};

class load {
 public:
  explicit load(const options& o) : o_(o), latency_(o.timeout_ms * 1000) {
    if (!o.plain) context_.emplace(make_context(o));
    const sockaddr_in server = bench::ipv4_address(o, usage);
    bench::raise_file_limit();
    epoll_ = epoll_create1(0);
    if (epoll_ < 0) die("epoll_create1");
    endpoints_.resize(o.endpoints);
    std::uint32_t seed = static_cast<std::uint32_t>(now_ns());
    for (std::size_t i = 0; i < endpoints_.size(); ++i) {
      auto& e = endpoints_[i];
      seed = seed * 1664525u + 1013904223u;
      e.next_message_id = static_cast<std::uint16_t>(seed >> 16);
      e.fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
      if (e.fd < 0) die("socket");
      if (connect(e.fd, reinterpret_cast<const sockaddr*>(&server), sizeof server) < 0) die("connect");
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = i;
      if (epoll_ctl(epoll_, EPOLL_CTL_ADD, e.fd, &ev) < 0) die("epoll_ctl");
    }
  }

  void run() {
    const std::int64_t start = now_ns();
    const std::int64_t measure_from = start + static_cast<std::int64_t>(o_.warmup * 1e9);
    const std::int64_t end = measure_from + static_cast<std::int64_t>(o_.duration * 1e9);
    std::int64_t now = start;
    measuring_ = o_.warmup <= 0;
    if (measuring_) begin_measurement(now);
    // Appendix B.1.2 once: the first endpoint alone until its first answer, so that one request
    // (not E at once) makes the Echo round trip; libcoap 4.3.5 drops later copies of the Echo.
    issue(0, now, {});
    std::int64_t next_timeout_check = now + 10'000'000;
    std::array<epoll_event, 256> events;
    while (now < end) {
      if (sent_total_ >= o_.max_requests && in_flight() == 0) break;
      const int n = epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), o_.busy_poll ? 0 : 10);
      if (n < 0 && errno != EINTR) die("epoll_wait");
      now = now_ns();
      if (!measuring_ && now >= measure_from) {
        measuring_ = true;
        begin_measurement(now);
      }
      for (int k = 0; k < n; ++k) receive(static_cast<std::size_t>(events[static_cast<std::size_t>(k)].data.u64), now);
      if (now >= next_timeout_check) {
        retransmit_overdue(now);
        next_timeout_check = now + 10'000'000;
      }
    }
    report(now);
  }

 private:
  std::size_t in_flight() const noexcept {
    std::size_t n = 0;
    for (const auto& e : endpoints_) n += e.busy;
    return n;
  }

  void begin_measurement(std::int64_t now) {
    measure_start_ = now;
    cpu_start_ = bench::cpu_seconds();
    if (o_.server_pid) server_cpu_start_ = bench::read_process_usage(o_.server_pid).cpu_s;
    completed_ = lost_ = errors_ = refused_ = unmatched_ = 0;
    latency_.clear();
  }

  // A GET of --path (with `echo` after a 4.01 of Appendix B.1.2), protected unless --plain,
  // encoded into the endpoint's datagram and sent.
  void issue(std::size_t index, std::int64_t now, std::span<const std::uint8_t> echo) {
    auto& e = endpoints_[index];
    if (echo.empty()) {
      if (sent_total_ >= o_.max_requests) return;
      ++sent_total_;
      e.first_sent = now;
    }
    e.busy = true;
    e.acknowledged = false;
    e.echoed = !echo.empty();
    e.message_id = e.next_message_id++;
    const std::uint32_t s = e.sequence++;
    const auto i = static_cast<std::uint32_t>(index);
    e.token = {static_cast<std::uint8_t>(i >> 24), static_cast<std::uint8_t>(i >> 16), static_cast<std::uint8_t>(i >> 8),
               static_cast<std::uint8_t>(i),       static_cast<std::uint8_t>(s >> 24), static_cast<std::uint8_t>(s >> 16),
               static_cast<std::uint8_t>(s >> 8),  static_cast<std::uint8_t>(s)};
    request_.clear();
    request_.set_code(coap::code(coap::method::get));
    request_.set_type(o_.non ? coap::message_type::non_confirmable : coap::message_type::confirmable);
    request_.set_message_id(e.message_id);
    (void)request_.set_token(std::span<const std::uint8_t>(e.token));
    for (std::string_view path = o_.path; !path.empty();) {
      const auto slash = path.find('/');
      request_.add_string_option(static_cast<std::uint16_t>(coap::option_number::uri_path), path.substr(0, slash));
      path = slash == std::string_view::npos ? std::string_view() : path.substr(slash + 1);
    }
    if (!echo.empty()) request_.add_option(coap::option_number::echo, echo);
    const coap::message* wire = &request_;
    if (context_) {
      if (auto ec = core::protect_request(*context_, request_, protected_, e.binding)) {
        std::fprintf(stderr, "oscore_load: protect_request: %s\n", ec.message().c_str());
        std::exit(1);
      }
      wire = &protected_;
    }
    if (auto ec = coap::udp_codec::encode(*wire, e.datagram, e.datagram_size)) {
      std::fprintf(stderr, "oscore_load: encode: %s\n", ec.message().c_str());
      std::exit(1);
    }
    e.last_sent = now;
    send(e.fd, {e.datagram.data(), e.datagram_size});
  }

  void send(int fd, std::span<const std::uint8_t> d) {
    for (;;) {
      if (::send(fd, d.data(), d.size(), 0) >= 0) return;
      if (errno == EINTR) continue;
      // A full buffer or an ICMP error drops the datagram, as the network could:
      // retransmission recovers.
      if (errno == EAGAIN || errno == ENOBUFS || errno == ECONNREFUSED) {
        ++send_drops_;
        return;
      }
      die("send");
    }
  }

  void receive(std::size_t index, std::int64_t now) {
    auto& e = endpoints_[index];
    std::array<std::uint8_t, max_datagram> buffer;
    for (;;) {
      const ssize_t n = ::recv(e.fd, buffer.data(), buffer.size(), 0);
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR || errno == ECONNREFUSED) return;
        die("recv");
      }
      on_datagram(index, {buffer.data(), static_cast<std::size_t>(n)}, now);
    }
  }

  void on_datagram(std::size_t index, std::span<const std::uint8_t> d, std::int64_t now) {
    auto& e = endpoints_[index];
    coap::message_view m;
    if (coap::udp_codec::parse(d, m)) {
      ++unmatched_;
      return;
    }
    // Section 4.2: a CON response is acknowledged, a retransmitted one too.
    if (m.type() == coap::message_type::confirmable && !m.code().is_empty()) {
      std::array<std::uint8_t, coap::udp_codec::header_size> ack{};
      coap::udp_codec::detail::write_header(coap::message_type::acknowledgement, 0, coap::code(), m.message_id(),
                                            ack.data());
      send(e.fd, ack);
    }
    const bool ours = e.busy && std::ranges::equal(m.token(), e.token);
    if (m.code().is_empty()) {
      // Section 5.2.2: an empty ACK; the response follows in its own message.
      if (e.busy && m.type() == coap::message_type::acknowledgement && m.message_id() == e.message_id)
        e.acknowledged = true;
      else
        ++unmatched_;
      return;
    }
    if (!ours || (m.type() == coap::message_type::acknowledgement && m.message_id() != e.message_id)) {
      ++unmatched_;  // a late copy of an answered request's response
      return;
    }
    coap::code code = m.code();
    if (context_) {
      if (auto ec = core::unprotect_response(*context_, e.binding, m, response_)) {
        // Section 8.2's unprotected error replies, or a response that does not verify.
        ++refused_;
        if (!refused_reported_) {
          refused_reported_ = true;
          std::fprintf(stderr, "oscore_load: response refused: %s (outer code %d.%02d)\n", ec.message().c_str(),
                       m.code().code_class(), m.code().detail());
        }
        complete(index, now, false);
        return;
      }
      code = response_.code();
      // Appendix B.1.2: once, again with the Echo value.
      if (code == coap::code(coap::response_code::unauthorized) && !e.echoed) {
        if (const auto echo = response_.find(coap::option_number::echo)) {
          ++echo_retries_;
          std::array<std::uint8_t, 40> value{};
          const std::size_t length = std::min(echo->value().size(), value.size());
          std::copy_n(echo->value().begin(), length, value.begin());
          issue(index, now, std::span<const std::uint8_t>(value.data(), length));
          return;
        }
      }
    }
    complete(index, now, code.code_class() == 2);
  }

  void complete(std::size_t index, std::int64_t now, bool success) {
    auto& e = endpoints_[index];
    e.busy = false;
    if (!all_started_) {
      all_started_ = true;
      for (std::size_t i = 1; i < endpoints_.size(); ++i) issue(i, now, {});
    }
    if (measuring_) {
      ++completed_;
      if (!success) ++errors_;
      latency_.add(now - e.first_sent);
    }
    issue(index, now, {});
  }

  // A request (or, after its empty ACK, a separate response) unanswered for the timeout.
  void retransmit_overdue(std::int64_t now) {
    const std::int64_t timeout = o_.timeout_ms * 1'000'000;
    for (auto& e : endpoints_) {
      if (!e.busy || now - e.last_sent < timeout) continue;
      ++lost_;
      e.last_sent = now;
      // Section 4.2: a CON is retransmitted unchanged; a NON request (or a CON whose
      // separate response went missing) gets a new message ID, and is then a new request to
      // the server's deduplication, but the same OSCORE message (replay-refused at worst).
      if (o_.non || e.acknowledged) {
        e.message_id = e.next_message_id++;
        e.datagram[2] = static_cast<std::uint8_t>(e.message_id >> 8);
        e.datagram[3] = static_cast<std::uint8_t>(e.message_id);
        e.acknowledged = false;
      }
      send(e.fd, {e.datagram.data(), e.datagram_size});
    }
  }

  void report(std::int64_t now) {
    const double seconds = static_cast<double>(now - measure_start_) / 1e9;
    const double cpu = bench::cpu_seconds() - cpu_start_;
    const double server_cpu =
        o_.server_pid ? bench::read_process_usage(o_.server_pid).cpu_s - server_cpu_start_ : 0.0;
    const double rate = seconds > 0 ? static_cast<double>(completed_) / seconds : 0.0;
    std::printf(
        "oscore_load mode=%s type=%s endpoints=%zu duration_s=%.3f completed=%llu req_per_s=%.0f "
        "server_cpu_s=%.2f req_per_server_cpu_s=%.0f server_cpu_pct=%.1f echo_retries=%llu lost=%llu errors=%llu "
        "refused=%llu unmatched=%llu send_drops=%llu p50_us=%zu p99_us=%zu load_cpu_pct=%.1f\n",
        o_.plain ? "plain" : "oscore", o_.non ? "NON" : "CON", o_.endpoints, seconds,
        static_cast<unsigned long long>(completed_), rate, server_cpu,
        server_cpu > 0 ? static_cast<double>(completed_) / server_cpu : 0.0,
        seconds > 0 ? 100.0 * server_cpu / seconds : 0.0, static_cast<unsigned long long>(echo_retries_),
        static_cast<unsigned long long>(lost_), static_cast<unsigned long long>(errors_),
        static_cast<unsigned long long>(refused_), static_cast<unsigned long long>(unmatched_),
        static_cast<unsigned long long>(send_drops_), latency_.percentile(0.50), latency_.percentile(0.99),
        seconds > 0 ? 100.0 * cpu / seconds : 0.0);
  }

  const options& o_;
  std::optional<core::context> context_;
  bench::histogram latency_;  // 1 us buckets up to the timeout
  int epoll_ = -1;
  std::vector<endpoint> endpoints_;
  coap::message request_;
  coap::message protected_;
  coap::message response_;
  bool measuring_ = false;
  bool refused_reported_ = false;
  bool all_started_ = false;
  std::int64_t measure_start_ = 0;
  double cpu_start_ = 0;
  double server_cpu_start_ = 0;
  std::uint64_t sent_total_ = 0;
  std::uint64_t completed_ = 0, lost_ = 0, errors_ = 0, refused_ = 0, unmatched_ = 0, send_drops_ = 0;
  std::uint64_t echo_retries_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  const options o = parse_options(argc, argv);
  load l(o);
  l.run();
  return 0;
}
