// RFC 7252 section 6.4 and 6.5: CoAP URIs to options and back, on top of Boost.URL.
#include <coap/uri.hpp>

// Boost.URL is header-only here: its implementation is compiled in this one translation unit
// of the library, and nowhere else.
#include <boost/url/src.hpp>

#include <boost/url/encode.hpp>
#include <boost/url/grammar/lut_chars.hpp>
#include <boost/url/ipv4_address.hpp>
#include <boost/url/ipv6_address.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/rfc/pchars.hpp>
#include <boost/url/rfc/sub_delim_chars.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>
#include <boost/url/url_view.hpp>

#include <algorithm>
#include <array>

namespace coap {
namespace {

namespace urls = boost::urls;

// Section 6.5 steps 6 and 8: what may stay unescaped. "&" is escaped in a query item, unlike
// step 8, or the item would split in two when parsed again.
constexpr urls::grammar::lut_chars reg_name_chars = urls::unreserved_chars + urls::sub_delim_chars;
constexpr urls::grammar::lut_chars segment_chars = reg_name_chars + ":@";
constexpr urls::grammar::lut_chars query_item_chars = (reg_name_chars + ":@/?") - '&';

constexpr char ascii_lower(char c) noexcept {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

void lowercase(std::string& s) noexcept {
  std::transform(s.begin(), s.end(), s.begin(), ascii_lower);
}

bool equals_ignore_case(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return ascii_lower(x) == ascii_lower(y); });
}

// Decodes into `out`, reusing its capacity.
void decode_into(urls::pct_string_view encoded, std::string& out) {
  encoded.decode({}, urls::string_token::assign_to(out));
}

// Section 6.4 step 6. The grammar guarantees digits only; leading zeros are allowed.
std::error_code parse_port(std::string_view digits, std::uint16_t& out) noexcept {
  std::uint32_t value = 0;
  for (char c : digits) {
    value = value * 10 + static_cast<std::uint32_t>(c - '0');
    if (value > 65535) return error::invalid_port;
  }
  out = static_cast<std::uint16_t>(value);
  return {};
}

// RFC 3986 section 5.2.4 over the encoded segments (the "resolve" of section 6.4 step 2).
// Only literal "." and ".." are dot segments: "%2E" is data, as it is in reference resolution.
void remove_dot_segments(const urls::segments_encoded_view& in,
                         std::vector<urls::pct_string_view>& out) {
  out.clear();
  const auto last = in.size();
  std::size_t index = 0;
  for (urls::pct_string_view segment : in) {
    const bool is_last = ++index == last;
    const std::string_view text(segment.data(), segment.size());
    if (text == "." || text == "..") {
      if (text == ".." && !out.empty()) out.pop_back();
      if (is_last) out.emplace_back();  // "/a/." and "/a/b/.." end with "/"
      continue;
    }
    out.push_back(segment);
  }
}

void append_port(std::string& out, std::uint16_t port) {
  std::array<char, 5> digits{};
  std::size_t n = 0;
  do {
    digits[n++] = static_cast<char>('0' + port % 10);
    port = static_cast<std::uint16_t>(port / 10);
  } while (port != 0);
  out += ':';
  while (n != 0) out += digits[--n];
}

template <class CharSet>
void append_encoded(std::string& out, std::string_view text, const CharSet& allowed) {
  urls::encode(text, allowed, {}, urls::string_token::append_to(out));
}

}  // namespace

std::optional<scheme> scheme_from_name(std::string_view name) noexcept {
  for (auto s : {scheme::coap, scheme::coaps, scheme::coap_tcp, scheme::coaps_tcp})
    if (equals_ignore_case(name, scheme_name(s))) return s;
  return std::nullopt;
}

std::error_code parse_uri(std::string_view text, uri& out) {
  if (auto is_uri = detail::scheme_and_one_char_is_uri(text)) {
    // A URI, if at all, without an authority: steps 1, 3 and 4, then section 6.1's "//".
    if (!*is_uri) return error::invalid_uri;
    if (!scheme_from_name(text.substr(0, text.size() - 2))) return error::unsupported_scheme;
    if (text.back() == '#') return error::uri_has_fragment;
    return error::invalid_uri;
  }
  // Step 1: an absolute URI (a scheme is required; a fragment is checked in step 4).
  auto parsed = urls::parse_uri(urls::string_view(text.data(), text.size()));
  if (!parsed) return error::invalid_uri;
  const urls::url_view& v = *parsed;

  // Step 3.
  const auto s = scheme_from_name(std::string_view(v.scheme().data(), v.scheme().size()));
  if (!s) return error::unsupported_scheme;
  // Step 4.
  if (v.has_fragment()) return error::uri_has_fragment;
  // Section 6.1 and 6.2: "//" host [":" port], with no userinfo.
  if (!v.has_authority() || v.has_userinfo()) return error::invalid_uri;
  // RFC 3986 section 3.3: after an authority the path is empty or starts with "/". Boost.URL
  // 1.81 reads "coap://h:80x/" as port 80 and path "x/" (boostorg/url issues 636 and 680).
  if (!v.encoded_path().empty() && v.encoded_path().front() != '/') return error::invalid_uri;
  out.scheme = *s;

  // Step 5: the host, percent-decoded. A name is lowercased after decoding too, not only
  // before as step 5 says: "%41" and "a" then name the same host, as RFC 3986 section 3.2.2
  // has it, and to_string's output parses back to the same uri.
  switch (v.host_type()) {
    case urls::host_type::ipv4:
      out.host_kind = host_kind::ipv4;
      out.host.assign(v.encoded_host().data(), v.encoded_host().size());
      break;
    case urls::host_type::ipv6:
      out.host_kind = host_kind::ipv6;
      out.host = v.host_ipv6_address().to_string();
      break;
    case urls::host_type::name:
      if (v.encoded_host().empty()) return error::invalid_uri;
      out.host_kind = host_kind::name;
      decode_into(v.encoded_host(), out.host);
      lowercase(out.host);
      // "%31.2.3.4" is "1.2.3.4" once percent-encoding is normalized (RFC 3986 section
      // 6.2.2.2), and to_string would write it so.
      if (urls::parse_ipv4_address(urls::string_view(out.host.data(), out.host.size())))
        out.host_kind = host_kind::ipv4;
      break;
    default:  // IPvFuture: no CoAP transport knows one
      return error::invalid_uri;
  }

  // Step 6.
  out.port = default_port(*s);
  if (v.has_port() && !v.port().empty()) {
    if (auto ec = parse_port(std::string_view(v.port().data(), v.port().size()), out.port)) return ec;
  }

  // Steps 2 and 8: "" and "/" give no Uri-Path.
  std::vector<urls::pct_string_view> segments;
  remove_dot_segments(v.encoded_segments(), segments);
  if (segments.size() == 1 && segments.front().empty()) segments.clear();
  out.path.resize(segments.size());
  for (std::size_t i = 0; i < segments.size(); ++i) decode_into(segments[i], out.path[i]);

  // Step 9, split on "&". A "?" with nothing after it gives no Uri-Query.
  out.query.clear();
  const urls::pct_string_view query = v.encoded_query();
  if (v.has_query() && !query.empty()) {
    std::string_view rest(query.data(), query.size());
    for (;;) {
      const auto amp = rest.find('&');
      // A piece of a valid query between "&"s is valid pct-encoded text.
      auto piece = urls::make_pct_string_view(urls::string_view(rest.data(), std::min(amp, rest.size())));
      if (!piece) return error::invalid_uri;
      decode_into(*piece, out.query.emplace_back());
      if (amp == std::string_view::npos) break;
      rest.remove_prefix(amp + 1);
    }
  }
  return {};
}

std::string to_string(const uri& u) {
  std::string out;
  out.reserve(32 + u.host.size());
  // Steps 1 to 3.
  out += scheme_name(u.scheme);
  out += "://";
  switch (u.host_kind) {
    case host_kind::ipv6:
      out += '[';
      out += u.host;
      out += ']';
      break;
    case host_kind::ipv4:
      out += u.host;
      break;
    case host_kind::name:
      append_encoded(out, u.host, reg_name_chars);
      break;
  }
  // Steps 4 and 5.
  if (u.port != default_port(u.scheme)) append_port(out, u.port);
  // Steps 6 and 7.
  if (u.path.empty()) out += '/';
  for (const auto& segment : u.path) {
    out += '/';
    if (segment == ".")
      out += "%2E";
    else if (segment == "..")
      out += "%2E%2E";
    else
      append_encoded(out, segment, segment_chars);
  }
  // Step 8.
  char separator = '?';
  for (const auto& item : u.query) {
    out += separator;
    separator = '&';
    append_encoded(out, item, query_item_chars);
  }
  return out;
}

namespace detail {

std::optional<bool> scheme_and_one_char_is_uri(std::string_view text) noexcept {
  // RFC 3986 section 3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
  constexpr urls::grammar::lut_chars scheme_chars =
      urls::grammar::lut_chars("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.");
  if (text.size() < 3 || text[text.size() - 2] != ':') return std::nullopt;
  const std::string_view name = text.substr(0, text.size() - 2);
  const char first = name.front();
  if (!((first >= 'a' && first <= 'z') || (first >= 'A' && first <= 'Z'))) return std::nullopt;
  if (!std::all_of(name.begin(), name.end(), [&](char c) { return scheme_chars(static_cast<unsigned char>(c)); })) return std::nullopt;
  // A one-character path (path-absolute or path-rootless), or an empty path with an empty
  // query or fragment.
  const char last = text.back();
  return urls::pchars(static_cast<unsigned char>(last)) || last == '/' || last == '?' || last == '#';
}

std::error_code assign_host(std::string_view text, bool from_uri_host, uri& out) {
  if (text.empty()) return error::invalid_uri;
  if (text.front() == '[') {
    if (text.size() < 2 || text.back() != ']') return error::invalid_uri;
    text = text.substr(1, text.size() - 2);
    auto v6 = urls::parse_ipv6_address(urls::string_view(text.data(), text.size()));
    if (!v6) return error::invalid_uri;
    out.host_kind = host_kind::ipv6;
    out.host = v6->to_string();
    return {};
  }
  if (urls::parse_ipv4_address(urls::string_view(text.data(), text.size()))) {
    out.host_kind = host_kind::ipv4;
    out.host.assign(text);
    return {};
  }
  // A destination address as an address library prints it: IPv6 without brackets.
  if (!from_uri_host) {
    if (auto v6 = urls::parse_ipv6_address(urls::string_view(text.data(), text.size()))) {
      out.host_kind = host_kind::ipv6;
      out.host = v6->to_string();
      return {};
    }
  }
  // Any other text is a reg-name in decoded form; to_string encodes what needs it.
  out.host_kind = host_kind::name;
  out.host.assign(text);
  lowercase(out.host);
  return {};
}

std::error_code check_uri_option_length(std::uint16_t number, std::size_t length) noexcept {
  const option_definition* d = find_option(number);
  if (d && (length < d->min_length || length > d->max_length)) return error::option_value_length;
  return {};
}

}  // namespace detail
}  // namespace coap
