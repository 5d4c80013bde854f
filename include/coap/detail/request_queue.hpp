// RFC 7252 section 4.7 (NSTART) and RFC 8323 section 5.3 (nothing before the CSM): the client
// requests of one session that wait for their turn, each with its type-erased handler. What a
// queue entry may cost: one element of the session's allocator; what its failure costs: nothing.
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
  explicit request_queue(const Allocator& a) : entries_(entry_allocator(a)) {}

  std::size_t size() const noexcept { return entries_.size(); }
  bool empty() const noexcept { return entries_.empty(); }

  // Appends the request. When the allocator refuses the entry the queue is as it was and the
  // handler comes back (to be failed with error::no_memory); otherwise an empty one does.
  [[nodiscard]] handler_type push(Message request, handler_type handler) {
    entry e{std::move(request), std::move(handler)};
    try {
      entries_.push_back(std::move(e));  // no effect when it throws: e keeps the handler
    } catch (const std::bad_alloc&) {
      return e.handler.take();
    }
    return {};
  }
  entry pop() {
    entry e = std::move(entries_.front());
    entries_.pop_front();
    return e;
  }
  // A cancelled request leaves without completing its handler; true when it was here.
  bool remove(const coap::token& t) {
    for (auto it = entries_.begin(); it != entries_.end(); ++it)
      if (it->request.token_value() == t) {
        entries_.erase(it);
        return true;
      }
    return false;
  }
  // The session ends: every waiting handler goes to fail(handler).
  template <class Fail>
  void fail_all(Fail fail) {
    while (!entries_.empty()) fail(pop().handler.take());
  }

 private:
  using entry_allocator =
      typename std::allocator_traits<typename Message::allocator_type>::template rebind_alloc<entry>;
  std::deque<entry, entry_allocator> entries_;
};

}  // namespace coap::detail
