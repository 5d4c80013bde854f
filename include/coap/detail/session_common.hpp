// What every session has, whatever its transport (coap_session(3)): its context, peer and
// local addresses, configuration (its context's, or its own copy once changed), printable
// description (coap_session_str, written when asked), typed
// application data, handle count, last activity, the posting of completions (on the handler's
// associated executor, with work tracked on it while pending: Asio's contract) and the table of
// the client's observations (RFC 7641 section 3) that notifications are matched against, and
// the one timer that serves every deadline of the session, made while there are deadlines.
// A CRTP base: Derived provides close(std::error_code), idle(), next_deadline() (the earliest
// deadline, if any), on_timer() (what is due now) and protocol_name ("UDP", "DTLS", ...).
#pragma once

#include <coap/context.hpp>
#include <coap/detail/endpoint_text.hpp>
#include <coap/detail/handler_slot.hpp>
#include <coap/detail/lazy.hpp>
#include <coap/detail/session_owner.hpp>
#include <coap/message.hpp>
#include <coap/message_view.hpp>
#include <coap/session_config.hpp>
#include <coap/session_description.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/associator.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <typeinfo>
#include <utility>
#include <vector>

namespace coap::detail {

// ---- completion handlers (Asio's rules for composed operations) ----

// A user's handler while its operation is pending: outstanding work is tracked on its
// associated executor, and it runs there (dispatched: inline when that executor is the one
// running, as the session's own is). Every other association (allocator, cancellation slot)
// is the handler's own (see the associator below). Invoke it only from a posted function,
// never inside an initiating function (complete_later does).
template <class Handler, class Executor>
class tracked_handler {
 public:
  using work_executor = boost::asio::associated_executor_t<Handler, Executor>;
  tracked_handler(Handler h, const Executor& fallback)
      : handler_(std::move(h)), executor_(boost::asio::get_associated_executor(handler_, fallback)),
        work_(executor_) {}
  const Handler& handler() const noexcept { return handler_; }
  template <class... Args>
  void operator()(Args... args) {
    // The work guard goes with the handler and is released once it returned.
    boost::asio::dispatch(executor_, [h = std::move(handler_), work = std::move(work_), ... args = std::move(args)]() mutable {
      std::move(h)(std::move(args)...);
    });
  }

 private:
  Handler handler_;
  work_executor executor_;
  boost::asio::executor_work_guard<work_executor> work_;
};

inline std::error_code operation_aborted() noexcept {
  return boost::system::error_code(boost::asio::error::operation_aborted);
}

// Completes h(args...) never inside the caller: posted to `io` (the session's executor); a
// user's handler (tracked_handler, erased or not) moves on from there to its own executor.
// (Not through any_completion_handler's associated executor: converting the session's
// any_io_executor to an any_completion_executor allocates.) A lambda rather than asio::append:
// Boost 1.81's any_completion_handler recurses when asio copies it as an lvalue.
template <class Executor, class Handler, class... Args>
void complete_later(const Executor& io, Handler h, Args... args) {
  boost::asio::post(io, [h = std::move(h), ... args = std::move(args)]() mutable { std::move(h)(std::move(args)...); });
}

// Type-erases a user's handler (asio::any_completion_handler) with its work tracked: the
// storage comes from the handler's associated allocator (asio::bind_allocator), which is how
// an Asio user keeps handler memory in an arena. When that allocator refuses, the handler is
// completed with (no_memory, fallback...) and nullopt is returned.
template <class Signature, class Handler, class Executor, class... Fallback>
std::optional<boost::asio::any_completion_handler<Signature>> erase_completion(Handler& handler, const Executor& io,
                                                                               Fallback... fallback) {
  tracked_handler<Handler, Executor> tracked(std::move(handler), io);
  try {
    // any_completion_handler allocates before it moves the handler: on failure it is intact.
    return std::optional<boost::asio::any_completion_handler<Signature>>(std::in_place, std::move(tracked));
  } catch (const std::bad_alloc&) {
    complete_later(io, std::move(tracked), make_error_code(error::no_memory), std::move(fallback)...);
    return std::nullopt;
  }
}

// What the session's table of client observations needs of one (observe_client.hpp): it is
// matched by token, takes notifications, and ends with the session.
class observation_sink {
 public:
  virtual ~observation_sink() = default;
  // A response with our token that no exchange waits for. True: taken (a CON is acknowledged).
  virtual bool on_notification(const message_view& m) = 0;
  // The session ended.
  virtual void end(std::error_code why) = 0;
  virtual bool active() const noexcept = 0;
  virtual const coap::token& token() const noexcept = 0;
};

// Makes room for `extra` more elements, growing geometrically: the one place a session
// allocates for a new exchange, done before any state changes so that a refusal (bad_alloc)
// leaves the session as it was.
template <class Vector>
void reserve_more(Vector& v, std::size_t extra) {
  if (v.capacity() - v.size() >= extra) return;
  v.reserve(std::max(v.size() + extra, 2 * v.capacity()));
}

template <class Derived, class Endpoint, class Allocator>
class session_common {
 protected:
  template <class T>
  using rebind = typename std::allocator_traits<Allocator>::template rebind_alloc<T>;
  using clock = std::chrono::steady_clock;

 public:
  using endpoint_type = Endpoint;
  using context_type = basic_context<Allocator>;
  using owned_message = basic_message<Allocator>;
  using response_signature = void(std::error_code, owned_message);
  using response_handler = boost::asio::any_completion_handler<response_signature>;
  enum class role : std::uint8_t { client, server };

  session_description description() const noexcept {
    return session_description(local_, peer_, Derived::protocol_name);
  }
  const endpoint_type& remote_endpoint() const noexcept { return peer_; }
  const endpoint_type& local_endpoint() const noexcept { return local_; }
  bool is_client() const noexcept { return role_ == role::client; }
  bool is_open() const noexcept { return !closed_; }
  // What the session runs with. A server session made with its context's configuration
  // (ctx.config().session) reads that one, so that 1,000 idle peers do not hold 1,000 copies
  // (issue 16): a change made there reaches the server sessions that have no copy of their own.
  const session_config& config() const noexcept { return *config_; }
  // For changing this session's configuration alone: a session still reading its context's
  // gets its own copy first, from the session's allocator (bad_alloc when it refuses).
  session_config& own_config() {
    if (!own_config_) {
      own_config_ = make_own_config(ctx_.get_allocator(), *config_);
      config_ = &own_config_->config;
    }
    return own_config_->config;
  }
  context_type& context() noexcept { return ctx_; }

  template <class T>
  void set_app_data(T* p) noexcept {
    app_data_ = const_cast<void*>(static_cast<const void*>(p));
    app_type_ = &typeid(T);
  }
  template <class T>
  T* app_data() const noexcept {
    return app_type_ && *app_type_ == typeid(T) ? static_cast<T*>(app_data_) : nullptr;
  }

  // coap_session_reference / coap_session_release: the last handle of a client session
  // closes it; a server session stays for its endpoint's idle pool. Handles may be copied and
  // destroyed on any thread (docs/design.md, "Threads"): the count is atomic, and the close
  // that the last release causes runs on the context's executor (at once when already there).
  void add_handle() noexcept { handles_.fetch_add(1, std::memory_order_relaxed); }
  void remove_handle() {
    if (handles_.fetch_sub(1, std::memory_order_acq_rel) != 1 || role_ != role::client) return;
    boost::asio::dispatch(ctx_.get_executor(), [self = derived().shared_from_this()] {
      if (self->handles() == 0) self->close(error::session_closed);
    });
  }
  std::size_t handles() const noexcept { return handles_.load(std::memory_order_acquire); }
  clock::time_point last_activity() const noexcept { return last_activity_; }
  // RFC 8516: after a 4.29 Too Many Requests the client sends nothing to this peer until its
  // Max-Age passed (detail/block_client.hpp refuses with error::too_many_requests meanwhile).
  // Kept in the client's block: a server session's handle that has none sends on.
  void hold_requests_until(clock::time_point t) noexcept {
    if (auto* client = client_state_.get()) client->held_until = std::max(client->held_until, t);
  }
  bool requests_held(clock::time_point now) const noexcept {
    const auto* client = client_state_.get();
    return client && now < client->held_until;
  }
  // The endpoint hears about the end of a server session through this.
  void set_owner(std::weak_ptr<transports::session_owner<Derived>> owner) noexcept { owner_ = std::move(owner); }

  // ---- client observations (RFC 7641 section 3) ----
  // A response that no pending exchange of ours waits for: a notification of one of our
  // observations? True when an observation took it (the transport then acknowledges a CON);
  // false: the transport rejects it (RST over UDP, ignored over TCP). An observation that
  // ended, was forgotten, or whose last handle went is rejected (section 3.6) and removed.
  bool deliver_notification(const message_view& m) {
    auto* client = client_state_.get();
    if (!client) return false;
    auto& observations = client->observations;
    for (std::size_t i = 0; i < observations.size(); ++i) {
      if (!std::ranges::equal(observations[i].token.bytes(), m.token())) continue;
      auto state = observations[i].state.lock();
      if (state && state->active()) return state->on_notification(m);
      observations.erase(observations.begin() + static_cast<std::ptrdiff_t>(i));
      return false;
    }
    return false;
  }
  // The session ends: every observation of it ends with `why`.
  void end_observations(std::error_code why) {
    auto* client = client_state_.get();
    if (!client) return;
    auto entries = std::move(client->observations);
    client->observations.clear();
    for (auto& e : entries)
      if (auto state = e.state.lock()) state->end(why);
  }
  // Enters an observation in the table: false when max_observations are active already.
  // Entries come from the session's allocator (bad_alloc when it refuses).
  bool add_observation(const std::shared_ptr<observation_sink>& state) {
    auto& observations = client_state_.ensure().observations;
    std::erase_if(observations, [](const observation_entry& e) {
      auto s = e.state.lock();
      return !s || !s->active();
    });
    if (observations.size() >= config_->max_observations) return false;
    reserve_more(observations, 1);
    observations.push_back(observation_entry{state->token(), state});
    return true;
  }

 protected:
  // A client session, or one given a configuration other than its context's, keeps a copy
  // (bad_alloc when the allocator refuses it).
  session_common(context_type& ctx, role r, const endpoint_type& peer, const session_config& config)
      : ctx_(ctx), role_(r), peer_(peer), config_(&config), last_activity_(clock::now()),
        client_state_(ctx.get_allocator()), timer_(ctx.get_allocator()) {
    if (r == role::client) client_state_.ensure();  // first: own_config_ is freed by the destructor only
    if (r == role::client || &config != &ctx.config().session) {
      own_config_ = make_own_config(ctx.get_allocator(), config);
      config_ = &own_config_->config;
    }
  }
  // The copy is freed with the allocator kept beside it: a server session may be destroyed
  // after its context (a handler posted before the context stopped still holds it).
  ~session_common() {
    if (!own_config_) return;
    block_allocator a(own_config_->allocator);
    std::allocator_traits<block_allocator>::destroy(a, own_config_);
    std::allocator_traits<block_allocator>::deallocate(a, own_config_, 1);
  }
  session_common(const session_common&) = delete;
  session_common& operator=(const session_common&) = delete;

  Derived& derived() noexcept { return static_cast<Derived&>(*this); }

  // Ends the session's life-cycle for observers (closed, or failed with a reason) and for its
  // endpoint, which forgets a server session at once.
  void emit_closed(std::error_code why) {
    const bool normal = why == error::session_closed;
    context_access::emit(ctx_, normal ? session_event::closed : session_event::failed, derived(),
                         normal ? std::error_code() : why);
    if (auto owner = std::exchange(owner_, {}).lock()) owner->session_closed(derived());
  }

  // Completions are posted, never run inline: a handler may start requests or release the
  // session freely. They run on the handler's associated executor (complete_later). The posted
  // function's memory is Asio's: the context's any_io_executor type-erases it with
  // std::allocator, which Asio recycles per thread; the handler's own memory follows its
  // associated allocator (see erase_handler).
  void deliver(response_handler h, std::error_code ec, owned_message m) {
    complete_later(ctx_.get_executor(), std::move(h), ec, std::move(m));
  }
  // The response is copied into a message from the session's allocator; when that refuses,
  // the request completes with error::no_memory (the session itself goes on).
  void complete(response_handler h, std::error_code ec, const message_view* response) {
    owned_message m{Allocator(ctx_.get_allocator())};
    if (response) {
      try {
        m.assign(*response);
      } catch (const std::bad_alloc&) {
        m = owned_message{Allocator(ctx_.get_allocator())};
        ec = error::no_memory;
      }
    }
    deliver(std::move(h), ec, std::move(m));
  }
  void fail_soon(response_handler h, std::error_code ec) {
    deliver(std::move(h), ec, owned_message{Allocator(ctx_.get_allocator())});
  }

  // One timer for every deadline of the session, armed for the earliest (never re-armed for a
  // later one while an earlier wait is pending); after each expiry or cancellation, re-armed.
  // The timer (an Asio steady_timer, 120 bytes) is made from the session's allocator when a
  // first deadline comes: a server session that only answers piggybacked, most of an
  // endpoint's idle peers, never has one (issue 16). It is freed when a wait ends with nothing
  // left to time and the session idle(): a session that goes on timing (a client holding its
  // handle, a session with observers, one sending CON answers faster than their ACK_TIMEOUT)
  // keeps it, so that no exchange or notification allocates it again. One timer per endpoint
  // serving every session's deadlines would cost less still, but needs a deadline queue of
  // sessions re-ordered on every retransmission and a home for client sessions, which have no
  // endpoint; Asio's timer queue already orders these per-session timers.
  // Throws bad_alloc when the allocator refuses the timer: a transport calls make_timer() first
  // wherever that refusal can still be undone.
  void arm_timer() {
    if (closed_) return;
    const std::optional<clock::time_point> next = derived().next_deadline();
    if (!next) return release_timer_if_idle();
    if (timer_armed_ && timer_.get()->deadline <= *next) return;
    auto& t = timer_.ensure(ctx_.get_executor());
    timer_armed_ = true;
    t.deadline = *next;
    t.timer.expires_at(*next);
    t.timer.async_wait([self = derived().shared_from_this(), when = *next](const boost::system::error_code& ec) {
      if (self->timer_.get()->deadline == when) self->timer_armed_ = false;
      if (!ec) self->on_timer();
      self->arm_timer();
      self->release_timer_if_idle();
    });
  }
  // An idle session with no wait pending gives its timer back. Called when a wait ends and
  // when the session becomes idle (its last exchange done, its last observer gone), whichever
  // comes last.
  void release_timer_if_idle() noexcept {
    if (!timer_armed_ && derived().idle()) timer_.reset();
  }
  // The timer arm_timer() needs, made now (bad_alloc when the allocator refuses it).
  void make_timer() { (void)timer_.ensure(ctx_.get_executor()); }
  // Stops the pending wait, if any; its completion frees the timer of an idle session.
  void cancel_timer() noexcept {
    if (auto* t = timer_.get()) t->timer.cancel();
  }

 public:
  // Type-erases a user's completion handler (erase_completion): its storage comes from the
  // handler's associated allocator, outstanding work is tracked on its associated executor.
  // When the allocator refuses, the handler is completed with error::no_memory as it is, and
  // nullopt is returned.
  template <class Handler>
  std::optional<response_handler> erase_handler(Handler& handler) {
    return erase_completion<response_signature>(handler, ctx_.get_executor(), owned_message{Allocator(ctx_.get_allocator())});
  }

  // ---- readiness: what asynchronous set-up waits for (session::async_create_client) ----
  using ready_handler = boost::asio::any_completion_handler<void(std::error_code)>;
  // True once the session can carry requests: at once over UDP without security, after the
  // (D)TLS handshake, over TCP after the peer's CSM; false again once closed.
  bool established() const noexcept { return readiness_ == readiness::ready && !closed_; }
  // Completes (posted) once the session is established, or with the reason it ended first.
  // One waiter at a time; a second replaces nothing and fails with error::queue_full. A server
  // session that ended before anything waited kept no reason: error::session_closed.
  void when_ready(ready_handler h) {
    const auto* wait = client_state_.get();
    if (readiness_ == readiness::ready) return complete_later(ctx_.get_executor(), std::move(h), std::error_code());
    if (readiness_ == readiness::failed)
      return complete_later(ctx_.get_executor(), std::move(h),
                            wait ? wait->error : make_error_code(error::session_closed));
    if (wait && wait->waiter)
      return complete_later(ctx_.get_executor(), std::move(h), make_error_code(error::queue_full));
    try {
      client_state_.ensure().waiter.emplace(std::move(h));
    } catch (const std::bad_alloc&) {
      complete_later(ctx_.get_executor(), std::move(h), make_error_code(error::no_memory));
    }
  }
  // The transports say when: {} on establishment, the close reason otherwise (first call wins).
  void signal_ready(std::error_code ec) {
    if (readiness_ != readiness::pending) return;
    readiness_ = ec ? readiness::failed : readiness::ready;
    auto* wait = client_state_.get();
    if (!wait) return;  // a server session: nothing waits
    wait->error = ec;
    if (wait->waiter) {
      auto h = std::move(*wait->waiter);
      wait->waiter.reset();
      complete_later(ctx_.get_executor(), std::move(h), ec);
    }
  }

 protected:
  context_type& ctx_;
  role role_;
  bool closed_ = false;
  enum class readiness : std::uint8_t { pending, ready, failed };
  readiness readiness_ = readiness::pending;
  bool timer_armed_ = false;  // a wait is pending (for timer_'s deadline)
  endpoint_type peer_;
  endpoint_type local_;
  const session_config* config_;  // the context's, or own_config_->config
  std::atomic<std::size_t> handles_{0};
  clock::time_point last_activity_;
  void* app_data_ = nullptr;
  const std::type_info* app_type_ = nullptr;
  std::weak_ptr<transports::session_owner<Derived>> owner_;

 private:
  struct observation_entry {
    coap::token token;
    std::weak_ptr<observation_sink> state;
  };
  // What a client uses: what its set-up waits with (when_ready) and the table of its
  // observations. Made with a client session, so that a failure's reason is kept for a wait
  // that comes after it, or by when_ready or add_observation. A server session, the most
  // numerous kind, pays a pointer for it (issue 16's idle-session size).
  struct client_block {
    explicit client_block(const Allocator& a) : observations(rebind<observation_entry>(a)) {}
    std::error_code error;  // why the session ended before it was established
    std::optional<ready_handler> waiter;
    std::vector<observation_entry, rebind<observation_entry>> observations;
    clock::time_point held_until{};  // RFC 8516 (hold_requests_until)
  };
  lazy<client_block, Allocator> client_state_;

  // A session's own configuration and the allocator that made it.
  struct own_config_block {
    own_config_block(const session_config& c, const Allocator& a) : config(c), allocator(a) {}
    session_config config;
    Allocator allocator;
  };
  using block_allocator = rebind<own_config_block>;
  static own_config_block* make_own_config(const Allocator& alloc, const session_config& config) {
    block_allocator a(alloc);
    own_config_block* p = std::allocator_traits<block_allocator>::allocate(a, 1);
    try {
      std::allocator_traits<block_allocator>::construct(a, p, config, alloc);
    } catch (...) {
      std::allocator_traits<block_allocator>::deallocate(a, p, 1);
      throw;
    }
    return p;
  }
  own_config_block* own_config_ = nullptr;

  struct deadline_timer {
    template <class Executor>
    deadline_timer(const Executor& ex, const Allocator&) : timer(ex) {}
    boost::asio::steady_timer timer;
    clock::time_point deadline{};  // of the pending wait, while timer_armed_
  };
  lazy<deadline_timer, Allocator> timer_;
};

}  // namespace coap::detail

// The tracked handler has its handler's associations (executor, allocator, cancellation slot).
template <template <class, class> class Associator, class Handler, class Executor, class DefaultCandidate>
struct boost::asio::associator<Associator, coap::detail::tracked_handler<Handler, Executor>, DefaultCandidate> {
  using type = typename Associator<Handler, DefaultCandidate>::type;
  static type get(const coap::detail::tracked_handler<Handler, Executor>& h) noexcept {
    return Associator<Handler, DefaultCandidate>::get(h.handler());
  }
  static auto get(const coap::detail::tracked_handler<Handler, Executor>& h, const DefaultCandidate& c) noexcept
      -> decltype(Associator<Handler, DefaultCandidate>::get(h.handler(), c)) {
    return Associator<Handler, DefaultCandidate>::get(h.handler(), c);
  }
};
