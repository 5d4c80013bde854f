// Session life-cycle events, after libcoap's coap_event_t (COAP_EVENT_SERVER_SESSION_NEW ...).
#pragma once

#include <string_view>
#include <system_error>

namespace coap {

enum class session_event {
  connected,       // a client session is ready to send (UDP: at once; TCP/TLS: after set-up)
  closed,          // a session ended normally (released, idle timeout, closed by peer)
  failed,          // a session ended with an error (see the error_code)
  session_created, // the library made a server session for a new peer
  session_freed,   // a server session left the idle pool and was freed
};

constexpr std::string_view to_string(session_event e) noexcept {
  switch (e) {
    case session_event::connected: return "connected";
    case session_event::closed: return "closed";
    case session_event::failed: return "failed";
    case session_event::session_created: return "session-created";
    case session_event::session_freed: return "session-freed";
  }
  return "?";
}

}  // namespace coap
