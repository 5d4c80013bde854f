// RFC 8323 section 3.2: fuzzes tcp_codec::frame_size and tcp_codec::parse, and checks that
// an accepted frame survives a round trip through tcp_codec::encode, from the view and from a
// coap::message copy.
//
// Len and the option fields are canonical (Len nibble 13 means 13..268, 14 means 269..65804,
// 15 means 65805 and up), so a frame that parses and may be sent re-encodes to the same
// bytes. Every violated property traps.
#include <coap/message.hpp>
#include <coap/message_view.hpp>
#include <coap/option.hpp>
#include <coap/tcp_codec.hpp>

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

// Errors of a frame whose length agrees with frame_size: the body itself is malformed.
bool is_body_error(std::error_code ec) {
  using coap::error;
  for (error e : {error::reserved_option_nibble, error::truncated_option,
                  error::option_number_overflow, error::payload_marker_without_payload})
    if (is(ec, e)) return true;
  return false;
}

// Rules that encoding enforces and parsing does not, recomputed from the view's fields.
struct encode_violations {
  bool reserved_code_class = false;   // class 1 or 6
  bool option_value_length = false;   // outside the registered bounds (signal registry for 7.xx)
  bool option_not_repeatable = false;

  bool any() const { return reserved_code_class || option_value_length || option_not_repeatable; }
  bool allows(std::error_code ec) const {
    using coap::error;
    return (reserved_code_class && is(ec, error::reserved_code_class)) ||
           (option_value_length && is(ec, error::option_value_length)) ||
           (option_not_repeatable && is(ec, error::option_not_repeatable));
  }
};

encode_violations find_violations(const coap::message_view& v) {
  encode_violations out;
  const unsigned cls = v.code().code_class();
  out.reserved_code_class = cls == 1 || cls == 6;
  std::uint32_t previous = 0x10000;
  for (coap::option_view o : v.options()) {
    const coap::option_definition* def = cls == 7 ? coap::find_signal_option(v.code(), o.number())
                                                  : coap::find_option(o.number());
    if (def) {
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

// Type and message ID do not exist on TCP: only what the frame carries is compared.
template <class A, class B>
void check_same_fields(const A& a, const B& b) {
  check(a.code() == b.code());
  check(same_bytes(a.token(), b.token()));
  check(options_of(a) == options_of(b));
  check(same_bytes(a.payload(), b.payload()));
}

// What frame_size says of a stream must not change as more bytes arrive: every prefix long
// enough to hold the header gives the same size; shorter ones give 0.
void check_prefixes(bytes stream, std::uint64_t full_size) {
  const std::size_t header = std::min<std::size_t>(stream.size(), 6);
  for (std::size_t k = 0; k <= header; ++k) {
    std::uint64_t size = 1;
    const std::error_code ec = coap::tcp_codec::frame_size(stream.first(k), size);
    check(!ec);
    check(size == 0 || size == full_size);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const bytes frame(data, size);
  std::uint64_t announced = 0;
  const std::error_code size_ec = coap::tcp_codec::frame_size(frame, announced);
  coap::message_view view;
  const std::error_code parse_ec = coap::tcp_codec::parse(frame, view);

  // frame_size and parse agree on the header.
  if (size_ec) {
    check(is(size_ec, coap::error::invalid_token_length));
    check(parse_ec == size_ec);
    return 0;
  }
  check_prefixes(frame, announced);
  if (announced == 0) {
    check(is(parse_ec, coap::error::truncated_header));
    return 0;
  }
  if (announced > size) {
    check(is(parse_ec, coap::error::truncated_header) || is(parse_ec, coap::error::truncated_token) ||
          is(parse_ec, coap::error::truncated_frame));
    return 0;
  }
  if (announced < size) {
    // Trailing bytes are not part of one frame; the first frame alone is what parse takes.
    check(is(parse_ec, coap::error::invalid_message));
    coap::message_view first;
    const std::error_code first_ec =
        coap::tcp_codec::parse(frame.first(static_cast<std::size_t>(announced)), first);
    check(!first_ec || is_body_error(first_ec));
    return 0;
  }
  if (parse_ec) {
    check(is_body_error(parse_ec));
    return 0;
  }

  if (!view.token().empty()) check(view.token().data() + view.token().size() <= data + size);
  if (!view.payload().empty()) {
    check(view.payload().data() + view.payload().size() == data + size);
    check(view.payload().data()[-1] == coap::detail::payload_marker);
  }

  const encode_violations violations = find_violations(view);
  std::vector<std::uint8_t> encoded(size + 16);
  std::size_t written = 0;
  const std::error_code encode_ec = coap::tcp_codec::encode(view, encoded, written);

  coap::message copy;
  copy.assign(view);
  check_same_fields(view, copy);

  if (violations.any()) {
    check(encode_ec && violations.allows(encode_ec));
    std::size_t ignored = 0;
    check(coap::tcp_codec::encode(copy, encoded, ignored) == encode_ec);
    return 0;
  }
  check(!encode_ec);

  // Canonical encoding: the frame comes back unchanged, and encoded_size said so.
  check(written == size);
  check(same_bytes(bytes(encoded.data(), written), frame));
  std::size_t predicted = 0;
  check(!coap::tcp_codec::encoded_size(view, predicted) && predicted == written);

  coap::message_view again;
  check(!coap::tcp_codec::parse(bytes(encoded.data(), written), again));
  check_same_fields(view, again);
  std::uint64_t again_size = 0;
  check(!coap::tcp_codec::frame_size(bytes(encoded.data(), written), again_size) &&
        again_size == written);

  std::vector<std::uint8_t> from_copy(size + 16);
  std::size_t copy_written = 0;
  check(!coap::tcp_codec::encode(copy, from_copy, copy_written));
  check(same_bytes(bytes(from_copy.data(), copy_written), bytes(encoded.data(), written)));
  std::vector<std::uint8_t> resized;
  check(!coap::tcp_codec::encode(copy, resized));
  check(same_bytes(resized, bytes(encoded.data(), written)));

  std::size_t short_written = 0;
  check(is(coap::tcp_codec::encode(view, std::span<std::uint8_t>(from_copy.data(), written - 1),
                                   short_written),
           coap::error::buffer_too_small));
  return 0;
}
