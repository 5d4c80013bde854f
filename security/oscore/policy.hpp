// RFC 8613 (OSCORE) as the security policy `coap::oscore` of coap::session<udp|tcp, oscore>:
// message-layer protection (policies.hpp, message_security) over plain coap:// and coap+tcp://,
// no record layer. libcoap 4.3's coap_new_client_session_oscore (a client session with its
// security context) and coap_context_oscore_server / coap_new_oscore_recipient (the contexts
// a server verifies requests with) have their counterparts here: create_client with an
// oscore_client_config, and set_oscore.
#pragma once

#include <coap/context.hpp>
#include <coap/error.hpp>
#include <coap/policies.hpp>
#include <coap/security/oscore/context.hpp>
#include <coap/security/oscore/session_layer.hpp>
#include <coap/security/oscore/store.hpp>

#include <memory>
#include <string_view>
#include <system_error>

namespace coap::security {

// coap_new_client_session_oscore: the security context the client protects its requests with
// (section 3.2's input parameters). Sessions made with equal parameters share one context.
struct oscore_client_config {
  oscore_core::context_params params;
};

// The context's store (set_oscore, and every client session's context).
struct oscore_context_state {
  std::shared_ptr<oscore_core::store> store = std::make_shared<oscore_core::store>();
};

namespace detail {
template <class Context>
std::shared_ptr<oscore_core::store> oscore_server_store(Context& ctx) {
  auto* s = coap::detail::context_access::find_security_state<oscore_context_state>(ctx);
  return s ? s->store : nullptr;
}
}  // namespace detail

struct oscore {
  // No (D)TLS channel: sessions use coap:// and coap+tcp://, the transports' plain ports.
  static constexpr bool secure = false;
  static constexpr bool message_secure = true;
  static constexpr std::string_view name = "OSCORE";
  static constexpr std::string_view datagram_protocol = "UDP";
  static constexpr std::string_view stream_protocol = "TCP";
  using state_ptr = std::shared_ptr<const oscore_session_state>;
  using client_config = oscore_client_config;
  // The per-session part (security/oscore/session_layer.hpp): also what the session's
  // security_channel() returns, so that request::authenticated_peer() names the OSCORE sender.
  template <class Session>
  using channel = oscore_layer<Session>;

  // The core's types under the policy's name: coap::oscore::context_params, ...
  using context_params = oscore_core::context_params;
  using aead_algorithm = oscore_core::aead_algorithm;
  using sequence_number_persistence = oscore_core::sequence_number_persistence;

  // A client's state: its context in the context's store (found or made). Without a
  // configuration: error::security_not_configured.
  template <class Allocator>
  static state_ptr client_state(basic_context<Allocator>& ctx, const client_config* config, std::error_code& ec,
                                std::string_view /*host*/ = {}) {
    if (!config) {
      ec = error::security_not_configured;
      return nullptr;
    }
    auto store = coap::detail::context_access::security_state<oscore_context_state>(ctx).store;
    auto* entry = store->find_or_add(config->params, ec);
    if (!entry) return nullptr;
    auto state = std::make_shared<oscore_session_state>();
    state->store = std::move(store);
    state->client = entry;
    return state;
  }
};
static_assert(message_security<oscore>);

// coap_context_oscore_server / coap_new_oscore_recipient: a security context the context's
// server sessions verify requests with (found by 'kid' and 'kid context', section 8.2). Fails
// for invalid parameters, and for a second context with the same Recipient ID and ID Context.
template <class Allocator>
std::error_code set_oscore(basic_context<Allocator>& ctx, const oscore_core::context_params& params) {
  return coap::detail::context_access::security_state<oscore_context_state>(ctx).store->add(params);
}

}  // namespace coap::security

namespace coap {
using security::oscore;
using security::oscore_client_config;
using security::set_oscore;
}  // namespace coap
