// The TCP transport policy (RFC 8323): coap::session<tcp, Security, Allocator>.
#pragma once

#include <coap/context.hpp>
#include <coap/policies.hpp>
#include <coap/security/no_sec.hpp>

#include <boost/asio/ip/tcp.hpp>

#include <memory>
#include <new>
#include <optional>
#include <string_view>
#include <system_error>

#include "tcp_endpoint.hpp"
#include "tcp_session.hpp"

namespace coap {
namespace transports {

struct tcp {
  static constexpr std::string_view name = "TCP";
  static constexpr bool reliable = true;
  static constexpr std::uint16_t default_port = 5683;
  static constexpr std::uint16_t default_secure_port = 5684;
  using default_security = no_sec;
  using protocol_type = boost::asio::ip::tcp;
  using endpoint_type = protocol_type::endpoint;

  template <class Security, class Allocator>
  using session_impl = tcp_session_impl<Security, Allocator>;

  // no_sec, or a channel security (psk, pki: TLS 1.2, RFC 8323 section 9).
  template <class Security>
  static constexpr bool supports = security_policy<Security> && (!Security::secure || channel_security<Security>);

  // A listening endpoint (coap_new_endpoint with COAP_PROTO_TCP), started.
  template <class Security, class Allocator>
  static std::shared_ptr<tcp_endpoint<Security, Allocator>> make_endpoint(
      basic_context<Allocator>& ctx, const boost::asio::ip::address& address, std::uint16_t port,
      std::error_code& ec) {
    typename Security::state_ptr state{};
    if constexpr (Security::secure) {
      state = Security::server_state(ctx, ec);  // set_psk / set_pki
      if (ec) return nullptr;
    }
    try {
      auto ep = std::allocate_shared<tcp_endpoint<Security, Allocator>>(ctx.get_allocator(), ctx,
                                                                        endpoint_type(address, port), state, ec);
      if (ec) return nullptr;
      ep->start();
      return ep;
    } catch (const std::bad_alloc&) {
      ec = error::no_memory;
      return nullptr;
    }
  }

  // A client session: the connection is made in the background; requests wait for it and for
  // the server's CSM (session_config::connect_timeout, csm_timeout).
  template <class Security, class Allocator>
  static std::shared_ptr<tcp_session_impl<Security, Allocator>> make_client(
      basic_context<Allocator>& ctx, const endpoint_type& server,
      const std::optional<endpoint_type>& local_if, const session_config& config,
      const typename Security::state_ptr& state, std::error_code& ec) {
    try {
      auto s = std::allocate_shared<tcp_session_impl<Security, Allocator>>(ctx.get_allocator(), ctx, server, config);
      s->start_client(local_if, state, ec);
      if (ec) return nullptr;
      return s;
    } catch (const std::bad_alloc&) {
      ec = error::no_memory;
      return nullptr;
    }
  }
};
static_assert(transport_policy<tcp>);

}  // namespace transports

using transports::tcp;

}  // namespace coap
