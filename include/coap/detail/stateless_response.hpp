// RFC 7252 section 5.9.3.4 (5.03 Service Unavailable, with Max-Age) sent without state: what a
// UDP server answers a CON when it cannot take the request on, because the session cap is
// reached or because the allocator refused. Built in a buffer on the stack: this path must
// work exactly when memory has run out.
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

// The piggybacked 5.03 for the CON `request`, into out; returns its size, or 0 if it does not
// fit (a long diagnostic).
inline std::size_t encode_service_unavailable(std::span<std::uint8_t> out, const message_view& request,
                                              std::string_view diagnostic) noexcept {
  // The message's three vectors come from this buffer; null_memory_resource makes sure that
  // nothing spills to the heap.
  alignas(std::max_align_t) std::byte storage[256];
  std::pmr::monotonic_buffer_resource arena(storage, sizeof storage, std::pmr::null_memory_resource());
  try {
    basic_message<std::pmr::polymorphic_allocator<std::uint8_t>> busy(
        response_code::service_unavailable, message_type::acknowledgement, &arena);
    busy.set_message_id(request.message_id());
    busy.set_token(request.token());
    busy.add_uint_option(static_cast<std::uint16_t>(option_number::max_age), 5);
    busy.set_payload(diagnostic);
    std::size_t written = 0;
    return udp_codec::encode(busy, out, written) ? 0 : written;
  } catch (const std::bad_alloc&) {
    return 0;
  }
}

}  // namespace coap::detail
