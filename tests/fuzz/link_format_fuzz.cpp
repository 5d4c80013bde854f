// RFC 6690 section 2 and 4.1: fuzzes parse_link_format and checks that what it accepts
// survives write_link_format and a second parse unchanged, and that the query filter finds
// each link by its own target and attributes. Every violated property traps.
#include <coap/link_format.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace {

void check(bool condition) {
  if (!condition) __builtin_trap();
}

bool equals_ignore_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

// Section 4.1 as link_matches documents it, for a link and its own parts.
void check_filter(const coap::link& l) {
  check(coap::link_matches(l, "href=" + l.target));
  check(coap::link_matches(l, "href"));
  for (const coap::link_attribute& a : l.attributes) {
    check(l.find(a.name) != nullptr);
    if (equals_ignore_case(a.name, "href")) continue;  // "href" names the target instead
    check(coap::link_matches(l, a.name));
    check(coap::link_matches(l, a.name + "=" + a.value.value_or("")));
    // A pattern ending in "*" is a prefix: the empty prefix matches any value.
    check(coap::link_matches(l, a.name + "=*"));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  std::vector<coap::link> links;
  if (const std::error_code ec = coap::parse_link_format(text, links)) {
    check(ec == coap::make_error_code(coap::error::invalid_link_format));
    return 0;
  }
  check(text.empty() == links.empty());

  const std::string written = coap::write_link_format(links);
  std::vector<coap::link> again;
  check(!coap::parse_link_format(written, again));
  check(again == links);
  check(coap::write_link_format(again) == written);

  // The streaming writer continues a list already in the string, as write_link_format does.
  std::string streamed;
  coap::link_format_writer writer(streamed);
  for (const coap::link& l : links) writer.add(l);
  check(streamed == written);

  // Parsing appends: a second parse into the same vector doubles it.
  check(!coap::parse_link_format(written, again));
  check(again.size() == 2 * links.size());

  for (const coap::link& l : links) check_filter(l);
  return 0;
}
