// RFC 7252 section 5.9.3.4 (5.03 Service Unavailable, with Max-Age) sent without state: what a
// server answers when it cannot take a request on, because the session cap is reached or
// because the allocator refused. Built in a buffer on the stack: this path must work exactly
// when memory has run out. RFC 8323 keeps the code over TCP; its frames are built here too.
#pragma once

#include <coap/message.hpp>
#include <coap/message_view.hpp>
#include <coap/udp_codec.hpp>

#include <cstddef>
#include <cstdint>
#include <memory_resource>
#include <new>
#include <span>
#include <string_view>

namespace coap::detail {

// Header, token, Max-Age and a short diagnostic payload.
inline constexpr std::size_t max_stateless_response = 64;

// A message whose memory is a buffer on the stack.
using stack_message = basic_message<std::pmr::polymorphic_allocator<std::uint8_t>>;

// Calls use(stack_message&) with an empty message whose vectors come from a stack buffer;
// null_memory_resource makes sure that nothing spills to the heap (beyond the buffer, building
// the message throws bad_alloc).
template <class Use>
void with_stack_message(Use&& use) {
  alignas(std::max_align_t) std::byte storage[256];
  std::pmr::monotonic_buffer_resource arena(storage, sizeof storage, std::pmr::null_memory_resource());
  stack_message m(&arena);
  use(m);
}

// Makes `busy` the 5.03 (Max-Age 5 unless told) for `request`; its type and message ID are the
// caller's.
inline void make_service_unavailable(stack_message& busy, const message_view& request, std::string_view diagnostic,
                                     std::uint32_t max_age = 5) {
  busy.set_code(response_code::service_unavailable);
  busy.set_token(request.token());
  busy.add_uint_option(static_cast<std::uint16_t>(option_number::max_age), max_age);
  busy.set_payload(diagnostic);
}

// The piggybacked 5.03 for the CON `request` over UDP, into out; returns its size, or 0 if it
// does not fit (a long diagnostic).
inline std::size_t encode_service_unavailable(std::span<std::uint8_t> out, const message_view& request,
                                              std::string_view diagnostic, std::uint32_t max_age = 5) noexcept {
  std::size_t written = 0;
  try {
    with_stack_message([&](stack_message& busy) {
      make_service_unavailable(busy, request, diagnostic, max_age);
      busy.set_type(message_type::acknowledgement);
      busy.set_message_id(request.message_id());
      if (udp_codec::encode(busy, out, written)) written = 0;
    });
  } catch (const std::bad_alloc&) {
    return 0;
  }
  return written;
}

}  // namespace coap::detail
