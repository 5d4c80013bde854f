// State a session may never need (a partial Block1 body, a representation kept for its later
// Block2 blocks, notification buffers, its timer), made on first use from the session's
// allocator, so that a session that never sees block-wise transfers, observers or deadlines
// pays one pointer for it (issue 16's idle-session size). Freed with the session or by reset(),
// with the allocator kept beside it (a server session may outlive its context).
#pragma once

#include <memory>
#include <utility>

namespace coap::detail {

template <class T, class Allocator>
class lazy {
  using traits = typename std::allocator_traits<Allocator>::template rebind_traits<T>;
  using allocator = typename std::allocator_traits<Allocator>::template rebind_alloc<T>;

 public:
  explicit lazy(const Allocator& a) noexcept : alloc_(a) {}
  lazy(const lazy&) = delete;
  lazy& operator=(const lazy&) = delete;
  ~lazy() { reset(); }

  T* get() const noexcept { return p_; }
  const Allocator& get_allocator() const noexcept { return alloc_; }
  // The object, made (from the allocator, constructed with `args` and the allocator) when there
  // is none yet. Throws std::bad_alloc when the allocator refuses, leaving nothing made.
  template <class... Args>
  T& ensure(Args&&... args) {
    if (p_) return *p_;
    allocator a(alloc_);
    T* p = traits::allocate(a, 1);
    try {
      traits::construct(a, p, std::forward<Args>(args)..., alloc_);
    } catch (...) {
      traits::deallocate(a, p, 1);
      throw;
    }
    p_ = p;
    return *p_;
  }
  void reset() noexcept {
    if (!p_) return;
    allocator a(alloc_);
    traits::destroy(a, p_);
    traits::deallocate(a, p_, 1);
    p_ = nullptr;
  }

 private:
  T* p_ = nullptr;
  [[no_unique_address]] Allocator alloc_;
};

}  // namespace coap::detail
