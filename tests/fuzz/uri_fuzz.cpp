// RFC 7252 section 6.4 and 6.5: fuzzes parse_uri and checks that what it accepts survives
// to_string and a second parse unchanged; and that any path segment or query item, whatever
// its bytes, survives to_string and parse_uri. Every violated property traps.
#include <coap/uri.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

namespace {

void check(bool condition) {
  if (!condition) __builtin_trap();
}

bool is(std::error_code ec, coap::error e) { return ec == coap::make_error_code(e); }

bool is_uri_error(std::error_code ec) {
  return is(ec, coap::error::invalid_uri) || is(ec, coap::error::unsupported_scheme) ||
         is(ec, coap::error::uri_has_fragment) || is(ec, coap::error::invalid_port);
}

// parse_uri(to_string(u)) == u, and to_string is then a fixed point.
void check_round_trip(const coap::uri& u) {
  const std::string text = coap::to_string(u);
  coap::uri again;
  check(!coap::parse_uri(text, again));
  check(again == u);
  check(coap::to_string(again) == text);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  coap::uri parsed;
  if (const std::error_code ec = coap::parse_uri(text, parsed)) {
    check(is_uri_error(ec));
  } else {
    // Section 6.4: a host is always there, the port is explicit, "/" leaves no segment.
    check(!parsed.host.empty());
    check(!(parsed.path.size() == 1 && parsed.path[0].empty()));
    check(coap::scheme_from_name(coap::scheme_name(parsed.scheme)) == parsed.scheme);
    check_round_trip(parsed);
  }

  // The input as a path segment and a query item: to_string must escape whatever they hold.
  // A lone empty segment or query item cannot be written (section 6.4 steps 8 and 9 read
  // "/" and "?" as none), so each is followed by another.
  coap::uri built;
  built.scheme = size % 2 ? coap::scheme::coaps_tcp : coap::scheme::coap;
  built.port = coap::default_port(built.scheme);
  built.host = "example.net";
  built.path = {std::string(text), "x"};
  built.query = {std::string(text), "y"};
  check_round_trip(built);
  return 0;
}
