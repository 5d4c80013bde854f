// Forward declarations of the context and session templates and their common aliases.
#pragma once

#include <cstdint>
#include <memory>

namespace coap {

template <class Allocator = std::allocator<std::uint8_t>>
class basic_context;
using context = basic_context<>;

template <class Transport, class Security, class Allocator>
class session;

}  // namespace coap
