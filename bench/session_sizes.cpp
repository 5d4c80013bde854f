// libcoap's coap_session(3) server sessions over TCP (RFC 8323), and the size of every
// session type: sizeof of each session implementation and handle, and the memory an idle
// TCP server session holds. A server context whose whole stack allocates through a counting
// allocator accepts N connections, each sending its CSM and one GET and then staying open;
// the allocator's live bytes after, minus before, divided by N, is one idle session's cost.
// Global operator new is counted too: it shows what stays outside the Allocator (Asio's
// per-descriptor reactor state, for one). (UDP idle sessions: bench/session_memory.cpp.)
//
// Usage: session_sizes [--peers 1000]
// Prints the sizes, then one line of key=value pairs starting with "tcp_session_memory".
#include <coap/context.hpp>
#include <coap/session.hpp>
#include <coap/transports/tcp.hpp>
#include <coap/transports/udp.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>

#include <arpa/inet.h>
#include <malloc.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <future>
#include <memory_resource>
#include <new>
#include <string_view>
#include <thread>
#include <vector>

// ---- Global operator new, counted by usable size ----

namespace {
std::atomic<std::int64_t> global_live_bytes{0};
void* global_allocate(std::size_t size) {
  void* p = std::malloc(size == 0 ? 1 : size);
  if (!p) throw std::bad_alloc();
  global_live_bytes.fetch_add(static_cast<std::int64_t>(malloc_usable_size(p)), std::memory_order_relaxed);
  return p;
}
void global_free(void* p) noexcept {
  if (!p) return;
  global_live_bytes.fetch_sub(static_cast<std::int64_t>(malloc_usable_size(p)), std::memory_order_relaxed);
  std::free(p);
}
}  // namespace

void* operator new(std::size_t size) { return global_allocate(size); }
void* operator new[](std::size_t size) { return global_allocate(size); }
void operator delete(void* p) noexcept { global_free(p); }
void operator delete[](void* p) noexcept { global_free(p); }
void operator delete(void* p, std::size_t) noexcept { global_free(p); }
void operator delete[](void* p, std::size_t) noexcept { global_free(p); }

namespace {

// Requested bytes (n * sizeof(T)), not counting malloc's rounding: what the library asks for;
// and the same blocks by usable size, as the global heap is counted.
std::atomic<std::int64_t> allocator_live_bytes{0};
std::atomic<std::int64_t> allocator_usable_bytes{0};

template <class T>
struct counting_allocator {
  using value_type = T;
  counting_allocator() noexcept = default;
  template <class U>
  counting_allocator(const counting_allocator<U>&) noexcept {}
  T* allocate(std::size_t n) {
    void* p = nullptr;
    if (posix_memalign(&p, alignof(T) < sizeof(void*) ? sizeof(void*) : alignof(T), n * sizeof(T) == 0 ? 1 : n * sizeof(T)))
      throw std::bad_alloc();
    allocator_live_bytes += static_cast<std::int64_t>(n * sizeof(T));
    allocator_usable_bytes += static_cast<std::int64_t>(malloc_usable_size(p));
    return static_cast<T*>(p);
  }
  void deallocate(T* p, std::size_t n) noexcept {
    allocator_live_bytes -= static_cast<std::int64_t>(n * sizeof(T));
    allocator_usable_bytes -= static_cast<std::int64_t>(malloc_usable_size(p));
    std::free(p);
  }
  friend bool operator==(const counting_allocator&, const counting_allocator&) noexcept { return true; }
};
using byte_allocator = counting_allocator<std::uint8_t>;
using pmr_allocator = std::pmr::polymorphic_allocator<std::uint8_t>;

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "session_sizes: %s: %s\n", what, std::strerror(errno));
  std::exit(1);
}

// One TCP peer: CSM, then GET /x (token 0x42); waits until the response frame (after the
// server's CSM) has arrived. The connection stays open (its descriptor goes to `open`).
bool one_peer(std::uint16_t port, std::vector<int>& open) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) die("socket");
  sockaddr_in server{};
  server.sin_family = AF_INET;
  server.sin_port = htons(port);
  server.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&server), sizeof server) < 0) die("connect");
  // CSM (no options); GET, Len 2 (Uri-Path "x"), TKL 1.
  const std::uint8_t out[] = {0x00, 0xe1, 0x21, 0x01, 0x42, 0xb1, 'x'};
  if (send(fd, out, sizeof out, 0) != static_cast<ssize_t>(sizeof out)) die("send");
  std::vector<std::uint8_t> in;
  bool answered = false;
  pollfd p{fd, POLLIN, 0};
  while (!answered && poll(&p, 1, 2000) > 0) {
    std::uint8_t buf[256];
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    in.insert(in.end(), buf, buf + n);
    // Frames: the CSM, then the response, whose code byte is 2.xx (0x40 to 0x5f).
    std::size_t at = 0;
    while (at + 2 <= in.size()) {
      const std::size_t len = in[at] >> 4, tkl = in[at] & 0x0f;
      if (len >= 13) break;  // not expected from these small frames
      if (at + 2 + tkl + len > in.size()) break;
      if (in[at + 1] >= 0x40 && in[at + 1] < 0x60) answered = true;
      at += 2 + tkl + len;
    }
  }
  open.push_back(fd);
  return answered;
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t peers = 1000;
  for (int i = 1; i + 1 < argc; i += 2)
    if (std::string_view(argv[i]) == "--peers") peers = std::stoul(argv[i + 1]);

  using namespace coap::transports;
  std::printf("sizeof (bytes):\n");
  std::printf("  udp_session_impl<no_sec, std::allocator>         %zu\n",
              sizeof(udp_session_impl<coap::no_sec, std::allocator<std::uint8_t>>));
  std::printf("  udp_session_impl<no_sec, pmr::polymorphic_alloc> %zu\n", sizeof(udp_session_impl<coap::no_sec, pmr_allocator>));
  std::printf("  tcp_session_impl<no_sec, std::allocator>         %zu\n",
              sizeof(tcp_session_impl<coap::no_sec, std::allocator<std::uint8_t>>));
  std::printf("  tcp_session_impl<no_sec, pmr::polymorphic_alloc> %zu\n", sizeof(tcp_session_impl<coap::no_sec, pmr_allocator>));
  std::printf("  session<udp> / session<tcp> handle               %zu / %zu\n", sizeof(coap::session<coap::udp>),
              sizeof(coap::session<coap::tcp>));
  std::printf("  session<udp, no_sec, pmr> handle                 %zu\n",
              sizeof(coap::session<coap::udp, coap::no_sec, pmr_allocator>));
  std::printf("  basic_message<std::allocator> / <pmr>            %zu / %zu\n", sizeof(coap::message),
              sizeof(coap::basic_message<pmr_allocator>));

  boost::asio::io_context io(1);
  coap::basic_context<byte_allocator> ctx(io.get_executor());
  ctx.add_resource("x").on(coap::method::get, [](const coap::request&, coap::basic_response<byte_allocator>& res) {
    res.set_payload(std::string_view("hello"));
  });
  std::uint16_t port = 0;
  if (auto ec = ctx.add_endpoint<coap::tcp>(boost::asio::ip::make_address("127.0.0.1"), 0, &port)) {
    std::fprintf(stderr, "session_sizes: add_endpoint: %s\n", ec.message().c_str());
    return 1;
  }
  auto work = boost::asio::make_work_guard(io);
  std::thread server([&io] { io.run(); });
  // Returns once the server thread has run everything posted before (one executor, in order).
  auto on_server = [&io](auto f) {
    std::promise<decltype(f())> result;
    boost::asio::post(io, [&] { result.set_value(f()); });
    return result.get_future().get();
  };

  // One peer first: one-time costs (Asio's services, the first descriptor states) are not
  // charged to the sessions measured.
  std::vector<int> open;
  open.reserve(peers + 1);
  if (!one_peer(port, open)) die("warm-up peer not answered");
  on_server([] { return 0; });
  const std::int64_t before = allocator_live_bytes.load(), global_before = global_live_bytes.load();
  const std::int64_t usable_before = allocator_usable_bytes.load();
  std::size_t answered = 0;
  for (std::size_t i = 0; i < peers; ++i) answered += one_peer(port, open);
  // Output written: give the server's async_write completions a moment, then read counters.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const std::size_t sessions = on_server([&ctx] { return ctx.session_count(); });
  const std::int64_t after = allocator_live_bytes.load(), global_after = global_live_bytes.load();
  const std::int64_t usable_after = allocator_usable_bytes.load();
  const auto per = [peers](std::int64_t a, std::int64_t b) { return static_cast<double>(b - a) / static_cast<double>(peers); };

  // usable: the Allocator's blocks by usable size plus the global heap's. Asio's operation
  // memory (a connection's waiting read) comes from aligned_alloc, neither of the two: the
  // whole heap, as libcoap's, is counted by bench/tcp_session_memory.
  std::printf("tcp_session_memory peers=%zu answered=%zu sessions=%zu allocator_bytes_per_session=%.1f "
              "global_new_bytes_per_session=%.1f usable_bytes_per_session=%.1f\n",
              peers, answered, sessions, per(before, after), per(global_before, global_after),
              per(usable_before, usable_after) + per(global_before, global_after));

  boost::asio::post(io, [&ctx] { ctx.stop(); });
  work.reset();
  server.join();
  for (int fd : open) close(fd);
  return answered == peers ? 0 : 1;
}
