// RFC 7252 section 6 (coap and coaps URIs; 6.4 URI to options, 6.5 options to URI) and
// RFC 8323 section 8 (coap+tcp and coaps+tcp).
// Proxy-Uri and Proxy-Scheme (section 5.10.2) are out of scope here: a proxy forwards the
// text as it is and calls parse_uri itself.
#pragma once

#include <coap/error.hpp>
#include <coap/option.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace coap {

enum class scheme : std::uint8_t { coap, coaps, coap_tcp, coaps_tcp };

// Over (D)TLS.
constexpr bool is_secure(scheme s) noexcept { return s == scheme::coaps || s == scheme::coaps_tcp; }

// Over TCP or TLS (RFC 8323): no message layer, no retransmission.
constexpr bool is_reliable(scheme s) noexcept { return s == scheme::coap_tcp || s == scheme::coaps_tcp; }

// Section 6.1 and 6.2; RFC 8323 section 8.1 and 8.2 reuse the same ports.
constexpr std::uint16_t default_port(scheme s) noexcept { return is_secure(s) ? 5684 : 5683; }

constexpr std::string_view scheme_name(scheme s) noexcept {
  switch (s) {
    case scheme::coap: return "coap";
    case scheme::coaps: return "coaps";
    case scheme::coap_tcp: return "coap+tcp";
    case scheme::coaps_tcp: return "coaps+tcp";
  }
  return {};
}

// The scheme of a name, compared case-insensitively (RFC 3986 section 3.1).
std::optional<scheme> scheme_from_name(std::string_view name) noexcept;

// What the host is: it decides the brackets of to_string and whether a Uri-Host is worth
// sending (section 6.4 step 5).
enum class host_kind : std::uint8_t { name, ipv4, ipv6 };

// A CoAP URI decomposed as section 6.4 does: every component percent-decoded, so that two
// URIs equivalent under section 6.3 compare equal.
struct uri {
  coap::scheme scheme = coap::scheme::coap;
  coap::host_kind host_kind = coap::host_kind::name;
  // A name is percent-decoded and ASCII-lowercase; an IPv4 address as written; an IPv6
  // address without brackets, in RFC 5952 form.
  std::string host;
  // Always set: the scheme's default when the URI names none. An explicit default port is
  // equivalent to none (section 6.3), so it is not remembered.
  std::uint16_t port = default_port(coap::scheme::coap);
  // One decoded segment per Uri-Path; "%2F" stays inside its segment. Empty for "" and "/".
  std::vector<std::string> path;
  // One decoded item per Uri-Query, split on "&".
  std::vector<std::string> query;

  friend bool operator==(const uri&, const uri&) = default;
};

// Section 6.4 steps 1 to 9, with Boost.URL checking the RFC 3986 syntax. Errors:
// invalid_uri (not an absolute URI, no authority, userinfo, empty host, IPvFuture),
// unsupported_scheme, uri_has_fragment, invalid_port (above 65535). Dot segments are
// removed (step 2); an empty port means the default one. On error `out` is valid but
// unspecified.
std::error_code parse_uri(std::string_view text, uri& out);

// Section 6.5, returning the URI text: reg-names and segments percent-encoded, IPv6 in
// brackets, the default port omitted, "/" for an empty path. Two deviations keep
// parse_uri(to_string(u)) == u: "&" inside a query item is escaped, and the segments "."
// and ".." are written "%2E" and "%2E%2E". A path of one empty segment cannot survive: it
// is written "/", which means no segment.
std::string to_string(const uri& u);

namespace detail {
// Boost.URL 1.81 fails an assertion (in builds with assertions) on a scheme, ":" and one
// character that begins no path segment, such as "coap:#": its hier_part_rule counts a
// segment in an empty path. For text of the shape scheme ":" one-character, this decides
// without Boost.URL whether the text is a URI; for any other text it gives std::nullopt.
std::optional<bool> scheme_and_one_char_is_uri(std::string_view text) noexcept;
// Section 6.5 step 2 for one host text (a Uri-Host value, or the request's destination
// address, brackets optional for IPv6 there).
std::error_code assign_host(std::string_view text, bool from_uri_host, uri& out);
// The registered length bounds of a Uri-* option (section 5.10).
std::error_code check_uri_option_length(std::uint16_t number, std::size_t length) noexcept;
}  // namespace detail

// Section 6.4 steps 5, 7, 8 and 9: adds Uri-Host, Uri-Port, Uri-Path and Uri-Query options.
// Steps 5 and 7 compare against the request's destination, which only the caller knows:
//   include_host: the destination is not the IP literal in `u` (usually: u.host_kind is
//     host_kind::name, or the request goes through a proxy). An IPv6 host is bracketed.
//   include_port: the destination port is not u.port (e.g. a proxy).
// Option lengths (255 per segment) are checked by the codec when the message is encoded.
// Message needs add_string_option(uint16_t, string_view) and add_uint_option(uint16_t,
// uint32_t).
template <class Message>
void add_uri_options(Message& m, const uri& u, bool include_host, bool include_port = false) {
  if (include_host) {
    if (u.host_kind == host_kind::ipv6)
      m.add_string_option(static_cast<std::uint16_t>(option_number::uri_host), "[" + u.host + "]");
    else
      m.add_string_option(static_cast<std::uint16_t>(option_number::uri_host), u.host);
  }
  if (include_port) m.add_uint_option(static_cast<std::uint16_t>(option_number::uri_port), u.port);
  for (const auto& segment : u.path)
    m.add_string_option(static_cast<std::uint16_t>(option_number::uri_path), segment);
  for (const auto& item : u.query)
    m.add_string_option(static_cast<std::uint16_t>(option_number::uri_query), item);
}

// Section 6.5: the request URI from its Uri-* options, the transport's scheme and the
// request's destination (the local address and port a server received it on). A Uri-Host
// is taken as decoded text, as section 6.4 step 5 produced it; "[...]" must hold an IPv6
// address. Errors: option_not_repeatable (a second Uri-Host or Uri-Port),
// option_value_length (outside the registered bounds), invalid_uri (a bad IP literal or an
// empty destination). On error `out` is valid but unspecified.
// Message needs options() yielding values with number(), value() and as_string().
template <class Message>
std::error_code uri_from_options(const Message& m, scheme s, std::string_view default_host,
                                 std::uint16_t default_port, uri& out) {
  out.scheme = s;
  out.path.clear();
  out.query.clear();
  std::string_view host = default_host;
  bool host_from_option = false;
  bool port_from_option = false;
  std::uint16_t port = default_port;
  for (auto&& o : m.options()) {
    const std::uint16_t number = o.number();
    switch (static_cast<option_number>(number)) {
      case option_number::uri_host:
      case option_number::uri_port:
      case option_number::uri_path:
      case option_number::uri_query:
        break;
      default:
        continue;
    }
    if (auto ec = detail::check_uri_option_length(number, o.value().size())) return ec;
    switch (static_cast<option_number>(number)) {
      case option_number::uri_host:
        if (host_from_option) return error::option_not_repeatable;
        host_from_option = true;
        host = o.as_string();
        break;
      case option_number::uri_port: {
        if (port_from_option) return error::option_not_repeatable;
        port_from_option = true;
        std::uint16_t value = 0;  // at most two bytes, checked above
        for (std::uint8_t b : o.value()) value = static_cast<std::uint16_t>((value << 8) | b);
        port = value;
        break;
      }
      case option_number::uri_path:
        out.path.emplace_back(o.as_string());
        break;
      default:
        out.query.emplace_back(o.as_string());
        break;
    }
  }
  out.port = port;
  return detail::assign_host(host, host_from_option, out);
}

}  // namespace coap
