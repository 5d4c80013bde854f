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
  // Section 5.2.2 (UDP, server side): a handler that defers its answer to a CON request gets
  // its empty ACK only after this long, so that an answer ready sooner goes piggybacked in the
  // ACK (one datagram instead of three: a proxy's answer, usually). 0: the ACK goes at once.
  std::chrono::milliseconds deferred_ack_delay{0};
  // Section 5.3.1: tokens are random, 8 bytes unless configured shorter (0 to 8).
  std::size_t token_length = 8;
  // Requests waiting for an NSTART slot; one more is refused with error::queue_full.
  std::size_t max_queued_requests = 1024;
  // Section 4.5: how many message IDs a client session remembers for deduplication, each for
  // at most EXCHANGE_LIFETIME (section 4.8.2, 247 s); server sessions share their endpoint's
  // store (context_config::dedup_capacity). Under extreme rates the count bounds the window.
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

  // ---- Block-wise transfer (RFC 7959, RFC 8323 section 6) ----
  // The largest body this session sends or accepts block-wise: a larger upload is answered
  // 4.13 Request Entity Too Large with Size1 (server), a larger download fails with
  // error::message_too_large (client).
  std::size_t max_body_size = std::size_t{8} << 20;
  // The block size used when a body needs blocks, as SZX (0: 16 bytes .. 6: 1024 bytes;
  // libcoap's -b); the session's room (max_pdu_size) may lower it. 7 asks for BERT over TCP
  // (RFC 8323 section 6) when the peer's CSM offers Block-Wise-Transfer.
  std::uint8_t block_szx = 6;
  // A partial upload (Block1) or download (Block2) with no block for this long is dropped
  // (RFC 7959 section 2.4 leaves the lifetime to the server; libcoap uses EXCHANGE_LIFETIME).
  std::chrono::milliseconds block_transfer_timeout{247000};
  // Concurrent partial uploads a server session keeps (one more gets 5.03 Service Unavailable).
  std::size_t max_partial_uploads = 4;
  // RFC 8613 section 4.1.3.4.2 (OSCORE): MAX_UNFRAGMENTED_SIZE, the largest protected message
  // a session reassembles from Outer Block options (an intermediary's fragments of it); a
  // larger request is dropped and answered 4.13 with Size1, a larger response fails its
  // request. Read from the context's configuration (context_config::session).
  std::size_t oscore_max_unfragmented_size = 16384;

  // ---- Observe (RFC 7641), client side ----
  // Observations one client session holds at once (one more fails with error::queue_full).
  std::size_t max_observations = 64;
  // Notifications an observation keeps until async_next takes them; when full the oldest goes
  // (an observer wants the latest state, RFC 7641 section 3.3.2).
  std::size_t observation_buffer = 8;

  // ---- Server protections (RFC 8516, RFC 9175; detail/rate_limit.hpp, detail/echo.hpp) ----
  // Requests one peer (server session) may make per second, in bursts of up to
  // max_request_burst; beyond, 4.29 Too Many Requests with Max-Age, the handler not run
  // (RFC 8516). 0: unlimited. 10,000/s is far above what a constrained client sends and
  // bounds what one peer takes of a server (the benchmarks' load generators, one peer at full
  // speed, set 0).
  double max_request_rate = 10000;
  std::size_t max_request_burst = 10000;
  // Deferred (separate) answers one server session may owe at once; one more request is
  // answered 4.29 with Max-Age 1 (0: unlimited).
  std::size_t max_pending_responses = 256;
  // RFC 9175 section 2.4: over UDP without security, an answer larger than this many times
  // its request, to a peer whose address is not verified, is replaced by 4.01 Unauthorized
  // with an Echo option; the peer's repetition with the Echo verifies its address (for the
  // session's life). 0: no limit. 3 is QUIC's anti-amplification factor (RFC 9000 section 8).
  unsigned amplification_factor = 3;
  // RFC 9175 section 2.3: how long an Echo value this server issued proves a request fresh.
  std::chrono::milliseconds echo_freshness{10000};

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
  // ---- Observe (RFC 7641), server side ----
  // Observers of all resources together, and of one resource; past either a GET with
  // Observe=0 is answered as a plain GET (not registered, no Observe option: section 4.1).
  std::size_t max_observers = 65536;
  std::size_t max_observers_per_resource = 16384;
  // Observers one server session (one peer) may register (10,000 registrations from one peer
  // get no more than this many).
  std::size_t max_observers_per_session = 256;
  // Section 4.5: notifications are NON, but every Nth is CON, and one at least this often,
  // so that an observer that went away is noticed.
  unsigned observe_con_every = 5;
  std::chrono::seconds observe_con_interval{24 * 3600};
  // ---- Group communication (RFC 7252 section 8, docs/multicast.md) ----
  // Section 8.2: an answer to a request that arrived at a joined group waits a random time
  // up to this leisure (DEFAULT_LEISURE, 5 s) and goes from the endpoint's unicast address.
  std::chrono::milliseconds multicast_leisure{5000};
  // Answers to group requests waiting out their leisure, per endpoint; one more is dropped.
  std::size_t max_pending_group_answers = 64;
  // SO_REUSEADDR on UDP endpoints from the start (libcoap's endpoints always have it): other
  // servers on this host may bind the same port, as group members on one host must. Off, a
  // port in use is an error; joining a group turns it on for that endpoint anyway.
  bool udp_reuse_address = false;
  // SO_REUSEPORT on UDP, DTLS, TCP and TLS endpoints (Linux 3.9+): several contexts, one per
  // thread, may bind the same address and port, and the kernel hashes each datagram's or
  // connection's 4-tuple to one of their sockets, so that a peer always reaches the same
  // context (coap/shards.hpp, docs/design.md "Multi-core"). Off: a port in use is an error.
  bool reuse_port = false;
  // Section 4.5: the message IDs a UDP or DTLS endpoint remembers for all its sessions
  // together, in two rings made as used (detail/dedup_cache.hpp), so that the store follows
  // the endpoint's request rate x EXCHANGE_LIFETIME and not its number of peers:
  // - requests whose duplicates may not be processed again (POST, PATCH, unknown methods): kept
  //   for their lifetime; when the ring is full of live ones, a new such request is answered
  //   5.03 with Max-Age, unprocessed. 16,384 / 247 s: 66 such requests/s sustained;
  // - the others (GET, PUT, DELETE, FETCH, iPATCH) and received separate responses: when full,
  //   the oldest is forgotten, and a late duplicate of it is processed again (section 4.5
  //   allows it for idempotent requests).
  std::size_t dedup_capacity = 16384;
  std::size_t dedup_droppable_capacity = 4096;
  // Applied to every server session the context makes.
  session_config session{};
};

}  // namespace coap
