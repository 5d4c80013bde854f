// The policy concepts of coap::session<Transport, Security, Allocator>, in Beast's manner:
// every member the library uses of a policy is named here and checked, and every shipped
// policy is static_assert-ed against its concept. docs/policies.md says what each member must
// do ("Writing a transport", "Writing a security policy").
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/system/error_code.hpp>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

namespace coap {

// ---- Transport ----
// A transport names itself, says whether it is reliable (RFC 8323) or not (RFC 7252), gives
// its default ports and default security, and its address types. What it builds for a
// Security and an Allocator (session_impl, make_client, make_endpoint) is checked by
// transport_supports below, once those are known.
template <class T>
concept transport_policy = requires {
  { T::name } -> std::convertible_to<std::string_view>;
  { T::reliable } -> std::convertible_to<bool>;
  { T::default_port } -> std::convertible_to<std::uint16_t>;
  { T::default_secure_port } -> std::convertible_to<std::uint16_t>;
  typename T::default_security;
  typename T::protocol_type;  // for the resolver of create_client(ctx, "coap://host/")
  typename T::endpoint_type;  // the peer's address
};

// ---- Datagram socket: what basic_udp<Socket> (RFC 7252) uses of its socket ----
// Asio's ip::udp::socket is one; an in-memory one (tests/support/memory_datagram_socket.hpp)
// or a radio's can be another. Non-blocking sends and receives; one asynchronous receive at a
// time; the endpoint type is hashable (sessions are found by peer address).
template <class S>
concept datagram_socket =
    std::constructible_from<S, boost::asio::any_io_executor> && std::movable<S> &&
    std::equality_comparable<typename S::endpoint_type> &&
    requires(S s, typename S::endpoint_type e, boost::system::error_code ec, boost::asio::mutable_buffer in,
             boost::asio::const_buffer out, std::function<void(boost::system::error_code, std::size_t)> done) {
      typename S::protocol_type;
      { std::hash<typename S::endpoint_type>{}(e) } -> std::convertible_to<std::size_t>;
      s.open(e.protocol(), ec);
      s.bind(e, ec);
      s.connect(e, ec);           // a client session's socket talks to its server only
      s.non_blocking(true, ec);
      { s.local_endpoint(ec) } -> std::convertible_to<typename S::endpoint_type>;
      { s.send_to(out, e, 0, ec) } -> std::convertible_to<std::size_t>;      // never blocks
      { s.receive_from(in, e, 0, ec) } -> std::convertible_to<std::size_t>;  // would_block when empty
      s.async_receive_from(in, e, std::move(done));
      s.close(ec);
    };

// ---- Security ----
// Every security policy says whether it secures the session, names itself, and gives the
// state its sessions share (state_ptr) and the per-session layer between the transport and
// the messages (channel<Session>). NoSec's channel is an empty type: a session<udp, no_sec>
// pays nothing for it ([[no_unique_address]]).
template <class S>
concept security_policy = requires {
  { S::secure } -> std::convertible_to<bool>;
  { S::name } -> std::convertible_to<std::string_view>;
  // What a session's description (coap_session_str) calls its protocol over a datagram and
  // over a stream transport: "UDP"/"TCP" for NoSec, "DTLS"/"TLS" for a channel.
  { S::datagram_protocol } -> std::convertible_to<std::string_view>;
  { S::stream_protocol } -> std::convertible_to<std::string_view>;
  typename S::state_ptr;
};

// A channel security (DTLS/TLS: psk, pki) adds a handshake and a record layer. The session
// calls its channel (start_client, start_server, received, send, close, handshaking,
// established, record_overhead, authenticated_peer) and the channel calls the session back
// (tls_wire, tls_plaintext, tls_established, tls_failed, tls_peer_identity): see
// docs/policies.md. Its static members make the shared state of a client or server, and
// admit new datagram peers statelessly (DTLS cookies, RFC 6347 section 4.2.1).
template <class S>
concept channel_security = security_policy<S> && S::secure && requires {
  typename S::client_config;
  typename S::server_config;
};

// A message-layer security (OSCORE, RFC 8613) protects each CoAP message rather than the
// bytes: no handshake and no record layer (`secure` is false: coap:// and coap+tcp://). Its
// channel<Session> is what the session calls around its codec: outgoing(message, encode),
// incoming_request(view, out), incoming_response(view, out), reply_for(error, reply), and
// start_client(state) on a client session (docs/policies.md, "Message-layer security").
template <class S>
concept message_security = security_policy<S> && !S::secure && requires {
  { S::message_secure } -> std::convertible_to<bool>;
  typename S::client_config;
} && S::message_secure;

// A security policy with a client set-up of its own: the create_client overloads that take one.
template <class S>
concept configured_security = channel_security<S> || message_security<S>;

// A transport says which security policies it can carry.
template <class T, class S>
concept transport_supports = transport_policy<T> && security_policy<S> && T::template supports<S>;

// The default security of a transport, or void for what is not one: session<int> then fails
// on its constraints rather than inside a default template argument.
namespace detail {
template <class T>
struct default_security {
  using type = void;
};
template <class T>
  requires requires { typename T::default_security; }
struct default_security<T> {
  using type = typename T::default_security;
};
}  // namespace detail
template <class T>
using default_security_t = typename detail::default_security<T>::type;

// A security policy's client set-up (psk_client_config, pki_config), or an empty type for a
// policy without one (no_sec), so that signatures naming it stay well-formed.
namespace detail {
struct no_client_config {};
template <class S>
struct client_config {
  using type = no_client_config;
};
template <class S>
  requires requires { typename S::client_config; }
struct client_config<S> {
  using type = typename S::client_config;
};
}  // namespace detail
template <class S>
using client_config_t = typename detail::client_config<S>::type;

}  // namespace coap
