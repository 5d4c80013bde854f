// Session life-cycle events, after libcoap's coap_event_t (COAP_EVENT_SERVER_SESSION_NEW ...).
#pragma once

#include <coap/detail/endpoint_text.hpp>
#include <coap/error.hpp>
#include <coap/session_description.hpp>

#include <memory>
#include <string>
#include <string_view>
#include <system_error>

namespace coap {

enum class session_event {
  connected,       // a client session is ready to send (UDP: at once; TCP/TLS: after set-up)
  closed,          // a session ended normally (released, idle timeout, closed by peer)
  failed,          // a session ended with an error (see the error_code)
  session_created, // the library made a server session for a new peer
  session_freed,   // a server session left the idle pool and was freed
  security_refused,// a received message failed message-layer verification (OSCORE: RFC 8613
                   // sections 8.2 and 8.4; libcoap's COAP_EVENT_OSCORE_*): the error_code says
                   // why; the session goes on
};

constexpr std::string_view to_string(session_event e) noexcept {
  switch (e) {
    case session_event::connected: return "connected";
    case session_event::closed: return "closed";
    case session_event::failed: return "failed";
    case session_event::session_created: return "session-created";
    case session_event::session_freed: return "session-freed";
    case session_event::security_refused: return "security-refused";
  }
  return "?";
}

// The session an event is about, whatever its transport and security: what the handler of
// basic_context::set_session_event_handler gets. It holds the session weakly (it neither keeps
// it alive nor counts as a handle); every member is safe once the session is gone (empty text,
// false, nothing done). Use it on the context's executor, where events are delivered. as<Session>() gives a typed, counting handle
// (coap::session<coap::udp>, ...) when the session is of that type, an empty one otherwise.
class session_ref {
 public:
  session_ref() noexcept = default;
  template <class Impl>
  explicit session_ref(Impl& s) noexcept : weak_(s.weak_from_this()), impl_(&s), ops_(&operations_of<Impl>) {}

  // True while the session exists (it may be closed already: see is_open).
  [[nodiscard]] bool alive() const noexcept { return ops_ && !weak_.expired(); }
  explicit operator bool() const noexcept { return alive(); }
  // coap_session_str: "local <-> remote PROTOCOL".
  [[nodiscard]] session_description description() const noexcept {
    return alive() ? ops_->description(impl_) : session_description();
  }
  [[nodiscard]] bool is_client() const noexcept { return alive() && ops_->is_client(impl_); }
  [[nodiscard]] bool is_open() const noexcept { return alive() && ops_->is_open(impl_); }
  // The peer's address as text ("192.0.2.1:5683", "[::1]:5684").
  [[nodiscard]] std::string remote_address() const { return alive() ? ops_->remote_address(impl_) : std::string(); }
  // Ends the session now, as session::close does.
  void close() const {
    if (auto keep = weak_.lock(); keep && ops_) ops_->close(impl_);
  }
  // A handle of type Session (coap::session<Transport, Security, Allocator>) on the session,
  // counting as a reference like any copy; empty when the type differs or the session is gone.
  template <class Session>
  [[nodiscard]] Session as() const {
    using impl_type = typename Session::impl_type;
    if (ops_ != &operations_of<impl_type>) return Session();
    auto p = weak_.lock();
    return p ? Session(std::static_pointer_cast<impl_type>(std::move(p))) : Session();
  }

 private:
  struct operations {
    session_description (*description)(const void*) noexcept;
    bool (*is_client)(const void*) noexcept;
    bool (*is_open)(const void*) noexcept;
    std::string (*remote_address)(const void*);
    void (*close)(void*);
  };
  // One table per session type: its address also tells the type (as<Session>).
  template <class Impl>
  static constexpr operations operations_of{
      [](const void* s) noexcept { return static_cast<const Impl*>(s)->description(); },
      [](const void* s) noexcept { return static_cast<const Impl*>(s)->is_client(); },
      [](const void* s) noexcept { return static_cast<const Impl*>(s)->is_open(); },
      [](const void* s) { return detail::endpoint_string(static_cast<const Impl*>(s)->remote_endpoint()); },
      [](void* s) { static_cast<Impl*>(s)->close(make_error_code(error::session_closed)); },
  };

  std::weak_ptr<void> weak_;
  void* impl_ = nullptr;
  const operations* ops_ = nullptr;
};

}  // namespace coap
