// RFC 8323: a closed-loop load generator for CoAP servers over TCP. C connections each send an
// empty CSM (section 5.3: Len 0, TKL 0, code 7.01) and then keep W GET requests outstanding
// (pipelined, 4-byte token, one Uri-Path option per path segment). A response whose token
// matches an outstanding request completes it and starts the next one; signalling messages
// from the server (7.xx: its CSM, Ping, ...) are skipped. Responses are framed and parsed with
// coap::tcp_codec::frame_size and coap::tcp_codec::parse.
//
// Requests are frames encoded by hand from a template (token patched per request); the frames
// of one connection produced while handling one batch of events go out in a single write().
//
// Usage: tcp_load --host 127.0.0.1 --port 5683 --connections 16 --window 4 --duration 5
//                 --warmup 2 [--path x] [--max-requests N] [--connect-timeout-ms 2000]
// --max-requests N: the run ends when N requests are answered (or --duration has passed).
// Prints one line of key=value pairs starting with "tcp_load". Exit status 1 when a
// connection fails or is closed by the server.
#include <coap/message_view.hpp>
#include <coap/tcp_codec.hpp>

#include "bench/bench_support.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
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
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace {

[[noreturn]] void die(const char* what) { bench::system_error("tcp_load", what); }
[[noreturn]] void usage(const char* what) { bench::usage_error("tcp_load", what); }

struct options : bench::address_options {
  std::size_t connections = 16;
  std::size_t window = 4;
  double duration = 5.0;
  double warmup = 2.0;
  std::string path = "x";
  std::uint64_t max_requests = 2'000'000'000;
  std::int64_t connect_timeout_ms = 2000;
};

options parse_options(int argc, char** argv) {
  options o;
  bench::parse_arguments(argc, argv, 1, usage, o, [&o](std::string_view a, auto& value) {
    if (a == "--connections") o.connections = std::stoul(value());
    else if (a == "--window") o.window = std::stoul(value());
    else if (a == "--duration") o.duration = std::stod(value());
    else if (a == "--warmup") o.warmup = std::stod(value());
    else if (a == "--path") o.path = value();
    else if (a == "--max-requests") o.max_requests = std::stoull(value());
    else if (a == "--connect-timeout-ms") o.connect_timeout_ms = std::stoll(value());
    else return false;
    return true;
  });
  if (o.connections == 0 || o.connections > 10000) usage("--connections must be 1..10000");
  if (o.window == 0 || o.window > 65535) usage("--window must be 1..65535");
  return o;
}

using bench::now_ns;
using bench::cpu_seconds;

// Section 3.2: Len (options; no payload) and TKL 4 in the first byte, code GET, a 4-byte token
// (bytes 2-5, patched per request), then one Uri-Path option per path segment.
std::vector<std::uint8_t> request_template(std::string_view path) {
  const std::vector<std::uint8_t> options = bench::uri_path_options(path, usage);
  if (options.size() >= 13) usage("path too long (options must be under 13 bytes)");
  // Sized first: GCC 12 at -O2 warns (-Warray-bounds, a false positive) about inserting into a
  // vector made from an initializer list.
  std::vector<std::uint8_t> m(6 + options.size(), 0);
  m[0] = static_cast<std::uint8_t>((options.size() << 4) | 4);
  m[1] = 0x01;
  std::copy(options.begin(), options.end(), m.begin() + 6);
  return m;
}

struct slot {
  bool busy = false;
  std::uint32_t token = 0;
  std::int64_t sent = 0;
};

struct connection {
  int fd = -1;
  bool connected = false;
  bool want_out = false;  // EPOLLOUT registered
  std::uint16_t sequence = 0;
  std::vector<slot> slots;
  std::vector<std::uint8_t> in;  // unparsed bytes at [in_begin, in_end)
  std::size_t in_begin = 0, in_end = 0;
  std::vector<std::uint8_t> out;  // unsent bytes at [out_begin, out.size())
  std::size_t out_begin = 0;
  bool dirty = false;  // in the flush list
};

class load {
 public:
  explicit load(const options& o)
      : o_(o), template_(request_template(o.path)), latency_(10'000'000), server_(bench::ipv4_address(o, usage)) {
    bench::raise_file_limit();
    epoll_ = epoll_create1(0);
    if (epoll_ < 0) die("epoll_create1");
    conns_.resize(o.connections);
    for (std::size_t i = 0; i < conns_.size(); ++i) {
      auto& c = conns_[i];
      c.slots.resize(o.window);
      c.in.resize(1 << 16);
      c.out.reserve(template_.size() * o.window + 16);
      c.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
      if (c.fd < 0) die("socket");
      const int one = 1;
      setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      if (connect(c.fd, reinterpret_cast<const sockaddr*>(&server_), sizeof server_) < 0 && errno != EINPROGRESS)
        die("connect");
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLOUT;
      ev.data.u64 = i;
      c.want_out = true;
      if (epoll_ctl(epoll_, EPOLL_CTL_ADD, c.fd, &ev) < 0) die("epoll_ctl");
      // Section 5.3: the empty CSM goes first, then the whole window of requests.
      c.out.push_back(0x00);
      c.out.push_back(0xE1);
      dirty_.push_back(i);
      c.dirty = true;
    }
  }

  int run() {
    const std::int64_t start = now_ns();
    const std::int64_t measure_from = start + static_cast<std::int64_t>(o_.warmup * 1e9);
    const std::int64_t end = measure_from + static_cast<std::int64_t>(o_.duration * 1e9);
    std::int64_t now = start;
    measuring_ = o_.warmup <= 0;
    if (measuring_) begin_measurement(now);
    for (std::size_t i = 0; i < conns_.size(); ++i)
      for (std::size_t s = 0; s < o_.window; ++s) issue(i, s, now);
    std::array<epoll_event, 256> events;
    while (now < end && failed_ == 0) {
      if (sent_total_ >= o_.max_requests && completed_total_ == sent_total_) break;
      if (connected_ < conns_.size() && now - start > o_.connect_timeout_ms * 1'000'000) {
        std::fprintf(stderr, "tcp_load: only %zu of %zu connections established\n", connected_, conns_.size());
        ++failed_;
        break;
      }
      const int n = epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), 10);
      if (n < 0 && errno != EINTR) die("epoll_wait");
      now = now_ns();
      if (!measuring_ && now >= measure_from) {
        measuring_ = true;
        begin_measurement(now);
      }
      for (int k = 0; k < n; ++k) {
        const auto& ev = events[static_cast<std::size_t>(k)];
        const auto i = static_cast<std::size_t>(ev.data.u64);
        auto& c = conns_[i];
        if (c.fd < 0) continue;
        if (ev.events & (EPOLLERR | EPOLLHUP)) {
          int err = 0;
          socklen_t len = sizeof err;
          getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
          fail(i, err ? std::strerror(err) : "hang-up");
          continue;
        }
        if ((ev.events & EPOLLOUT) && !c.connected) {
          c.connected = true;
          ++connected_;
        }
        if (ev.events & EPOLLIN) receive(i, now);
        if ((ev.events & EPOLLOUT) && !c.dirty) {
          c.dirty = true;
          dirty_.push_back(i);
        }
      }
      flush_all();
    }
    report(now);
    return failed_ ? 1 : 0;
  }

 private:
  void begin_measurement(std::int64_t now) {
    measure_start_ = now;
    cpu_start_ = cpu_seconds();
    completed_ = errors_ = unmatched_ = 0;
    latency_.clear();
  }

  void fail(std::size_t i, const char* why) {
    std::fprintf(stderr, "tcp_load: connection %zu: %s\n", i, why);
    close(conns_[i].fd);
    conns_[i].fd = -1;
    ++failed_;
  }

  // Starts a request in slot s of connection i.
  void issue(std::size_t i, std::size_t s, std::int64_t now) {
    if (sent_total_ >= o_.max_requests) return;
    auto& c = conns_[i];
    auto& x = c.slots[s];
    x.busy = true;
    x.token = static_cast<std::uint32_t>(s << 16) | c.sequence++;
    x.sent = now;
    ++sent_total_;
    const std::size_t at = c.out.size();
    c.out.insert(c.out.end(), template_.begin(), template_.end());
    c.out[at + 2] = static_cast<std::uint8_t>(x.token >> 24);
    c.out[at + 3] = static_cast<std::uint8_t>(x.token >> 16);
    c.out[at + 4] = static_cast<std::uint8_t>(x.token >> 8);
    c.out[at + 5] = static_cast<std::uint8_t>(x.token);
    if (!c.dirty) {
      c.dirty = true;
      dirty_.push_back(i);
    }
  }

  void set_want_out(std::size_t i, bool want) {
    auto& c = conns_[i];
    if (c.want_out == want) return;
    epoll_event ev{};
    ev.events = EPOLLIN | (want ? EPOLLOUT : 0u);
    ev.data.u64 = i;
    if (epoll_ctl(epoll_, EPOLL_CTL_MOD, c.fd, &ev) < 0) die("epoll_ctl");
    c.want_out = want;
  }

  // One write() per connection with something to send; what does not fit waits for EPOLLOUT.
  void flush_all() {
    for (const std::size_t i : dirty_) {
      auto& c = conns_[i];
      c.dirty = false;
      if (c.fd < 0) continue;
      if (!c.connected) continue;  // EPOLLOUT (still registered) says when
      while (c.out_begin < c.out.size()) {
        const ssize_t w = send(c.fd, c.out.data() + c.out_begin, c.out.size() - c.out_begin, MSG_NOSIGNAL);
        if (w < 0) {
          if (errno == EINTR) continue;
          if (errno == EAGAIN) break;
          fail(i, std::strerror(errno));
          break;
        }
        ++writes_;
        c.out_begin += static_cast<std::size_t>(w);
      }
      if (c.fd < 0) continue;
      if (c.out_begin == c.out.size()) {
        c.out.clear();
        c.out_begin = 0;
        set_want_out(i, false);
      } else {
        set_want_out(i, true);
      }
    }
    dirty_.clear();
  }

  void receive(std::size_t i, std::int64_t now) {
    auto& c = conns_[i];
    for (;;) {
      if (c.in_end == c.in.size()) {
        // Move the partial frame to the front, or grow for a large one.
        if (c.in_begin > 0) {
          std::memmove(c.in.data(), c.in.data() + c.in_begin, c.in_end - c.in_begin);
          c.in_end -= c.in_begin;
          c.in_begin = 0;
        } else {
          c.in.resize(c.in.size() * 2);
        }
      }
      const ssize_t r = recv(c.fd, c.in.data() + c.in_end, c.in.size() - c.in_end, 0);
      if (r < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN) return;
        fail(i, std::strerror(errno));
        return;
      }
      if (r == 0) {
        fail(i, "closed by the server");
        return;
      }
      ++reads_;
      c.in_end += static_cast<std::size_t>(r);
      if (!parse_frames(i, now)) return;
      if (c.in_begin == c.in_end) c.in_begin = c.in_end = 0;
      if (static_cast<std::size_t>(r) < 4096) return;  // drained (most likely)
    }
  }

  // Handles the complete frames in the buffer. False when the stream is broken.
  bool parse_frames(std::size_t i, std::int64_t now) {
    auto& c = conns_[i];
    while (c.in_begin < c.in_end) {
      const std::span<const std::uint8_t> stream(c.in.data() + c.in_begin, c.in_end - c.in_begin);
      std::uint64_t size = 0;
      if (auto ec = coap::tcp_codec::frame_size(stream, size)) {
        fail(i, ("bad frame: " + ec.message()).c_str());
        return false;
      }
      if (size == 0 || size > stream.size()) return true;  // incomplete
      coap::message_view m;
      if (auto ec = coap::tcp_codec::parse(stream.first(static_cast<std::size_t>(size)), m)) {
        fail(i, ("unparsable frame: " + ec.message()).c_str());
        return false;
      }
      c.in_begin += static_cast<std::size_t>(size);
      on_message(i, m, now);
    }
    return true;
  }

  void on_message(std::size_t i, const coap::message_view& m, std::int64_t now) {
    const std::uint8_t code = m.code().raw();
    if ((code >> 5) == 7) {  // signalling: CSM, Ping, Pong, Release, Abort
      ++signalling_;
      if (code == 0xE5) {  // 7.05 Abort
        fail(i, "Abort from the server");
      }
      return;
    }
    auto& c = conns_[i];
    const auto t = m.token();
    if (t.size() != 4) {
      ++unmatched_;
      return;
    }
    const std::uint32_t token = (std::uint32_t{t[0]} << 24) | (std::uint32_t{t[1]} << 16) |
                                (std::uint32_t{t[2]} << 8) | t[3];
    const std::size_t s = token >> 16;
    if (s >= c.slots.size() || !c.slots[s].busy || c.slots[s].token != token) {
      ++unmatched_;
      return;
    }
    auto& x = c.slots[s];
    x.busy = false;
    ++completed_total_;
    if (measuring_) {
      ++completed_;
      if ((code >> 5) != 2) ++errors_;
      latency_.add(now - x.sent);
    }
    issue(i, s, now);
  }

  void report(std::int64_t now) {
    const double seconds = static_cast<double>(now - measure_start_) / 1e9;
    const double cpu = cpu_seconds() - cpu_start_;
    std::printf(
        "tcp_load connections=%zu connected=%zu window=%zu duration_s=%.3f completed=%llu req_per_s=%.0f "
        "errors=%llu unmatched=%llu signalling=%llu failed=%llu p50_us=%zu p99_us=%zu p999_us=%zu "
        "writes=%llu reads=%llu load_cpu_pct=%.1f\n",
        o_.connections, connected_, o_.window, seconds, static_cast<unsigned long long>(completed_),
        seconds > 0 ? static_cast<double>(completed_) / seconds : 0.0, static_cast<unsigned long long>(errors_),
        static_cast<unsigned long long>(unmatched_), static_cast<unsigned long long>(signalling_),
        static_cast<unsigned long long>(failed_), latency_.percentile(0.50), latency_.percentile(0.99),
        latency_.percentile(0.999), static_cast<unsigned long long>(writes_),
        static_cast<unsigned long long>(reads_), seconds > 0 ? 100.0 * cpu / seconds : 0.0);
    std::fflush(stdout);
  }

  const options& o_;
  std::vector<std::uint8_t> template_;
  bench::histogram latency_;  // 1 us buckets up to 10 s
  sockaddr_in server_;
  int epoll_ = -1;
  std::vector<connection> conns_;
  std::vector<std::size_t> dirty_;
  std::size_t connected_ = 0;
  bool measuring_ = false;
  std::int64_t measure_start_ = 0;
  double cpu_start_ = 0;
  std::uint64_t sent_total_ = 0, completed_total_ = 0;
  std::uint64_t completed_ = 0, errors_ = 0, unmatched_ = 0, signalling_ = 0, failed_ = 0;
  std::uint64_t writes_ = 0, reads_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  const options o = parse_options(argc, argv);
  load l(o);
  return l.run();
}
