// RFC 6347 section 4.2.1: a DTLS server answers a ClientHello without a valid cookie with a
// HelloVerifyRequest and keeps no state, so that a spoofed source address costs it nothing.
// The cookie is Botan's (an HMAC over the hello and the peer's address under a secret), so the
// Botan server that the endpoint makes once the cookie is valid accepts it too.
#pragma once

#include <botan/symkey.h>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace coap::security::detail {

enum class client_hello_check {
  not_a_client_hello,  // not an unfragmented epoch-0 ClientHello: no session for it
  cookie_missing,      // answered with `reply` (a HelloVerifyRequest datagram)
  cookie_valid,        // make a session; prime it with `primer` first (tls_channel::start_server)
};

struct client_hello_result {
  client_hello_check check = client_hello_check::not_a_client_hello;
  std::vector<std::uint8_t> reply;   // HelloVerifyRequest, for cookie_missing
  std::vector<std::uint8_t> primer;  // the ClientHello without its cookie, message_seq 0
};

// `datagram` came from a peer that has no session; `peer_identity` is what the session will
// return from tls_peer_network_identity().
client_hello_result check_client_hello(std::span<const std::uint8_t> datagram, const std::string& peer_identity,
                                       const Botan::SymmetricKey& secret);

// A fresh random cookie secret.
Botan::SymmetricKey make_cookie_secret();

}  // namespace coap::security::detail
