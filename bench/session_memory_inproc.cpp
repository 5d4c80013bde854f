// RFC 7252 section 4.5 and libcoap's coap_session(3) server sessions, at a scale sockets do
// not reach here (20,000 descriptors per process): how much memory an idle or a busy UDP
// server session holds with 100,000 peers. The same server stack as bench/session_memory.cpp
// (udp_endpoint and udp_session_impl, every allocation through a counting Allocator), on the
// in-process datagram socket of tests/support/memory_datagram_socket.hpp (basic_udp<Socket>,
// docs/policies.md) instead of the kernel's: N peers, each its own address, send R CON GETs
// each and wait for the answers; the Allocator's live bytes after, minus before, divided by
// N, is one session's cost. The in-memory network's own bookkeeping (global heap) is not
// counted. sizeof the session differs from the kernel socket's by the socket member only
// (printed).
//
// Usage: session_memory_inproc [--peers 100000] [--requests-per-peer 1]
// Prints one line of key=value pairs starting with "session_memory_inproc".
#include <coap/context.hpp>
#include <coap/resource.hpp>
#include <coap/transports/udp.hpp>

#include "tests/support/memory_datagram_socket.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace {

std::int64_t live_bytes = 0;  // one thread: the io_context runs on main

template <class T>
struct counting_allocator {
  using value_type = T;
  counting_allocator() noexcept = default;
  template <class U>
  counting_allocator(const counting_allocator<U>&) noexcept {}
  T* allocate(std::size_t n) {
    void* p = nullptr;
    if (posix_memalign(&p, std::max(alignof(T), sizeof(void*)), n * sizeof(T) == 0 ? 1 : n * sizeof(T)))
      throw std::bad_alloc();
    live_bytes += static_cast<std::int64_t>(n * sizeof(T));
    return static_cast<T*>(p);
  }
  void deallocate(T* p, std::size_t n) noexcept {
    live_bytes -= static_cast<std::int64_t>(n * sizeof(T));
    std::free(p);
  }
  friend bool operator==(const counting_allocator&, const counting_allocator&) noexcept { return true; }
};

using byte_allocator = counting_allocator<std::uint8_t>;
using socket_type = coap::test::memory_datagram_socket;
using memory_udp = coap::basic_udp<socket_type>;

}  // namespace

int main(int argc, char** argv) {
  std::size_t peers = 100000;
  std::size_t requests_per_peer = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::string_view(argv[i]) == "--peers") peers = std::stoul(argv[i + 1]);
    if (std::string_view(argv[i]) == "--requests-per-peer") requests_per_peer = std::stoul(argv[i + 1]);
  }

  boost::asio::io_context io(1);
  coap::context_config config;
  config.max_sessions = peers + 16;
  coap::basic_context<byte_allocator> ctx(io.get_executor(), config);
  ctx.add_resource("x").on(coap::method::get, [](const coap::request&, coap::basic_response<byte_allocator>& res) {
    res.set_payload(std::string_view("hello"));
  });
  const auto server_address = boost::asio::ip::make_address("10.0.0.1");
  std::uint16_t port = 0;
  if (auto ec = ctx.add_endpoint<memory_udp>(server_address, 5683, &port)) {
    std::fprintf(stderr, "session_memory_inproc: add_endpoint: %s\n", ec.message().c_str());
    return 1;
  }
  const socket_type::endpoint_type server(server_address, port);

  // Peer i at 10.(1 + i / 65536).(i / 256 % 256).(i % 256):40000; sockets stay to the end.
  std::vector<socket_type> sockets;
  sockets.reserve(peers + 1);
  std::size_t answered = 0;
  auto one_peer = [&](std::size_t i) {
    sockets.emplace_back(io.get_executor());
    auto& s = sockets.back();
    boost::system::error_code ec;
    const auto a = boost::asio::ip::address_v4(static_cast<std::uint32_t>((10u << 24) | ((1 + i / 65536) << 16) | (i % 65536)));
    s.bind({a, 40000}, ec);
    bool all = true;
    for (std::size_t r = 0; r < requests_per_peer; ++r) {
      const auto mid = static_cast<std::uint16_t>(r + 1);
      const std::uint8_t request[] = {0x44, 0x01, static_cast<std::uint8_t>(mid >> 8), static_cast<std::uint8_t>(mid),
                                      1, 2, 3, 4, 0xb1, 'x'};
      s.send_to(boost::asio::buffer(request), server, 0, ec);
      std::uint8_t reply[256];
      socket_type::endpoint_type from;
      std::size_t n = 0;
      for (int spins = 0; spins < 100; ++spins) {
        io.poll();
        io.restart();
        n = s.receive_from(boost::asio::buffer(reply), from, 0, ec);
        if (!ec) break;
      }
      all = all && !ec && n >= 4 && reply[2] == request[2] && reply[3] == request[3];
    }
    return all;
  };

  // One peer first: one-time costs (the session table's first growth, the endpoint's
  // deduplication store) are not charged to the sessions measured.
  one_peer(0);
  io.poll();
  const std::int64_t before = live_bytes;
  for (std::size_t i = 1; i <= peers; ++i) answered += one_peer(i);
  io.poll();
  const std::int64_t after = live_bytes;

  using session = coap::transports::udp_session_impl<coap::no_sec, byte_allocator, socket_type>;
  using kernel_session = coap::transports::udp_session_impl<coap::no_sec, byte_allocator>;
  std::printf(
      "session_memory_inproc peers=%zu requests_per_peer=%zu answered=%zu sessions=%zu "
      "allocator_bytes_per_session=%.1f sizeof_session=%zu sizeof_kernel_socket_session=%zu\n",
      peers, requests_per_peer, answered, ctx.session_count(),
      static_cast<double>(after - before) / static_cast<double>(peers), sizeof(session), sizeof(kernel_session));
  ctx.stop();
  io.poll();
  return answered == peers ? 0 : 1;
}
