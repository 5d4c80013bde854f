// RFC 4279 section 2 (PSK identity and hint) on Botan's Credentials_Manager.
#include <coap/security/psk.hpp>
#include <coap/security/detail/dtls_hello.hpp>

namespace coap::security {

std::shared_ptr<psk_state> psk_state::make_client(const psk_client_config& config, std::error_code& ec) {
  // coap_new_client_session_psk: an empty identity or key is not valid.
  if (config.identity.empty() || config.key.empty()) {
    ec = error::invalid_credentials;
    return nullptr;
  }
  auto s = std::make_shared<psk_state>();
  s->client_ = config;
  s->chosen_ = {config.identity, config.key};
  if (config.setup) config.setup(s->policy_, *s);
  return s;
}

std::shared_ptr<psk_state> psk_state::make_server(const psk_server_config& config, std::error_code& ec) {
  if (config.key.empty() && !config.key_for_identity && !config.on_sni) {
    ec = error::invalid_credentials;
    return nullptr;
  }
  auto s = std::make_shared<psk_state>();
  s->server_ = true;
  s->server_config_ = config;
  s->cookie_secret_ = detail::make_cookie_secret();
  if (config.setup) config.setup(s->policy_, *s);
  return s;
}

std::string psk_state::psk_identity_hint(const std::string&, const std::string& sni) {
  if (server_config_.on_sni && !sni.empty())
    if (auto chosen = server_config_.on_sni(sni)) return chosen->hint;
  return server_config_.hint;
}

std::string psk_state::psk_identity(const std::string&, const std::string&, const std::string& hint) {
  if (client_.on_hint)
    if (auto chosen = client_.on_hint(hint)) chosen_ = std::move(*chosen);
  return chosen_.identity;
}

Botan::SymmetricKey psk_state::psk(const std::string& type, const std::string& context, const std::string& identity) {
  if (const auto* secret = cookie_secret_for(type, context)) return *secret;
  // No session tickets (no resumption): an empty ticket key makes Botan issue none.
  if (type == "tls-server" && context == "session-ticket") return Botan::SymmetricKey();
  if (!server_) return Botan::SymmetricKey(chosen_.key);
  // An empty key makes Botan refuse the client with the alert unknown_psk_identity.
  if (server_config_.key_for_identity) {
    auto key = server_config_.key_for_identity(identity, context);
    return key ? Botan::SymmetricKey(*key) : Botan::SymmetricKey();
  }
  if (server_config_.on_sni && !context.empty())
    if (auto chosen = server_config_.on_sni(context)) return Botan::SymmetricKey(chosen->key);
  return Botan::SymmetricKey(server_config_.key);
}

}  // namespace coap::security
