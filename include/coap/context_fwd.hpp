// Forward declarations of the context and session templates and their common aliases.
#pragma once

#include <coap/policies.hpp>

#include <cstdint>
#include <memory>

namespace coap {

template <class Allocator = std::allocator<std::uint8_t>>
class basic_context;
using context = basic_context<>;

// Constrained, so that a session of something that is not a transport (session<int>), or of
// a security policy the transport cannot carry, is not a type at all: misuse is a compile
// error that a requires-expression can test (tests/compile_time_test.cpp).
template <transport_policy Transport, security_policy Security, class Allocator>
  requires transport_supports<Transport, Security>
class session;

}  // namespace coap
