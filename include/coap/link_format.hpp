// RFC 6690 section 2: the CoRE Link Format (application/link-format), writing, parsing, and
// the query filter of section 4.1.
#pragma once

#include <coap/error.hpp>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace coap {

// A link-param: `obs` has no value, `rt="temperature-c"` has one (unquoted and unescaped).
struct link_attribute {
  std::string name;
  std::optional<std::string> value;

  friend bool operator==(const link_attribute&, const link_attribute&) = default;
};

// A link-value: the URI-reference between "<" and ">" (kept as written, not decoded) and its
// parameters in order.
struct link {
  std::string target;
  std::vector<link_attribute> attributes;

  // The first attribute of this name (compared case-insensitively, as RFC 8288 section 3
  // has it), or nullptr.
  const link_attribute* find(std::string_view name) const noexcept;

  friend bool operator==(const link&, const link&) = default;
};

// Appends links to a string the caller owns and may reuse, without building `link`
// objects: a server writes /.well-known/core straight from its resource table.
// Preconditions (not checked): a target is a URI-reference, a name is a parmname
// (optionally followed by "*"). Values are quoted when they are not a ptoken, and always for
// anchor, title, rel, rev, rt and if, as RFC 6690's examples and libcoap do.
class link_format_writer {
 public:
  // Continues the list already in `out`, if any.
  explicit link_format_writer(std::string& out) noexcept : out_(&out) {}

  // Starts a link-value.
  link_format_writer& target(std::string_view uri_reference);
  // Adds a parameter to the current link-value.
  link_format_writer& attribute(std::string_view name);
  link_format_writer& attribute(std::string_view name, std::string_view value);
  link_format_writer& attribute(std::string_view name, std::uint32_t value);  // ct, sz
  // A whole link.
  link_format_writer& add(const link& l);

 private:
  std::string* out_;
};

// `</sensors/temp>;rt="temperature-c";if="sensor";ct=0;obs,</x>`.
std::string write_link_format(std::span<const link> links);

// The link-value-list of RFC 6690 section 2, strictly (no whitespace between tokens, no
// empty link-values); the empty string is an empty list. Every parameter is read as a
// link-extension (`parmname ["=" (ptoken / quoted-string)]`, or `parmname* = ext-value`),
// which the specific forms of section 2 are all instances of. Targets must parse as
// URI-references. Errors: invalid_link_format. Links are appended to `out`; on error, `out`
// is valid but unspecified.
std::error_code parse_link_format(std::string_view text, std::vector<link>& out);

// RFC 6690 section 4.1: whether a link passes one decoded Uri-Query item of a discovery
// request, `name=pattern`. The name "href" matches the target, any other name the values
// of the attributes of that name (each whole value, and each of its space-separated values:
// `rt="a b"` passes `rt=b`). A pattern ending in "*" is a prefix. An item without "=" asks
// only for an attribute of that name to be present (`?obs`); a valueless attribute has
// the value "".
bool link_matches(const link& l, std::string_view query_item);

}  // namespace coap
