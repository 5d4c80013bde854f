// The Transport and Security policy concepts of coap::session<Transport, Security, Allocator>
// (in Beast's manner: named requirements checked by concepts; every shipped policy is checked).
#pragma once

#include <concepts>
#include <cstdint>
#include <string_view>

namespace coap {

// A transport names its protocol, says whether it is reliable (RFC 8323) or not (RFC 7252),
// and gives its default port and description suffix.
template <class T>
concept transport_policy = requires {
  { T::name } -> std::convertible_to<std::string_view>;
  { T::reliable } -> std::convertible_to<bool>;
  { T::default_port } -> std::convertible_to<std::uint16_t>;
};

// A security policy says whether it encrypts and how it is named in descriptions (DTLS, TLS).
template <class S>
concept security_policy = requires {
  { S::secure } -> std::convertible_to<bool>;
};

// A transport says which security policies it can carry (udp: no_sec now, DTLS later).
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
