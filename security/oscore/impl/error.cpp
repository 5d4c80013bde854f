// RFC 8613 section 8.2: the oscore error category and the replies a server sends for them.
#include <coap/security/oscore/error.hpp>

namespace coap {
namespace {

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "coap.oscore"; }

  std::string message(int ev) const override {
    switch (static_cast<oscore_error>(ev)) {
      case oscore_error::security_context_not_found: return "Security context not found";
      case oscore_error::malformed_message: return "Failed to decode COSE";
      case oscore_error::decryption_failed: return "Decryption failed";
      case oscore_error::replay_detected: return "Replay detected";
      case oscore_error::not_protected: return "message has no OSCORE option";
      case oscore_error::unexpected_observe: return "Observe in a response to a non-Observe request";
      case oscore_error::freshness_required: return "Echo required to establish the replay window";
      case oscore_error::outer_block_continue: return "Outer Block option: block kept, more to come";
      case oscore_error::outer_block_incomplete: return "Request Entity Incomplete";
      case oscore_error::outer_block_too_large: return "Request Entity Too Large";
      case oscore_error::sequence_number_exhausted: return "Sender Sequence Number exhausted";
      case oscore_error::sequence_number_not_stored: return "Sender Sequence Number could not be stored";
      case oscore_error::nested_oscore: return "message is already OSCORE-protected";
      case oscore_error::invalid_message: return "message cannot be protected in this role";
      case oscore_error::unsupported_proxy_uri: return "Proxy-Uri cannot be split into options";
      case oscore_error::unsupported_algorithm: return "unsupported AEAD algorithm";
      case oscore_error::invalid_context_parameters: return "invalid security context parameters";
      case oscore_error::id_context_renewal: return "ID Context renewal: answered 4.01 with a new kid context";
      case oscore_error::id_context_renewed: return "ID Context renewed: request sent again under the new context";
      case oscore_error::invalid_kid_context: return "kid context is not a CBOR byte string";
      case oscore_error::unexpected_kid_context: return "unexpected kid context in a response";
    }
    return "unknown OSCORE error";
  }
};

}  // namespace

const std::error_category& oscore_error_category() noexcept {
  static const category instance;
  return instance;
}

std::optional<oscore_error_reply> error_reply(std::error_code ec) noexcept {
  if (ec.category() != oscore_error_category()) return std::nullopt;
  switch (static_cast<oscore_error>(ec.value())) {
    case oscore_error::security_context_not_found:
      return oscore_error_reply{response_code::unauthorized, "Security context not found"};
    case oscore_error::malformed_message:
      return oscore_error_reply{response_code::bad_option, "Failed to decode COSE"};
    case oscore_error::decryption_failed:
      return oscore_error_reply{response_code::bad_request, "Decryption failed"};
    case oscore_error::replay_detected:
      return oscore_error_reply{response_code::unauthorized, "Replay detected"};
    case oscore_error::outer_block_incomplete:
      return oscore_error_reply{response_code::request_entity_incomplete, "Request Entity Incomplete"};
    case oscore_error::outer_block_too_large:
      return oscore_error_reply{response_code::request_entity_too_large, "Request Entity Too Large"};
    case oscore_error::invalid_kid_context:  // e.g. a renewed context a restarted server forgot
      return oscore_error_reply{response_code::unauthorized, "Security context not found"};
    default:
      return std::nullopt;
  }
}

}  // namespace coap
