// RFC 8613 sections 6.1, 8.2 and 8.4: fuzzes the OSCORE option parser, the unprotect path of
// requests and responses, and the coap-oscore-conf(5) parser. The first byte picks the target:
//   0: decode_option_value on up to 255 bytes; what it accepts re-encodes to the very same
//      bytes (section 6.1 has one encoding per value)
//   1-3: a UDP datagram to unprotect_request with the server contexts of Appendix C.1, C.2
//      and C.3; a request that fails gets a section 8.2 reply unless it was not OSCORE at
//      all, and one that verifies is a replay the second time
//   4: a UDP datagram to unprotect_response with the C.1 client context, for the request of
//      C.4 (kid empty, Partial IV 0x14), as C.7 and C.8 answer it
//   5: parse_conf; a file it accepts yields contexts the core accepts, for every recipient
// Seeds: tests/fuzz/corpus/oscore_fuzz (the Appendix C vectors and libcoap 4.3.5's files).
// Every violated property traps.
#include <coap/message.hpp>
#include <coap/message_view.hpp>
#include <coap/security/oscore.hpp>
#include <coap/security/oscore/conf_file.hpp>
#include <coap/udp_codec.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <system_error>
#include <vector>

namespace {

namespace oscore = coap::oscore_core;
using bytes = std::span<const std::uint8_t>;

void check(bool condition) {
  if (!condition) __builtin_trap();
}

const std::vector<std::uint8_t> master_secret{0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
                                              0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10};
const std::vector<std::uint8_t> master_salt{0x9e, 0x7c, 0xa9, 0x22, 0x23, 0x78, 0x63, 0x40};
const std::vector<std::uint8_t> id_context{0x37, 0xcb, 0xf3, 0x21, 0x00, 0x17, 0xa2, 0xd3};

// Appendix C.1 (salt), C.2 (no salt, IDs 00/01) and C.3 (ID Context), client or server.
oscore::context_params appendix_c(int which, bool client) {
  oscore::context_params p;
  p.master_secret = master_secret;
  if (which != 2) p.master_salt = master_salt;
  if (which == 2) {
    p.sender_id = {static_cast<std::uint8_t>(client ? 0x00 : 0x01)};
    p.recipient_id = {static_cast<std::uint8_t>(client ? 0x01 : 0x00)};
  } else {
    p.sender_id = client ? std::vector<std::uint8_t>{} : std::vector<std::uint8_t>{0x01};
    p.recipient_id = client ? std::vector<std::uint8_t>{0x01} : std::vector<std::uint8_t>{};
  }
  if (which == 3) p.id_context = id_context;
  return p;
}

void option_value(bytes data) {
  // Section 2: the option is at most 255 bytes. (decode_option_value itself does not check
  // the length: a longer value decodes, with a 'kid' no context has.)
  if (data.size() > oscore::max_option_value_length) return;
  oscore::option_fields fields;
  if (oscore::decode_option_value(data, fields)) return;
  // The spans point into the input.
  for (bytes part : {fields.partial_iv, fields.kid, fields.kid_context})
    check(part.empty() || (part.data() >= data.data() && part.data() + part.size() <= data.data() + data.size()));
  check(fields.partial_iv.size() <= oscore::max_partial_iv_length);
  oscore::option_value encoded;
  check(!oscore::encode_option_value(fields, encoded));
  check(std::ranges::equal(encoded.bytes(), data));
}

void request(int which, bytes data) {
  coap::message_view view;
  if (coap::udp_codec::parse(data, view)) return;
  oscore::context server(appendix_c(which, false));
  coap::message out;
  oscore::request_binding binding;
  const auto ec = oscore::unprotect_request(server, view, out, binding);
  if (ec) {
    check(ec.category() == coap::oscore_error_category());
    check(ec == coap::oscore_error::not_protected || coap::error_reply(ec).has_value());
    return;
  }
  check(out.code().is_request());
  check(!out.find(coap::option_number::oscore).has_value());
  check(oscore::unprotect_request(server, view, out, binding) == coap::oscore_error::replay_detected);
}

void response(bytes data) {
  coap::message_view view;
  if (coap::udp_codec::parse(data, view)) return;
  oscore::context client(appendix_c(1, true));
  oscore::request_binding binding;
  const std::uint8_t piv = 0x14;
  binding.request_piv.assign({&piv, 1});
  coap::message out;
  const auto ec = oscore::unprotect_response(client, binding, view, out);
  if (ec) {
    check(ec.category() == coap::oscore_error_category());
    return;
  }
  check(out.code().is_response());
  check(!out.find(coap::option_number::oscore).has_value());
  // The request's nonce serves one response only (section 7.4.1): the same response without a
  // Partial IV a second time is a replay.
  const auto option = view.find(coap::option_number::oscore);
  oscore::option_fields fields;
  check(option.has_value() && !oscore::decode_option_value(option->value(), fields));
  if (fields.partial_iv.empty())
    check(oscore::unprotect_response(client, binding, view, out) == coap::oscore_error::replay_detected);
}

void conf(bytes data) {
  const std::string_view text(reinterpret_cast<const char*>(data.data()), data.size());
  oscore::conf c;
  oscore::conf_diagnostic where;
  if (oscore::parse_conf(text, c, where)) {
    check(!where.reason.empty());
    return;
  }
  for (std::size_t i = 0; i < c.recipient_ids.size(); ++i) {
    oscore::context_params p;
    check(!c.params(i, p));
    oscore::derived_keys keys;
    check(!oscore::derive_keys(p, keys));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const bytes rest(data + 1, size - 1);
  switch (data[0] % 6) {
    case 0: option_value(rest); break;
    case 1: request(1, rest); break;
    case 2: request(2, rest); break;
    case 3: request(3, rest); break;
    case 4: response(rest); break;
    case 5: conf(rest); break;
  }
  return 0;
}
