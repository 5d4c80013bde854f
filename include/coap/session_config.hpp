// RFC 7252 section 4.8 (transmission parameters) and 4.6 (message size): what each session
// may be configured with, with the RFC's defaults and libcoap's where the RFC leaves a choice.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace coap {

struct session_config {
  // Section 4.8: ACK_TIMEOUT, ACK_RANDOM_FACTOR, MAX_RETRANSMIT, NSTART.
  std::chrono::milliseconds ack_timeout{2000};
  double ack_random_factor = 1.5;
  unsigned max_retransmit = 4;
  unsigned nstart = 1;
  // How long a client waits for a response that was not piggybacked (a NON request, or a CON
  // answered by an empty ACK). Default: MAX_TRANSMIT_WAIT (section 4.8.2), 93 s.
  std::chrono::milliseconds response_timeout{93000};
  // Section 5.3.1: tokens are random, 8 bytes unless configured shorter (0 to 8).
  std::size_t token_length = 8;
  // Requests waiting for an NSTART slot; one more is refused with error::queue_full.
  std::size_t max_queued_requests = 1024;
  // Section 4.5: how many message IDs a session remembers for deduplication, each for at most
  // EXCHANGE_LIFETIME (section 4.8.2, 247 s). Under extreme rates the count bounds the window.
  std::size_t dedup_capacity = 512;
  std::chrono::seconds exchange_lifetime{247};
  // Section 4.6: libcoap's default MTU for UDP.
  std::size_t mtu = 1152;

  // ---- Reliable transports (RFC 8323) ----
  // The largest message we accept, announced in our CSM as Max-Message-Size (section 5.3.1).
  // The receive buffer never grows beyond it; a larger frame is answered with Abort.
  std::size_t max_message_size = 65536 + 8;
  // How long requests wait for the peer's CSM before failing with error::csm_timeout.
  std::chrono::milliseconds csm_timeout{10000};
  // Connection set-up limit for clients.
  std::chrono::milliseconds connect_timeout{10000};
  // A peer that starts a frame and stops sending is disconnected after this long.
  std::chrono::milliseconds partial_frame_timeout{10000};
  // Section 5.4: a Ping after this long without traffic (0: never).
  std::chrono::milliseconds keepalive_interval{0};

  // ---- Secure transports (DTLS, TLS) ----
  // A (D)TLS handshake that has not completed after this long fails with
  // error::handshake_timeout. DTLS retransmits its flights meanwhile (RFC 6347 section 4.2.4;
  // the timers are the security policy's, tls_policy::dtls_initial).
  std::chrono::milliseconds handshake_timeout{30000};

  // Section 4.8.2: MAX_TRANSMIT_SPAN and EXCHANGE_LIFETIME follow from the above.
  std::chrono::milliseconds max_transmit_span() const noexcept {
    return std::chrono::milliseconds(static_cast<long long>(
        static_cast<double>(ack_timeout.count()) *
        static_cast<double>((1ull << max_retransmit) - 1) * ack_random_factor));
  }
};

// The context's limits on what peers can grow on a server.
struct context_config {
  // A server session that no handle references is freed after this long without traffic
  // (libcoap: 300 s).
  std::chrono::seconds idle_session_timeout{300};
  // Sessions of all endpoints together. At the cap, the oldest idle session is evicted; with
  // none idle, new peers are refused (a CON gets 5.03 Service Unavailable).
  std::size_t max_sessions = 4096;
  // Server sessions whose (D)TLS handshake is in progress, per endpoint (libcoap: 100). A DTLS
  // endpoint answers ClientHellos statelessly (cookies) and makes a session only for a valid
  // cookie; beyond this many, further hellos are dropped (DTLS) or connections closed (TLS).
  std::size_t max_handshakes = 100;
  // Applied to every server session the context makes.
  session_config session{};
};

}  // namespace coap
