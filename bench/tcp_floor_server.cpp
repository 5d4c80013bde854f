// RFC 8323 section 3.2, as little of it as a server can do: the "floor" that
// bench/run_tcp_bench measures beside coap-cpp's and libcoap's servers. epoll (level-
// triggered), one read per readable connection, and for the frames of that read one write of
// fixed 2.05 answers (Max-Age 1 and a 15-byte payload, as libcoap's GET /time) carrying each
// request's token. Its own CSM goes out once per connection; signalling from the peer is
// skipped; nothing else is parsed, no sessions, no allocation per message. Not a CoAP
// server: a yardstick.
//
// Usage: tcp_floor_server [--host 127.0.0.1] [--port 5683]
// Prints "tcp_floor_server listening on HOST:PORT" once bound; on SIGTERM/SIGINT prints
// "tcp_floor_server requests=N server_cpu_s=S" and exits.
#include "bench/bench_support.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string_view>
#include <vector>

namespace {

std::atomic<bool> stop{false};
void on_signal(int) { stop = true; }

[[noreturn]] void usage(const char* what) { bench::usage_error("tcp_floor_server", what); }

constexpr std::size_t buffer_size = 65536;

// A connection's unfinished frame (bytes kept from one read to the next).
struct connection {
  std::vector<std::uint8_t> partial;
};

// Section 3.2: the frame's total size, or 0 when its header is not complete yet.
std::size_t frame_size(const std::uint8_t* d, std::size_t n) {
  if (n < 2) return 0;
  const unsigned len = d[0] >> 4, tkl = d[0] & 0x0f;
  std::size_t ext = len == 13 ? 1 : len == 14 ? 2 : len == 15 ? 4 : 0;
  if (n < 2 + ext) return 0;
  std::size_t body = len;
  if (len == 13) body = 13 + d[1];
  if (len == 14) body = 269 + (std::size_t{d[1]} << 8 | d[2]);
  if (len == 15) body = 65805 + (std::size_t{d[1]} << 24 | std::size_t{d[2]} << 16 | std::size_t{d[3]} << 8 | d[4]);
  return 1 + ext + 1 + tkl + body;
}

}  // namespace

int main(int argc, char** argv) {
  bench::address_options o;
  bench::parse_arguments(argc, argv, 1, usage, o, [](std::string_view, auto&) { return false; });

  const int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  const int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in local{};
  local.sin_family = AF_INET;
  local.sin_port = htons(o.port);
  if (lfd < 0 || inet_pton(AF_INET, o.host.c_str(), &local.sin_addr) != 1 ||
      bind(lfd, reinterpret_cast<sockaddr*>(&local), sizeof local) < 0 || listen(lfd, 1024) < 0) {
    std::fprintf(stderr, "tcp_floor_server: cannot listen on %s:%u: %s\n", o.host.c_str(), o.port, std::strerror(errno));
    return 1;
  }
  socklen_t len = sizeof local;
  getsockname(lfd, reinterpret_cast<sockaddr*>(&local), &len);
  std::printf("tcp_floor_server listening on %s:%u\n", o.host.c_str(), ntohs(local.sin_port));
  std::fflush(stdout);

  struct sigaction sa{};
  sa.sa_handler = on_signal;  // no SA_RESTART: epoll_wait returns EINTR
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);

  const int ep = epoll_create1(0);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = lfd;
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);

  static constexpr std::string_view payload = "Dec 02 12:00:00";
  static constexpr std::uint8_t csm[] = {0x00, 0xe1};  // 7.01 CSM, no options
  static std::array<std::uint8_t, buffer_size> in{};
  static std::array<std::uint8_t, buffer_size * 2> out{};
  std::vector<connection> conns;
  std::array<epoll_event, 256> events{};
  unsigned long long requests = 0;

  while (!stop) {
    const int n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), -1);
    for (int e = 0; e < n; ++e) {
      const int fd = events[static_cast<std::size_t>(e)].data.fd;
      if (fd == lfd) {
        for (int c; (c = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK)) >= 0;) {
          setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          if (static_cast<std::size_t>(c) >= conns.size()) conns.resize(static_cast<std::size_t>(c) + 1);
          conns[static_cast<std::size_t>(c)].partial.clear();
          (void)!write(c, csm, sizeof csm);
          epoll_event cev{};
          cev.events = EPOLLIN;
          cev.data.fd = c;
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
        }
        continue;
      }
      auto& conn = conns[static_cast<std::size_t>(fd)];
      // One read; a kept partial frame goes in front of it.
      std::size_t have = conn.partial.size();
      std::memcpy(in.data(), conn.partial.data(), have);
      const ssize_t got = read(fd, in.data() + have, in.size() - have);
      if (got <= 0) {
        if (got < 0 && errno == EAGAIN) continue;
        close(fd);  // also leaves the epoll set
        continue;
      }
      have += static_cast<std::size_t>(got);
      std::size_t at = 0, w = 0;
      // At most 30 bytes per answer: frames past what out holds wait for the next round.
      for (std::size_t size; w + 30 <= out.size() && (size = frame_size(in.data() + at, have - at)) && size <= have - at;
           at += size) {
        const std::uint8_t* f = in.data() + at;
        const unsigned tkl = f[0] & 0x0f, l = f[0] >> 4;
        const std::size_t code_at = 1 + (l == 13 ? 1 : l == 14 ? 2 : l == 15 ? 4 : 0);
        if ((f[code_at] >> 5) != 0 || f[code_at] == 0 || tkl > 8) continue;  // requests only
        // Len = 3 (Max-Age: delta 13 + 1 extended, length 1, value) + 1 (marker) + 15 = 19.
        std::uint8_t* a = out.data() + w;
        a[0] = static_cast<std::uint8_t>(13 << 4 | tkl);
        a[1] = 19 - 13;
        a[2] = 0x45;  // 2.05
        std::memcpy(a + 3, f + code_at + 1, tkl);
        std::size_t k = 3 + tkl;
        a[k++] = 0xd1;
        a[k++] = 0x01;
        a[k++] = 1;
        a[k++] = 0xff;
        std::memcpy(a + k, payload.data(), payload.size());
        w += k + payload.size();
        ++requests;
      }
      conn.partial.assign(in.data() + at, in.data() + have);
      for (std::size_t sent = 0; sent < w;) {
        const ssize_t m = write(fd, out.data() + sent, w - sent);
        if (m <= 0) break;  // a blocked peer loses answers: a yardstick need not be fair to it
        sent += static_cast<std::size_t>(m);
      }
    }
  }
  std::printf("tcp_floor_server requests=%llu server_cpu_s=%.2f\n", requests, bench::cpu_seconds());
  return 0;
}
