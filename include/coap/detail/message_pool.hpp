// RFC 7252 section 5.2 (a request's answer is built, sent and forgotten): the messages a
// context's server sessions build their answers in, lent for one request and given back with
// their buffers. One per session would cost every idle peer a message and its buffers (issue
// 16); one per context is enough, since a session uses it only while a request goes through
// its handler. A handler that serves another request before it returns (a proxy to itself, a
// test) borrows a second one: nothing is shared between two requests in progress.
#pragma once

#include <coap/detail/lazy.hpp>
#include <coap/message.hpp>

#include <cstddef>
#include <memory>
#include <new>
#include <utility>
#include <vector>

namespace coap::detail {

template <class Allocator>
class message_pool {
 public:
  using message_type = basic_message<Allocator>;

  // A message on loan, cleared; back to the pool with its buffers when the lease ends. The
  // message stays where the pool made it: nothing is moved per request.
  class lease {
   public:
    lease(const lease&) = delete;
    lease& operator=(const lease&) = delete;
    ~lease() { pool_.give_back(message_); }
    message_type& operator*() noexcept { return *message_; }
    message_type* operator->() noexcept { return message_; }

   private:
    friend message_pool;
    lease(message_pool& pool, message_type* m) noexcept : pool_(pool), message_(m) {}
    message_pool& pool_;
    message_type* message_;
  };

  explicit message_pool(const Allocator& a) : free_(pointer_allocator(a)), allocator_(a) {}
  message_pool(const message_pool&) = delete;
  message_pool& operator=(const message_pool&) = delete;
  ~message_pool() {
    // Every lease has ended (they live for one request, inside the context's handlers).
    for (message_type* m : free_) delete_object(allocator_, m);
  }

  // Throws bad_alloc when the allocator refuses a new message or the pool room for it to come
  // back to (only while the pool grows: at most once per request in progress at the same time).
  lease take() {
    if (free_.empty()) {
      free_.reserve(made_ + 1);
      message_type* m = new_object<message_type>(allocator_, allocator_);
      ++made_;
      return lease(*this, m);
    }
    message_type* m = free_.back();
    free_.pop_back();
    m->clear();
    return lease(*this, m);
  }

 private:
  // Never allocates: take() reserved room for every message made.
  void give_back(message_type* m) noexcept { free_.push_back(m); }

  using pointer_allocator = typename std::allocator_traits<Allocator>::template rebind_alloc<message_type*>;
  std::vector<message_type*, pointer_allocator> free_;
  std::size_t made_ = 0;
  Allocator allocator_;
};

}  // namespace coap::detail
