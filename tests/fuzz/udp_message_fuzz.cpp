// RFC 7252 section 3: fuzzes udp_codec::parse and checks that what it accepts survives a
// round trip through udp_codec::encode, from the view and from a coap::message copy.
//
// The option and header encodings of section 3 and 3.1 are canonical (a value has exactly one
// encoding: nibble 13 means 13..268, 14 means 269..65804), so a datagram that parses and may
// be sent must re-encode to the very same bytes. Every violated property traps.
#include <coap/message.hpp>
#include <coap/message_view.hpp>
#include <coap/option.hpp>
#include <coap/udp_codec.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <system_error>
#include <vector>

namespace {

using bytes = std::span<const std::uint8_t>;

void check(bool condition) {
  if (!condition) __builtin_trap();
}

bool same_bytes(bytes a, bytes b) { return std::ranges::equal(a, b); }

bool is(std::error_code ec, coap::error e) { return ec == coap::make_error_code(e); }

// The errors parse may report: all of them name a rule of the message format.
bool is_parse_error(std::error_code ec) {
  using coap::error;
  for (error e : {error::truncated_header, error::unsupported_version, error::invalid_token_length,
                  error::truncated_token, error::reserved_option_nibble, error::truncated_option,
                  error::option_number_overflow, error::payload_marker_without_payload,
                  error::empty_message_not_empty})
    if (is(ec, e)) return true;
  return false;
}

// The rules that encoding enforces and parsing (rightly) does not, each recomputed here from
// the view's fields: a parsed message may break any of them, and encode must then refuse
// with one of the rules actually broken.
struct encode_violations {
  bool reserved_code_class = false;   // class 1, 6 or 7 may not be sent over UDP
  bool invalid_message = false;       // ACK with a request code, RST with a non-empty code
  bool option_value_length = false;   // outside the registered bounds of a known option
  bool option_not_repeatable = false; // a non-repeatable option given twice

  bool any() const {
    return reserved_code_class || invalid_message || option_value_length || option_not_repeatable;
  }
  bool allows(std::error_code ec) const {
    using coap::error;
    return (reserved_code_class && is(ec, error::reserved_code_class)) ||
           (invalid_message && is(ec, error::invalid_message)) ||
           (option_value_length && is(ec, error::option_value_length)) ||
           (option_not_repeatable && is(ec, error::option_not_repeatable));
  }
};

encode_violations find_violations(const coap::message_view& v) {
  encode_violations out;
  const unsigned cls = v.code().code_class();
  out.reserved_code_class = cls == 1 || cls == 6 || cls == 7;
  out.invalid_message =
      (v.type() == coap::message_type::acknowledgement && cls == 0 && v.code().raw() != 0) ||
      (v.type() == coap::message_type::reset && v.code().raw() != 0);
  std::uint32_t previous = 0x10000;  // no option yet
  for (coap::option_view o : v.options()) {
    if (const coap::option_definition* def = coap::find_option(o.number())) {
      if (o.value().size() < def->min_length || o.value().size() > def->max_length)
        out.option_value_length = true;
      if (o.number() == previous && !def->repeatable) out.option_not_repeatable = true;
    }
    previous = o.number();
  }
  return out;
}

struct option_copy {
  std::uint16_t number;
  bytes value;
  friend bool operator==(const option_copy& a, const option_copy& b) {
    return a.number == b.number && same_bytes(a.value, b.value);
  }
};

template <class Message>
std::vector<option_copy> options_of(const Message& m) {
  std::vector<option_copy> out;
  for (coap::option_view o : m.options()) out.push_back({o.number(), o.value()});
  return out;
}

template <class A, class B>
void check_same_fields(const A& a, const B& b) {
  check(a.type() == b.type());
  check(a.code() == b.code());
  check(a.message_id() == b.message_id());
  check(same_bytes(a.token(), b.token()));
  check(options_of(a) == options_of(b));
  check(same_bytes(a.payload(), b.payload()));
}

// The view borrows the datagram: its parts lie inside it, in order, and the header fields
// are those parse_header reads.
void check_view_layout(bytes datagram, const coap::message_view& v) {
  coap::udp_codec::header h{};
  check(!coap::udp_codec::parse_header(datagram, h));
  check(h.version == coap::udp_codec::version);
  check(h.type == v.type() && h.code == v.code() && h.message_id == v.message_id());
  check(h.token_length == v.token().size() && v.token().size() <= 8);
  if (!v.token().empty()) check(v.token().data() == datagram.data() + 4);
  const std::uint8_t* end = datagram.data() + datagram.size();
  if (!v.payload().empty()) {
    check(v.payload().data() + v.payload().size() == end);
    check(v.payload().data()[-1] == coap::detail::payload_marker);
  }
  if (v.code().is_empty()) check(v.token().empty() && v.options().empty() && v.payload().empty());

  // Options ascend, and find/count agree with iteration.
  std::uint32_t previous = 0;
  std::size_t n = 0;
  for (coap::option_view o : v.options()) {
    check(o.number() >= previous);
    check(o.value().empty() || (o.value().data() >= datagram.data() &&
                                o.value().data() + o.value().size() <= end));
    if (o.number() != previous || n == 0) {
      auto found = v.find(o.number());
      check(found && same_bytes(found->value(), o.value()));
    }
    previous = o.number();
    ++n;
  }
  if (n != 0) check(v.count(static_cast<std::uint16_t>(previous)) >= 1);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const bytes datagram(data, size);
  coap::message_view view;
  if (const std::error_code ec = coap::udp_codec::parse(datagram, view)) {
    check(is_parse_error(ec));
    return 0;
  }
  check_view_layout(datagram, view);

  const encode_violations violations = find_violations(view);
  std::vector<std::uint8_t> encoded(size + 16);
  std::size_t written = 0;
  const std::error_code encode_ec = coap::udp_codec::encode(view, encoded, written);

  // A copy into an owning message must behave exactly as the view it came from.
  coap::message copy;
  copy.assign(view);
  check_same_fields(view, copy);

  if (violations.any()) {
    check(encode_ec && violations.allows(encode_ec));
    std::size_t ignored = 0;
    check(coap::udp_codec::encode(copy, encoded, ignored) == encode_ec);
    return 0;
  }
  check(!encode_ec);

  // Canonical encoding: the datagram comes back unchanged, and encoded_size said so.
  check(written == size);
  check(same_bytes(bytes(encoded.data(), written), datagram));
  std::size_t predicted = 0;
  check(!coap::udp_codec::encoded_size(view, predicted) && predicted == written);

  // Parse the re-encoded bytes again: same fields.
  coap::message_view again;
  check(!coap::udp_codec::parse(bytes(encoded.data(), written), again));
  check_same_fields(view, again);

  // The owning copy encodes to identical bytes, through both encode overloads.
  std::vector<std::uint8_t> from_copy(size + 16);
  std::size_t copy_written = 0;
  check(!coap::udp_codec::encode(copy, from_copy, copy_written));
  check(same_bytes(bytes(from_copy.data(), copy_written), bytes(encoded.data(), written)));
  std::vector<std::uint8_t> resized;
  check(!coap::udp_codec::encode(copy, resized));
  check(same_bytes(resized, bytes(encoded.data(), written)));

  // One byte short is refused, not overrun.
  std::size_t short_written = 0;
  check(is(coap::udp_codec::encode(view, std::span<std::uint8_t>(from_copy.data(), written - 1),
                                   short_written),
           coap::error::buffer_too_small));
  return 0;
}
