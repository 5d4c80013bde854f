// RFC 7252 section 4.7 (NSTART) and RFC 8323 section 5.3 (nothing before the CSM): the client
// requests of one session that wait for their turn, each with its type-erased handler. What a
// queue entry may cost: one element of the session's allocator; what its failure costs: nothing.
// The queue itself is made on first use (a std::deque allocates even when empty): a session
// that never queues pays one pointer (issue 16's idle-session size).
#pragma once

#include <coap/detail/handler_slot.hpp>
#include <coap/token.hpp>

#include <deque>
#include <memory>
#include <new>
#include <utility>

namespace coap::detail {

template <class Message, class Signature>
class request_queue {
 public:
  using handler_type = typename handler_slot<Signature>::handler_type;
  struct entry {
    Message request;
    handler_slot<Signature> handler;
  };

  template <class Allocator>
  explicit request_queue(const Allocator& a) : alloc_(a) {}
  request_queue(const request_queue&) = delete;
  request_queue& operator=(const request_queue&) = delete;
  ~request_queue() {
    if (!q_) return;
    deque_allocator a(alloc_);
    q_->~deque_type();
    std::allocator_traits<deque_allocator>::deallocate(a, q_, 1);
  }

  std::size_t size() const noexcept { return q_ ? q_->size() : 0; }
  bool empty() const noexcept { return size() == 0; }

  // Appends the request. When the allocator refuses the entry the queue is as it was and the
  // handler comes back (to be failed with error::no_memory); otherwise an empty one does.
  [[nodiscard]] handler_type push(Message request, handler_type handler) {
    entry e{std::move(request), std::move(handler)};
    try {
      ensure().push_back(std::move(e));  // no effect when it throws: e keeps the handler
    } catch (const std::bad_alloc&) {
      return e.handler.take();
    }
    return {};
  }
  entry pop() {
    auto& q = *q_;
    entry e = std::move(q.front());
    q.pop_front();
    return e;
  }
  // A cancelled request leaves without completing its handler; true when it was here.
  bool remove(const coap::token& t) {
    if (empty()) return false;
    auto& q = *q_;
    for (auto it = q.begin(); it != q.end(); ++it)
      if (it->request.token_value() == t) {
        q.erase(it);
        return true;
      }
    return false;
  }
  // The session ends: every waiting handler goes to fail(handler).
  template <class Fail>
  void fail_all(Fail fail) {
    while (!empty()) fail(pop().handler.take());
  }

 private:
  using entry_allocator =
      typename std::allocator_traits<typename Message::allocator_type>::template rebind_alloc<entry>;
  using deque_type = std::deque<entry, entry_allocator>;
  using deque_allocator = typename std::allocator_traits<entry_allocator>::template rebind_alloc<deque_type>;
  // The deque, made on first use (placement new: an allocator such as pmr's would otherwise
  // give it a second allocator argument).
  deque_type& ensure() {
    if (q_) return *q_;
    deque_allocator a(alloc_);
    deque_type* p = std::allocator_traits<deque_allocator>::allocate(a, 1);
    try {
      ::new (static_cast<void*>(p)) deque_type(alloc_);
    } catch (...) {
      std::allocator_traits<deque_allocator>::deallocate(a, p, 1);
      throw;
    }
    return *(q_ = p);
  }
  deque_type* q_ = nullptr;
  [[no_unique_address]] entry_allocator alloc_;
};

}  // namespace coap::detail
