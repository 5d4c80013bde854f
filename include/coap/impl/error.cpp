// The coap error category: messages for every coap::error value.
#include <coap/error.hpp>

namespace coap {
namespace {

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "coap"; }

  std::string message(int ev) const override {
    switch (static_cast<error>(ev)) {
      case error::truncated_header: return "message shorter than its fixed header";
      case error::unsupported_version: return "unsupported CoAP version";
      case error::invalid_token_length: return "token length 9 to 15 is reserved";
      case error::truncated_token: return "token runs past the end of the message";
      case error::reserved_option_nibble: return "option delta or length nibble 15 is reserved";
      case error::truncated_option: return "option runs past the end of the message";
      case error::option_number_overflow: return "option number exceeds 65535";
      case error::payload_marker_without_payload: return "payload marker with an empty payload";
      case error::empty_message_not_empty: return "empty message carries a token, options or payload";
      case error::truncated_frame: return "frame shorter than its length field announces";
      case error::frame_length_overflow: return "frame length exceeds the supported maximum";
      case error::reserved_code_class: return "code class is reserved";
      case error::token_too_long: return "token longer than 8 bytes";
      case error::option_value_too_long: return "option value longer than 65804 bytes";
      case error::option_value_length: return "option value length outside its registered bounds";
      case error::option_not_repeatable: return "non-repeatable option given more than once";
      case error::buffer_too_small: return "output buffer too small";
      case error::message_too_large: return "message too large";
      case error::invalid_message: return "message fields are inconsistent";
      case error::invalid_uri: return "invalid URI";
      case error::unsupported_scheme: return "unsupported URI scheme";
      case error::uri_has_fragment: return "URI has a fragment";
      case error::invalid_port: return "invalid port";
      case error::invalid_link_format: return "invalid link format";
      case error::invalid_block_option: return "invalid block option";
      case error::timeout: return "timed out";
      case error::reset_by_peer: return "reset by peer";
      case error::session_closed: return "session closed";
      case error::queue_full: return "request queue full";
      case error::no_memory: return "allocator exhausted";
      case error::csm_timeout: return "no CSM from peer in time";
      case error::aborted_by_peer: return "aborted by peer";
      case error::handshake_failed: return "handshake failed";
      case error::handshake_timeout: return "(D)TLS handshake timed out";
      case error::security_not_configured: return "no PSK or PKI configuration for a secure session";
      case error::invalid_credentials: return "key, certificate or CRL unreadable or unusable";
      case error::etag_mismatch: return "the resource changed (ETag) during a block-wise transfer";
      case error::not_observable: return "the resource is not observed (any more)";
      case error::too_many_requests: return "the server answered 4.29 Too Many Requests; its Max-Age has not passed";
    }
    return "unknown coap error";
  }
};

}  // namespace

const std::error_category& error_category() noexcept {
  static const category instance;
  return instance;
}

bool is_fatal(std::error_code ec) noexcept {
  if (ec.category() != error_category()) return static_cast<bool>(ec);
  switch (static_cast<error>(ec.value())) {
    case error::session_closed:
    case error::csm_timeout:
    case error::aborted_by_peer:
    case error::handshake_failed:
    case error::handshake_timeout:
    case error::security_not_configured:
    case error::invalid_credentials:
      return true;
    default:
      return false;
  }
}

}  // namespace coap
