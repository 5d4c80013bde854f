// RFC 7252 section 4.5 and libcoap's coap_session(3) server sessions: how much memory an idle
// server session holds. A server context whose whole stack (endpoint, session table,
// sessions, deduplication cache, messages) allocates through a counting allocator serves N
// peers, each sending one CON GET and waiting for its answer; the allocator's live bytes
// after, minus before, divided by N, is the cost of one idle session (it keeps its
// deduplication entry and answer for EXCHANGE_LIFETIME). Global operator new is counted too:
// whatever a session allocates outside the Allocator shows there.
//
// Usage: session_memory [--peers 1000] [--requests-per-peer 1]
// With --requests-per-peer 8 the sessions are busy ones instead: at 1,000 peers the endpoint's
// deduplication store (context_config::dedup_droppable_capacity, 4,096 GETs) has filled, its
// cost shared by them. Peers beyond the ephemeral ports of one address (100,000 of them, say)
// come from 127.x.y.z source addresses, each its own socket; the descriptor limit is raised
// to what they need (root may).
// Prints the breakdown by allocated type and one line of key=value pairs starting with
// "session_memory".
#include <coap/context.hpp>
#include <coap/detail/dedup_cache.hpp>
#include <coap/message.hpp>
#include <coap/resource.hpp>
#include <coap/transports/udp.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>

#include <arpa/inet.h>
#include <cxxabi.h>
#include <malloc.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <future>
#include <mutex>
#include <new>
#include <string>
#include <string_view>
#include <thread>
#include <typeinfo>
#include <vector>

// ---- Global operator new, counted by usable size (malloc's rounding included) ----

namespace {
std::atomic<std::int64_t> global_live_bytes{0};
std::atomic<std::int64_t> global_live_blocks{0};

void* global_allocate(std::size_t size) {
  void* p = std::malloc(size == 0 ? 1 : size);
  if (!p) throw std::bad_alloc();
  global_live_bytes.fetch_add(static_cast<std::int64_t>(malloc_usable_size(p)), std::memory_order_relaxed);
  global_live_blocks.fetch_add(1, std::memory_order_relaxed);
  return p;
}
void global_free(void* p) noexcept {
  if (!p) return;
  global_live_bytes.fetch_sub(static_cast<std::int64_t>(malloc_usable_size(p)), std::memory_order_relaxed);
  global_live_blocks.fetch_sub(1, std::memory_order_relaxed);
  std::free(p);
}
}  // namespace

void* operator new(std::size_t size) { return global_allocate(size); }
void* operator new[](std::size_t size) { return global_allocate(size); }
void operator delete(void* p) noexcept { global_free(p); }
void operator delete[](void* p) noexcept { global_free(p); }
void operator delete(void* p, std::size_t) noexcept { global_free(p); }
void operator delete[](void* p, std::size_t) noexcept { global_free(p); }

// ---- The counting allocator: live bytes by allocated type, requested sizes ----

namespace {

struct allocation_kind {
  const char* type = nullptr;  // typeid(T).name()
  std::size_t bytes = 0;       // n * sizeof(T) of one allocation
  std::int64_t live = 0;       // allocations of this kind not yet freed
};

class allocator_stats {
 public:
  void add(const char* type, std::size_t bytes, std::int64_t sign) {
    std::lock_guard lock(mutex_);
    live_bytes_ += sign * static_cast<std::int64_t>(bytes);
    for (std::size_t i = 0; i < used_; ++i)
      if (kinds_[i].type == type && kinds_[i].bytes == bytes) {
        kinds_[i].live += sign;
        return;
      }
    if (used_ == kinds_.size()) {
      overflow_ += sign * static_cast<std::int64_t>(bytes);
      return;
    }
    kinds_[used_++] = {type, bytes, sign};
  }
  struct snapshot {
    std::int64_t live_bytes = 0;
    std::int64_t overflow = 0;
    std::vector<allocation_kind> kinds;
  };
  snapshot take() {
    std::lock_guard lock(mutex_);
    return {live_bytes_, overflow_, std::vector<allocation_kind>(kinds_.begin(), kinds_.begin() + static_cast<std::ptrdiff_t>(used_))};
  }

 private:
  std::mutex mutex_;
  std::int64_t live_bytes_ = 0;
  std::int64_t overflow_ = 0;  // bytes of kinds beyond the table
  std::array<allocation_kind, 256> kinds_{};
  std::size_t used_ = 0;
};

allocator_stats stats;

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
    stats.add(typeid(T).name(), n * sizeof(T), +1);
    return static_cast<T*>(p);
  }
  void deallocate(T* p, std::size_t n) noexcept {
    stats.add(typeid(T).name(), n * sizeof(T), -1);
    std::free(p);
  }
  friend bool operator==(const counting_allocator&, const counting_allocator&) noexcept { return true; }
};

using byte_allocator = counting_allocator<std::uint8_t>;
using counted_context = coap::basic_context<byte_allocator>;

std::string demangle(const char* name) {
  int status = 0;
  char* d = abi::__cxa_demangle(name, nullptr, nullptr, &status);
  std::string s = status == 0 && d ? d : name;
  std::free(d);
  // Shorten the allocator and the usual namespaces so that lines stay readable.
  for (const std::string_view noise : {"(anonymous namespace)::counting_allocator<unsigned char>",
                                       "boost::asio::ip::basic_endpoint<boost::asio::ip::udp>"}) {
    for (auto at = s.find(noise); at != std::string::npos; at = s.find(noise))
      s.replace(at, noise.size(), noise.front() == '(' ? "A" : "udp::endpoint");
  }
  return s.size() > 150 ? s.substr(0, 147) + "..." : s;
}

// The process's resident set (kB), from /proc/self/status. The client sockets' buffers are
// kernel memory, outside it; the peers' descriptor table is in it (8 bytes each).
long rss_kb() {
  long kb = 0;
  if (FILE* f = std::fopen("/proc/self/status", "r")) {
    char line[256];
    while (std::fgets(line, sizeof line, f))
      if (std::sscanf(line, "VmRSS: %ld kB", &kb) == 1) break;
    std::fclose(f);
  }
  return kb;
}

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "session_memory: %s: %s\n", what, std::strerror(errno));
  std::exit(1);
}

// One client peer: a socket of its own, connected to the server. Sockets stay open to the end
// so that a later peer cannot get the same ephemeral port (it would be the same peer). Peer i
// binds 127.(1 + i / 65536).(i / 256 % 256).(i % 256), so that ports never run out.
int open_peer(std::uint16_t port, std::size_t i) {
  const int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) die("socket");
  sockaddr_in self{};
  self.sin_family = AF_INET;
  self.sin_addr.s_addr = htonl(static_cast<std::uint32_t>((127u << 24) | ((1 + i / 65536) << 16) | (i % 65536)));
  if (bind(fd, reinterpret_cast<sockaddr*>(&self), sizeof self) < 0) die("bind");
  sockaddr_in server{};
  server.sin_family = AF_INET;
  server.sin_port = htons(port);
  server.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&server), sizeof server) < 0) die("connect");
  return fd;
}

// One CON GET /x, retransmitted (at most 5 times) until answered.
bool one_request(int fd, std::uint16_t message_id) {
  const std::uint8_t request[] = {0x44, 0x01, static_cast<std::uint8_t>(message_id >> 8),
                                  static_cast<std::uint8_t>(message_id), 1, 2, 3, 4, 0xb1, 'x'};
  for (int attempt = 0; attempt < 5; ++attempt) {
    if (send(fd, request, sizeof request, 0) < 0) die("send");
    pollfd p{fd, POLLIN, 0};
    while (poll(&p, 1, 1000) > 0) {
      std::uint8_t reply[256];
      const ssize_t n = recv(fd, reply, sizeof reply, 0);
      if (n >= 8 && reply[2] == request[2] && reply[3] == request[3]) return true;
    }
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t peers = 1000;
  std::size_t requests_per_peer = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::string_view(argv[i]) == "--peers") peers = std::stoul(argv[i + 1]);
    if (std::string_view(argv[i]) == "--requests-per-peer") requests_per_peer = std::stoul(argv[i + 1]);
  }

  // Descriptors for every peer (and some for the server).
  if (rlimit r{}; getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < peers + 256) {
    r.rlim_cur = r.rlim_max = std::max<rlim_t>(r.rlim_max, peers + 256);
    if (setrlimit(RLIMIT_NOFILE, &r) != 0) die("setrlimit (more descriptors than allowed)");
  }

  boost::asio::io_context io(1);
  coap::context_config config;
  config.max_sessions = peers + 16;
  counted_context ctx(io.get_executor(), config);
  ctx.add_resource("x").on(coap::method::get, [](const coap::request&, coap::basic_response<byte_allocator>& res) {
    res.set_payload(std::string_view("hello"));
  });
  std::uint16_t port = 0;
  if (auto ec = ctx.add_endpoint<coap::udp>(boost::asio::ip::make_address("127.0.0.1"), 0, &port)) {
    std::fprintf(stderr, "session_memory: add_endpoint: %s\n", ec.message().c_str());
    return 1;
  }
  auto work = boost::asio::make_work_guard(io);
  std::thread server([&io] { io.run(); });

  // Waits until the server thread has finished everything before this call (its executor
  // runs handlers in order), then returns what `f` computes there.
  auto on_server = [&io](auto f) {
    std::promise<decltype(f())> result;
    boost::asio::post(io, [&] { result.set_value(f()); });
    return result.get_future().get();
  };

  // One peer first, so that one-time costs (Asio services, the first growth of the session
  // table) are not charged to the sessions measured.
  std::vector<int> open_sockets;
  open_sockets.reserve(peers + 1);
  open_sockets.push_back(open_peer(port, 0));
  if (!one_request(open_sockets.back(), 1)) die("warm-up peer not answered");
  // Twice: the first call's own handler memory is then recycled by Asio, not counted.
  on_server([] { return 0; });
  on_server([] { return 0; });
  const auto before = stats.take();
  const std::int64_t global_before = global_live_bytes.load();
  const std::int64_t global_blocks_before = global_live_blocks.load();
  const long rss_before = rss_kb();

  std::size_t answered = 0;
  for (std::size_t i = 0; i < peers; ++i) {
    open_sockets.push_back(open_peer(port, i + 1));
    bool all = true;
    for (std::size_t r = 0; r < requests_per_peer; ++r)
      all = one_request(open_sockets.back(), static_cast<std::uint16_t>(r + 2)) && all;
    answered += all;
  }
  const std::size_t sessions = on_server([&ctx] { return ctx.session_count(); });
  const auto after = stats.take();
  const std::int64_t global_after = global_live_bytes.load();
  const long rss_after = rss_kb();
  const std::int64_t global_blocks_after = global_live_blocks.load();

  // The breakdown: what the N sessions added, by allocated type and size.
  std::printf("live allocations added by %zu sessions after %zu request(s) each (type, bytes each, count, bytes per session):\n",
              peers, requests_per_peer);
  for (const auto& k : after.kinds) {
    std::int64_t was = 0;
    for (const auto& b : before.kinds)
      if (b.type == k.type && b.bytes == k.bytes) was = b.live;
    const std::int64_t added = k.live - was;
    if (added == 0) continue;
    std::printf("  %-150s %8zu x %6lld = %9.1f\n", demangle(k.type).c_str(), k.bytes, static_cast<long long>(added),
                static_cast<double>(added) * static_cast<double>(k.bytes) / static_cast<double>(peers));
  }
  if (after.overflow != before.overflow) std::printf("  (untracked kinds: %lld bytes)\n", static_cast<long long>(after.overflow - before.overflow));

  using std_session = coap::transports::udp_session_impl<coap::no_sec, std::allocator<std::uint8_t>>;
  using counted_session = coap::transports::udp_session_impl<coap::no_sec, byte_allocator>;
  std::printf(
      "session_memory peers=%zu requests_per_peer=%zu answered=%zu sessions=%zu allocator_bytes_per_session=%.1f "
      "global_new_bytes_per_session=%.1f global_new_blocks_added=%lld sizeof_udp_session_impl=%zu "
      "sizeof_udp_session_impl_counting=%zu sizeof_dedup_entry=%zu sizeof_message=%zu sizeof_session_config=%zu "
      "rss_bytes_per_session=%.1f\n",
      peers, requests_per_peer, answered, sessions,
      static_cast<double>(after.live_bytes - before.live_bytes) / static_cast<double>(peers),
      static_cast<double>(global_after - global_before) / static_cast<double>(peers),
      static_cast<long long>(global_blocks_after - global_blocks_before), sizeof(std_session), sizeof(counted_session),
      sizeof(coap::detail::dedup_cache<std::allocator<std::uint8_t>>::entry), sizeof(coap::message),
      sizeof(coap::session_config), static_cast<double>(rss_after - rss_before) * 1024.0 / static_cast<double>(peers));

  boost::asio::post(io, [&ctx] { ctx.stop(); });
  work.reset();
  server.join();
  for (int fd : open_sockets) close(fd);
  return answered == peers ? 0 : 1;
}
