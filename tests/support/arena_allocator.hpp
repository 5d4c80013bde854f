// Test support: memory resources that make a session's memory visible and bounded.
//   counting_resource  counts what goes through it (allocations, live and peak bytes) and can
//                      refuse beyond a byte budget by throwing std::bad_alloc;
//   fixed_arena        a fixed buffer that never reaches the global heap: a pool (so that
//                      freed blocks are reused) over a monotonic buffer whose upstream is
//                      null_memory_resource, so exceeding the buffer throws std::bad_alloc.
// Both hand out std::pmr::polymorphic_allocator<std::uint8_t>, which every coap-cpp template
// accepts as its Allocator.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <memory_resource>
#include <new>

namespace coap::test {

using pmr_allocator = std::pmr::polymorphic_allocator<std::uint8_t>;

class counting_resource final : public std::pmr::memory_resource {
 public:
  explicit counting_resource(std::pmr::memory_resource* upstream = std::pmr::new_delete_resource(),
                             std::size_t budget = static_cast<std::size_t>(-1)) noexcept
      : upstream_(upstream), budget_(budget) {}

  std::size_t allocations() const noexcept { return allocations_; }
  std::size_t deallocations() const noexcept { return deallocations_; }
  std::size_t live_bytes() const noexcept { return live_bytes_; }
  std::size_t peak_bytes() const noexcept { return peak_bytes_; }
  std::size_t refusals() const noexcept { return refusals_; }
  // Allocations beyond this many live bytes throw std::bad_alloc.
  void set_budget(std::size_t bytes) noexcept { budget_ = bytes; }
  std::size_t budget() const noexcept { return budget_; }

  pmr_allocator allocator() noexcept { return pmr_allocator(this); }

 private:
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    if (bytes > budget_ || live_bytes_ > budget_ - bytes) {
      ++refusals_;
      throw std::bad_alloc();
    }
    void* p = upstream_->allocate(bytes, alignment);
    ++allocations_;
    live_bytes_ += bytes;
    if (live_bytes_ > peak_bytes_) peak_bytes_ = live_bytes_;
    return p;
  }
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
    ++deallocations_;
    live_bytes_ -= bytes;
    upstream_->deallocate(p, bytes, alignment);
  }
  bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override { return this == &other; }

  std::pmr::memory_resource* upstream_;
  std::size_t budget_;
  std::size_t allocations_ = 0;
  std::size_t deallocations_ = 0;
  std::size_t live_bytes_ = 0;
  std::size_t peak_bytes_ = 0;
  std::size_t refusals_ = 0;
};

// A fixed arena: `size` bytes taken once (at set-up), and nothing more, ever.
//   counted (what sessions ask for) -> pool (reuses freed blocks)
//     -> carved (what the pool takes from the buffer) -> monotonic buffer -> null resource
class fixed_arena {
 public:
  explicit fixed_arena(std::size_t size)
      : storage_(new std::byte[size]), monotonic_(storage_.get(), size, std::pmr::null_memory_resource()),
        carved_(&monotonic_), pool_(&carved_), counted_(&pool_) {}
  fixed_arena(const fixed_arena&) = delete;
  fixed_arena& operator=(const fixed_arena&) = delete;

  pmr_allocator allocator() noexcept { return counted_.allocator(); }
  // What the sessions allocate and free through the arena.
  const counting_resource& requests() const noexcept { return counted_; }
  // What the pool took from the fixed buffer: stops growing once the traffic is steady.
  const counting_resource& carved() const noexcept { return carved_; }

 private:
  std::unique_ptr<std::byte[]> storage_;
  std::pmr::monotonic_buffer_resource monotonic_;
  counting_resource carved_;
  std::pmr::unsynchronized_pool_resource pool_;
  counting_resource counted_;
};

}  // namespace coap::test
