// State a session may never need (a partial Block1 body, a representation kept for its later
// Block2 blocks, notification buffers, its timer), made on first use from the session's
// allocator, so that a session that never sees block-wise transfers, observers or deadlines
// pays one pointer for it (issue 16's idle-session size). Freed with the session or by reset(),
// with the allocator kept beside it (a server session may outlive its context).
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <utility>
#include <vector>

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

// A table most sessions never fill (observers, deferred answers, exchanges in flight): its
// vector is made with the first element and kept from then on, so that a session using it
// allocates nothing per entry once warm, and one that never does pays a pointer, not an empty
// vector's 24 bytes. The vector sits in a holder: lazy's construction with a polymorphic
// allocator would otherwise give the vector a second allocator (uses-allocator construction).
template <class T, class Allocator>
class lazy_vector {
 public:
  using vector_type = std::vector<T, typename std::allocator_traits<Allocator>::template rebind_alloc<T>>;

  explicit lazy_vector(const Allocator& a) noexcept : holder_(a) {}

  // The elements (none before the first).
  std::span<T> items() const noexcept {
    auto* h = holder_.get();
    return h ? std::span<T>(h->v) : std::span<T>();
  }
  std::size_t size() const noexcept { return items().size(); }
  bool empty() const noexcept { return size() == 0; }
  // The vector, or null before the first element.
  vector_type* get() const noexcept {
    auto* h = holder_.get();
    return h ? &h->v : nullptr;
  }
  // The vector, made now if needed (std::bad_alloc when the allocator refuses).
  vector_type& ensure() { return holder_.ensure().v; }
  void reset() noexcept { holder_.reset(); }
  const Allocator& get_allocator() const noexcept { return holder_.get_allocator(); }

 private:
  struct holder {
    explicit holder(const Allocator& a) : v(typename vector_type::allocator_type(a)) {}
    vector_type v;
  };
  lazy<holder, Allocator> holder_;
};

}  // namespace coap::detail
