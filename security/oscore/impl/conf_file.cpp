// RFC 8613 section 3.2 input parameters from libcoap's coap-oscore-conf(5) file format: the
// line grammar, the five encodings, the keywords and their defaults, and the checks of
// sections 3.1 and 3.3 that can be made before deriving keys.
#include <coap/security/oscore/conf_file.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>

namespace coap {
namespace {

class conf_category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "coap.oscore_conf"; }
  std::string message(int ev) const override {
    switch (static_cast<oscore_conf_error>(ev)) {
      case oscore_conf_error::syntax: return "line is not keyword,encoding,value";
      case oscore_conf_error::unknown_encoding: return "unknown encoding";
      case oscore_conf_error::unknown_keyword: return "unknown keyword";
      case oscore_conf_error::encoding_not_allowed: return "encoding not allowed for this keyword";
      case oscore_conf_error::bad_hex: return "bad hex value";
      case oscore_conf_error::bad_integer: return "bad integer value";
      case oscore_conf_error::bad_bool: return "bad bool value (true or false)";
      case oscore_conf_error::unterminated_quote: return "unterminated quoted value";
      case oscore_conf_error::text_after_quote: return "text after the closing quote";
      case oscore_conf_error::unknown_algorithm_name: return "unknown algorithm name";
      case oscore_conf_error::unsupported_algorithm: return "unsupported algorithm";
      case oscore_conf_error::value_out_of_range: return "value out of range";
      case oscore_conf_error::duplicate_keyword: return "keyword given twice";
      case oscore_conf_error::missing_master_secret: return "master_secret not defined";
      case oscore_conf_error::missing_sender_id: return "sender_id not defined";
      case oscore_conf_error::id_too_long: return "ID longer than the AEAD algorithm allows";
      case oscore_conf_error::duplicate_recipient_id: return "recipient_id not unique";
      case oscore_conf_error::too_large: return "configuration too large";
      case oscore_conf_error::bad_sequence_number_file: return "sequence number file is not a decimal number";
    }
    return "unknown OSCORE configuration error";
  }
};

}  // namespace

const std::error_category& oscore_conf_error_category() noexcept {
  static const conf_category instance;
  return instance;
}

}  // namespace coap

namespace coap::oscore_core {
namespace {

using bytes = std::vector<std::uint8_t>;

enum class encoding : unsigned { ascii = 1, hex = 2, integer = 4, text = 8, boolean = 16 };
constexpr unsigned operator|(encoding a, encoding b) { return static_cast<unsigned>(a) | static_cast<unsigned>(b); }
constexpr unsigned bits(encoding e) { return static_cast<unsigned>(e); }

struct encoding_name {
  std::string_view name;
  encoding value;
};
constexpr std::array<encoding_name, 5> encodings{{{"ascii", encoding::ascii},
                                                  {"hex", encoding::hex},
                                                  {"integer", encoding::integer},
                                                  {"text", encoding::text},
                                                  {"bool", encoding::boolean}}};

enum class keyword {
  master_secret,
  master_salt,
  id_context,
  sender_id,
  recipient_id,
  replay_window,
  ssn_freq,
  aead_alg,
  hkdf_alg,
  rfc8613_b_1_2,
  rfc8613_b_2,
  break_sender_key,
  break_recipient_key,
  count
};

struct keyword_spec {
  std::string_view name;
  keyword id;
  unsigned allowed;
};
constexpr unsigned binary = encoding::hex | encoding::ascii;
constexpr std::array<keyword_spec, static_cast<std::size_t>(keyword::count)> keywords{{
    {"master_secret", keyword::master_secret, binary},
    {"master_salt", keyword::master_salt, binary},
    {"id_context", keyword::id_context, binary},
    {"sender_id", keyword::sender_id, binary},
    {"recipient_id", keyword::recipient_id, binary},
    {"replay_window", keyword::replay_window, bits(encoding::integer)},
    {"ssn_freq", keyword::ssn_freq, bits(encoding::integer)},
    {"aead_alg", keyword::aead_alg, encoding::integer | encoding::text},
    {"hkdf_alg", keyword::hkdf_alg, encoding::integer | encoding::text},
    {"rfc8613_b_1_2", keyword::rfc8613_b_1_2, bits(encoding::boolean)},
    {"rfc8613_b_2", keyword::rfc8613_b_2, bits(encoding::boolean)},
    {"break_sender_key", keyword::break_sender_key, bits(encoding::boolean)},
    {"break_recipient_key", keyword::break_recipient_key, bits(encoding::boolean)},
}};

// The IANA COSE names (https://www.iana.org/assignments/cose) of the AEAD algorithms this
// build has; libcoap 4.3.5 knows only the first two by name.
struct algorithm_name {
  std::string_view name;
  aead_algorithm value;
};
constexpr std::array<algorithm_name, 12> aead_names{{
    {"AES-CCM-16-64-128", aead_algorithm::aes_ccm_16_64_128},
    {"AES-CCM-16-64-256", aead_algorithm::aes_ccm_16_64_256},
    {"AES-CCM-64-64-128", aead_algorithm::aes_ccm_64_64_128},
    {"AES-CCM-64-64-256", aead_algorithm::aes_ccm_64_64_256},
    {"AES-CCM-16-128-128", aead_algorithm::aes_ccm_16_128_128},
    {"AES-CCM-16-128-256", aead_algorithm::aes_ccm_16_128_256},
    {"AES-CCM-64-128-128", aead_algorithm::aes_ccm_64_128_128},
    {"AES-CCM-64-128-256", aead_algorithm::aes_ccm_64_128_256},
    {"A128GCM", aead_algorithm::a128gcm},
    {"A192GCM", aead_algorithm::a192gcm},
    {"A256GCM", aead_algorithm::a256gcm},
    {"ChaCha20/Poly1305", aead_algorithm::chacha20_poly1305},
}};

bool is_blank(char c) { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_blank(s.back())) s.remove_suffix(1);
  return s;
}

// Shows a piece of the file in a message, quoted, shortened, control bytes escaped.
std::string quoted(std::string_view s) {
  std::string out = "'";
  const std::size_t limit = 40;
  for (std::size_t i = 0; i < s.size() && i < limit; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c >= 0x7f) {
      static constexpr char digits[] = "0123456789abcdef";
      out += "\\x";
      out += digits[c >> 4];
      out += digits[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > limit) out += "...";
  out += "'";
  return out;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

class parser {
 public:
  parser(conf& out, conf_diagnostic& where) : out_(out), where_(where) {}

  std::error_code run(std::string_view text) {
    out_ = conf{};
    where_ = conf_diagnostic{};
    if (text.size() > max_conf_file_size)
      return fail(0, oscore_conf_error::too_large,
                  "file is " + std::to_string(text.size()) + " bytes, over the limit of " +
                      std::to_string(max_conf_file_size));
    std::size_t line_number = 0;
    while (!text.empty()) {
      ++line_number;
      const std::size_t eol = text.find('\n');
      std::string_view line = text.substr(0, eol);
      text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (auto ec = parse_line(line_number, line)) return ec;
    }
    return finish();
  }

 private:
  std::error_code fail(std::size_t line, oscore_conf_error e, std::string reason) {
    where_.line = line;
    where_.reason = std::move(reason);
    return e;
  }

  std::error_code parse_line(std::size_t n, std::string_view line) {
    if (line.size() > max_conf_line_length)
      return fail(n, oscore_conf_error::too_large,
                  "line is " + std::to_string(line.size()) + " characters, over the limit of " +
                      std::to_string(max_conf_line_length));
    if (line.find('\0') != std::string_view::npos)
      return fail(n, oscore_conf_error::syntax, "line contains a NUL byte");
    const std::string_view content = trim(line);
    if (content.empty() || content.front() == '#') return {};

    const std::size_t c1 = line.find(',');
    const std::size_t c2 = c1 == std::string_view::npos ? c1 : line.find(',', c1 + 1);
    if (c2 == std::string_view::npos)
      return fail(n, oscore_conf_error::syntax, quoted(line) + " is not keyword,encoding,value");
    const std::string_view name = line.substr(0, c1);
    const std::string_view encoding_text = line.substr(c1 + 1, c2 - c1 - 1);
    const std::string_view raw_value = line.substr(c2 + 1);

    const auto spec = std::ranges::find(keywords, name, &keyword_spec::name);
    if (spec == keywords.end())
      return fail(n, oscore_conf_error::unknown_keyword, "unknown keyword " + quoted(name));
    const auto enc = std::ranges::find(encodings, encoding_text, &encoding_name::name);
    if (enc == encodings.end())
      return fail(n, oscore_conf_error::unknown_encoding,
                  "unknown encoding " + quoted(encoding_text) + " (ascii, hex, integer, text or bool)");
    if ((spec->allowed & bits(enc->value)) == 0)
      return fail(n, oscore_conf_error::encoding_not_allowed,
                  std::string(name) + " cannot be given as " + std::string(encoding_text));
    if (raw_value.empty()) return fail(n, oscore_conf_error::syntax, std::string(name) + " has no value");

    // A value may be enclosed in '"'; unquoted, an ascii value is taken byte for byte to the
    // end of the line as libcoap does (so its keys match), the others ignore blanks around.
    std::string_view value = raw_value;
    if (value.front() == '"') {
      const std::size_t close = value.find('"', 1);
      if (close == std::string_view::npos)
        return fail(n, oscore_conf_error::unterminated_quote, std::string(name) + ": no closing '\"'");
      if (!trim(value.substr(close + 1)).empty())
        return fail(n, oscore_conf_error::text_after_quote,
                    std::string(name) + ": " + quoted(value.substr(close + 1)) + " after the closing '\"'");
      value = value.substr(1, close - 1);
    } else if (enc->value != encoding::ascii) {
      value = trim(value);
    }
    return apply(n, *spec, enc->value, value);
  }

  std::error_code apply(std::size_t n, const keyword_spec& spec, encoding enc, std::string_view value) {
    auto& seen = seen_line_[static_cast<std::size_t>(spec.id)];
    if (seen != 0 && spec.id != keyword::recipient_id)
      return fail(n, oscore_conf_error::duplicate_keyword,
                  std::string(spec.name) + " given twice (first on line " + std::to_string(seen) + ")");
    seen = n;
    switch (enc) {
      case encoding::ascii:
      case encoding::hex: {
        bytes b;
        if (enc == encoding::hex) {
          if (auto ec = parse_hex(n, spec.name, value, b)) return ec;
        } else {
          b.assign(value.begin(), value.end());
        }
        return apply_bytes(n, spec, std::move(b));
      }
      case encoding::integer: {
        std::int64_t v = 0;
        const char* first = value.data();
        const char* last = value.data() + value.size();
        if (first != last && *first == '+') ++first;
        const auto [end, err] = std::from_chars(first, last, v);
        if (value.empty() || err != std::errc{} || end != last)
          return fail(n, oscore_conf_error::bad_integer,
                      std::string(spec.name) + ": " + quoted(value) + " is not a decimal integer");
        return apply_integer(n, spec, v);
      }
      case encoding::text: return apply_text(n, spec, value);
      case encoding::boolean: {
        bool v = false;
        if (value == "true") {
          v = true;
        } else if (value != "false") {
          return fail(n, oscore_conf_error::bad_bool,
                      std::string(spec.name) + ": " + quoted(value) + " is neither true nor false");
        }
        apply_bool(spec.id, v);
        return {};
      }
    }
    return {};
  }

  std::error_code parse_hex(std::size_t n, std::string_view name, std::string_view value, bytes& out) {
    if (value.size() % 2 != 0)
      return fail(n, oscore_conf_error::bad_hex,
                  std::string(name) + ": hex value has an odd number of digits (" + std::to_string(value.size()) +
                      ")");
    out.reserve(value.size() / 2);
    for (std::size_t i = 0; i < value.size(); i += 2) {
      const int hi = hex_digit(value[i]);
      const int lo = hex_digit(value[i + 1]);
      if (hi < 0 || lo < 0)
        return fail(n, oscore_conf_error::bad_hex,
                    std::string(name) + ": " + quoted(value.substr(hi < 0 ? i : i + 1, 1)) +
                        " is not a hex digit (at " + std::to_string((hi < 0 ? i : i + 1) + 1) + ")");
      out.push_back(static_cast<std::uint8_t>(hi << 4 | lo));
    }
    return {};
  }

  std::error_code too_long(std::size_t n, std::string_view name, std::size_t size, std::size_t limit) {
    return fail(n, oscore_conf_error::value_out_of_range,
                std::string(name) + " is " + std::to_string(size) + " bytes, over the limit of " +
                    std::to_string(limit));
  }

  std::error_code apply_bytes(std::size_t n, const keyword_spec& spec, bytes b) {
    switch (spec.id) {
      case keyword::master_secret:
        if (b.empty())
          return fail(n, oscore_conf_error::value_out_of_range, "master_secret is empty");
        if (b.size() > max_master_secret_length) return too_long(n, spec.name, b.size(), max_master_secret_length);
        out_.master_secret = std::move(b);
        return {};
      case keyword::master_salt:
        if (b.size() > max_master_salt_length) return too_long(n, spec.name, b.size(), max_master_salt_length);
        out_.master_salt = std::move(b);
        return {};
      case keyword::id_context:
        if (b.size() > max_id_context_length) return too_long(n, spec.name, b.size(), max_id_context_length);
        out_.id_context = std::move(b);
        return {};
      case keyword::sender_id:
        // The AEAD-dependent limit is checked at the end, when aead_alg is known.
        if (b.size() > max_id_length) return id_too_long(n, spec.name, b.size(), max_id_length);
        out_.sender_id = std::move(b);
        return {};
      case keyword::recipient_id:
        if (b.size() > max_id_length) return id_too_long(n, spec.name, b.size(), max_id_length);
        if (out_.recipient_ids.size() == max_conf_recipients)
          return fail(n, oscore_conf_error::too_large,
                      "more than " + std::to_string(max_conf_recipients) + " recipient_id lines");
        for (std::size_t i = 0; i < out_.recipient_ids.size(); ++i)
          if (out_.recipient_ids[i] == b)
            return fail(n, oscore_conf_error::duplicate_recipient_id,
                        "recipient_id repeats the one on line " + std::to_string(recipient_lines_[i]));
        out_.recipient_ids.push_back(std::move(b));
        recipient_lines_.push_back(n);
        return {};
      default: return {};
    }
  }

  std::error_code id_too_long(std::size_t n, std::string_view name, std::size_t size, std::size_t limit) {
    return fail(n, oscore_conf_error::id_too_long,
                std::string(name) + " is " + std::to_string(size) + " bytes; the AEAD algorithm allows " +
                    std::to_string(limit) + " (RFC 8613 section 3.3)");
  }

  std::error_code apply_integer(std::size_t n, const keyword_spec& spec, std::int64_t v) {
    switch (spec.id) {
      case keyword::replay_window:
        if (v < 1 || v > static_cast<std::int64_t>(replay_window::max_size))
          return fail(n, oscore_conf_error::value_out_of_range,
                      "replay_window " + std::to_string(v) + " is outside 1.." +
                          std::to_string(replay_window::max_size));
        out_.replay_window = static_cast<std::size_t>(v);
        return {};
      case keyword::ssn_freq:
        if (v < 1 || static_cast<std::uint64_t>(v) > max_sequence_number)
          return fail(n, oscore_conf_error::value_out_of_range,
                      "ssn_freq " + std::to_string(v) + " is not a positive number below 2^40");
        out_.ssn_freq = static_cast<std::uint64_t>(v);
        return {};
      case keyword::aead_alg: return set_aead(n, v, std::to_string(v));
      case keyword::hkdf_alg: return set_hkdf(n, v, std::to_string(v));
      default: return {};
    }
  }

  std::error_code apply_text(std::size_t n, const keyword_spec& spec, std::string_view value) {
    if (spec.id == keyword::aead_alg) {
      const auto it = std::ranges::find(aead_names, value, &algorithm_name::name);
      if (it == aead_names.end())
        return fail(n, oscore_conf_error::unknown_algorithm_name,
                    "aead_alg: " + quoted(value) + " names no AEAD algorithm (e.g. AES-CCM-16-64-128)");
      return set_aead(n, static_cast<std::int64_t>(it->value), std::string(value));
    }
    if (value == "direct+HKDF-SHA-256") return set_hkdf(n, -10, std::string(value));
    if (value == "direct+HKDF-SHA-512") return set_hkdf(n, -11, std::string(value));
    return fail(n, oscore_conf_error::unknown_algorithm_name,
                "hkdf_alg: " + quoted(value) + " names no HKDF algorithm (direct+HKDF-SHA-256)");
  }

  std::error_code set_aead(std::size_t n, std::int64_t v, const std::string& shown) {
    if (v < std::numeric_limits<std::int32_t>::min() || v > std::numeric_limits<std::int32_t>::max() ||
        !parameters_of(static_cast<aead_algorithm>(v)))
      return fail(n, oscore_conf_error::unsupported_algorithm,
                  "aead_alg " + shown + " is not an AEAD algorithm this build implements");
    out_.aead_alg = static_cast<aead_algorithm>(v);
    return {};
  }

  std::error_code set_hkdf(std::size_t n, std::int64_t v, const std::string& shown) {
    if (v == -10) {
      out_.hkdf_alg = hkdf_algorithm::hkdf_sha_256;
      return {};
    }
    return fail(n, oscore_conf_error::unsupported_algorithm,
                "hkdf_alg " + shown + " is not supported (only -10, direct+HKDF-SHA-256)");
  }

  void apply_bool(keyword id, bool v) {
    switch (id) {
      case keyword::rfc8613_b_1_2: out_.rfc8613_b_1_2 = v; break;
      case keyword::rfc8613_b_2: out_.rfc8613_b_2 = v; break;
      case keyword::break_sender_key: out_.break_sender_key = v; break;
      case keyword::break_recipient_key: out_.break_recipient_key = v; break;
      default: break;
    }
  }

  std::error_code finish() {
    if (!line_of(keyword::master_secret))
      return fail(0, oscore_conf_error::missing_master_secret, "master_secret not defined (required)");
    if (!line_of(keyword::sender_id))
      return fail(0, oscore_conf_error::missing_sender_id, "sender_id not defined (required)");
    const std::size_t max_id = parameters_of(out_.aead_alg)->nonce_length - 6;
    if (out_.sender_id.size() > max_id)
      return id_too_long(line_of(keyword::sender_id), "sender_id", out_.sender_id.size(), max_id);
    for (std::size_t i = 0; i < out_.recipient_ids.size(); ++i) {
      if (out_.recipient_ids[i].size() > max_id)
        return id_too_long(recipient_lines_[i], "recipient_id", out_.recipient_ids[i].size(), max_id);
      if (out_.recipient_ids[i] == out_.sender_id)
        return fail(recipient_lines_[i], oscore_conf_error::duplicate_recipient_id,
                    "recipient_id equals sender_id (RFC 8613 section 3.3)");
    }
    return {};
  }

  std::size_t line_of(keyword k) const { return seen_line_[static_cast<std::size_t>(k)]; }

  conf& out_;
  conf_diagnostic& where_;
  std::array<std::size_t, static_cast<std::size_t>(keyword::count)> seen_line_{};
  std::vector<std::size_t> recipient_lines_;
};

}  // namespace

std::error_code conf::params(std::size_t recipient, context_params& out) const {
  if (recipient >= recipient_ids.size()) return oscore_error::invalid_context_parameters;
  out = context_params{};
  out.master_secret = master_secret;
  out.master_salt = master_salt;
  out.id_context = id_context;
  out.sender_id = sender_id;
  out.recipient_id = recipient_ids[recipient];
  out.algorithm = aead_alg;
  out.send_kid_context = id_context.has_value();
  out.replay_window_size = replay_window;
  out.replay_window_recovery = rfc8613_b_1_2;  // used by servers (set_oscore)
  out.renew_id_context = rfc8613_b_2;
  return {};
}

std::string conf_diagnostic::to_string() const {
  std::string out = file;
  if (line != 0) out += (out.empty() ? "line " : ":") + std::to_string(line);
  if (!out.empty()) out += ": ";
  return out + reason;
}

std::error_code parse_conf(std::string_view text, conf& out, conf_diagnostic& where) {
  return parser(out, where).run(text);
}

std::error_code load_conf(const std::string& path, conf& out, conf_diagnostic& where) {
  where = conf_diagnostic{};
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int e = errno != 0 ? errno : ENOENT;
    where.file = path;
    where.reason = std::string("cannot read: ") + std::strerror(e);
    return {e, std::generic_category()};
  }
  std::string text;
  text.resize(max_conf_file_size + 1);
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad()) {
    where.file = path;
    where.reason = "cannot read";
    return std::make_error_code(std::errc::io_error);
  }
  text.resize(static_cast<std::size_t>(in.gcount()));
  const auto ec = parse_conf(text, out, where);
  if (ec) where.file = path;
  return ec;
}

}  // namespace coap::oscore_core
