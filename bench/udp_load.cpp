// RFC 7252 section 4.2 and 5.2.1: a closed-loop load generator for CoAP servers over UDP.
// E client endpoints (E server sessions) each keep up to W confirmable GET requests
// outstanding; a piggybacked response (ACK, same message ID and token) completes a request
// and starts the next one. A request unanswered for --timeout-ms counts as lost and is sent
// again with the same message ID and token (a retransmission); a valid measurement has ~0.
//
// It is deliberately not built on coap-cpp (a generator must not share the bugs of the server
// it measures) and costs little per request, so that on a 2-core machine the server, not the
// generator, is the bottleneck:
//   --mode shared   one socket for all endpoints; endpoint i sends from its own loopback
//                   address (127.0.x.y, chosen per datagram with IP_PKTINFO), so the server
//                   still sees E peers, while recvmmsg/sendmmsg batch across endpoints.
//                   IPv4 loopback only.
//   --mode sockets  one connected socket per endpoint (any address family); sends and
//                   receives batch per socket only.
//
// Usage: udp_load --host 127.0.0.1 --port 5683 --endpoints 16 --window 4 --duration 5
//                 --warmup 2 [--path x] [--mode shared|sockets] [--max-in-flight N]
//                 [--timeout-ms 1000] [--max-requests N] [--once] [--proxy-uri URI]
// --proxy-uri: the requests carry Proxy-Uri URI (RFC 7252 section 5.10.2) after the Uri-Path
// of --path (give --path ''), for a forward proxy (bench/run_proxy_bench).
// --max-in-flight caps the requests outstanding over all endpoints (0: E * W); endpoints
// then take turns, so that E can be large without overflowing the server's receive buffer.
// --once: every endpoint sends one request and the run ends when all are answered (used to
// create E idle server sessions). --max-requests N: the run ends when N requests are answered
// (or --duration has passed).
// Prints one line of key=value pairs starting with "udp_load".
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
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace {

[[noreturn]] void die(const char* what) { bench::system_error("udp_load", what); }
[[noreturn]] void usage(const char* what) { bench::usage_error("udp_load", what); }

struct options : bench::address_options {
  std::size_t endpoints = 16;
  std::size_t window = 4;
  double duration = 5.0;
  double warmup = 2.0;
  std::string path = "x";
  std::string proxy_uri;
  bool shared = true;
  std::size_t max_in_flight = 0;
  std::int64_t timeout_ms = 1000;
  std::uint64_t max_requests = 2'000'000'000;
  bool once = false;
};

options parse_options(int argc, char** argv) {
  options o;
  bench::parse_arguments(argc, argv, 1, usage, o, [&o](std::string_view a, auto& value) {
    if (a == "--endpoints") o.endpoints = std::stoul(value());
    else if (a == "--window") o.window = std::stoul(value());
    else if (a == "--duration") o.duration = std::stod(value());
    else if (a == "--warmup") o.warmup = std::stod(value());
    else if (a == "--path") o.path = value();
    else if (a == "--proxy-uri") o.proxy_uri = value();
    else if (a == "--mode") {
      const std::string m = value();
      if (m != "shared" && m != "sockets") usage("--mode is shared or sockets");
      o.shared = m == "shared";
    } else if (a == "--max-in-flight") o.max_in_flight = std::stoul(value());
    else if (a == "--timeout-ms") o.timeout_ms = std::stoll(value());
    else if (a == "--max-requests") o.max_requests = std::stoull(value());
    else if (a == "--once") o.once = true;
    else return false;
    return true;
  });
  if (o.endpoints == 0 || o.endpoints > 65535) usage("--endpoints must be 1..65535");
  if (o.window == 0 || o.window > 1024) usage("--window must be 1..1024");
  if (o.once) {
    o.window = 1;
    o.warmup = 0;
    o.max_requests = o.endpoints;
  }
  if (o.max_in_flight == 0 || o.max_in_flight > o.endpoints * o.window) o.max_in_flight = o.endpoints * o.window;
  return o;
}

using bench::now_ns;
using bench::cpu_seconds;

// Section 3: a CON GET with a 4-byte token and one Uri-Path option per path segment.
// Message ID and token are patched per request (bytes 2-3 and 4-7).
std::vector<std::uint8_t> request_template(std::string_view path, std::string_view proxy_uri) {
  std::vector<std::uint8_t> m = {0x44, 0x01, 0, 0, 0, 0, 0, 0};
  const std::vector<std::uint8_t> options = bench::uri_path_options(path, usage);
  m.insert(m.end(), options.begin(), options.end());
  if (!proxy_uri.empty()) {
    // Option 35 (Proxy-Uri) after Uri-Path (11) or none: delta 24 or 35, both in one
    // extended byte (13 + n); the length likewise (13..268 bytes).
    const unsigned delta = options.empty() ? 35 : 35 - 11;
    if (proxy_uri.size() < 13 || proxy_uri.size() > 200) usage("--proxy-uri must be 13 to 200 bytes");
    m.push_back(static_cast<std::uint8_t>((13 << 4) | 13));
    m.push_back(static_cast<std::uint8_t>(delta - 13));
    m.push_back(static_cast<std::uint8_t>(proxy_uri.size() - 13));
    m.insert(m.end(), proxy_uri.begin(), proxy_uri.end());
  }
  return m;
}

struct slot {
  bool busy = false;
  std::uint16_t message_id = 0;
  std::uint32_t token = 0;
  std::int64_t first_sent = 0;
  std::int64_t last_sent = 0;
};

struct endpoint {
  int fd = -1;               // mode sockets
  in_addr source{};          // mode shared
  std::uint16_t next_message_id = 0;
  std::uint16_t sequence = 0;
  std::vector<slot> slots;
};

constexpr std::size_t batch_size = 256;
constexpr std::size_t max_datagram = 256;

class load {
 public:
  explicit load(const options& o)
      : o_(o), template_(request_template(o.path, o.proxy_uri)), latency_(o.timeout_ms * 1000) {
    if (template_.size() > max_datagram) usage("path too long");
    for (std::size_t i = 0; i < in_msgs_.size(); ++i) {
      in_iov_[i] = {in_[i].data(), in_[i].size()};
      in_msgs_[i].msg_hdr.msg_iov = &in_iov_[i];
      in_msgs_[i].msg_hdr.msg_iovlen = 1;
    }
    resolve();
    raise_fd_limit();
    endpoints_.resize(o.endpoints);
    std::uint32_t seed = static_cast<std::uint32_t>(now_ns());
    for (std::size_t i = 0; i < endpoints_.size(); ++i) {
      auto& e = endpoints_[i];
      seed = seed * 1664525u + 1013904223u;
      e.next_message_id = static_cast<std::uint16_t>(seed >> 16);
      e.slots.resize(o.window);
      if (o.shared) {
        // 127.0.1.1, 127.0.1.2, ... 127.0.1.250, 127.0.2.1, ...: never the server's 127.0.0.1.
        e.source.s_addr = htonl((127u << 24) | static_cast<std::uint32_t>((1 + i / 250) << 8) |
                                static_cast<std::uint32_t>(1 + i % 250));
      } else {
        e.fd = open_socket(false);
      }
    }
    if (o.shared) shared_fd_ = open_socket(true);
    epoll_ = epoll_create1(0);
    if (epoll_ < 0) die("epoll_create1");
    for (std::size_t i = 0; i < (o.shared ? 1 : endpoints_.size()); ++i) {
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = i;
      if (epoll_ctl(epoll_, EPOLL_CTL_ADD, o.shared ? shared_fd_ : endpoints_[i].fd, &ev) < 0) die("epoll_ctl");
    }
    // Turns: every (endpoint, slot) pair, endpoint-major so that the first max_in_flight
    // requests spread over as many endpoints as possible.
    for (std::size_t s = 0; s < o.window; ++s)
      for (std::size_t i = 0; i < endpoints_.size(); ++i) idle_.push_back({i, s});
  }

  void run() {
    const std::int64_t start = now_ns();
    const std::int64_t measure_from = start + static_cast<std::int64_t>(o_.warmup * 1e9);
    const std::int64_t end = measure_from + static_cast<std::int64_t>(o_.duration * 1e9);
    std::int64_t now = start;
    measuring_ = o_.warmup <= 0;
    if (measuring_) begin_measurement(now);
    for (std::size_t i = 0; i < o_.max_in_flight && !idle_.empty(); ++i) issue_next(now);
    flush_all();
    std::int64_t next_timeout_check = now + 10'000'000;
    std::array<epoll_event, 256> events;
    while (now < end) {
      // --max-requests (and --once) end the run when the last request is answered.
      if (sent_total_ >= o_.max_requests && completed_total_ == sent_total_) break;
      const int n = epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), 10);
      if (n < 0 && errno != EINTR) die("epoll_wait");
      now = now_ns();
      if (!measuring_ && now >= measure_from) {
        measuring_ = true;
        begin_measurement(now);
      }
      for (int k = 0; k < n; ++k) {
        const auto i = static_cast<std::size_t>(events[static_cast<std::size_t>(k)].data.u64);
        receive(o_.shared ? shared_fd_ : endpoints_[i].fd, o_.shared ? nullptr : &endpoints_[i], now);
      }
      if (now >= next_timeout_check) {
        retransmit_overdue(now);
        next_timeout_check = now + 10'000'000;
      }
      flush_all();
    }
    report(now);
  }

 private:
  struct turn {
    std::size_t endpoint;
    std::size_t slot;
  };

  void resolve() {
    if (inet_pton(AF_INET, o_.host.c_str(), &server4_.sin_addr) == 1) {
      server4_.sin_family = AF_INET;
      server4_.sin_port = htons(o_.port);
      server_ = reinterpret_cast<sockaddr*>(&server4_);
      server_len_ = sizeof server4_;
    } else if (inet_pton(AF_INET6, o_.host.c_str(), &server6_.sin6_addr) == 1) {
      server6_.sin6_family = AF_INET6;
      server6_.sin6_port = htons(o_.port);
      server_ = reinterpret_cast<sockaddr*>(&server6_);
      server_len_ = sizeof server6_;
      if (o_.shared) usage("--mode shared needs an IPv4 loopback host; use --mode sockets");
    } else {
      usage("--host must be a numeric address");
    }
  }

  static void raise_fd_limit() {
    bench::raise_file_limit();
  }

  int open_socket(bool shared) {
    const int fd = socket(server_->sa_family, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (fd < 0) die("socket");
    // Room for a whole window of responses even when the generator falls behind.
    const int buffer = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buffer, sizeof buffer);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buffer, sizeof buffer);
    if (shared) {
      sockaddr_in any{};
      any.sin_family = AF_INET;
      if (bind(fd, reinterpret_cast<sockaddr*>(&any), sizeof any) < 0) die("bind");
    } else if (connect(fd, server_, server_len_) < 0) {
      die("connect");
    }
    return fd;
  }

  void begin_measurement(std::int64_t now) {
    measure_start_ = now;
    cpu_start_ = cpu_seconds();
    completed_ = lost_ = errors_ = unmatched_ = 0;
    latency_.clear();
  }

  // Starts the next request of the endpoint whose turn it is.
  void issue_next(std::int64_t now) {
    if (sent_total_ >= o_.max_requests || idle_.empty()) return;
    const turn t = idle_.front();
    idle_.pop_front();
    auto& e = endpoints_[t.endpoint];
    auto& s = e.slots[t.slot];
    s.busy = true;
    s.message_id = e.next_message_id++;
    s.token = static_cast<std::uint32_t>(t.endpoint << 16) | e.sequence++;
    s.first_sent = s.last_sent = now;
    ++sent_total_;
    queue_send(e, s);
  }

  void queue_send(endpoint& e, const slot& s) {
    if (out_count_ == batch_size) flush_all();
    auto& buf = out_[out_count_];
    std::memcpy(buf.data(), template_.data(), template_.size());
    buf[2] = static_cast<std::uint8_t>(s.message_id >> 8);
    buf[3] = static_cast<std::uint8_t>(s.message_id);
    buf[4] = static_cast<std::uint8_t>(s.token >> 24);
    buf[5] = static_cast<std::uint8_t>(s.token >> 16);
    buf[6] = static_cast<std::uint8_t>(s.token >> 8);
    buf[7] = static_cast<std::uint8_t>(s.token);
    out_endpoint_[out_count_] = &e;
    out_length_[out_count_] = template_.size();
    ++out_count_;
  }

  // Section 4.2: the empty ACK of a confirmable separate response (a proxy's answer, 5.2.2).
  void queue_ack(endpoint& e, std::uint16_t message_id) {
    if (out_count_ == batch_size) flush_all();
    auto& buf = out_[out_count_];
    buf[0] = 0x60;  // version 1, ACK, no token
    buf[1] = 0;     // empty
    buf[2] = static_cast<std::uint8_t>(message_id >> 8);
    buf[3] = static_cast<std::uint8_t>(message_id);
    out_endpoint_[out_count_] = &e;
    out_length_[out_count_] = 4;
    ++out_count_;
  }

  // Sends what is queued: one sendmmsg per run of datagrams of the same endpoint (mode
  // sockets), or one for all (mode shared).
  void flush_all() {
    if (out_count_ == 0) return;
    if (!o_.shared) {
      std::array<mmsghdr, batch_size> msgs{};
      std::array<iovec, batch_size> iov{};
      for (std::size_t first = 0; first < out_count_;) {
        std::size_t n = 0;
        endpoint* e = out_endpoint_[first];
        for (; first + n < out_count_ && out_endpoint_[first + n] == e; ++n) {
          iov[n] = {out_[first + n].data(), out_length_[first + n]};
          msgs[n].msg_hdr.msg_iov = &iov[n];
          msgs[n].msg_hdr.msg_iovlen = 1;
        }
        send_batch(e->fd, msgs.data(), n);
        first += n;
      }
      out_count_ = 0;
      return;
    }
    std::array<mmsghdr, batch_size> msgs{};
    std::array<iovec, batch_size> iov{};
    struct control {
      alignas(cmsghdr) std::array<std::uint8_t, CMSG_SPACE(sizeof(in_pktinfo))> bytes;
    };
    std::array<control, batch_size> ctl{};
    for (std::size_t i = 0; i < out_count_; ++i) {
      iov[i] = {out_[i].data(), out_length_[i]};
      auto& h = msgs[i].msg_hdr;
      h.msg_name = server_;
      h.msg_namelen = server_len_;
      h.msg_iov = &iov[i];
      h.msg_iovlen = 1;
      h.msg_control = ctl[i].bytes.data();
      h.msg_controllen = sizeof ctl[i].bytes;
      cmsghdr* c = CMSG_FIRSTHDR(&h);
      c->cmsg_level = IPPROTO_IP;
      c->cmsg_type = IP_PKTINFO;
      c->cmsg_len = CMSG_LEN(sizeof(in_pktinfo));
      in_pktinfo info{};
      info.ipi_spec_dst = out_endpoint_[i]->source;
      std::memcpy(CMSG_DATA(c), &info, sizeof info);
    }
    send_batch(shared_fd_, msgs.data(), out_count_);
    out_count_ = 0;
  }

  void send_batch(int fd, mmsghdr* msgs, std::size_t n) {
    std::size_t done = 0;
    while (done < n) {
      const int r = sendmmsg(fd, msgs + done, static_cast<unsigned>(n - done), 0);
      if (r < 0) {
        // A full send buffer drops the rest, as the network could; retransmission recovers.
        if (errno == EAGAIN || errno == ENOBUFS) {
          send_drops_ += n - done;
          return;
        }
        if (errno == EINTR) continue;
        if (errno == ECONNREFUSED) {
          ++refused_;
          continue;
        }
        die("sendmmsg");
      }
      done += static_cast<std::size_t>(r);
    }
  }

  void receive(int fd, endpoint* e, std::int64_t now) {
    auto& msgs = in_msgs_;
    auto& bufs = in_;
    // Mode shared: drain a few batches; mode sockets: the window fits in one.
    for (int round = 0; round < (e ? 1 : 8); ++round) {
      const int n = recvmmsg(fd, msgs.data(), static_cast<unsigned>(msgs.size()), MSG_DONTWAIT, nullptr);
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) return;
        if (errno == ECONNREFUSED) {
          ++refused_;
          return;
        }
        die("recvmmsg");
      }
      for (int k = 0; k < n; ++k) {
        const auto& m = msgs[static_cast<std::size_t>(k)];
        on_response({bufs[static_cast<std::size_t>(k)].data(), m.msg_len}, e, now);
      }
      if (static_cast<std::size_t>(n) < msgs.size()) return;
    }
  }

  // Section 5.2.1: a piggybacked response is an ACK with the request's message ID and token.
  // Section 5.2.2 (a proxy's answer): an empty ACK, then a CON (acknowledged here) or NON
  // response with the request's token and a message ID of its own.
  void on_response(std::span<const std::uint8_t> d, endpoint* e, std::int64_t now) {
    const unsigned type = d.size() >= 4 ? (d[0] >> 4) & 3 : 0;
    if (d.size() == 4 && (d[0] >> 6) == 1 && type == 2 && d[1] == 0) return;  // the empty ACK
    const bool separate = type == 0 || type == 1;
    if (d.size() < 8 || (d[0] >> 6) != 1 || !(type == 2 || separate) || (d[0] & 0x0f) != 4) {
      ++unmatched_;
      return;
    }
    const auto mid = static_cast<std::uint16_t>((d[2] << 8) | d[3]);
    const std::uint32_t token = (std::uint32_t{d[4]} << 24) | (std::uint32_t{d[5]} << 16) |
                                (std::uint32_t{d[6]} << 8) | d[7];
    const std::size_t index = token >> 16;
    if (!e) e = index < endpoints_.size() ? &endpoints_[index] : nullptr;
    if (!e || static_cast<std::size_t>(e - endpoints_.data()) != index) {
      ++unmatched_;
      return;
    }
    if (type == 0) queue_ack(*e, mid);
    for (std::size_t s = 0; s < e->slots.size(); ++s) {
      auto& x = e->slots[s];
      if (!x.busy || (!separate && x.message_id != mid) || x.token != token) continue;
      x.busy = false;
      ++completed_total_;
      if (measuring_) {
        ++completed_;
        if ((d[1] >> 5) != 2) ++errors_;  // not a 2.xx success
        latency_.add(now - x.first_sent);
      }
      idle_.push_back({index, s});
      issue_next(now);
      return;
    }
    ++unmatched_;  // a late answer to a request already retransmitted and answered
  }

  void retransmit_overdue(std::int64_t now) {
    const std::int64_t timeout = o_.timeout_ms * 1'000'000;
    for (auto& e : endpoints_)
      for (auto& s : e.slots)
        if (s.busy && now - s.last_sent >= timeout) {
          ++lost_;
          ++lost_total_;
          s.last_sent = now;
          queue_send(e, s);
        }
  }

  void report(std::int64_t now) {
    const double seconds = static_cast<double>(now - measure_start_) / 1e9;
    const double cpu = cpu_seconds() - cpu_start_;
    std::printf(
        "udp_load mode=%s endpoints=%zu window=%zu in_flight=%zu duration_s=%.3f completed=%llu "
        "completed_total=%llu req_per_s=%.0f lost=%llu lost_total=%llu errors=%llu unmatched=%llu send_drops=%llu refused=%llu "
        "p50_us=%zu p99_us=%zu p999_us=%zu load_cpu_pct=%.1f\n",
        o_.shared ? "shared" : "sockets", o_.endpoints, o_.window, o_.max_in_flight, seconds,
        static_cast<unsigned long long>(completed_), static_cast<unsigned long long>(completed_total_),
        seconds > 0 ? static_cast<double>(completed_) / seconds : 0.0, static_cast<unsigned long long>(lost_),
        static_cast<unsigned long long>(lost_total_), static_cast<unsigned long long>(errors_),
        static_cast<unsigned long long>(unmatched_), static_cast<unsigned long long>(send_drops_),
        static_cast<unsigned long long>(refused_), latency_.percentile(0.50), latency_.percentile(0.99),
        latency_.percentile(0.999), seconds > 0 ? 100.0 * cpu / seconds : 0.0);
  }

  const options& o_;
  std::vector<std::uint8_t> template_;
  bench::histogram latency_;  // 1 us buckets up to the timeout
  sockaddr_in server4_{};
  sockaddr_in6 server6_{};
  sockaddr* server_ = nullptr;
  socklen_t server_len_ = 0;
  int shared_fd_ = -1;
  int epoll_ = -1;
  std::vector<endpoint> endpoints_;
  std::deque<turn> idle_;
  std::array<std::array<std::uint8_t, max_datagram>, batch_size> out_{};
  std::array<endpoint*, batch_size> out_endpoint_{};
  std::array<std::size_t, batch_size> out_length_{};
  std::array<std::array<std::uint8_t, max_datagram>, 64> in_{};
  std::array<iovec, 64> in_iov_{};
  std::array<mmsghdr, 64> in_msgs_{};
  std::size_t out_count_ = 0;
  bool measuring_ = false;
  std::int64_t measure_start_ = 0;
  double cpu_start_ = 0;
  std::uint64_t sent_total_ = 0, completed_total_ = 0, lost_total_ = 0;
  std::uint64_t completed_ = 0, lost_ = 0, errors_ = 0, unmatched_ = 0, send_drops_ = 0, refused_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  const options o = parse_options(argc, argv);
  load l(o);
  l.run();
  return 0;
}
