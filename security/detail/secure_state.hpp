// What the shared state of every secure policy (psk_state, pki_state) holds: Botan's credentials
// and TLS policy, the side it serves, and a server's DTLS cookie secret (RFC 6347 section
// 4.2.1), which Botan asks for through Credentials_Manager::psk.
#pragma once

#include <coap/security/tls_policy.hpp>

#include <botan/credentials_manager.h>
#include <botan/symkey.h>

#include <string>

namespace coap::security::detail {

class secure_state : public Botan::Credentials_Manager {
 public:
  const Botan::Credentials_Manager& credentials() const noexcept { return *this; }
  const tls_policy& policy() const noexcept { return policy_; }
  bool is_server() const noexcept { return server_; }
  const Botan::SymmetricKey& cookie_secret() const noexcept { return cookie_secret_; }

 protected:
  explicit secure_state(tls_policy::mode m) : policy_(m) {}

  // The cookie secret when Botan's psk() asks for it, else null (the policy answers).
  const Botan::SymmetricKey* cookie_secret_for(const std::string& type, const std::string& context) const noexcept {
    return type == "tls-server" && context == "dtls-cookie-secret" ? &cookie_secret_ : nullptr;
  }

  bool server_ = false;
  tls_policy policy_;
  Botan::SymmetricKey cookie_secret_;
};

}  // namespace coap::security::detail
