// RFC 6690 section 2 and 4.1: writing, parsing and filtering the CoRE Link Format.
#include <coap/link_format.hpp>

#include <coap/uri.hpp>  // detail::scheme_and_one_char_is_uri

#include <boost/url/parse.hpp>

#include <algorithm>
#include <array>

namespace coap {
namespace {

constexpr char ascii_lower(char c) noexcept {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool equals_ignore_case(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return ascii_lower(x) == ascii_lower(y); });
}

constexpr bool is_alnum(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// RFC 5987 parmname: attr-char without "*", "'" and "%".
constexpr bool is_parmname_char(char c) noexcept {
  return is_alnum(c) || std::string_view("!#$&+-.^_`|~").find(c) != std::string_view::npos;
}

// RFC 6690 section 2 ptokenchar: visible ASCII but for space, '"', ',', ';' and '\'.
constexpr bool is_ptoken_char(char c) noexcept {
  return c > 0x20 && c < 0x7f && c != '"' && c != ',' && c != ';' && c != '\\';
}

constexpr bool is_ctl(unsigned char c) noexcept { return c < 0x20 || c == 0x7f; }

bool is_ptoken(std::string_view s) noexcept {
  return !s.empty() && std::all_of(s.begin(), s.end(), is_ptoken_char);
}

// Parameters whose grammar is quoted (anchor, title) or that libcoap and the RFC's
// examples quote (relation-types).
bool always_quoted(std::string_view name) noexcept {
  for (std::string_view q : {"anchor", "title", "rel", "rev", "rt", "if"})
    if (equals_ignore_case(name, q)) return true;
  return false;
}

// RFC 2616 quoted-string: '"' and '\' escaped, and control characters too (a quoted-pair
// may carry any CHAR; qdtext may not carry CTLs).
void append_quoted(std::string& out, std::string_view value) {
  out += '"';
  for (char c : value) {
    if (c == '"' || c == '\\' || is_ctl(static_cast<unsigned char>(c))) out += '\\';
    out += c;
  }
  out += '"';
}

class parser {
 public:
  explicit parser(std::string_view text) noexcept : text_(text) {}

  std::error_code parse(std::vector<link>& out) {
    if (text_.empty()) return {};
    for (;;) {
      if (!link_value(out.emplace_back())) return error::invalid_link_format;
      if (at_end()) return {};
      if (!consume(',')) return error::invalid_link_format;
    }
  }

 private:
  bool at_end() const noexcept { return pos_ == text_.size(); }
  bool next_is(char c) const noexcept { return pos_ < text_.size() && text_[pos_] == c; }
  bool consume(char c) noexcept {
    if (!next_is(c)) return false;
    ++pos_;
    return true;
  }

  // "<" URI-Reference ">" *( ";" link-param )
  bool link_value(link& l) {
    if (!consume('<')) return false;
    const auto close = text_.find('>', pos_);  // ">" cannot occur in a URI-reference
    if (close == std::string_view::npos) return false;
    const std::string_view target = text_.substr(pos_, close - pos_);
    if (auto is_uri = detail::scheme_and_one_char_is_uri(target)) {
      if (!*is_uri) return false;
    } else {
      auto reference = boost::urls::parse_uri_reference(boost::urls::string_view(target.data(), target.size()));
      if (!reference) return false;
      // Boost.URL 1.81 accepts "//h:80x" as port 80 and path "x" (boostorg/url issue 680).
      const auto path = reference->encoded_path();
      if (reference->has_authority() && !path.empty() && path.front() != '/') return false;
    }
    l.target.assign(target);
    pos_ = close + 1;
    while (consume(';'))
      if (!link_param(l.attributes.emplace_back())) return false;
    return true;
  }

  // parmname ["=" (ptoken / quoted-string)], or ext-name-star "=" ext-value
  bool link_param(link_attribute& a) {
    const auto start = pos_;
    while (pos_ < text_.size() && is_parmname_char(text_[pos_])) ++pos_;
    if (pos_ == start) return false;
    const bool star = consume('*');
    a.name.assign(text_.substr(start, pos_ - start));
    if (!consume('=')) return !star;
    std::string& value = a.value.emplace();
    // An ext-value (charset'lang'pct-encoded) is made of ptoken characters.
    return next_is('"') && !star ? quoted_string(value) : ptoken(value);
  }

  bool ptoken(std::string& value) {
    const auto start = pos_;
    while (pos_ < text_.size() && is_ptoken_char(text_[pos_])) ++pos_;
    value.assign(text_.substr(start, pos_ - start));
    return pos_ != start;
  }

  // RFC 2616 section 2.2: <"> *(qdtext | quoted-pair) <">.
  bool quoted_string(std::string& value) {
    ++pos_;  // the opening quote
    while (pos_ < text_.size()) {
      const auto c = static_cast<unsigned char>(text_[pos_++]);
      if (c == '"') return true;
      if (c == '\\') {
        if (pos_ == text_.size() || static_cast<unsigned char>(text_[pos_]) > 0x7f) return false;
        value += text_[pos_++];
      } else if (is_ctl(c) && c != '\t') {
        return false;
      } else {
        value += static_cast<char>(c);
      }
    }
    return false;  // unterminated
  }

  std::string_view text_;
  std::size_t pos_ = 0;
};

bool pattern_matches(std::string_view value, std::string_view pattern, bool prefix) noexcept {
  return prefix ? value.substr(0, pattern.size()) == pattern : value == pattern;
}

bool value_matches(std::string_view value, std::string_view pattern, bool prefix) noexcept {
  if (pattern_matches(value, pattern, prefix)) return true;
  // Relation types (rt, if, rel) are space-separated lists.
  while (!value.empty()) {
    const auto space = value.find(' ');
    if (pattern_matches(value.substr(0, space), pattern, prefix)) return true;
    if (space == std::string_view::npos) break;
    value.remove_prefix(space + 1);
  }
  return false;
}

}  // namespace

const link_attribute* link::find(std::string_view name) const noexcept {
  for (const auto& a : attributes)
    if (equals_ignore_case(a.name, name)) return &a;
  return nullptr;
}

link_format_writer& link_format_writer::target(std::string_view uri_reference) {
  if (!out_->empty()) *out_ += ',';
  *out_ += '<';
  *out_ += uri_reference;
  *out_ += '>';
  return *this;
}

link_format_writer& link_format_writer::attribute(std::string_view name) {
  *out_ += ';';
  *out_ += name;
  return *this;
}

link_format_writer& link_format_writer::attribute(std::string_view name, std::string_view value) {
  attribute(name);
  *out_ += '=';
  if (always_quoted(name) || !is_ptoken(value))
    append_quoted(*out_, value);
  else
    *out_ += value;
  return *this;
}

link_format_writer& link_format_writer::attribute(std::string_view name, std::uint32_t value) {
  attribute(name);
  *out_ += '=';
  std::array<char, 10> digits{};
  std::size_t n = 0;
  do {
    digits[n++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value != 0);
  while (n != 0) *out_ += digits[--n];
  return *this;
}

link_format_writer& link_format_writer::add(const link& l) {
  target(l.target);
  for (const auto& a : l.attributes) {
    if (a.value)
      attribute(a.name, std::string_view(*a.value));
    else
      attribute(a.name);
  }
  return *this;
}

std::string write_link_format(std::span<const link> links) {
  std::string out;
  link_format_writer writer(out);
  for (const auto& l : links) writer.add(l);
  return out;
}

std::error_code parse_link_format(std::string_view text, std::vector<link>& out) {
  return parser(text).parse(out);
}

bool link_matches(const link& l, std::string_view query_item) {
  const auto equals = query_item.find('=');
  const std::string_view name = query_item.substr(0, equals);
  if (equals == std::string_view::npos) return equals_ignore_case(name, "href") || l.find(name) != nullptr;
  std::string_view pattern = query_item.substr(equals + 1);
  const bool prefix = !pattern.empty() && pattern.back() == '*';
  if (prefix) pattern.remove_suffix(1);
  if (equals_ignore_case(name, "href")) return pattern_matches(l.target, pattern, prefix);
  for (const auto& a : l.attributes)
    if (equals_ignore_case(a.name, name) && value_matches(a.value ? std::string_view(*a.value) : std::string_view(), pattern, prefix))
      return true;
  return false;
}

}  // namespace coap
