// RFC 7641 sections 3.1-3.6: the observer side of the notification fan-out benchmark
// (bench/run_observe_bench). E UDP sockets (E server sessions), each registering K
// observations of one resource (CON GET with Observe=0, K distinct tokens); then it asks the
// server to start notifying (CON POST /go), counts the notifications that arrive, acknowledges
// the confirmable ones (an observer that does not is dropped, section 4.5) and stops the
// server's notifying (CON POST /stop) after --warmup + --duration seconds.
//
// Like bench/udp_load.cpp it is not built on coap-cpp, so that the observer does not share
// the bugs of the server it measures. It watches the server process from outside too:
// /proc/PID/stat utime+stime (CPU), /proc/PID/status VmRSS and, when the server runs under
// bench/live_heap_preload.c (LIVE_HEAP_COUNT_CALLS=1), its live heap and allocation count (the file the preload
// rewrites every 20 ms), at each phase: before the registrations, after them, at the start
// and end of the measured seconds.
//
// Usage: observe_load --port 5683 [--host 127.0.0.1] [--path obs] [--endpoints 1000]
//                     [--observations 10] [--warmup 2] [--duration 5] [--server-pid PID]
//                     [--heap-report FILE] [--register-timeout 30] [--queries 1|0]
// --queries 1 (default): observation k of a socket asks for obs?k=<k>, so that the K
// registrations of one socket are K different requests (see send_registration); 0: all ask
// for the same URI with different tokens.
// Every wait is bounded: a registration is sent at most 5 times (1 s apart), POSTs likewise,
// and the whole run ends after register-timeout + warmup + duration + 2 seconds at most.
// Prints one line of key=value pairs starting with "observe_load".
#include "bench/bench_support.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace {

[[noreturn]] void die(const char* what) { bench::system_error("observe_load", what); }
[[noreturn]] void usage(const char* what) { bench::usage_error("observe_load", what); }

struct options : bench::address_options {
  std::string path = "obs";
  std::size_t endpoints = 1000;
  std::size_t observations = 10;
  double warmup = 2.0;
  double duration = 5.0;
  int server_pid = 0;
  std::string heap_report;
  double register_timeout = 30.0;
  bool queries = true;
};

options parse_options(int argc, char** argv) {
  options o;
  bench::parse_arguments(argc, argv, 1, usage, o, [&o](std::string_view a, auto& value) {
    if (a == "--path") o.path = value();
    else if (a == "--endpoints") o.endpoints = std::stoul(value());
    else if (a == "--observations") o.observations = std::stoul(value());
    else if (a == "--warmup") o.warmup = std::stod(value());
    else if (a == "--duration") o.duration = std::stod(value());
    else if (a == "--server-pid") o.server_pid = std::stoi(value());
    else if (a == "--heap-report") o.heap_report = value();
    else if (a == "--register-timeout") o.register_timeout = std::stod(value());
    else if (a == "--queries") o.queries = value() != "0";
    else return false;
    return true;
  });
  if (o.endpoints == 0 || o.endpoints > 60000) usage("--endpoints must be 1..60000");
  if (o.observations == 0 || o.observations > 255) usage("--observations must be 1..255");
  if (o.path.empty() || o.path.size() > 12 || o.path.find('/') != std::string::npos)
    usage("--path must be one segment of 1..12 bytes");
  return o;
}

using bench::now_ns;
using bench::sleep_ms;

// ---- The server process, seen from outside ----

struct server_state {
  double cpu_s = 0;          // utime + stime
  long rss_kb = 0;           // VmRSS
  long long heap_bytes = -1; // live heap (live_heap_preload), -1 when not preloaded
  long long heap_blocks = -1;
  long long allocations = -1;
};

server_state read_server(const options& o) {
  server_state s;
  if (o.server_pid <= 0) return s;
  const bench::process_usage u = bench::read_process_usage(o.server_pid);
  s.cpu_s = u.cpu_s;
  s.rss_kb = u.rss_kb;
  // The preload rewrites the file in place (O_TRUNC): a read may find it empty; try again.
  for (int attempt = 0; attempt < 20 && !o.heap_report.empty() && s.heap_bytes < 0; ++attempt) {
    if (attempt > 0) sleep_ms(2);
    std::ifstream f(o.heap_report);
    std::string kv;
    while (f >> kv) {
      const auto eq = kv.find('=');
      if (eq == std::string::npos) continue;
      const long long v = std::stoll(kv.substr(eq + 1));
      const std::string k = kv.substr(0, eq);
      if (k == "live_bytes") s.heap_bytes = v;
      else if (k == "blocks") s.heap_blocks = v;
      else if (k == "allocations") s.allocations = v;
    }
  }
  return s;
}

// /proc/net/snmp Udp: RcvbufErrors, the datagrams the kernel dropped for a full receive
// buffer (any socket of the machine: the observer's, the server's, others').
long long udp_rcvbuf_errors() {
  std::ifstream f("/proc/net/snmp");
  std::string names, values, line;
  while (std::getline(f, line)) {
    if (line.rfind("Udp:", 0) != 0) continue;
    if (names.empty()) names = line;
    else {
      values = line;
      break;
    }
  }
  std::istringstream n(names), v(values);
  std::string name, value;
  while (n >> name && v >> value)
    if (name == "RcvbufErrors") return std::stoll(value);
  return -1;
}

// /proc/net/udp "drops" of the sockets bound to local port `port` (the server's): datagrams
// (here: the observers' ACKs) its full receive buffer turned away.
long long socket_drops(std::uint16_t port) {
  std::ifstream f("/proc/net/udp");
  std::string line;
  std::getline(f, line);  // the header
  long long drops = 0;
  char want[8];
  std::snprintf(want, sizeof want, ":%04X", port);
  while (std::getline(f, line)) {
    std::istringstream in(line);
    std::string slot, local, field;
    in >> slot >> local;
    if (local.size() < 5 || local.compare(local.size() - 5, 5, want) != 0) continue;
    while (in >> field) {
    }
    drops += std::stoll(field);  // the last field
  }
  return drops;
}

// ---- CoAP over UDP, by hand (RFC 7252 section 3) ----

constexpr std::uint8_t type_con = 0, type_non = 1, type_ack = 2, type_rst = 3;
constexpr std::uint16_t option_observe = 6, option_uri_path = 11, option_uri_query = 15;

struct parsed {
  std::uint8_t type = 0;
  std::uint8_t code = 0;
  std::uint16_t message_id = 0;
  std::uint32_t token = 0;      // our tokens are 4 bytes
  std::size_t token_length = 0;
  bool has_observe = false;
  std::uint32_t observe = 0;
};

bool parse(std::span<const std::uint8_t> d, parsed& p) {
  if (d.size() < 4 || (d[0] >> 6) != 1) return false;
  p.type = static_cast<std::uint8_t>((d[0] >> 4) & 3);
  p.token_length = d[0] & 0x0f;
  p.code = d[1];
  p.message_id = static_cast<std::uint16_t>((d[2] << 8) | d[3]);
  if (p.token_length > 8 || d.size() < 4 + p.token_length) return false;
  p.token = 0;
  for (std::size_t i = 0; i < p.token_length; ++i) p.token = (p.token << 8) | d[4 + i];
  std::size_t at = 4 + p.token_length;
  unsigned number = 0;
  while (at < d.size() && d[at] != 0xff) {
    unsigned delta = d[at] >> 4, length = d[at] & 0x0f;
    ++at;
    auto extended = [&](unsigned& v) {
      if (v == 13) {
        if (at >= d.size()) return false;
        v = 13u + d[at++];
      } else if (v == 14) {
        if (at + 1 >= d.size()) return false;
        v = 269u + (unsigned{d[at]} << 8) + d[at + 1];
        at += 2;
      } else if (v == 15) {
        return false;
      }
      return true;
    };
    if (!extended(delta) || !extended(length) || at + length > d.size()) return false;
    number += delta;
    if (number == option_observe) {
      p.has_observe = true;
      p.observe = 0;
      for (unsigned i = 0; i < length; ++i) p.observe = (p.observe << 8) | d[at + i];
    }
    at += length;
  }
  return true;
}

// A CON request with a 4-byte token, an optional empty Observe (=0), one Uri-Path and an
// optional Uri-Query.
std::vector<std::uint8_t> request(std::uint8_t code, std::uint16_t mid, std::uint32_t token, bool observe,
                                  std::string_view path, std::string_view query = {}) {
  std::vector<std::uint8_t> m = {0x44, code, static_cast<std::uint8_t>(mid >> 8), static_cast<std::uint8_t>(mid),
                                 static_cast<std::uint8_t>(token >> 24), static_cast<std::uint8_t>(token >> 16),
                                 static_cast<std::uint8_t>(token >> 8), static_cast<std::uint8_t>(token)};
  unsigned previous = 0;
  if (observe) {
    m.push_back(static_cast<std::uint8_t>(option_observe << 4));  // Observe=0: a zero-length value
    previous = option_observe;
  }
  m.push_back(static_cast<std::uint8_t>(((option_uri_path - previous) << 4) | path.size()));
  m.insert(m.end(), path.begin(), path.end());
  if (!query.empty()) {
    m.push_back(static_cast<std::uint8_t>(((option_uri_query - option_uri_path) << 4) | query.size()));
    m.insert(m.end(), query.begin(), query.end());
  }
  return m;
}

// ---- The observer ----

struct observation {
  bool registered = false;
  std::uint16_t message_id = 0;  // of the registration
  int attempts = 0;
  std::int64_t last_sent = 0;
  std::uint64_t received = 0;      // notifications, measured seconds only
  std::int64_t last_notified = 0;  // when the latest measured notification arrived
  std::uint16_t last_con_id = 0;   // a retransmitted CON notification is not counted twice
  bool any_con = false;
};

struct endpoint {
  int fd = -1;
  std::uint16_t next_message_id = 0;
};

constexpr std::size_t batch = 64;
constexpr std::size_t max_datagram = 1500;

class observer_load {
 public:
  explicit observer_load(const options& o) : o_(o), server_(bench::ipv4_address(o, usage)) {
    bench::raise_file_limit();
    epoll_ = epoll_create1(0);
    if (epoll_ < 0) die("epoll_create1");
    endpoints_.resize(o.endpoints);
    observations_.resize(o.endpoints * o.observations);
    std::uint32_t seed = static_cast<std::uint32_t>(now_ns());
    for (std::size_t i = 0; i < endpoints_.size(); ++i) {
      auto& e = endpoints_[i];
      seed = seed * 1664525u + 1013904223u;
      e.next_message_id = static_cast<std::uint16_t>(seed >> 16);
      e.fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
      if (e.fd < 0) die("socket");
      // Room for bursts of notifications while this process is busy with other sockets.
      const int buffer = 1 << 20;
      setsockopt(e.fd, SOL_SOCKET, SO_RCVBUF, &buffer, sizeof buffer);
      if (connect(e.fd, reinterpret_cast<const sockaddr*>(&server_), sizeof server_) < 0) die("connect");
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = i;
      if (epoll_ctl(epoll_, EPOLL_CTL_ADD, e.fd, &ev) < 0) die("epoll_ctl");
    }
    for (std::size_t i = 0; i < in_.size(); ++i) {
      iov_[i] = {in_[i].data(), in_[i].size()};
      msgs_[i].msg_hdr.msg_iov = &iov_[i];
      msgs_[i].msg_hdr.msg_iovlen = 1;
    }
  }

  int run() {
    const std::int64_t start = now_ns();
    before_registration_ = read_server(o_);
    register_all(start + static_cast<std::int64_t>(o_.register_timeout * 1e9));
    const std::int64_t registered_at = now_ns();
    sleep_ms(300);  // the heap report is rewritten every 20 ms; RSS settles
    after_registration_ = read_server(o_);

    // Notifying: POST /go, warm-up, measured seconds, POST /stop.
    if (!post("go")) usage("the server did not acknowledge POST /go");
    const std::int64_t go_at = now_ns();
    const std::int64_t measure_from = go_at + static_cast<std::int64_t>(o_.warmup * 1e9);
    const std::int64_t measure_to = measure_from + static_cast<std::int64_t>(o_.duration * 1e9);
    std::int64_t now = go_at;
    bool measuring = false;
    while (now < measure_to) {
      if (!measuring && now >= measure_from) {
        measuring = true;
        start_measurement(now);
      }
      poll_once(10, now, measuring);
      now = now_ns();
    }
    end_measurement(now);
    const bool stopped = post("stop");
    // Late notifications still in the sockets are read (and acknowledged), not counted.
    drain(now_ns() + 200'000'000);
    sleep_ms(100);
    const server_state after_stop = read_server(o_);
    report(registered_at - start, stopped, after_stop);
    return registered_ == observations_.size() ? 0 : 1;
  }

 private:
  // ---- registrations: at most 64 outstanding, so as not to overflow the server's socket ----
  void register_all(std::int64_t deadline) {
    std::size_t next = 0, outstanding = 0;
    std::int64_t now = now_ns();
    while (registered_ + failed_ < observations_.size() && now < deadline) {
      while (outstanding < 64 && next < observations_.size()) {
        send_registration(next++, now);
        ++outstanding;
      }
      const std::size_t before = registered_ + failed_;
      poll_once(10, now, false);
      now = now_ns();
      outstanding -= std::min(outstanding, registered_ + failed_ - before);
      // Section 4.2 of RFC 7252: retransmit an unanswered CON (here after 1 s, 5 times at most).
      for (std::size_t i = 0; i < next; ++i) {
        auto& x = observations_[i];
        if (x.registered || x.attempts == 0 || now - x.last_sent < 1'000'000'000) continue;
        if (x.attempts >= 5) {
          x.attempts = 0;  // given up
          ++failed_;
          --outstanding;
          continue;
        }
        ++retransmissions_;
        send_registration(i, now, false);
      }
    }
  }

  std::uint32_t token_of(std::size_t i) const noexcept {
    // Endpoint index in the high bytes, observation number in the low byte.
    return static_cast<std::uint32_t>(((i / o_.observations) << 8) | (i % o_.observations));
  }

  void send_registration(std::size_t i, std::int64_t now, bool fresh = true) {
    auto& x = observations_[i];
    auto& e = endpoints_[i / o_.observations];
    if (fresh) x.message_id = e.next_message_id++;
    ++x.attempts;
    x.last_sent = now;
    // libcoap 4.3.1 keeps one observer per session and request (its cache key ignores the
    // token): a new token for the same request replaces the older observer. --queries makes
    // each observation of a socket a different request ("k=0" .. "k=9"), for both servers.
    const std::string query = o_.queries ? "k=" + std::to_string(i % o_.observations) : std::string();
    const auto m = request(0x01, x.message_id, token_of(i), true, o_.path, query);
    if (send(e.fd, m.data(), m.size(), 0) < 0 && errno != EAGAIN && errno != ECONNREFUSED) die("send");
  }

  // A CON POST to path `p` from endpoint 0, retransmitted every second, 5 times at most;
  // notifications arriving meanwhile are handled as usual.
  bool post(std::string_view p) {
    auto& e = endpoints_[0];
    post_id_ = e.next_message_id++;
    post_acked_ = false;
    const auto m = request(0x02, post_id_, 0xFFFFFF00u, false, p);
    for (int attempt = 0; attempt < 5 && !post_acked_; ++attempt) {
      if (send(e.fd, m.data(), m.size(), 0) < 0 && errno != EAGAIN) die("send");
      const std::int64_t until = now_ns() + 1'000'000'000;
      for (std::int64_t now = now_ns(); now < until && !post_acked_; now = now_ns()) poll_once(10, now, false);
    }
    return post_acked_;
  }

  void drain(std::int64_t until) {
    for (std::int64_t now = now_ns(); now < until; now = now_ns()) poll_once(10, now, false);
  }

  void poll_once(int timeout_ms, std::int64_t now, bool measuring) {
    std::array<epoll_event, 256> events;
    const int n = epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), timeout_ms);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    for (int k = 0; k < n; ++k) receive(static_cast<std::size_t>(events[static_cast<std::size_t>(k)].data.u64), now, measuring);
  }

  void receive(std::size_t index, std::int64_t now, bool measuring) {
    auto& e = endpoints_[index];
    for (int round = 0; round < 4; ++round) {
      const int n = recvmmsg(e.fd, msgs_.data(), static_cast<unsigned>(msgs_.size()), MSG_DONTWAIT, nullptr);
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR || errno == ECONNREFUSED) return;
        die("recvmmsg");
      }
      for (int k = 0; k < n; ++k)
        on_datagram(index, {in_[static_cast<std::size_t>(k)].data(), msgs_[static_cast<std::size_t>(k)].msg_len}, now,
                    measuring);
      if (static_cast<std::size_t>(n) < msgs_.size()) return;
    }
  }

  void on_datagram(std::size_t index, std::span<const std::uint8_t> d, std::int64_t now, bool measuring) {
    parsed p;
    if (!parse(d, p)) {
      ++malformed_;
      return;
    }
    auto& e = endpoints_[index];
    if (p.type == type_con) {
      // Section 4.2: acknowledge with an empty ACK of the same message ID.
      const std::uint8_t ack[4] = {static_cast<std::uint8_t>(0x40 | (type_ack << 4)), 0, d[2], d[3]};
      if (send(e.fd, ack, sizeof ack, 0) < 0 && errno != EAGAIN && errno != ECONNREFUSED) die("send");
      ++acks_sent_;
    }
    if (p.type == type_rst) {
      ++resets_;
      return;
    }
    if (index == 0 && p.type == type_ack && p.message_id == post_id_) {
      post_acked_ = true;
      return;
    }
    if (p.token_length != 4 || (p.token >> 8) != index || (p.token & 0xff) >= o_.observations) {
      ++unmatched_;
      return;
    }
    const std::size_t i = index * o_.observations + (p.token & 0xff);
    auto& x = observations_[i];
    if (p.type == type_ack && !x.registered && x.attempts > 0 && p.message_id == x.message_id) {
      // The registration's piggybacked answer: registered when it carries Observe (section 4.1).
      x.attempts = 0;
      if ((p.code >> 5) == 2 && p.has_observe) {
        x.registered = true;
        ++registered_;
      } else {
        ++failed_;
      }
      return;
    }
    if (p.type != type_con && p.type != type_non) {
      ++unmatched_;
      return;
    }
    // A notification: 2.xx with Observe, on a registered token.
    if (!x.registered || !p.has_observe || (p.code >> 5) != 2) {
      ++unmatched_;
      if ((p.code >> 5) != 2) ++error_notifications_;
      return;
    }
    if (p.type == type_con) {
      if (x.any_con && x.last_con_id == p.message_id) {
        ++duplicates_;
        return;
      }
      x.any_con = true;
      x.last_con_id = p.message_id;
    }
    ++received_total_;
    if (measuring) {
      x.last_notified = now;
      ++received_;
      ++x.received;
      if (p.type == type_con) ++received_con_;
    }
  }

  void start_measurement(std::int64_t now) {
    measure_start_ = now;
    own_cpu_start_ = bench::cpu_seconds();
    rcvbuf_errors_start_ = udp_rcvbuf_errors();
    server_drops_start_ = socket_drops(o_.port);
    at_start_ = read_server(o_);
    received_ = received_con_ = 0;
    for (auto& x : observations_) x.received = 0;
  }
  void end_measurement(std::int64_t now) {
    measure_end_ = now;
    own_cpu_end_ = bench::cpu_seconds();
    rcvbuf_errors_end_ = udp_rcvbuf_errors();
    server_drops_end_ = socket_drops(o_.port);
    at_end_ = read_server(o_);
  }

  void report(std::int64_t registration_ns, bool stopped, const server_state& after_stop) {
    const double seconds = static_cast<double>(measure_end_ - measure_start_) / 1e9;
    const double server_cpu = at_end_.cpu_s - at_start_.cpu_s;
    std::size_t silent = 0, alive_last_second = 0;
    std::uint64_t least = ~std::uint64_t{0}, most = 0;
    for (const auto& x : observations_) {
      if (!x.registered) continue;
      if (x.received == 0) ++silent;
      if (measure_end_ - x.last_notified <= 1'000'000'000) ++alive_last_second;
      least = std::min(least, x.received);
      most = std::max(most, x.received);
    }
    if (registered_ == 0) least = 0;
    const double n_obs = static_cast<double>(std::max<std::size_t>(registered_, 1));
    auto per_observer = [&](long long a, long long b) { return (a < 0 || b < 0) ? -1.0 : static_cast<double>(b - a) / n_obs; };
    const long long allocs =
        at_start_.allocations >= 0 && at_end_.allocations >= 0 ? at_end_.allocations - at_start_.allocations : -1;
    std::printf(
        "observe_load endpoints=%zu observations=%zu queries=%d registered=%zu failed=%zu register_retransmissions=%llu "
        "register_s=%.2f stopped=%d duration_s=%.3f notifications=%llu notifications_per_s=%.0f con=%llu "
        "acks_sent=%llu duplicates=%llu unmatched=%llu error_notifications=%llu resets=%llu malformed=%llu "
        "silent_observations=%zu alive_last_second=%zu min_per_observation=%llu max_per_observation=%llu "
        "udp_rcvbuf_errors=%lld server_socket_drops=%lld load_cpu_pct=%.1f server_cpu_s=%.3f server_cpu_pct=%.1f "
        "notifications_per_server_cpu_s=%.0f rss_kb_before=%ld rss_kb_registered=%ld rss_kb_after=%ld "
        "rss_bytes_per_observer=%.1f heap_bytes_per_observer=%.1f heap_blocks_per_observer=%.2f "
        "allocations_measured=%lld allocs_per_notification=%.4f\n",
        o_.endpoints, o_.observations, o_.queries ? 1 : 0, registered_, failed_, static_cast<unsigned long long>(retransmissions_),
        static_cast<double>(registration_ns) / 1e9, stopped ? 1 : 0, seconds,
        static_cast<unsigned long long>(received_), seconds > 0 ? static_cast<double>(received_) / seconds : 0.0,
        static_cast<unsigned long long>(received_con_), static_cast<unsigned long long>(acks_sent_),
        static_cast<unsigned long long>(duplicates_), static_cast<unsigned long long>(unmatched_),
        static_cast<unsigned long long>(error_notifications_), static_cast<unsigned long long>(resets_),
        static_cast<unsigned long long>(malformed_), silent, alive_last_second,
        static_cast<unsigned long long>(least), static_cast<unsigned long long>(most),
        rcvbuf_errors_end_ - rcvbuf_errors_start_, server_drops_end_ - server_drops_start_, seconds > 0 ? 100.0 * (own_cpu_end_ - own_cpu_start_) / seconds : 0.0,
        server_cpu, seconds > 0 ? 100.0 * server_cpu / seconds : 0.0,
        server_cpu > 0 ? static_cast<double>(received_) / server_cpu : 0.0, before_registration_.rss_kb,
        after_registration_.rss_kb, after_stop.rss_kb,
        per_observer(before_registration_.rss_kb * 1024, after_registration_.rss_kb * 1024),
        per_observer(before_registration_.heap_bytes, after_registration_.heap_bytes),
        per_observer(before_registration_.heap_blocks, after_registration_.heap_blocks), allocs,
        allocs >= 0 && received_ > 0 ? static_cast<double>(allocs) / static_cast<double>(received_) : -1.0);
  }

  const options& o_;
  sockaddr_in server_;
  int epoll_ = -1;
  std::vector<endpoint> endpoints_;
  std::vector<observation> observations_;
  std::array<std::array<std::uint8_t, max_datagram>, batch> in_{};
  std::array<iovec, batch> iov_{};
  std::array<mmsghdr, batch> msgs_{};
  std::uint16_t post_id_ = 0;
  bool post_acked_ = false;
  std::size_t registered_ = 0, failed_ = 0;
  std::uint64_t retransmissions_ = 0, acks_sent_ = 0, duplicates_ = 0, unmatched_ = 0, resets_ = 0, malformed_ = 0;
  std::uint64_t error_notifications_ = 0, received_ = 0, received_con_ = 0, received_total_ = 0;
  std::int64_t measure_start_ = 0, measure_end_ = 0;
  double own_cpu_start_ = 0, own_cpu_end_ = 0;
  long long rcvbuf_errors_start_ = 0, rcvbuf_errors_end_ = 0, server_drops_start_ = 0, server_drops_end_ = 0;
  server_state before_registration_, after_registration_, at_start_, at_end_;
};

}  // namespace

int main(int argc, char** argv) {
  const options o = parse_options(argc, argv);
  observer_load load(o);
  return load.run();
}
