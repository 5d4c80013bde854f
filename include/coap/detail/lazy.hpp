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

// One T from `alloc` (rebound), made by placement new rather than the allocator's construct():
// a polymorphic allocator's construct would add itself to the arguments of a type that takes an
// allocator (uses-allocator construction), which the callers already pass. Throws what the
// allocator or T's constructor throws, leaving nothing allocated.
template <class T, class Allocator, class... Args>
T* new_object(const Allocator& alloc, Args&&... args) {
  using traits = typename std::allocator_traits<Allocator>::template rebind_traits<T>;
  typename traits::allocator_type a(alloc);
  T* p = traits::allocate(a, 1);
  try {
    ::new (static_cast<void*>(p)) T(std::forward<Args>(args)...);
  } catch (...) {
    traits::deallocate(a, p, 1);
    throw;
  }
  return p;
}
// Destroys and frees what new_object made with an equal allocator.
template <class T, class Allocator>
void delete_object(const Allocator& alloc, T* p) noexcept {
  using traits = typename std::allocator_traits<Allocator>::template rebind_traits<T>;
  typename traits::allocator_type a(alloc);
  p->~T();
  traits::deallocate(a, p, 1);
}

template <class T, class Allocator>
class lazy {
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
    if (!p_) p_ = new_object<T>(alloc_, std::forward<Args>(args)..., alloc_);
    return *p_;
  }
  void reset() noexcept {
    if (!p_) return;
    delete_object(alloc_, p_);
    p_ = nullptr;
  }

 private:
  T* p_ = nullptr;
  [[no_unique_address]] Allocator alloc_;
};

// A table most sessions never fill (observers, deferred answers, exchanges in flight): its
// vector is made with the first element and kept from then on, so that a session using it
// allocates nothing per entry once warm, and one that never does pays a pointer, not an empty
// vector's 24 bytes.
template <class T, class Allocator>
class lazy_vector {
 public:
  using vector_type = std::vector<T, typename std::allocator_traits<Allocator>::template rebind_alloc<T>>;

  explicit lazy_vector(const Allocator& a) noexcept : vector_(a) {}

  // The elements (none before the first).
  std::span<T> items() const noexcept {
    auto* v = vector_.get();
    return v ? std::span<T>(*v) : std::span<T>();
  }
  std::size_t size() const noexcept { return items().size(); }
  bool empty() const noexcept { return size() == 0; }
  // The vector, or null before the first element.
  vector_type* get() const noexcept { return vector_.get(); }
  // The vector, made now if needed (std::bad_alloc when the allocator refuses).
  vector_type& ensure() { return vector_.ensure(); }
  void reset() noexcept { vector_.reset(); }
  const Allocator& get_allocator() const noexcept { return vector_.get_allocator(); }

 private:
  lazy<vector_type, Allocator> vector_;
};

}  // namespace coap::detail
