// libcoap's coap_context_t (coap_session(3), coap_context(3)): the state a CoAP stack shares.
// A context runs on an executor the user owns, holds the server endpoints (each making a
// session per new peer), counts sessions against a cap, serves the resource registry and
// reports session events. It never starts threads; its executor must not run handlers
// concurrently (an io_context run by one thread, or a strand).
#pragma once

#include <coap/context_fwd.hpp>
#include <coap/detail/message_pool.hpp>
#include <coap/detail/stream_scratch.hpp>
#include <coap/detail/os_random.hpp>
#include <coap/error.hpp>
#include <coap/resource.hpp>
#include <coap/session_config.hpp>
#include <coap/session_event.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/address.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <new>
#include <optional>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace coap {

namespace detail {
struct context_access;

// One address per type: the key of context-held state that the core does not know.
template <class T>
inline constexpr char type_key = 0;

// What the context needs of an endpoint, whatever its transport (set-up and eviction only:
// nothing on the message path goes through these virtual calls).
class endpoint_base {
 public:
  virtual ~endpoint_base() = default;
  virtual void close() = 0;
  virtual std::size_t session_count() const noexcept = 0;
  // The last activity of the oldest session nobody holds, if any.
  virtual std::optional<std::chrono::steady_clock::time_point> oldest_idle() const noexcept = 0;
  virtual bool evict_oldest_idle() = 0;
  virtual std::string_view description() const noexcept = 0;
  // RFC 7641: every session of the endpoint notifies its observers of the resource with
  // this id (one virtual call per endpoint and notify, none per observer); returns how many
  // notifications went out.
  virtual std::size_t notify_observers(std::uint64_t resource_id) = 0;
  // The resource is gone: its observers get 4.04 and are removed (section 4.2).
  virtual void resource_removed(std::uint64_t resource_id) = 0;
  // RFC 7252 section 8: joins a multicast group (UDP NoSec endpoints of the group's family).
  virtual std::error_code join_group(const boost::asio::ip::address&, std::string_view /*interface*/) {
    return std::make_error_code(std::errc::operation_not_supported);
  }
};
}  // namespace detail

template <class Allocator>
class basic_context {
 public:
  using executor_type = boost::asio::any_io_executor;
  using allocator_type = Allocator;
  using resource_registry = basic_resource_registry<Allocator>;
  using resource = typename resource_registry::resource;
  using event_handler =
      std::function<void(session_event, std::string_view description, std::error_code)>;
  using session_event_handler = std::function<void(session_event, const session_ref&, std::error_code)>;

  explicit basic_context(executor_type ex, context_config config = {}, const Allocator& alloc = {})
      : executor_(std::move(ex)), config_(config), allocator_(alloc),
        endpoints_(rebind<std::shared_ptr<detail::endpoint_base>>(alloc)), answers_(alloc), stream_scratch_(alloc) {}
  basic_context(const basic_context&) = delete;
  basic_context& operator=(const basic_context&) = delete;
  ~basic_context() { stop(); }

  executor_type get_executor() const noexcept { return executor_; }
  allocator_type get_allocator() const noexcept { return allocator_; }
  context_config& config() noexcept { return config_; }
  const context_config& config() const noexcept { return config_; }

  // ---- resources (coap_resource(3)) ----
  resource_registry& resources() noexcept { return resources_; }
  // Shortcut: ctx.add_resource("time").on(method::get, handler).
  resource& add_resource(std::string_view path) { return resources_.add(path); }

  // ---- observing (RFC 7641; coap_resource_notify_observers) ----
  // Sends every observer of the resource at `path` its current representation: the resource's
  // GET (or FETCH) handler runs once per observer, on the request that registered it, and the
  // answer goes out with the next sequence number (section 4.4), NON or CON (section 4.5).
  // Returns how many notifications went out. Call it from the context's executor.
  std::size_t notify_observers(std::string_view path) {
    auto* r = resources_.find(path);
    return r ? notify_observers(*r) : 0;
  }
  std::size_t notify_observers(resource& r) {
    r.observe_sequence = (r.observe_sequence + 1) & 0xFFFFFF;
    if (r.observer_count == 0) return 0;
    std::size_t sent = 0;
    for (auto& e : endpoints_) sent += e->notify_observers(r.id);
    return sent;
  }
  // Removes a resource; its observers get 4.04 Not Found and are forgotten (section 4.2).
  bool remove_resource(std::string_view path) {
    auto* r = resources_.find(path);
    if (!r) return false;
    const auto id = r->id;
    const bool observed = r->observer_count > 0;
    resources_.remove(path);
    if (observed)
      for (auto& e : endpoints_) e->resource_removed(id);
    return true;
  }
  // Observers registered now, over all resources and sessions.
  std::size_t observer_count() const noexcept { return observers_; }

  // ---- server endpoints (coap_new_endpoint) ----
  // Listens on address:port (port 0 picks one) with the given transport and security; every
  // new peer gets a session made by the library. Include the transport's header
  // (<coap/transports/udp.hpp>) to use it. Returns the bound port in `bound_port`.
  // The endpoint, its session table and its sessions allocate from the context's allocator
  // (error::no_memory when it refuses).
  template <class Transport, class Security = typename Transport::default_security>
  std::error_code add_endpoint(const boost::asio::ip::address& address, std::uint16_t port,
                               std::uint16_t* bound_port = nullptr) {
    std::error_code ec;
    try {
      endpoints_.reserve(endpoints_.size() + 1);
    } catch (const std::bad_alloc&) {
      return error::no_memory;
    }
    auto ep = Transport::template make_endpoint<Security>(*this, address, port, ec);
    if (ec) return ec;
    if (bound_port) *bound_port = ep->local_port();
    endpoints_.push_back(std::move(ep));
    return {};
  }
  std::size_t endpoint_count() const noexcept { return endpoints_.size(); }

  // ---- group communication (RFC 7252 section 8; coap_join_mcast_group_intf) ----
  // Every UDP NoSec endpoint of the group's address family joins `group` (224.0.1.187,
  // ff02::fd, ff05::fd or any other) on `interface` ("eth0"; empty: the system's choice).
  // Requests arriving at the group are answered from the endpoint's unicast address after a
  // random leisure, errors and empty answers suppressed: docs/multicast.md. Errors:
  // invalid_argument (not a multicast address), operation_not_supported (no such endpoint),
  // no_such_device (unknown interface), or the socket's (address_in_use: joined already).
  std::error_code join_group(const boost::asio::ip::address& group, std::string_view interface = {}) {
    if (!group.is_multicast()) return std::make_error_code(std::errc::invalid_argument);
    std::error_code result = std::make_error_code(std::errc::operation_not_supported);
    bool joined = false;
    for (auto& e : endpoints_) {
      const auto ec = e->join_group(group, interface);
      if (!ec) joined = true;
      else if (ec != std::errc::operation_not_supported) result = ec;
    }
    // An error is reported even when another endpoint joined (it stays joined).
    return joined && result == std::errc::operation_not_supported ? std::error_code() : result;
  }

  // ---- sessions ----
  std::size_t session_count() const noexcept {
    std::size_t n = 0;
    for (const auto& e : endpoints_) n += e->session_count();
    return n;
  }
  // Closes every endpoint and its sessions. Client sessions close when their handles go.
  void stop() {
    for (auto& e : endpoints_) e->close();
    endpoints_.clear();
  }

  // ---- events (coap_register_event_handler) ----
  // Called on the context's executor for every session event, with the session's description.
  void set_event_handler(event_handler h) { events_ = std::move(h); }
  // The same events with the session itself (as libcoap's handler gets its coap_session_t):
  // `ref.as<coap::session<coap::udp>>()` is a handle on it. Both handlers may be set (the one
  // above is called first); without this one, an event costs nothing more.
  void set_session_event_handler(session_event_handler h) { session_events_ = std::move(h); }

  // Tokens, initial message IDs and retransmission jitter: the operating system's CSPRNG
  // (RFC 7252 section 5.3.1), buffered; no allocation, rarely a system call.
  std::uint64_t random() noexcept { return random_.next(); }

 private:
  // What the library's own parts (endpoints, sessions, security policies) use of a context:
  // reached through detail::context_access, not by applications.
  friend struct detail::context_access;

  template <class Session>
  void emit(session_event e, Session& s, std::error_code ec = {}) const {
    if (events_) events_(e, s.description(), ec);
    if (session_events_) session_events_(e, session_ref(s), ec);
  }

  // ---- used by endpoints and sessions ----
  // Makes room for one more server session: true when below the cap, or when the oldest
  // idle session (of any endpoint) could be evicted.
  bool make_room_for_session() {
    if (session_count() < config_.max_sessions) return true;
    detail::endpoint_base* oldest = nullptr;
    std::chrono::steady_clock::time_point when{};
    for (auto& e : endpoints_) {
      if (auto t = e->oldest_idle(); t && (!oldest || *t < when)) {
        oldest = e.get();
        when = *t;
      }
    }
    return oldest && oldest->evict_oldest_idle();
  }
  // ---- security set-up (coap_context_set_psk, coap_context_set_pki, ..._pki_root_cas) ----
  // Kept by type, so that the context itself knows no TLS library: the security policies
  // (security/psk.hpp, security/pki.hpp) keep their server defaults and root CAs here. Set-up
  // state, on the global heap like the resources.
  template <class T>
  T* find_security_state() const noexcept {
    for (const auto& [key, state] : security_)
      if (key == &detail::type_key<T>) return static_cast<T*>(state.get());
    return nullptr;
  }
  template <class T>
  T& security_state() {
    if (auto* found = find_security_state<T>()) return *found;
    auto state = std::make_shared<T>();
    security_.emplace_back(&detail::type_key<T>, state);
    return *state;
  }

  // ---- used by server sessions: the observer caps (context_config) ----
  bool observer_admit(resource& r) noexcept {
    if (observers_ >= config_.max_observers || r.observer_count >= config_.max_observers_per_resource) return false;
    ++observers_;
    ++r.observer_count;
    return true;
  }
  void observer_left(std::uint64_t resource_id) noexcept {
    if (observers_) --observers_;
    if (auto* r = resources_.find_by_id(resource_id); r && r->observer_count && --r->observer_count == 0 && r->on_unobserved)
      r->on_unobserved();
  }

  template <class T>
  using rebind = typename std::allocator_traits<Allocator>::template rebind_alloc<T>;

  executor_type executor_;
  context_config config_;
  Allocator allocator_;
  // Set-up state on the global heap, not in the Allocator: the resources (see resource.hpp)
  // and the event handler (std::function has no allocator support since C++17). Neither
  // allocates when called.
  resource_registry resources_;
  std::vector<std::shared_ptr<detail::endpoint_base>, rebind<std::shared_ptr<detail::endpoint_base>>> endpoints_;
  event_handler events_;
  session_event_handler session_events_;
  std::vector<std::pair<const void*, std::shared_ptr<void>>> security_;
  detail::os_random random_;
  std::size_t observers_ = 0;
  // The messages server sessions build a request's answer in (detail/message_pool.hpp).
  detail::message_pool<Allocator> answers_;
  // The buffers plain TCP connections read into and frame their answers in
  // (detail/stream_scratch.hpp).
  detail::stream_scratch<Allocator> stream_scratch_;
};

namespace detail {
// The door through which endpoints, sessions and security policies reach a context's
// internals (Beast's rate_policy_access): one friend, so that applications see none of them.
struct context_access {
  template <class Context, class Session>
  static void emit(const Context& c, session_event e, Session& s, std::error_code ec = {}) {
    c.emit(e, s, ec);
  }
  template <class Context>
  static bool make_room_for_session(Context& c) {
    return c.make_room_for_session();
  }
  template <class T, class Context>
  static T* find_security_state(const Context& c) noexcept {
    return c.template find_security_state<T>();
  }
  template <class T, class Context>
  static T& security_state(Context& c) {
    return c.template security_state<T>();
  }
  template <class Context, class Resource>
  static bool observer_admit(Context& c, Resource& r) noexcept {
    return c.observer_admit(r);
  }
  template <class Context>
  static void observer_left(Context& c, std::uint64_t resource_id) noexcept {
    c.observer_left(resource_id);
  }
  template <class Context>
  static auto& answer_messages(Context& c) noexcept {
    return c.answers_;
  }
  template <class Context>
  static auto& stream_scratch(Context& c) noexcept {
    return c.stream_scratch_;
  }
};
}  // namespace detail

}  // namespace coap
