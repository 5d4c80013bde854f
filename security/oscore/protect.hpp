// RFC 8613 sections 4, 5.3 and 8: turning a CoAP request or response into an OSCORE message
// and back. Class E options, the code and the payload travel in the ciphertext; Class U
// options (Uri-Host, Uri-Port, Proxy-Uri, Proxy-Scheme, and Hop-Limit per RFC 8768 section 3)
// stay outside; Observe is both (section 4.1.3.5). The outer code is POST (FETCH with
// Observe) for requests and 2.04 (2.05 with Observe) for responses (section 4.2).
// Sans-I/O: the session calls these around the codec. The plaintext, ciphertext, AAD and Inner
// message are the context's reused buffers (detail::protect_scratch), the AEAD is keyed once
// per context, and the result is written into `out` (its capacity reused): once the buffers
// have grown, protecting and verifying allocate nothing.
#pragma once

#include <coap/code.hpp>
#include <coap/detail/option_codec.hpp>
#include <coap/message.hpp>
#include <coap/message_view.hpp>
#include <coap/option.hpp>
#include <coap/security/oscore/context.hpp>
#include <coap/security/oscore/cose.hpp>
#include <coap/security/oscore/error.hpp>
#include <coap/security/oscore/option_value.hpp>
#include <coap/uri.hpp>

#include <concepts>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <type_traits>
#include <vector>

namespace coap::oscore_core {

// Section 8: what both endpoints keep per Token to protect or verify the response(s) to a
// request: its 'kid' and Partial IV (section 7.1), and for Observe the notification state.
// Inline storage: keeping one per exchange allocates nothing.
struct request_binding {
  small_bytes<max_id_length> request_kid;
  partial_iv request_piv;
  // The request was an Observe registration (Observe 0): notifications may follow.
  bool observe = false;
  // The request's nonce has served one response: on a server no second response may reuse
  // it (section 8.3, (key, nonce) uniqueness); on a client no second response without a
  // Partial IV is accepted (section 7.4.1).
  bool request_nonce_used = false;
  // Section 7.4.1: the highest Partial IV of the verified notifications (client).
  std::optional<std::uint64_t> notification_number;
  // Section 8.3 step 3: the nonce a response without Partial IV uses is the request's, kept as
  // it was made. The same as one recomputed from the request's 'kid' and Partial IV, except
  // in Appendix B.2, where the 4.01 is protected under R2||ID1 with the nonce of the request
  // made under ID1 (as libcoap 4.3.5 does). Empty in a binding made by hand: recomputed.
  nonce request_nonce;
};

// Section 8.3 step 3: a response either reuses the request's nonce or gets a Partial IV of its
// own. A second response to one request (an Observe notification) always gets its own.
enum class response_nonce { from_request, new_partial_iv };

namespace detail {

inline constexpr auto oscore_option = static_cast<std::uint16_t>(option_number::oscore);
inline constexpr auto observe_option = static_cast<std::uint16_t>(option_number::observe);
inline constexpr auto proxy_uri_option = static_cast<std::uint16_t>(option_number::proxy_uri);

enum class option_class { inner, outer, inner_and_outer };

// Section 4.1, figure 5, as the sender applies it: options marked E and U (Max-Age, Block,
// Size, No-Response) are Inner in the original message; their Outer forms are added by
// proxies or for unprotected errors. Unknown options are Class E (section 4.1).
constexpr option_class class_of(std::uint16_t number) noexcept {
  switch (static_cast<option_number>(number)) {
    case option_number::uri_host:
    case option_number::uri_port:
    case option_number::proxy_uri:
    case option_number::proxy_scheme:
    case option_number::hop_limit:
    case option_number::oscore:
      return option_class::outer;
    case option_number::observe:
      return option_class::inner_and_outer;
    default:
      return option_class::inner;
  }
}

template <class Message, class Outer>
void copy_header(const Message& from, Outer& to) {
  to.set_type(from.type());
  to.set_message_id(from.message_id());
  (void)to.set_token(from.token());
}

// Sections 4.1.1 and 4.1.2: sorts the original's options into Inner and Outer. A notification's
// Inner Observe is empty (section 4.1.3.5.2); a request's carries the original value.
template <class Message, class Outer>
std::error_code split_options(const Message& m, bool notification, coap::message& inner, Outer& outer) {
  for (const option_view o : m.options()) {
    const std::uint16_t n = o.number();
    if (n == oscore_option) return oscore_error::nested_oscore;  // section 4.1.3.7
    switch (class_of(n)) {
      case option_class::inner: inner.add_option(n, o.value()); break;
      case option_class::outer: outer.add_option(n, o.value()); break;
      case option_class::inner_and_outer:
        inner.add_option(n, notification ? std::span<const std::uint8_t>() : o.value());
        outer.add_option(n, o.value());
        break;
    }
  }
  inner.set_payload(m.payload());
  return {};
}

// Section 4.1.3.3: a Proxy-Uri becomes an Outer Proxy-Uri of scheme, host and port, and Inner
// Uri-Path and Uri-Query options.
template <class Outer>
std::error_code split_proxy_uri(coap::message& inner, Outer& outer) {
  const auto proxy_uri = outer.find(proxy_uri_option);
  if (!proxy_uri) return {};
  // RFC 7252 section 5.10.2: Proxy-Uri excludes the Uri-* options.
  if (outer.find(option_number::uri_host) || outer.find(option_number::uri_port) ||
      inner.find(option_number::uri_path) || inner.find(option_number::uri_query))
    return oscore_error::invalid_message;
  coap::uri target;
  if (parse_uri(proxy_uri->as_string(), target)) return oscore_error::unsupported_proxy_uri;
  for (const auto& segment : target.path)
    inner.add_string_option(static_cast<std::uint16_t>(option_number::uri_path), segment);
  for (const auto& item : target.query)
    inner.add_string_option(static_cast<std::uint16_t>(option_number::uri_query), item);
  target.path.clear();
  target.query.clear();
  std::string base = to_string(target);
  if (!base.empty() && base.back() == '/') base.pop_back();  // "coap://example.com", as 4.1.3.3
  outer.remove_option(proxy_uri_option);
  outer.add_string_option(proxy_uri_option, base);
  return {};
}

// Section 5.3: Code, Inner options, and the payload after 0xFF; the codec writes the options.
inline std::error_code encode_plaintext(const coap::message& inner, std::vector<std::uint8_t>& out) {
  std::size_t size = 0;
  if (auto ec = coap::detail::encoded_body_size(inner, size)) return ec;
  out.resize(1 + size);
  out[0] = inner.code().raw();
  coap::detail::write_body(inner, out.data() + 1);
  return {};
}

// Section 5.3, the other way: the code must be of the expected kind; the OSCORE option may not
// be inside (section 4.1.3.7). Options and payload are appended to `result`.
template <class Allocator>
std::error_code decode_plaintext(std::span<const std::uint8_t> plaintext, bool request,
                                 basic_message<Allocator>& result) {
  if (plaintext.empty()) return oscore_error::malformed_message;
  const coap::code c(plaintext[0]);
  if (request ? !c.is_request() : !c.is_response()) return oscore_error::malformed_message;
  std::span<const std::uint8_t> options, payload;
  if (coap::detail::split_body(plaintext.subspan(1), options, payload)) return oscore_error::malformed_message;
  for (const option_view o : option_range(options)) {
    if (o.number() == oscore_option) return oscore_error::malformed_message;
    result.add_option(o.number(), o.value());
  }
  result.set_code(c);
  result.set_payload(payload);
  return {};
}

// Sections 2 and 6.1: exactly one OSCORE option, a well-formed value, a payload, and a
// Partial IV without leading zero bytes (section 5).
template <class Message>
std::error_code read_oscore_option(const Message& m, option_fields& f) {
  std::optional<option_view> found;
  std::size_t count = 0;
  for (const option_view o : m.options()) {
    if (o.number() == oscore_option) {
      ++count;
      found = o;
    }
  }
  if (count == 0) return oscore_error::not_protected;
  if (count > 1) return oscore_error::malformed_message;
  if (auto ec = decode_option_value(found->value(), f)) return ec;
  if (f.partial_iv.size() > 1 && f.partial_iv[0] == 0) return oscore_error::malformed_message;
  if (m.payload().empty()) return oscore_error::malformed_message;
  return {};
}

// Sections 8.2 step 1 and 8.4 step 1: of the received Outer options only Class U ones stay.
template <class Message, class Allocator>
void keep_outer_options(const Message& m, basic_message<Allocator>& result) {
  for (const option_view o : m.options())
    if (class_of(o.number()) == option_class::outer && o.number() != oscore_option)
      result.add_option(o.number(), o.value());
}

// Builds the result with `build(message&)` straight into `out`, or, when `out` is the source
// message itself, into a temporary that is then copied (allocating). On failure `out` holds
// whatever was built: callers use it only on success.
template <class Message, class Allocator, class Build>
std::error_code build_into(const Message& source, basic_message<Allocator>& out, Build&& build) {
  if (static_cast<const void*>(&source) != static_cast<const void*>(&out)) {
    out.clear();
    return build(out);
  }
  basic_message<Allocator> temp(out.get_allocator());
  if (auto ec = build(temp)) return ec;
  out.assign_message(temp);
  return {};
}

// Section 8.3 step 3: the request's nonce, as kept, or recomputed for a binding made by hand.
inline nonce request_nonce(const context& ctx, const request_binding& binding) noexcept {
  if (!binding.request_nonce.empty()) return binding.request_nonce;
  return make_nonce(ctx.common_iv(), binding.request_kid.bytes(), binding.request_piv.bytes());
}

// The context's Inner message, emptied, with code `c`.
inline coap::message& fresh_inner(protect_scratch& scratch, coap::code c) noexcept {
  scratch.inner.clear();
  scratch.inner.set_code(c);
  return scratch.inner;
}

}  // namespace detail

// Section 8.1. Takes a Sender Sequence Number; fills `binding` for the response. `out` may be
// the same object as `original`.
template <class Message, class Allocator>
std::error_code protect_request(context& ctx, const Message& original, basic_message<Allocator>& out,
                                request_binding& binding) {
  if (!original.code().is_request()) return oscore_error::invalid_message;
  auto& scratch = detail::scratch_access::of(ctx);
  return detail::build_into(original, out, [&](basic_message<Allocator>& outer) -> std::error_code {
    coap::message& inner = detail::fresh_inner(scratch, original.code());
    const auto observe = original.find(option_number::observe);
    const bool registration = observe && observe->as_uint() == 0;
    if (auto ec = detail::split_options(original, false, inner, outer)) return ec;
    if (auto ec = detail::split_proxy_uri(inner, outer)) return ec;
    if (auto ec = detail::encode_plaintext(inner, scratch.plaintext)) return ec;

    std::uint64_t sequence_number = 0;
    if (auto ec = ctx.next_sequence_number(sequence_number)) return ec;
    const partial_iv piv = encode_partial_iv(sequence_number);
    make_aad(ctx.algorithm(), ctx.sender_id(), piv.bytes(), scratch.aad, scratch.aad_array);
    const nonce n = make_nonce(ctx.common_iv(), ctx.sender_id(), piv.bytes());
    if (auto ec = detail::seal(ctx, n.bytes(), scratch.aad, scratch.plaintext, scratch.ciphertext)) return ec;

    option_fields fields;
    fields.partial_iv = piv.bytes();
    fields.has_kid = true;
    fields.kid = ctx.sender_id();
    std::optional<wrapped_kid_context> wrapped;  // made only during a renewal (Appendix B.2)
    if (ctx.sends_kid_context()) {
      fields.has_kid_context = true;
      fields.kid_context = *ctx.id_context();
      if (ctx.wraps_kid_context()) {
        if (auto ec = wrap_kid_context(fields.kid_context, wrapped.emplace())) return ec;
        fields.kid_context = wrapped->bytes();
      }
    }
    option_value value;
    if (auto ec = encode_option_value(fields, value)) return ec;
    outer.add_option(detail::oscore_option, value.bytes());

    outer.set_code(observe ? coap::code(method::fetch) : coap::code(method::post));
    detail::copy_header(original, outer);
    outer.set_payload(scratch.ciphertext);

    binding = request_binding{};
    binding.request_kid.assign(ctx.sender_id());
    binding.request_piv = piv;
    binding.observe = registration;
    binding.request_nonce = n;
    return {};
  });
}

// Section 8.2 with a server's many contexts: `find_context(fields)` returns the context for the
// request's 'kid' and 'kid context', or nullptr (security_context_not_found). A session that
// needs the context for the response records the pointer in its lookup.
template <class Lookup, class Message, class Allocator>
  requires std::is_invocable_r_v<context*, Lookup&, const option_fields&>
std::error_code unprotect_request(Lookup&& find_context, const Message& received, basic_message<Allocator>& out,
                                  request_binding& binding) {
  option_fields fields;
  if (auto ec = detail::read_oscore_option(received, fields)) return ec;
  // Section 5: requests carry both.
  if (fields.partial_iv.empty() || !fields.has_kid) return oscore_error::malformed_message;
  context* ctx = find_context(fields);
  if (!ctx) return oscore_error::security_context_not_found;

  const std::uint64_t sequence_number = decode_partial_iv(fields.partial_iv);
  if (!ctx->recipient_replay_window().is_fresh(sequence_number)) return oscore_error::replay_detected;
  auto& scratch = detail::scratch_access::of(*ctx);
  make_aad(ctx->algorithm(), fields.kid, fields.partial_iv, scratch.aad, scratch.aad_array);
  const nonce n = make_nonce(ctx->common_iv(), ctx->recipient_id(), fields.partial_iv);
  if (auto ec = detail::open(*ctx, n.bytes(), scratch.aad, received.payload(), scratch.plaintext)) return ec;
  ctx->recipient_replay_window().accept(sequence_number);

  return detail::build_into(received, out, [&](basic_message<Allocator>& result) -> std::error_code {
    detail::copy_header(received, result);
    detail::keep_outer_options(received, result);
    if (auto ec = detail::decode_plaintext(scratch.plaintext, true, result)) return ec;
    binding = request_binding{};
    binding.request_kid.assign(fields.kid);
    binding.request_piv.assign(fields.partial_iv);
    binding.request_nonce = n;
    const auto observe = result.find(option_number::observe);
    binding.observe = observe && observe->as_uint() == 0;
    return {};
  });
}

// Section 8.2 with one context: a 'kid' other than its Recipient ID is security_context_not_found.
template <class Message, class Allocator>
std::error_code unprotect_request(context& ctx, const Message& received, basic_message<Allocator>& out,
                                  request_binding& binding) {
  return unprotect_request([&ctx](const option_fields& f) -> context* { return ctx.matches(f) ? &ctx : nullptr; },
                           received, out, binding);
}

// Sections 8.3 and 8.3.1. With `from_request` the first response reuses the request's nonce
// and carries no Partial IV; every later one (notifications) takes a Sender Sequence Number.
// `kid_context`, when not empty, goes as is into the option's 'kid context' (Appendix B.2's R2).
template <class Message, class Allocator>
std::error_code protect_response(context& ctx, request_binding& binding, const Message& original,
                                 basic_message<Allocator>& out,
                                 response_nonce mode = response_nonce::from_request,
                                 std::span<const std::uint8_t> kid_context = {}) {
  if (!original.code().is_response()) return oscore_error::invalid_message;
  auto& scratch = detail::scratch_access::of(ctx);
  return detail::build_into(original, out, [&](basic_message<Allocator>& outer) -> std::error_code {
    const bool observe = original.find(option_number::observe).has_value();
    coap::message& inner = detail::fresh_inner(scratch, original.code());
    if (auto ec = detail::split_options(original, observe, inner, outer)) return ec;
    if (auto ec = detail::encode_plaintext(inner, scratch.plaintext)) return ec;

    const bool own_partial_iv = mode == response_nonce::new_partial_iv || binding.request_nonce_used;
    partial_iv piv;
    nonce n;
    if (own_partial_iv) {
      std::uint64_t sequence_number = 0;
      if (auto ec = ctx.next_sequence_number(sequence_number)) return ec;
      piv = encode_partial_iv(sequence_number);
      n = make_nonce(ctx.common_iv(), ctx.sender_id(), piv.bytes());
    } else {
      n = detail::request_nonce(ctx, binding);
    }
    make_aad(ctx.algorithm(), binding.request_kid.bytes(), binding.request_piv.bytes(), scratch.aad,
             scratch.aad_array);
    if (auto ec = detail::seal(ctx, n.bytes(), scratch.aad, scratch.plaintext, scratch.ciphertext)) return ec;
    if (!own_partial_iv) binding.request_nonce_used = true;

    option_fields fields;
    fields.partial_iv = piv.bytes();
    fields.has_kid_context = !kid_context.empty();
    fields.kid_context = kid_context;
    option_value value;
    if (auto ec = encode_option_value(fields, value)) return ec;
    outer.add_option(detail::oscore_option, value.bytes());
    outer.set_code(observe ? coap::code(response_code::content) : coap::code(response_code::changed));
    detail::copy_header(original, outer);
    outer.set_payload(scratch.ciphertext);
    return {};
  });
}

// Sections 8.4, 8.4.2 and 7.4.1. For a notification with a Partial IV the Observe option of
// the result is the Partial IV's three low bytes (section 4.1.3.5.2), so that RFC 7641
// ordering follows the Partial IV.
// `fields`: the received OSCORE option, read (detail::read_oscore_option) by a caller that
// needed it first.
template <class Message, class Allocator>
std::error_code unprotect_response(context& ctx, request_binding& binding, const Message& received,
                                   const option_fields& fields, basic_message<Allocator>& out) {
  const bool has_piv = !fields.partial_iv.empty();
  const std::uint64_t sequence_number = decode_partial_iv(fields.partial_iv);
  nonce n;
  if (has_piv) {
    if (binding.observe && binding.notification_number && sequence_number <= *binding.notification_number)
      return oscore_error::replay_detected;
    n = make_nonce(ctx.common_iv(), ctx.recipient_id(), fields.partial_iv);
  } else {
    if (binding.request_nonce_used) return oscore_error::replay_detected;
    n = detail::request_nonce(ctx, binding);
  }
  auto& scratch = detail::scratch_access::of(ctx);
  make_aad(ctx.algorithm(), binding.request_kid.bytes(), binding.request_piv.bytes(), scratch.aad, scratch.aad_array);
  if (auto ec = detail::open(ctx, n.bytes(), scratch.aad, received.payload(), scratch.plaintext)) return ec;

  return detail::build_into(received, out, [&](basic_message<Allocator>& result) -> std::error_code {
    detail::copy_header(received, result);
    detail::keep_outer_options(received, result);
    if (auto ec = detail::decode_plaintext(scratch.plaintext, false, result)) return ec;
    const bool inner_observe = result.find(option_number::observe).has_value();
    if (inner_observe && !binding.observe) return oscore_error::unexpected_observe;

    if (!has_piv) binding.request_nonce_used = true;
    if (has_piv && inner_observe) {
      binding.notification_number = sequence_number;
      result.remove_option(detail::observe_option);
      result.add_uint_option(detail::observe_option, static_cast<std::uint32_t>(sequence_number & 0xffffffu));
    }
    return {};
  });
}
template <class Message, class Allocator>
std::error_code unprotect_response(context& ctx, request_binding& binding, const Message& received,
                                   basic_message<Allocator>& out) {
  option_fields fields;
  if (auto ec = detail::read_oscore_option(received, fields)) return ec;
  return unprotect_response(ctx, binding, received, fields, out);
}

}  // namespace coap::oscore_core
