// The UDP transport policy (RFC 7252): coap::session<udp, Security, Allocator>.
#pragma once

#include <coap/context.hpp>
#include <coap/policies.hpp>
#include <coap/security/no_sec.hpp>

#include <boost/asio/ip/udp.hpp>

#include <memory>
#include <new>
#include <optional>
#include <string_view>
#include <system_error>

#include "udp_endpoint.hpp"
#include "udp_session.hpp"

namespace coap {
namespace transports {

// RFC 7252 over any datagram_socket (coap/policies.hpp): Asio's UDP socket for coap::udp; a
// user's own socket type (an in-memory one, a radio's) makes another transport with all of
// CoAP's message layer, Observe and block-wise (docs/policies.md, "Writing a transport").
template <datagram_socket Socket>
struct basic_udp {
  static constexpr std::string_view name = "UDP";
  static constexpr bool reliable = false;
  static constexpr std::uint16_t default_port = 5683;
  static constexpr std::uint16_t default_secure_port = 5684;
  using default_security = no_sec;
  using socket_type = Socket;
  using protocol_type = typename Socket::protocol_type;
  using endpoint_type = typename Socket::endpoint_type;

  template <class Security, class Allocator>
  using session_impl = udp_session_impl<Security, Allocator, Socket>;

  // no_sec, a channel security (psk, pki: DTLS 1.2, RFC 7252 section 9.1), or a message
  // security (oscore, RFC 8613).
  template <class Security>
  static constexpr bool supports = security_policy<Security> && (!Security::secure || channel_security<Security>);

  // A server endpoint (coap_new_endpoint), started.
  template <class Security, class Allocator>
  static std::shared_ptr<udp_endpoint<Security, Allocator, Socket>> make_endpoint(
      basic_context<Allocator>& ctx, const boost::asio::ip::address& address, std::uint16_t port,
      std::error_code& ec) {
    typename Security::state_ptr state{};
    if constexpr (Security::secure) {
      // DTLS: the context's set_psk / set_pki (coap_context_set_psk, coap_context_set_pki).
      state = Security::server_state(ctx, ec);
      if (ec) return nullptr;
    }
    try {
      auto ep = std::allocate_shared<udp_endpoint<Security, Allocator, Socket>>(ctx.get_allocator(), ctx,
                                                                                endpoint_type(address, port), state, ec);
      if (ec) return nullptr;
      ep->start();
      return ep;
    } catch (const std::bad_alloc&) {
      ec = error::no_memory;
      return nullptr;
    }
  }

  // A client session (coap_new_client_session): a socket bound to local_if (or any address of
  // the server's family and an ephemeral port), talking to `server`. Secure: the DTLS
  // handshake starts at once with `state` (coap_new_client_session_psk / _pki).
  template <class Security, class Allocator>
  static std::shared_ptr<udp_session_impl<Security, Allocator, Socket>> make_client(
      basic_context<Allocator>& ctx, const endpoint_type& server,
      const std::optional<endpoint_type>& local_if, const session_config& config,
      const typename Security::state_ptr& state, std::error_code& ec) {
    Socket socket(ctx.get_executor());
    const endpoint_type local = local_if ? *local_if : endpoint_type(server.protocol(), 0);
    boost::system::error_code bec;
    socket.open(local.protocol(), bec);
    if (!bec) socket.bind(local, bec);
    // Connected: the kernel filters other senders and fills in the real local address.
    if (!bec) socket.connect(server, bec);
    if (!bec) socket.non_blocking(true, bec);
    ec = bec;
    if (ec) return nullptr;
    try {
      auto s = std::allocate_shared<udp_session_impl<Security, Allocator, Socket>>(ctx.get_allocator(), ctx,
                                                                                   std::move(socket), server, config);
      s->start_receiving();
      if constexpr (Security::secure) s->start_handshake_as_client(state);  // "connected" follows the handshake
      else {
        if constexpr (message_security<Security>) s->start_message_security(state);
        s->signal_ready({});  // nothing to wait for
        coap::detail::context_access::emit(ctx, session_event::connected, *s);
      }
      return s;
    } catch (const std::bad_alloc&) {
      ec = error::no_memory;  // the socket closes with what owned it
      return nullptr;
    }
  }
};
using udp = basic_udp<boost::asio::ip::udp::socket>;
static_assert(transport_policy<udp>);

}  // namespace transports

using transports::basic_udp;
using transports::udp;

}  // namespace coap
