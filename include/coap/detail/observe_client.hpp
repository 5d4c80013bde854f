// RFC 7641 section 3 (Observe, client side; over TCP RFC 8323 section 7): one observation's
// state: registration (3.1), notifications in order and fresh (3.3, 3.4), re-registration when
// Max-Age runs out (3.3.1), large states fetched block-wise (RFC 7959 section 2.6), cancellation
// (3.6), and the buffer of notifications that async_next has not taken yet.
#pragma once

#include <coap/detail/block_client.hpp>
#include <coap/detail/handler_slot.hpp>
#include <coap/detail/session_common.hpp>
#include <coap/error.hpp>
#include <coap/message.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <new>
#include <optional>
#include <system_error>
#include <utility>

namespace coap {
template <class Allocator>
class basic_observation;
}

namespace coap::detail {

// Section 3.4: is a notification (sequence number v2, received at t2) newer than the latest
// one (v1 at t1)? Observe values are 24-bit and wrap; after 128 s any value is newer.
constexpr bool notification_is_newer(std::uint32_t v1, std::chrono::steady_clock::time_point t1, std::uint32_t v2,
                                     std::chrono::steady_clock::time_point t2) noexcept {
  constexpr std::uint32_t half = 1u << 23;
  return (v1 < v2 && v2 - v1 < half) || (v1 > v2 && v1 - v2 > half) || t2 > t1 + std::chrono::seconds(128);
}

// Notifications waiting for async_next, at most `capacity` (at least one): when full, the
// oldest goes, since an observer wants the latest state (section 3.3.2). From the session's
// allocator; a refused push drops the notification, as the network could.
template <class Message>
class notification_buffer {
  using allocator_type = typename Message::allocator_type;
  using rebound = typename std::allocator_traits<allocator_type>::template rebind_alloc<Message>;

 public:
  notification_buffer(const allocator_type& a, std::size_t capacity)
      : items_(rebound(a)), capacity_(capacity ? capacity : 1) {}
  // False when the notification could not be kept (no memory).
  bool push(Message m) {
    if (items_.size() >= capacity_) {
      items_.pop_front();
      ++dropped_;
    }
    try {
      items_.push_back(std::move(m));
    } catch (const std::bad_alloc&) {
      ++dropped_;
      return false;
    }
    return true;
  }
  std::optional<Message> pop() {
    if (items_.empty()) return std::nullopt;
    std::optional<Message> m(std::move(items_.front()));
    items_.pop_front();
    return m;
  }
  bool empty() const noexcept { return items_.empty(); }
  std::size_t size() const noexcept { return items_.size(); }
  std::size_t dropped() const noexcept { return dropped_; }
  void clear() noexcept { items_.clear(); }

 private:
  std::deque<Message, rebound> items_;
  std::size_t capacity_;
  std::size_t dropped_ = 0;
};

// What basic_observation holds: transport-agnostic, on the session's executor.
template <class Allocator>
class observation_state_base : public observation_sink,
                               public std::enable_shared_from_this<observation_state_base<Allocator>> {
 public:
  using message_type = basic_message<Allocator>;
  using next_signature = void(std::error_code, message_type);
  using executor_type = boost::asio::any_io_executor;

  ~observation_state_base() override {
    if (waiting_) complete_later(io_, waiting_.take(), operation_aborted(), message_type(alloc_));
  }

  // async_next's initiation (any thread): the handler waits on the session's executor.
  template <class Handler>
  void start_next(Handler& handler) {
    auto erased = erase_completion<next_signature>(handler, io_, message_type(alloc_));
    if (!erased) return;
    boost::asio::dispatch(io_, [self = this->shared_from_this(), h = std::move(*erased)]() mutable {
      self->next(std::move(h));
    });
  }
  // Both hop to the session's executor.
  virtual void cancel() = 0;
  virtual void forget() = 0;

  bool active() const noexcept override { return active_.load(std::memory_order_relaxed); }
  const coap::token& token() const noexcept override { return token_; }
  executor_type get_executor() const noexcept { return io_; }
  std::size_t buffered() const noexcept { return buffer_.size(); }

 protected:
  observation_state_base(executor_type io, const Allocator& alloc, const coap::token& t, std::size_t capacity)
      : io_(std::move(io)), alloc_(alloc), token_(t), buffer_(alloc, capacity) {}

  // A notification for the user.
  void push(message_type m) {
    buffer_.push(std::move(m));
    serve();
  }
  // The observation ends with `why`: what is buffered is still handed out, unless `discard`.
  void stop(std::error_code why, bool discard) {
    if (!active_.exchange(false)) return;
    end_ = why;
    if (discard) buffer_.clear();
    serve();
  }

  executor_type io_;
  Allocator alloc_;

 private:
  using next_handler = boost::asio::any_completion_handler<next_signature>;

  void next(next_handler h) {
    if (waiting_) {
      // One async_next at a time.
      return complete_later(io_, std::move(h), make_error_code(error::queue_full), message_type(alloc_));
    }
    slot_ = h.get_cancellation_slot();
    waiting_ = std::move(h);
    if (slot_.is_connected()) {
      // Cancelling a wait ends the wait, not the observation.
      std::weak_ptr<observation_state_base> weak = this->shared_from_this();
      slot_.assign([weak, io = io_](boost::asio::cancellation_type type) {
        if (type == boost::asio::cancellation_type::none) return;
        boost::asio::post(io, [weak] {
          if (auto self = weak.lock()) self->complete_wait(operation_aborted(), message_type(self->alloc_));
        });
      });
    }
    serve();
  }
  void serve() {
    if (!waiting_) return;
    if (auto m = buffer_.pop()) return complete_wait({}, std::move(*m));
    if (!active()) complete_wait(end_, message_type(alloc_));
  }
  void complete_wait(std::error_code ec, message_type m) {
    if (!waiting_) return;
    if (slot_.is_connected()) slot_.clear();
    slot_ = {};
    complete_later(io_, waiting_.take(), ec, std::move(m));
  }

  coap::token token_;
  std::atomic<bool> active_{true};
  std::error_code end_;
  notification_buffer<message_type> buffer_;
  handler_slot<next_signature> waiting_;
  boost::asio::cancellation_slot slot_;
};

// One observation over a session implementation (any transport).
template <class Impl>
class observation_state final : public observation_state_base<typename Impl::owned_message::allocator_type> {
  using base = observation_state_base<typename Impl::owned_message::allocator_type>;
  using clock = std::chrono::steady_clock;

 public:
  using typename base::message_type;
  using message_allocator = typename message_type::allocator_type;
  using observation_type = basic_observation<message_allocator>;
  using observe_signature = void(std::error_code, observation_type);
  using observe_handler = boost::asio::any_completion_handler<observe_signature>;
  using response_handler = typename Impl::response_handler;

  // `registration`: the GET or FETCH with Observe=0 and its token set.
  observation_state(const std::shared_ptr<Impl>& impl, message_type registration)
      : base(impl->context().get_executor(), registration.get_allocator(), registration.token_value(),
             impl->config().observation_buffer),
        impl_(impl), registration_(std::move(registration)), timer_(impl->context().get_executor()) {}

  // Section 3.1: sends the registration; `user` gets the observation once it is answered.
  // On bad_alloc before `user` is taken, it is the caller's still.
  void start(observe_handler& user) {
    auto impl = impl_.lock();
    message_type request = copy(registration_);
    auto slot = user.get_cancellation_slot();
    registered r{std::static_pointer_cast<observation_state>(this->shared_from_this()), std::move(user), slot};
    std::optional<response_handler> done;
    try {
      done.emplace(std::move(r));
    } catch (const std::bad_alloc&) {
      this->stop(make_error_code(error::no_memory), true);
      return complete_later(this->io_, std::move(r.user), make_error_code(error::no_memory), observation_type());
    }
    block_transfer<Impl>::start(impl, std::move(request), std::move(*done));
  }

  // ---- from the transport (the session's executor) ----
  bool on_notification(const message_view& m) override {
    try {
      accept(message_type(m, this->alloc_));
    } catch (const std::bad_alloc&) {
      // Dropped, as the network could: the next notification brings the state again.
    }
    return true;
  }
  void end(std::error_code why) override {
    timer_.cancel();
    this->stop(why, false);
  }

  // ---- from the user (any thread) ----
  void cancel() override {
    boost::asio::dispatch(this->io_, [self = shared_self()] { self->deregister(); });
  }
  void forget() override {
    boost::asio::dispatch(this->io_, [self = shared_self()] {
      self->timer_.cancel();
      self->stop(operation_aborted(), true);
    });
  }

 private:
  // The registration's completion: the user's handler with the cancellation slot it came with
  // (cancelling async_observe abandons the registration).
  struct registered {
    using allocator_type = typename observation_state::message_allocator;
    using cancellation_slot_type = boost::asio::cancellation_slot;
    std::shared_ptr<observation_state> self;
    observe_handler user;
    boost::asio::cancellation_slot slot;
    allocator_type get_allocator() const noexcept { return self->alloc_; }
    cancellation_slot_type get_cancellation_slot() const noexcept { return slot; }
    void operator()(std::error_code ec, message_type m) { self->on_registered(ec, std::move(m), std::move(user)); }
  };
  // Completions of internal exchanges (re-registration, block fetches, deregistration).
  template <class F>
  struct internal {
    using allocator_type = typename observation_state::message_allocator;
    std::weak_ptr<observation_state> weak;
    allocator_type alloc;
    F f;
    allocator_type get_allocator() const noexcept { return alloc; }
    void operator()(std::error_code ec, message_type m) {
      if (auto self = weak.lock()) f(*self, ec, std::move(m));
    }
  };
  template <class F>
  std::optional<response_handler> make_internal(F f) {
    try {
      return std::optional<response_handler>(std::in_place, internal<F>{shared_self(), this->alloc_, std::move(f)});
    } catch (const std::bad_alloc&) {
      return std::nullopt;
    }
  }

  std::shared_ptr<observation_state> shared_self() {
    return std::static_pointer_cast<observation_state>(this->shared_from_this());
  }
  message_type copy(const message_type& m) const {
    message_type c(m.code(), m.type(), this->alloc_);
    c.set_token(m.token_value());
    for (option_view o : m.options()) c.add_option(o.number(), o.value());
    c.set_payload(m.payload());
    return c;
  }

  void on_registered(std::error_code ec, message_type m, observe_handler user) {
    if (ec) {
      timer_.cancel();
      this->stop(ec, true);
      return complete_later(this->io_, std::move(user), ec, observation_type());
    }
    accept(std::move(m));
    complete_later(this->io_, std::move(user), std::error_code(), observation_type(this->shared_from_this()));
  }

  // Sections 3.2 to 3.4: one response to our registration (the first, a notification, or the
  // answer to a re-registration).
  void accept(message_type m) {
    if (!this->active()) return;
    auto observe = m.find(option_number::observe);
    if (m.code().code_class() != 2 || !observe) {
      // Section 3.2/4.2: an error, or an answer without Observe, ends the observation.
      timer_.cancel();
      this->push(std::move(m));
      return this->stop(make_error_code(error::not_observable), false);
    }
    const std::uint32_t v = observe->as_uint() & 0xffffffu;
    const auto now = clock::now();
    if (have_sequence_ && !notification_is_newer(sequence_, received_, v, now)) return;  // older: dropped
    have_sequence_ = true;
    sequence_ = v;
    received_ = now;
    ++generation_;
    arm_reregistration(m);
    if (auto b2 = find_block(m, option_number::block2); b2 && b2->more && b2->num == 0)
      return fetch(std::move(m), generation_);
    this->push(std::move(m));
  }

  // Section 3.3.1: when Max-Age runs out without a newer notification, register again.
  void arm_reregistration(const message_type& m) {
    const auto max_age = m.find(option_number::max_age);
    timer_.expires_after(std::chrono::seconds(max_age ? max_age->as_uint() : 60));
    timer_.async_wait([weak = std::weak_ptr<observation_state>(shared_self())](const boost::system::error_code& ec) {
      if (ec) return;
      if (auto self = weak.lock()) self->reregister();
    });
  }
  void reregister() {
    auto impl = impl_.lock();
    if (!this->active() || reregistering_ || !impl) return;
    auto done = make_internal([](observation_state& self, std::error_code ec, message_type m) {
      self.reregistering_ = false;
      if (ec) return self.end(ec);  // one try: its failure ends the observation
      self.accept(std::move(m));
    });
    if (!done) return;
    reregistering_ = true;
    block_transfer<Impl>::start(impl, copy(registration_), std::move(*done));
  }

  // RFC 7959 section 2.6: a notification carrying the first block of a large state; the rest
  // comes with plain requests (no Observe) and the user gets the whole state. One fetch at a
  // time: a newer large notification waits for it, and a result older than what the user got
  // since is dropped.
  void fetch(message_type first, std::uint64_t generation) {
    if (fetching_) {
      pending_.emplace(std::move(first));
      pending_generation_ = generation;
      return;
    }
    auto impl = impl_.lock();
    auto done = make_internal([generation](observation_state& self, std::error_code ec, message_type m) {
      self.fetching_ = false;
      if (!ec && self.active() && generation == self.generation_) self.push(std::move(m));
      if (self.pending_ && self.active()) {
        auto next = std::move(*self.pending_);
        self.pending_.reset();
        self.fetch(std::move(next), self.pending_generation_);
      }
    });
    if (!done || !impl) return;
    fetching_ = true;
    // Not from inside the transport's receive path: start on a fresh stack.
    boost::asio::post(this->io_, [impl, request = copy(registration_), first = std::move(first),
                                  done = std::move(*done)]() mutable {
      block_transfer<Impl>::resume(impl, std::move(request), std::move(first), std::move(done));
    });
  }

  // Section 3.6: a GET with Observe=1 and the same token; the answer is not waited for.
  void deregister() {
    if (!this->active()) return;
    timer_.cancel();
    this->stop(operation_aborted(), true);
    auto impl = impl_.lock();
    if (!impl || !impl->is_open()) return;
    try {
      message_type m = copy(registration_);
      m.remove_option(static_cast<std::uint16_t>(option_number::observe));
      m.add_uint_option(static_cast<std::uint16_t>(option_number::observe), 1);
      if (auto done = make_internal([](observation_state&, std::error_code, message_type) {}))
        impl->start_request(std::move(m), std::move(*done));
    } catch (const std::bad_alloc&) {
      // No memory for the deregistration: the next notification is answered with RST.
    }
  }

  std::weak_ptr<Impl> impl_;
  message_type registration_;
  boost::asio::steady_timer timer_;
  bool have_sequence_ = false;
  std::uint32_t sequence_ = 0;
  clock::time_point received_{};
  std::uint64_t generation_ = 0;
  bool reregistering_ = false;
  bool fetching_ = false;
  std::optional<message_type> pending_;
  std::uint64_t pending_generation_ = 0;
};

}  // namespace coap::detail
