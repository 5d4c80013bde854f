// Global operator new and delete replaced by counting versions, for the coap-cpp benchmark
// servers (bench/bench_server.hpp declares the counters). Linked whole (alwayslink) into a
// binary by //bench:counting_new (atomic counters, any thread) or, with
// BENCH_COUNT_PER_THREAD, by //bench:counting_new_per_thread: counted per thread, without
// atomics (bench/dtls_bench.cpp: the server runs on the main thread, and two locked
// increments per allocation cost it about 10% of a handshake (perf, 973 allocations each), a
// handicap libcoap's server does not carry in the same run).
#include "bench/bench_server.hpp"

#include <cstdlib>
#include <new>

#ifdef BENCH_COUNT_PER_THREAD
namespace {
thread_local std::uint64_t allocations = 0;
thread_local std::uint64_t allocated_bytes = 0;

void count(std::size_t size) noexcept {
  ++allocations;
  allocated_bytes += size;
}
}  // namespace

std::uint64_t bench::allocations() noexcept { return ::allocations; }
std::uint64_t bench::allocated_bytes() noexcept { return ::allocated_bytes; }
#else
#include <atomic>

namespace {
std::atomic<std::uint64_t> allocations{0};
std::atomic<std::uint64_t> allocated_bytes{0};

void count(std::size_t size) noexcept {
  allocations.fetch_add(1, std::memory_order_relaxed);
  allocated_bytes.fetch_add(size, std::memory_order_relaxed);
}
}  // namespace

std::uint64_t bench::allocations() noexcept { return ::allocations.load(std::memory_order_relaxed); }
std::uint64_t bench::allocated_bytes() noexcept { return ::allocated_bytes.load(std::memory_order_relaxed); }
#endif

namespace {
void* counted_allocate(std::size_t size) {
  count(size);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void* counted_allocate_aligned(std::size_t size, std::align_val_t alignment) {
  count(size);
  const auto a = static_cast<std::size_t>(alignment);
  if (void* p = std::aligned_alloc(a, (size + a - 1) / a * a)) return p;
  throw std::bad_alloc();
}
}  // namespace

void* operator new(std::size_t size) { return counted_allocate(size); }
void* operator new[](std::size_t size) { return counted_allocate(size); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  try {
    return counted_allocate(size);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t size, const std::nothrow_t& t) noexcept { return operator new(size, t); }
void* operator new(std::size_t size, std::align_val_t a) { return counted_allocate_aligned(size, a); }
void* operator new[](std::size_t size, std::align_val_t a) { return counted_allocate_aligned(size, a); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
