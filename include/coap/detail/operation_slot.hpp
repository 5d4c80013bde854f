// Memory for the one Asio operation a connection always has waiting (its wait for input),
// inside the connection's own object: an idle connection holds no operation block of Asio's
// beside it (issue 16's idle-session size), and the operation's memory comes from the
// session's Allocator with the rest of it. Asio's custom memory allocation (an associated
// allocator, bind_allocator): Asio frees an operation's memory before its handler runs, so
// the next wait, started by that handler, finds the slot free again. A larger operation (another
// Asio build) or a second one at once comes from the heap.
#pragma once

#include <cstddef>
#include <new>

namespace coap::detail {

template <std::size_t Size>
class operation_slot {
 public:
  operation_slot() = default;
  operation_slot(const operation_slot&) = delete;
  operation_slot& operator=(const operation_slot&) = delete;

  void* allocate(std::size_t n) {
    if (!used_ && n <= Size) {
      used_ = true;
      return storage_;
    }
    return ::operator new(n);
  }
  void deallocate(void* p) noexcept {
    if (p == static_cast<void*>(storage_)) used_ = false;
    else ::operator delete(p);
  }

  // The allocator to bind to the operation's handler; the slot must outlive the operation
  // (the handler keeps the connection alive).
  template <class T>
  struct allocator {
    using value_type = T;
    operation_slot* slot;
    explicit allocator(operation_slot* s) noexcept : slot(s) {}
    template <class U>
    allocator(const allocator<U>& other) noexcept : slot(other.slot) {}
    T* allocate(std::size_t n) { return static_cast<T*>(slot->allocate(n * sizeof(T))); }
    void deallocate(T* p, std::size_t) noexcept { slot->deallocate(p); }
    friend bool operator==(const allocator& a, const allocator& b) noexcept { return a.slot == b.slot; }
  };
  allocator<void> get_allocator() noexcept { return allocator<void>(this); }

 private:
  alignas(std::max_align_t) unsigned char storage_[Size];
  bool used_ = false;
};

}  // namespace coap::detail
