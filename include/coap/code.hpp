// RFC 7252 section 3 and 12.1: the 8-bit code c.dd, methods and response codes;
// RFC 8132 (FETCH, PATCH, iPATCH); RFC 8323 section 5 (signalling codes 7.01 to 7.05).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace coap {

// Request methods (class 0). A method and a response code are distinct types, so that a
// response code used where a method is expected does not compile.
enum class method : std::uint8_t {
  get = 1,
  post = 2,
  put = 3,
  delete_ = 4,
  fetch = 5,
  patch = 6,
  ipatch = 7,
};

constexpr std::uint8_t make_code(unsigned cls, unsigned detail) noexcept {
  return static_cast<std::uint8_t>((cls << 5) | (detail & 0x1fu));
}

// Response codes (classes 2, 4 and 5).
enum class response_code : std::uint8_t {
  created = make_code(2, 1),
  deleted = make_code(2, 2),
  valid = make_code(2, 3),
  changed = make_code(2, 4),
  content = make_code(2, 5),
  continue_ = make_code(2, 31),
  bad_request = make_code(4, 0),
  unauthorized = make_code(4, 1),
  bad_option = make_code(4, 2),
  forbidden = make_code(4, 3),
  not_found = make_code(4, 4),
  method_not_allowed = make_code(4, 5),
  not_acceptable = make_code(4, 6),
  request_entity_incomplete = make_code(4, 8),
  conflict = make_code(4, 9),
  precondition_failed = make_code(4, 12),
  request_entity_too_large = make_code(4, 13),
  unsupported_content_format = make_code(4, 15),
  unprocessable_entity = make_code(4, 22),
  too_many_requests = make_code(4, 29),
  internal_server_error = make_code(5, 0),
  not_implemented = make_code(5, 1),
  bad_gateway = make_code(5, 2),
  service_unavailable = make_code(5, 3),
  gateway_timeout = make_code(5, 4),
  proxying_not_supported = make_code(5, 5),
  hop_limit_reached = make_code(5, 8),
};

// RFC 8323 section 5: signalling codes, valid over reliable transports only.
enum class signal_code : std::uint8_t {
  csm = make_code(7, 1),
  ping = make_code(7, 2),
  pong = make_code(7, 3),
  release = make_code(7, 4),
  abort = make_code(7, 5),
};

// Any code as it travels on the wire.
class code {
 public:
  constexpr code() noexcept = default;
  constexpr explicit code(std::uint8_t raw) noexcept : raw_(raw) {}
  constexpr code(method m) noexcept : raw_(static_cast<std::uint8_t>(m)) {}
  constexpr code(response_code r) noexcept : raw_(static_cast<std::uint8_t>(r)) {}
  constexpr code(signal_code s) noexcept : raw_(static_cast<std::uint8_t>(s)) {}

  constexpr std::uint8_t raw() const noexcept { return raw_; }
  constexpr unsigned code_class() const noexcept { return raw_ >> 5; }
  constexpr unsigned detail() const noexcept { return raw_ & 0x1fu; }

  constexpr bool is_empty() const noexcept { return raw_ == 0; }
  constexpr bool is_request() const noexcept { return code_class() == 0 && raw_ != 0; }
  constexpr bool is_response() const noexcept {
    return code_class() >= 2 && code_class() <= 5;
  }
  constexpr bool is_signal() const noexcept { return code_class() == 7; }
  // Classes 1 and 6 are reserved (RFC 7252 section 12.1); class 7 is reserved on UDP.
  constexpr bool is_reserved_class() const noexcept {
    return code_class() == 1 || code_class() == 6;
  }

  friend constexpr bool operator==(code, code) noexcept = default;

 private:
  std::uint8_t raw_ = 0;
};

// The registered name, like "Content" or "Not Found"; empty when unregistered.
std::string_view name(code c) noexcept;

// "2.05 Content", "0.01 GET", "4.31" for an unregistered code.
std::string to_string(code c);

// Writes "c.dd" into out (4 characters, no terminator); allocation-free.
constexpr void format_number(code c, char* out) noexcept {
  out[0] = static_cast<char>('0' + c.code_class());
  out[1] = '.';
  out[2] = static_cast<char>('0' + c.detail() / 10);
  out[3] = static_cast<char>('0' + c.detail() % 10);
}

}  // namespace coap
