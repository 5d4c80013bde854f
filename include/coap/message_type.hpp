// RFC 7252 section 3 (T field) and 4: the four message types of CoAP over UDP.
#pragma once

#include <cstdint>
#include <string_view>

namespace coap {

enum class message_type : std::uint8_t {
  confirmable = 0,
  non_confirmable = 1,
  acknowledgement = 2,
  reset = 3,
};

constexpr std::string_view to_string(message_type t) noexcept {
  switch (t) {
    case message_type::confirmable: return "CON";
    case message_type::non_confirmable: return "NON";
    case message_type::acknowledgement: return "ACK";
    case message_type::reset: return "RST";
  }
  return "?";
}

}  // namespace coap
