// RFC 7252 section 5.4.1 (unrecognized critical options), 5.7.2 (proxying not supported),
// 5.8 (methods and their default success codes) and RFC 6690 section 4 (/.well-known/core):
// what a server answers to a request, whatever the transport.
#pragma once

#include <coap/option.hpp>
#include <coap/resource.hpp>

#include <charconv>
#include <exception>
#include <new>
#include <string>

namespace coap::detail {

enum class dispatch_outcome {
  respond,  // the response (or a deferral) is in `res`
  drop,     // section 5.4.1: a NON with an unrecognized critical option is rejected silently
};

// Section 5.7.2: a request for a forward proxy.
inline bool is_proxy_request(const message_view& m) noexcept {
  return m.find(option_number::proxy_uri) || m.find(option_number::proxy_scheme);
}

// Section 5.4.1: the first critical option this server does not recognize, or 0.
inline std::uint16_t unrecognized_critical_option(const message_view& m) noexcept {
  std::uint32_t previous = 0x10000;
  for (option_view o : m.options()) {
    const option_definition* def = find_option(o.number());
    // Section 5.4.5: a repeated non-repeatable option is treated as unrecognized.
    const bool repeated_once_too_often = def && !def->repeatable && o.number() == previous;
    // OSCORE (RFC 8613) is registered but verified only by the oscore policy's sessions; for
    // a forward proxy it is a safe-to-forward option like any other (RFC 8613 section 2, RFC
    // 7252 section 5.7.1), carried to the origin untouched. Block1/Block2 (RFC 7959) are
    // processed (detail/block_server.hpp).
    const bool processed =
        def && (o.number() != static_cast<std::uint16_t>(option_number::oscore) || is_proxy_request(m));
    if (is_critical(o.number()) && (!processed || repeated_once_too_often)) return o.number();
    previous = o.number();
  }
  return 0;
}

// Section 5.8: the success code a handler that sets none answers with.
constexpr response_code default_success(method m) noexcept {
  switch (m) {
    case method::get:
    case method::fetch: return response_code::content;
    case method::delete_: return response_code::deleted;
    default: return response_code::changed;
  }
}

// Errors the library answers by itself carry their reason phrase as diagnostic payload
// (RFC 7252 section 5.5.2), as libcoap's do: its client prints "4.04 Not Found".
template <class Allocator>
void refuse(basic_response<Allocator>& res, response_code c) {
  res.set_code(c);
  res.set_payload(name(c));
}

inline bool is_well_known_core(const request& r) noexcept {
  return path_equals(r, ".well-known/core");
}

template <class Allocator>
dispatch_outcome dispatch_request(basic_resource_registry<Allocator>& registry, const request& req,
                                  basic_response<Allocator>& res) {
  const message_view& m = req.message();
  if (const auto number = unrecognized_critical_option(m)) {
    if (!req.confirmable()) return dispatch_outcome::drop;
    res.set_code(response_code::bad_option);
    // Formatted on the stack: the response's storage is the only allocation, the session's.
    static constexpr std::string_view prefix = "unrecognized critical option ";
    char diagnostic[prefix.size() + 8];
    prefix.copy(diagnostic, prefix.size());
    const auto end = std::to_chars(diagnostic + prefix.size(), diagnostic + sizeof diagnostic, number).ptr;
    res.set_payload(std::string_view(diagnostic, static_cast<std::size_t>(end - diagnostic)));
    return dispatch_outcome::respond;
  }
  if (is_proxy_request(m)) {
    // Section 5.7.2: a forward-proxy request goes to the proxy handler when there is one
    // (coap::proxy installs it); without, 5.05 Proxying Not Supported.
    if (!registry.proxy_handler()) {
      refuse(res, response_code::proxying_not_supported);
      return dispatch_outcome::respond;
    }
    res.set_code(response_code::bad_gateway);  // what a handler that sets nothing answers
    try {
      registry.proxy_handler()(req, res);
    } catch (const std::bad_alloc&) {
      throw;
    } catch (...) {
      res.message().clear();
      res.set_code(response_code::internal_server_error);
    }
    return dispatch_outcome::respond;
  }
  const unsigned method_index = m.code().detail();
  if (method_index < 1 || method_index > 7) {
    refuse(res, response_code::method_not_allowed);
    return dispatch_outcome::respond;
  }
  res.set_code(default_success(req.method()));

  // Held while the handler runs: it may remove its own resource.
  const auto resource = registry.find(req);
  const typename basic_resource<Allocator>::handler* handler = nullptr;
  if (resource) {
    handler = &resource->handlers[method_index - 1];
    if (resource->requires_authentication && req.authenticated_peer().empty()) {
      refuse(res, response_code::unauthorized);
      return dispatch_outcome::respond;
    }
    if (!*handler) {
      refuse(res, response_code::method_not_allowed);
      return dispatch_outcome::respond;
    }
    // RFC 9175 section 2.3: a resource that wants fresh requests does not run its handler for
    // one without a fresh Echo value.
    if (resource->requires_fresh && !req.fresh()) {
      res.require_fresh();
      return dispatch_outcome::respond;
    }
  } else if (is_well_known_core(req)) {
    if (req.method() != method::get) {
      refuse(res, response_code::method_not_allowed);
      return dispatch_outcome::respond;
    }
    res.set_content_format(content_format::link_format);
    // Built in the session's memory (the response message's allocator), not on the heap.
    using char_allocator = typename std::allocator_traits<Allocator>::template rebind_alloc<char>;
    std::basic_string<char, std::char_traits<char>, char_allocator> body(char_allocator(res.message().get_allocator()));
    registry.write_well_known_core(body, &req);
    res.set_payload(std::string_view(body));
    return dispatch_outcome::respond;
  } else if (registry.unknown_handler()) {
    handler = &registry.unknown_handler();
  } else {
    refuse(res, response_code::not_found);
    return dispatch_outcome::respond;
  }

  try {
    (*handler)(req, res);
  } catch (const std::bad_alloc&) {
    // Out of memory: the session answers as it can without any (5.03, see its on_request).
    throw;
  } catch (...) {
    // A failing handler answers 5.00. Its exception's text stays here: it may say more about
    // the server than a peer should learn (RFC 7252 section 11, issue 11 item 6).
    res.message().clear();
    res.set_code(response_code::internal_server_error);
  }
  return dispatch_outcome::respond;
}

}  // namespace coap::detail
