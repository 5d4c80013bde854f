// RFC 7252 section 5.2.1, as little of it as a server can do: the "floor" that
// bench/run_udp_bench measures beside coap-cpp's and libcoap's servers. It answers every CON
// request with a fixed piggybacked 2.05 (Max-Age 1 and a 15-byte payload, the size of
// libcoap's GET /time answer), copying only the message ID and the token; no parsing beyond
// the header, no sessions, no deduplication. Datagrams are read and answered in batches
// (recvmmsg/sendmmsg, up to 64 at a time, blocking), so the figure is what the kernel's UDP
// path allows one core. Not a CoAP server: a yardstick.
//
// Usage: udp_floor_server [--host 127.0.0.1] [--port 5683]
// Prints "udp_floor_server listening on HOST:PORT" once bound; on SIGTERM/SIGINT prints
// "udp_floor_server requests=N server_cpu_s=S" and exits.
#include "bench/bench_support.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

namespace {

std::atomic<bool> stop{false};
void on_signal(int) { stop = true; }

[[noreturn]] void usage(const char* what) { bench::usage_error("udp_floor_server", what); }

constexpr unsigned batch = 64;
constexpr std::size_t max_datagram = 1500;

}  // namespace

int main(int argc, char** argv) {
  bench::address_options o;
  bench::parse_arguments(argc, argv, 1, usage, o, [](std::string_view, auto&) { return false; });

  const int fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in local{};
  local.sin_family = AF_INET;
  local.sin_port = htons(o.port);
  if (fd < 0 || inet_pton(AF_INET, o.host.c_str(), &local.sin_addr) != 1 ||
      bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) < 0) {
    std::fprintf(stderr, "udp_floor_server: cannot listen on %s:%u: %s\n", o.host.c_str(), o.port, std::strerror(errno));
    return 1;
  }
  socklen_t len = sizeof local;
  getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len);
  std::printf("udp_floor_server listening on %s:%u\n", o.host.c_str(), ntohs(local.sin_port));
  std::fflush(stdout);

  struct sigaction sa{};
  sa.sa_handler = on_signal;  // no SA_RESTART: recvmmsg returns EINTR
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);

  // The answer: ACK 2.05, message ID and token from the request, Max-Age 1, 15-byte payload.
  static constexpr std::string_view payload = "Dec 02 12:00:00";
  static std::array<std::array<std::uint8_t, max_datagram>, batch> in{}, out{};
  std::array<sockaddr_in, batch> peers{};
  std::array<iovec, batch> in_iov{}, out_iov{};
  std::array<mmsghdr, batch> in_msgs{}, out_msgs{};
  for (unsigned i = 0; i < batch; ++i) {
    in_iov[i] = {in[i].data(), in[i].size()};
    in_msgs[i].msg_hdr.msg_iov = &in_iov[i];
    in_msgs[i].msg_hdr.msg_iovlen = 1;
    in_msgs[i].msg_hdr.msg_name = &peers[i];
    out_iov[i].iov_base = out[i].data();
    out_msgs[i].msg_hdr.msg_iov = &out_iov[i];
    out_msgs[i].msg_hdr.msg_iovlen = 1;
    out_msgs[i].msg_hdr.msg_name = &peers[i];
    out_msgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_in);
  }
  unsigned long long requests = 0;
  while (!stop) {
    for (unsigned i = 0; i < batch; ++i) in_msgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_in);
    // Blocks for the first datagram, then takes what else is queued (MSG_WAITFORONE).
    const int n = recvmmsg(fd, in_msgs.data(), batch, MSG_WAITFORONE, nullptr);
    if (n <= 0) continue;
    unsigned answers = 0;
    for (int i = 0; i < n; ++i) {
      const std::uint8_t* d = in[static_cast<unsigned>(i)].data();
      const unsigned size = in_msgs[static_cast<unsigned>(i)].msg_len;
      if (size < 4 || (d[0] >> 6) != 1 || ((d[0] >> 4) & 3) != 0) continue;  // version 1, CON only
      const unsigned tkl = d[0] & 0x0f;
      if (tkl > 8 || size < 4 + tkl) continue;
      std::uint8_t* a = out[answers].data();
      a[0] = static_cast<std::uint8_t>(0x60 | tkl);  // version 1, ACK
      a[1] = 0x45;                                   // 2.05
      a[2] = d[2];
      a[3] = d[3];
      std::memcpy(a + 4, d + 4, tkl);
      std::size_t at = 4 + tkl;
      a[at++] = 0xd1;  // Max-Age (14): delta 13 and one extended byte (+1), length 1
      a[at++] = 0x01;
      a[at++] = 1;
      a[at++] = 0xff;
      std::memcpy(a + at, payload.data(), payload.size());
      at += payload.size();
      out_iov[answers].iov_len = at;
      if (answers != static_cast<unsigned>(i)) peers[answers] = peers[static_cast<unsigned>(i)];
      ++answers;
    }
    for (unsigned sent = 0; sent < answers;) {
      const int m = sendmmsg(fd, out_msgs.data() + sent, answers - sent, 0);
      if (m <= 0) break;  // a full socket buffer drops the rest, as the network could
      sent += static_cast<unsigned>(m);
    }
    requests += answers;
  }
  std::printf("udp_floor_server requests=%llu server_cpu_s=%.2f\n", requests, bench::cpu_seconds());
  close(fd);
  return 0;
}
