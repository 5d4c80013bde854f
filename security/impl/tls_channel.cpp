// The non-template parts of detail/tls_channel.hpp.
#include <coap/security/detail/tls_channel.hpp>

#include <botan/exceptn.h>
#include <botan/system_rng.h>

namespace coap::security::detail {

Botan::RandomNumberGenerator& tls_rng() { return Botan::system_rng(); }

Botan::TLS::Session_Manager& tls_no_session_cache() {
  static Botan::TLS::Session_Manager_Noop instance;
  return instance;
}

std::error_code tls_error_of(const std::exception& e) noexcept {
  if (auto* t = dynamic_cast<const Botan::TLS::TLS_Exception*>(&e))
    return make_error_code(static_cast<tls_alert>(t->type()));
  if (dynamic_cast<const Botan::Invalid_Authentication_Tag*>(&e)) return make_error_code(tls_alert::bad_record_mac);
  if (dynamic_cast<const Botan::Decoding_Error*>(&e)) return make_error_code(tls_alert::decode_error);
  return make_error_code(error::handshake_failed);
}

std::size_t tls_record_overhead(const Botan::TLS::Ciphersuite& suite, Botan::TLS::Protocol_Version v) {
  const std::size_t header = v.is_datagram_protocol() ? 13 : 5;
  const std::string cipher = suite.cipher_algo();
  const std::size_t tag = cipher.find("CCM(8)") != std::string::npos ? 8 : 16;
  return header + suite.nonce_bytes_from_record(v) + tag;
}

}  // namespace coap::security::detail
