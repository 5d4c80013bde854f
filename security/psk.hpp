// RFC 7252 section 9.1.3.1 (PreSharedKey mode) and RFC 4279 (TLS PSK): the security policy
// `psk` of coap::session<Transport, psk>. DTLS 1.2 over UDP, TLS 1.2 over TCP, on Botan 2;
// TLS_PSK_WITH_AES_128_CCM_8 first (tls_policy.hpp). libcoap's coap_dtls_cpsk_t (client) and
// coap_dtls_spsk_t (server, coap_context_set_psk) have their counterparts here.
#pragma once

#include <coap/context.hpp>
#include <coap/policies.hpp>
#include <coap/security/detail/secure_policy.hpp>
#include <coap/security/detail/secure_state.hpp>
#include <coap/security/tls_policy.hpp>

#include <botan/credentials_manager.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace coap::security {

// An identity and its key (binary).
struct psk_identity_key {
  std::string identity;
  std::vector<std::uint8_t> key;
};
// What a server offers for one SNI: its identity hint and key.
struct psk_hint_key {
  std::string hint;
  std::vector<std::uint8_t> key;
};

// coap_new_client_session_psk / coap_dtls_cpsk_t.
struct psk_client_config {
  std::string identity;            // not empty
  std::vector<std::uint8_t> key;   // not empty
  std::string sni;                 // Server Name Indication sent to the server (empty: none)
  // validate_ih_call_back: called with the server's identity hint; may choose another
  // identity and key (nullopt keeps identity and key).
  std::function<std::optional<psk_identity_key>(std::string_view hint)> on_hint;
  tls_setup_hook setup;
};

// coap_context_set_psk / coap_dtls_spsk_t.
struct psk_server_config {
  std::string hint = "CoAP";       // identity hint sent to clients (libcoap's default)
  std::vector<std::uint8_t> key;   // the key when no callback decides
  // validate_id_call_back: the key for a client's identity and the SNI it sent; nullopt
  // refuses the client (TLS alert unknown_psk_identity).
  std::function<std::optional<std::vector<std::uint8_t>>(std::string_view identity, std::string_view sni)>
      key_for_identity;
  // validate_sni_call_back: hint and key for the SNI a client sent (nullopt: the defaults).
  std::function<std::optional<psk_hint_key>(std::string_view sni)> on_sni;
  tls_setup_hook setup;
};

// The credentials and policy that PSK sessions share: one per server endpoint, one per client
// session. Read-only once made (a client's hint choice is per session).
class psk_state final : public detail::secure_state {
 public:
  static std::shared_ptr<psk_state> make_client(const psk_client_config& config, std::error_code& ec);
  static std::shared_ptr<psk_state> make_server(const psk_server_config& config, std::error_code& ec);

  const std::string& sni() const noexcept { return client_.sni; }
  // The identity a client used (after on_hint).
  const std::string& client_identity() const noexcept { return chosen_.identity; }

  // ---- Botan::Credentials_Manager ----
  std::string psk_identity_hint(const std::string& type, const std::string& context) override;
  std::string psk_identity(const std::string& type, const std::string& context, const std::string& hint) override;
  Botan::SymmetricKey psk(const std::string& type, const std::string& context, const std::string& identity) override;

  psk_state() : secure_state(tls_policy::mode::psk) {}

 private:
  psk_client_config client_;
  psk_server_config server_config_;
  psk_identity_key chosen_;
};

// The context's PSK server defaults (coap_context_set_psk).
struct psk_context_state {
  std::shared_ptr<const psk_state> server;
};

struct psk : detail::secure_policy_base<psk_state> {
  static constexpr std::string_view name = "PSK";
  using client_config = psk_client_config;
  using server_config = psk_server_config;

  // A client's state from its configuration; PSK has no context-level client default.
  // (The URI's host is for certificate checks; PSK has none.)
  template <class Allocator>
  static state_ptr client_state(basic_context<Allocator>&, const client_config* config, std::error_code& ec,
                                std::string_view /*host*/ = {}) {
    if (!config) {
      ec = error::security_not_configured;
      return nullptr;
    }
    return psk_state::make_client(*config, ec);
  }
  // What a server endpoint uses: the context's set_psk.
  template <class Allocator>
  static state_ptr server_state(basic_context<Allocator>& ctx, std::error_code& ec) {
    auto* s = coap::detail::context_access::find_security_state<psk_context_state>(ctx);
    if (!s || !s->server) {
      ec = error::security_not_configured;
      return nullptr;
    }
    return s->server;
  }
};
static_assert(channel_security<psk>);

// coap_context_set_psk: the server side of every PSK endpoint added afterwards.
template <class Allocator>
std::error_code set_psk(basic_context<Allocator>& ctx, const psk_server_config& config) {
  std::error_code ec;
  auto state = psk_state::make_server(config, ec);
  if (ec) return ec;
  coap::detail::context_access::security_state<psk_context_state>(ctx).server = std::move(state);
  return {};
}

}  // namespace coap::security

namespace coap {
using security::psk;
}  // namespace coap
