// RFC 7252 section 5.2 (a request's answer is built, sent and forgotten): the messages a
// context's server sessions build their answers in, lent for one request and given back with
// their buffers. One per session would cost every idle peer a message and its buffers (issue
// 16); one per context is enough, since a session uses it only while a request goes through
// its handler. A handler that serves another request before it returns (a proxy to itself, a
// test) borrows a second one: nothing is shared between two requests in progress.
#pragma once

#include <coap/message.hpp>

#include <cstddef>
#include <memory>
#include <utility>
#include <vector>

namespace coap::detail {

template <class Allocator>
class message_pool {
 public:
  using message_type = basic_message<Allocator>;

  // A message on loan, cleared; back to the pool with its buffers when the lease ends.
  class lease {
   public:
    lease(const lease&) = delete;
    lease& operator=(const lease&) = delete;
    ~lease() { pool_.give_back(std::move(message_)); }
    message_type& operator*() noexcept { return message_; }
    message_type* operator->() noexcept { return &message_; }

   private:
    friend message_pool;
    lease(message_pool& pool, message_type m) noexcept : pool_(pool), message_(std::move(m)) {}
    message_pool& pool_;
    message_type message_;
  };

  explicit message_pool(const Allocator& a) : free_(rebind(a)), allocator_(a) {}

  // Throws bad_alloc when the allocator refuses the pool room for the message to come back
  // to (only while the pool grows: at most once per request in progress at the same time).
  lease take() {
    if (free_.empty()) {
      free_.reserve(lent_ + 1);
      ++lent_;
      return lease(*this, message_type(allocator_));
    }
    message_type m = std::move(free_.back().message);
    free_.pop_back();
    m.clear();
    ++lent_;
    return lease(*this, std::move(m));
  }

 private:
  // Never allocates: take() reserved room for every message on loan.
  void give_back(message_type m) noexcept {
    --lent_;
    free_.push_back(slot{std::move(m)});
  }

  // Not the message itself: a vector with a polymorphic allocator would pass its allocator to
  // the message's move (uses-allocator construction), which basic_message does not take.
  struct slot {
    message_type message;
  };
  using slot_allocator = typename std::allocator_traits<Allocator>::template rebind_alloc<slot>;
  static slot_allocator rebind(const Allocator& a) { return slot_allocator(a); }
  std::vector<slot, slot_allocator> free_;
  std::size_t lent_ = 0;
  Allocator allocator_;
};

}  // namespace coap::detail
