// RFC 7252 section 4.7 (NSTART) and RFC 8323 section 5.3 (nothing before the CSM): the client
// requests of one session that wait for their turn, each with its type-erased handler. What a
// queue entry may cost: one element of the session's allocator; what its failure costs: nothing.
// The queue itself is made on first use (a std::deque allocates even when empty): a session
// that never queues pays one pointer (issue 16's idle-session size).
#pragma once

#include <coap/detail/handler_slot.hpp>
#include <coap/detail/lazy.hpp>
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
  explicit request_queue(const Allocator& a) : q_(entry_allocator(a)) {}
  request_queue(const request_queue&) = delete;
  request_queue& operator=(const request_queue&) = delete;

  std::size_t size() const noexcept { return q_.get() ? q_.get()->size() : 0; }
  bool empty() const noexcept { return size() == 0; }

  // Appends the request. When the allocator refuses the entry the queue is as it was and the
  // handler comes back (to be failed with error::no_memory); otherwise an empty one does.
  [[nodiscard]] handler_type push(Message request, handler_type handler) {
    entry e{std::move(request), std::move(handler)};
    try {
      q_.ensure().push_back(std::move(e));  // no effect when it throws: e keeps the handler
    } catch (const std::bad_alloc&) {
      return e.handler.take();
    }
    return {};
  }
  entry pop() {
    auto& q = *q_.get();
    entry e = std::move(q.front());
    q.pop_front();
    return e;
  }
  // A cancelled request leaves without completing its handler; true when it was here.
  bool remove(const coap::token& t) {
    if (empty()) return false;
    auto& q = *q_.get();
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
  // Made on first use (lazy.hpp), freed with the queue.
  lazy<deque_type, entry_allocator> q_;
};

}  // namespace coap::detail
