// RFC 8613 section 3.2 input parameters, read from libcoap's OSCORE configuration file format
// (coap-oscore-conf(5), libcoap 4.3.5): one "keyword,encoding,value" per line, '#' comment
// lines, blank lines. This is what `coap-client -E conf_file` and `coap-server -E conf_file`
// read; docs/oscore.md lists where this parser is stricter than libcoap's.
#pragma once

#include <coap/security/oscore/algorithm.hpp>
#include <coap/security/oscore/context.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace coap {

// Why a configuration file was refused. The line and the offending text travel in
// oscore::conf_diagnostic.
enum class oscore_conf_error {
  syntax = 1,                // not "keyword,encoding,value"
  unknown_encoding,          // not ascii, hex, integer, text or bool
  unknown_keyword,           // not a coap-oscore-conf(5) keyword
  encoding_not_allowed,      // e.g. master_secret given as an integer
  bad_hex,                   // odd number of digits, or a character that is not a hex digit
  bad_integer,               // not a decimal integer in range
  bad_bool,                  // not exactly true or false
  unterminated_quote,        // a value that opens '"' and does not close it
  text_after_quote,          // something other than blanks after the closing '"'
  unknown_algorithm_name,    // a 'text' value that names no algorithm
  unsupported_algorithm,     // an AEAD or HKDF algorithm this build does not implement
  value_out_of_range,        // replay_window, ssn_freq, or a value longer than its limit
  duplicate_keyword,         // a keyword other than recipient_id given twice
  missing_master_secret,     // required (section 3.1)
  missing_sender_id,         // required (section 3.1)
  id_too_long,               // sender_id / recipient_id longer than the AEAD nonce allows (3.3)
  duplicate_recipient_id,    // the same recipient_id twice, or equal to sender_id (3.3)
  too_large,                 // the file, a line or the number of recipient_ids over the limits
  bad_sequence_number_file,  // a seq_file (seq_file.hpp) that does not hold one decimal number
};

const std::error_category& oscore_conf_error_category() noexcept;

inline std::error_code make_error_code(oscore_conf_error e) noexcept {
  return {static_cast<int>(e), oscore_conf_error_category()};
}

}  // namespace coap

template <>
struct std::is_error_code_enum<coap::oscore_conf_error> : std::true_type {};

namespace coap::oscore_core {

// HKDF algorithms of coap-oscore-conf(5) (COSE identifiers, RFC 8152 table 16).
enum class hkdf_algorithm : std::int32_t {
  hkdf_sha_256 = -10,  // "direct+HKDF-SHA-256", section 3.2's default and the only one here
  hkdf_sha_512 = -11,  // "direct+HKDF-SHA-512": libcoap 4.3.5 has it; refused as unsupported
};

// Limits on what a file may make us hold.
inline constexpr std::size_t max_conf_file_size = 64 * 1024;
inline constexpr std::size_t max_conf_line_length = 4096;
inline constexpr std::size_t max_conf_recipients = 64;
inline constexpr std::size_t max_master_secret_length = 256;
inline constexpr std::size_t max_master_salt_length = 256;
inline constexpr std::size_t max_id_context_length = 255;  // 'kid context' length is one byte (6.1)

// The parsed file: section 3.2's input parameters and libcoap's extra keywords, each with
// coap-oscore-conf(5)'s default.
struct conf {
  std::vector<std::uint8_t> master_secret;
  std::vector<std::uint8_t> master_salt;
  std::optional<std::vector<std::uint8_t>> id_context;
  std::vector<std::uint8_t> sender_id;
  // A client uses the first; a server accepts every one. May be empty (a server whose
  // recipients are added by the program, as libcoap allows).
  std::vector<std::vector<std::uint8_t>> recipient_ids;
  std::size_t replay_window = replay_window::default_size;
  aead_algorithm aead_alg = aead_algorithm::aes_ccm_16_64_128;
  hkdf_algorithm hkdf_alg = hkdf_algorithm::hkdf_sha_256;
  bool rfc8613_b_1_2 = true;  // Appendix B.1.2: Echo on a server's first request after start
  bool rfc8613_b_2 = false;   // Appendix B.2: ID Context re-derivation
  std::uint64_t ssn_freq = 1; // Appendix B.1.1's K: store the Sender Sequence Number every K
  // libcoap's diagnostic keywords: corrupt the derived keys on purpose (its interop tests
  // 13 and 14). Parsed so that libcoap's test files load; applying them is the caller's choice.
  bool break_sender_key = false;
  bool break_recipient_key = false;

  // The context parameters for recipient_ids[recipient] (0: a client's only peer). Requests
  // carry 'kid context' whenever the file has an id_context, as libcoap's client does.
  // invalid_context_parameters when there is no such recipient.
  [[nodiscard]] std::error_code params(std::size_t recipient, context_params& out) const;
};

// Where and why parsing stopped: the file (load_conf), a 1-based line number (0: the file as a
// whole) and a reason a person can act on. to_string() gives "client.conf:4: master_secret:
// hex value has an odd number of digits (31)".
struct conf_diagnostic {
  std::string file;
  std::size_t line = 0;
  std::string reason;
  std::string to_string() const;
};

// Parses the text of a configuration file. On failure `out` is unspecified and `where`
// names the line. A last line without '\n' counts (libcoap 4.3.5 silently drops it).
[[nodiscard]] std::error_code parse_conf(std::string_view text, conf& out, conf_diagnostic& where);

// Reads and parses the file at `path` (at most max_conf_file_size bytes). A file that cannot
// be read is its std::errc / errno code, with the path in `where.reason`.
[[nodiscard]] std::error_code load_conf(const std::string& path, conf& out, conf_diagnostic& where);

}  // namespace coap::oscore_core
