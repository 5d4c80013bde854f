// RFC 8613 section 3.2 input parameters from libcoap's coap-oscore-conf(5) files: libcoap
// 4.3.5's own example files (its man page and examples/interop/*.conf) parse and derive the
// Appendix C keys; keys and messages libcoap 4.3.5 produced from such a file verify here; every
// malformed line is refused with its line number and reason.
#include <coap/security/oscore/conf_file.hpp>

#define BOOST_TEST_MODULE oscore_conf
#include <boost/test/unit_test.hpp>

#include <coap/message.hpp>
#include <coap/security/oscore.hpp>
#include <coap/udp_codec.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

// Boost.Test prints both sides of a failed comparison.
namespace coap {
inline std::ostream& operator<<(std::ostream& os, code c) { return os << to_string(c); }
}  // namespace coap

namespace oscore = coap::oscore_core;
using namespace std::literals;
using bytes = std::vector<std::uint8_t>;

namespace {

bytes from_hex(std::string_view h) {
  bytes out;
  auto nibble = [](char c) { return static_cast<std::uint8_t>(c <= '9' ? c - '0' : c - 'a' + 10); };
  for (std::size_t i = 0; i + 1 < h.size(); i += 2)
    out.push_back(static_cast<std::uint8_t>(nibble(h[i]) << 4 | nibble(h[i + 1])));
  return out;
}

std::string to_hex(std::span<const std::uint8_t> b) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string s;
  for (auto x : b) {
    s += digits[x >> 4];
    s += digits[x & 15];
  }
  return s;
}

bytes ascii(std::string_view s) { return bytes(s.begin(), s.end()); }

oscore::conf parse_ok(std::string_view text) {
  oscore::conf c;
  oscore::conf_diagnostic where;
  const auto ec = oscore::parse_conf(text, c, where);
  BOOST_TEST_REQUIRE(!ec, ec.message() << ": " << where.to_string());
  return c;
}

oscore::context_params params_of(const oscore::conf& c, std::size_t recipient = 0) {
  oscore::context_params p;
  const auto ec = c.params(recipient, p);
  BOOST_TEST_REQUIRE(!ec, ec.message());
  return p;
}

// libcoap 4.3.5, man/coap-oscore-conf.txt.in: "EXAMPLE SERVER/CLIENT OSCORE CONFIGURATION FILE".
constexpr std::string_view man_server = R"(
# Master Secret (same for both client and server)
master_secret,hex,"0102030405060708090a0b0c0d0e0f10"

# Master Salt (same for both client and server)
master_salt,hex,"9e7ca92223786340"

# Sender ID
sender_id,ascii,"server"

# Recipient ID
recipient_id,ascii,"client"

# Replay Window (usually 32)
replay_window,integer,32

# AEAD COSE Cipher Algorithm (usually 10)
aead_alg,integer,10

# HKDF COSE Algorithm (usually -10)
hkdf_alg,integer,-10
)";
constexpr std::string_view man_client = R"(
# Master Secret (same for both client and server)
master_secret,hex,"0102030405060708090a0b0c0d0e0f10"

# Master Salt (same for both client and server)
master_salt,hex,"9e7ca92223786340"

# Sender ID (This is the client who is the Sender)
sender_id,ascii,"client"

# Recipient ID (It is the server that is remote)
recipient_id,ascii,"server"

# Replay Window (usually 32)
replay_window,integer,32

# AEAD COSE Cipher Algorithm (usually 10)
aead_alg,integer,10

# HKDF COSE Algorithm (usually -10)
hkdf_alg,integer,-10
)";

// libcoap 4.3.5, examples/interop/: the contexts of the OSCORE interop test specification
// (RFC 8613 Appendix C.1 and C.3 inputs), byte for byte.
constexpr std::string_view a_client = R"(master_secret,hex,"0102030405060708090a0b0c0d0e0f10"
master_salt,hex,"9e7ca92223786340"
sender_id,hex,""
recipient_id,hex,"01"
replay_window,integer,30
aead_alg,integer,10
hkdf_alg,integer,-10
ssn_freq,integer,4
)";
constexpr std::string_view b_server = R"(master_secret,hex,"0102030405060708090a0b0c0d0e0f10"
master_salt,hex,"9e7ca92223786340"
sender_id,hex,"01"
recipient_id,hex,""
replay_window,integer,30
aead_alg,integer,10
hkdf_alg,integer,-10
ssn_freq,integer,4
)";
constexpr std::string_view c_client = R"(master_secret,hex,"0102030405060708090a0b0c0d0e0f10"
master_salt,hex,"9e7ca92223786340"
id_context,hex,"37cbf3210017a2d3"
sender_id,hex,""
recipient_id,hex,"01"
replay_window,integer,30
aead_alg,integer,10
hkdf_alg,integer,-10
ssn_freq,integer,4
)";
constexpr std::string_view g_client = R"(master_secret,hex,"0102030405060708090a0b0c0d0e0f10"
master_salt,hex,"9e7ca92223786340"
sender_id,hex,""
recipient_id,hex,"01"
replay_window,integer,30
aead_alg,integer,10
hkdf_alg,integer,-10
ssn_freq,integer,4

break_recipient_key,bool,true
)";

}  // namespace

BOOST_AUTO_TEST_SUITE(libcoap_files)

BOOST_AUTO_TEST_CASE(man_page_examples) {
  const auto server = parse_ok(man_server);
  BOOST_TEST(to_hex(server.master_secret) == "0102030405060708090a0b0c0d0e0f10");
  BOOST_TEST(to_hex(server.master_salt) == "9e7ca92223786340");
  BOOST_TEST(!server.id_context.has_value());
  BOOST_TEST((server.sender_id == ascii("server")));
  BOOST_TEST_REQUIRE(server.recipient_ids.size() == 1u);
  BOOST_TEST((server.recipient_ids[0] == ascii("client")));
  BOOST_TEST(server.replay_window == 32u);
  BOOST_TEST((server.aead_alg == oscore::aead_algorithm::aes_ccm_16_64_128));
  BOOST_TEST((server.hkdf_alg == oscore::hkdf_algorithm::hkdf_sha_256));
  BOOST_TEST(server.rfc8613_b_1_2);
  BOOST_TEST(!server.rfc8613_b_2);
  BOOST_TEST(server.ssn_freq == 1u);

  // The two files make two ends of one exchange.
  oscore::context client_ctx(params_of(parse_ok(man_client)));
  oscore::context server_ctx(params_of(server));
  coap::message get(coap::method::get);
  get.add(coap::options::uri_path{}, "time");
  coap::message protected_request, received;
  oscore::request_binding client_binding, server_binding;
  BOOST_TEST_REQUIRE(!oscore::protect_request(client_ctx, get, protected_request, client_binding));
  const auto ec = oscore::unprotect_request(server_ctx, protected_request, received, server_binding);
  BOOST_TEST_REQUIRE(!ec, ec.message());
  BOOST_TEST(received.find(coap::option_number::uri_path)->as_string() == "time");
}

// libcoap logs these keys for the man page's client file (coap-client -v 8, "Common context").
BOOST_AUTO_TEST_CASE(keys_as_libcoap_derives_them) {
  oscore::derived_keys keys;
  BOOST_TEST_REQUIRE(!oscore::derive_keys(params_of(parse_ok(man_client)), keys));
  BOOST_TEST(to_hex(keys.sender_key) == "2a2c4a6ec9ebda6e7cd2db6da023ebc9");
  BOOST_TEST(to_hex(keys.recipient_key) == "69c470e05b8911c5425c2656e8f9e0da");
  BOOST_TEST(to_hex(keys.common_iv) == "4622d4dd6d944168eefb54987c");
}

BOOST_AUTO_TEST_CASE(interop_files_derive_appendix_c_keys) {
  const auto a = parse_ok(a_client);
  BOOST_TEST(a.replay_window == 30u);
  BOOST_TEST(a.ssn_freq == 4u);
  BOOST_TEST(a.sender_id.empty());
  oscore::derived_keys keys;
  BOOST_TEST_REQUIRE(!oscore::derive_keys(params_of(a), keys));
  BOOST_TEST(to_hex(keys.sender_key) == "f0910ed7295e6ad4b54fc793154302ff");     // C.1.1
  BOOST_TEST(to_hex(keys.recipient_key) == "ffb14e093c94c9cac9471648b4f98710");  // C.1.1
  BOOST_TEST(to_hex(keys.common_iv) == "4622d4dd6d944168eefb54987c");

  const auto b = parse_ok(b_server);
  BOOST_TEST_REQUIRE(b.recipient_ids.size() == 1u);
  BOOST_TEST(b.recipient_ids[0].empty());
  BOOST_TEST_REQUIRE(!oscore::derive_keys(params_of(b), keys));
  BOOST_TEST(to_hex(keys.sender_key) == "ffb14e093c94c9cac9471648b4f98710");  // C.1.2

  const auto c = parse_ok(c_client);
  const auto pc = params_of(c);
  BOOST_TEST(pc.send_kid_context);  // libcoap's client sends 'kid context' with an id_context
  BOOST_TEST_REQUIRE(!oscore::derive_keys(pc, keys));
  BOOST_TEST(to_hex(keys.sender_key) == "af2a1300a5e95788b356336eeecd2b92");  // C.3.1
  BOOST_TEST(to_hex(keys.common_iv) == "2ca58fb85ff1b81c0b7181b85e");

  const auto g = parse_ok(g_client);
  BOOST_TEST(g.break_recipient_key);
  BOOST_TEST(!g.break_sender_key);
}

// A request libcoap 4.3.5's coap-client protected with man_client (sequence number 3), taken
// off the wire: "coap-client -E client.conf,seq coap://127.0.0.1:56841/time".
BOOST_AUTO_TEST_CASE(request_protected_by_libcoap_verifies) {
  const bytes wire = from_hex(
      "4002a83472de09280903636c69656e74ff4966bd5289aa262c93f690f720eefce11a025f131f");
  coap::message_view view;
  BOOST_TEST_REQUIRE(!coap::udp_codec::parse(wire, view));
  oscore::context server(params_of(parse_ok(man_server)));
  coap::message request;
  oscore::request_binding binding;
  const auto ec = oscore::unprotect_request(server, view, request, binding);
  BOOST_TEST_REQUIRE(!ec, ec.message());
  BOOST_TEST(coap::code(request.code()) == coap::code(coap::method::get));
  BOOST_TEST(request.find(coap::option_number::uri_path)->as_string() == "time");
  BOOST_TEST(request.find(coap::option_number::uri_port)->as_uint() == 56841u);  // Class U, outer
  BOOST_TEST(to_hex(binding.request_piv.bytes()) == "03");
  // The same bytes again are a replay.
  BOOST_TEST((oscore::unprotect_request(server, view, request, binding) == coap::oscore_error::replay_detected));
}

// libcoap 4.3.5's coap-server (rfc8613_b_1_2 true, its default) answers the first request
// after its start with a protected 4.01 carrying an 8-byte Echo (Appendix B.1.2, RFC 9175):
// request Partial IV 0 from "client", response with its own Partial IV 0.
BOOST_AUTO_TEST_CASE(echo_response_from_libcoap_verifies) {
  oscore::context client(params_of(parse_ok(man_client)));
  const bytes request_wire = from_hex("4002a53b72ddff280900636c69656e74ffe3e26d9c6f2b411d8ca2799988f8df642e7c669947");
  const bytes response_wire = from_hex("6044a53b920100ff46a758f44979d447775a77abf623fb61bcd705");
  coap::message_view request_view, response_view;
  BOOST_TEST_REQUIRE(!coap::udp_codec::parse(request_wire, request_view));
  BOOST_TEST_REQUIRE(!coap::udp_codec::parse(response_wire, response_view));

  // The request: libcoap's inner GET /time with a Request-Tag.
  oscore::context server(params_of(parse_ok(man_server)));
  coap::message request;
  oscore::request_binding server_binding;
  BOOST_TEST_REQUIRE(!oscore::unprotect_request(server, request_view, request, server_binding));
  BOOST_TEST(request.find(coap::option_number::uri_path)->as_string() == "time");
  BOOST_TEST(to_hex(request.find(292)->value()) == "73e9eb92");

  oscore::request_binding binding;
  binding.request_kid.assign(ascii("client"));
  binding.request_piv.assign(from_hex("00"));
  coap::message response;
  const auto ec = oscore::unprotect_response(client, binding, response_view, response);
  BOOST_TEST_REQUIRE(!ec, ec.message());
  BOOST_TEST(coap::code(response.code()) == coap::code(coap::response_code::unauthorized));
  const auto echo = response.find(252);
  BOOST_TEST_REQUIRE(echo.has_value());
  BOOST_TEST(to_hex(echo->value()) == "fa9f58e0eb8746a6");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(format)

BOOST_AUTO_TEST_CASE(defaults_and_minimal_file) {
  const auto c = parse_ok("master_secret,ascii,secret\nsender_id,hex,\"\"\n");
  BOOST_TEST((c.master_secret == ascii("secret")));
  BOOST_TEST(c.master_salt.empty());
  BOOST_TEST(c.recipient_ids.empty());
  BOOST_TEST(c.replay_window == 32u);
  BOOST_TEST(c.ssn_freq == 1u);
  BOOST_TEST(c.rfc8613_b_1_2);
  oscore::context_params p;
  BOOST_TEST((c.params(0, p) == coap::oscore_error::invalid_context_parameters));  // no recipient
}

BOOST_AUTO_TEST_CASE(line_endings_quotes_and_comments) {
  // CRLF, a last line without '\n' (libcoap drops it; we do not), blanks around the hex and
  // integer values, unquoted values, indented comments.
  const auto c = parse_ok(
      "# comment\r\n"
      "   # indented comment\n"
      "\t\n"
      "master_secret,hex, 0102 \r\n"
      "sender_id,ascii,a b\n"
      "recipient_id,ascii,\"\"\n"
      "recipient_id,hex,\"0A0b\"\n"
      "replay_window,integer, 7\n"
      "aead_alg,text,\"AES-CCM-16-64-128\"\n"
      "hkdf_alg,text,direct+HKDF-SHA-256\n"
      "rfc8613_b_1_2,bool,false\n"
      "rfc8613_b_2,bool,\"true\"\n"
      "ssn_freq,integer,+100");
  BOOST_TEST(to_hex(c.master_secret) == "0102");
  BOOST_TEST((c.sender_id == ascii("a b")));
  BOOST_TEST_REQUIRE(c.recipient_ids.size() == 2u);
  BOOST_TEST(c.recipient_ids[0].empty());
  BOOST_TEST(to_hex(c.recipient_ids[1]) == "0a0b");
  BOOST_TEST(c.replay_window == 7u);
  BOOST_TEST(!c.rfc8613_b_1_2);
  BOOST_TEST(c.rfc8613_b_2);
  BOOST_TEST(c.ssn_freq == 100u);
  // A server makes one context per recipient.
  BOOST_TEST(to_hex(params_of(c, 1).recipient_id) == "0a0b");
}

BOOST_AUTO_TEST_CASE(algorithms_by_number_and_name) {
  const std::string base = "master_secret,hex,01\nsender_id,hex,01\nrecipient_id,hex,02\n";
  BOOST_TEST((parse_ok(base + "aead_alg,integer,30\n").aead_alg == oscore::aead_algorithm::aes_ccm_16_128_128));
  BOOST_TEST((parse_ok(base + "aead_alg,text,A256GCM\n").aead_alg == oscore::aead_algorithm::a256gcm));
  BOOST_TEST((parse_ok(base + "aead_alg,text,ChaCha20/Poly1305\n").aead_alg ==
              oscore::aead_algorithm::chacha20_poly1305));
  BOOST_TEST((parse_ok(base + "aead_alg,text,AES-CCM-16-64-256\n").aead_alg ==
              oscore::aead_algorithm::aes_ccm_16_64_256));
}

struct bad_case {
  std::string_view text;
  coap::oscore_conf_error error;
  std::size_t line;
  std::string_view reason_has;
};

BOOST_AUTO_TEST_CASE(bad_input_names_line_and_reason) {
  const std::string ok = "master_secret,hex,01\nsender_id,hex,01\n";
  const std::vector<bad_case> cases = {
      {"master_secret,hex\n", coap::oscore_conf_error::syntax, 1, "is not keyword,encoding,value"},
      {"# c\nmaster_secret\n", coap::oscore_conf_error::syntax, 2, "is not keyword,encoding,value"},
      {"master_secret,hex,\n", coap::oscore_conf_error::syntax, 1, "has no value"},
      {"master_secret,base64,AQ==\n", coap::oscore_conf_error::unknown_encoding, 1, "'base64'"},
      {"master_secret ,hex,01\n", coap::oscore_conf_error::unknown_keyword, 1, "'master_secret '"},
      {"Master_Secret,hex,01\n", coap::oscore_conf_error::unknown_keyword, 1, "'Master_Secret'"},
      {"master_secret,integer,1\n", coap::oscore_conf_error::encoding_not_allowed, 1, "cannot be given as integer"},
      {"replay_window,hex,20\n", coap::oscore_conf_error::encoding_not_allowed, 1, "replay_window"},
      {"master_secret,hex,\"010\"\n", coap::oscore_conf_error::bad_hex, 1, "odd number of digits (3)"},
      {"master_secret,hex,01g0\n", coap::oscore_conf_error::bad_hex, 1, "'g' is not a hex digit (at 3)"},
      {"master_secret,hex,\"0102\n", coap::oscore_conf_error::unterminated_quote, 1, "no closing"},
      {"master_secret,hex,\"0102\" # x\n", coap::oscore_conf_error::text_after_quote, 1, "after the closing"},
      {"replay_window,integer,32x\n", coap::oscore_conf_error::bad_integer, 1, "'32x' is not a decimal integer"},
      {"replay_window,integer,0\n", coap::oscore_conf_error::value_out_of_range, 1, "outside 1..64"},
      {"replay_window,integer,65\n", coap::oscore_conf_error::value_out_of_range, 1, "outside 1..64"},
      {"ssn_freq,integer,0\n", coap::oscore_conf_error::value_out_of_range, 1, "ssn_freq 0"},
      {"ssn_freq,integer,99999999999999999999\n", coap::oscore_conf_error::bad_integer, 1, "not a decimal"},
      {"rfc8613_b_1_2,bool,t\n", coap::oscore_conf_error::bad_bool, 1, "'t' is neither true nor false"},
      {"aead_alg,text,AES-CCM-8\n", coap::oscore_conf_error::unknown_algorithm_name, 1, "'AES-CCM-8'"},
      {"aead_alg,integer,99\n", coap::oscore_conf_error::unsupported_algorithm, 1, "aead_alg 99"},
      {"hkdf_alg,integer,-11\n", coap::oscore_conf_error::unsupported_algorithm, 1, "hkdf_alg -11"},
      {"hkdf_alg,text,direct+HKDF-SHA-512\n", coap::oscore_conf_error::unsupported_algorithm, 1, "SHA-512"},
      {"hkdf_alg,text,HKDF\n", coap::oscore_conf_error::unknown_algorithm_name, 1, "'HKDF'"},
      {"master_salt,hex,01\nmaster_salt,hex,02\n", coap::oscore_conf_error::duplicate_keyword, 2,
       "first on line 1"},
      {"recipient_id,hex,02\nrecipient_id,hex,02\n", coap::oscore_conf_error::duplicate_recipient_id, 2,
       "line 1"},
      {"sender_id,hex,0102030405060708\n", coap::oscore_conf_error::id_too_long, 1, "8 bytes"},
      {"recipient_id,ascii,\"intruder\"\n", coap::oscore_conf_error::id_too_long, 1, "8 bytes"},
      {"master_secret,hex,\"\"\n", coap::oscore_conf_error::value_out_of_range, 1, "empty"},
      {"master_secret,hex,01\0\n"sv, coap::oscore_conf_error::syntax, 1, "NUL"},
  };
  for (const auto& c : cases) {
    oscore::conf out;
    oscore::conf_diagnostic where;
    const auto ec = oscore::parse_conf(c.text, out, where);
    BOOST_TEST_CONTEXT(c.text) {
      BOOST_TEST((ec == c.error), ec.message() << " / " << where.to_string());
      BOOST_TEST(where.line == c.line);
      BOOST_TEST(where.to_string().find(c.reason_has) != std::string::npos, where.to_string());
      BOOST_TEST(where.to_string().rfind("line " + std::to_string(c.line) + ": ", 0) == 0u);
    }
  }
  // An empty quoted bool is the empty string: not true, not false (libcoap reads it as true).
  oscore::conf out;
  oscore::conf_diagnostic where;
  BOOST_TEST((oscore::parse_conf(ok + "rfc8613_b_1_2,bool,\"\"\n", out, where) == coap::oscore_conf_error::bad_bool));
  BOOST_TEST(where.line == 3u);
}

BOOST_AUTO_TEST_CASE(whole_file_checks) {
  oscore::conf out;
  oscore::conf_diagnostic where;
  BOOST_TEST((oscore::parse_conf("sender_id,hex,01\n", out, where) == coap::oscore_conf_error::missing_master_secret));
  BOOST_TEST(where.to_string() == "master_secret not defined (required)");
  BOOST_TEST((oscore::parse_conf("master_secret,hex,01\n", out, where) == coap::oscore_conf_error::missing_sender_id));
  BOOST_TEST((oscore::parse_conf("", out, where) == coap::oscore_conf_error::missing_master_secret));
  // The ID limit is the AEAD's nonce length - 6: 7 bytes for AES-CCM-16-64-128, 1 for the
  // 7-byte nonce of AES-CCM-64-64-128; aead_alg may come after the IDs.
  BOOST_TEST(!oscore::parse_conf("master_secret,hex,01\nsender_id,hex,01020304050607\n", out, where));
  BOOST_TEST((oscore::parse_conf("master_secret,hex,01\nsender_id,hex,0102\naead_alg,integer,12\n", out, where) ==
             coap::oscore_conf_error::id_too_long));
  BOOST_TEST(where.line == 2u);
  BOOST_TEST((oscore::parse_conf("master_secret,hex,01\nsender_id,hex,01\nrecipient_id,hex,01\n", out, where) ==
             coap::oscore_conf_error::duplicate_recipient_id));
  BOOST_TEST(where.line == 3u);
  // Limits: file size, line length, number of recipients.
  BOOST_TEST((oscore::parse_conf(std::string(oscore::max_conf_file_size + 1, '#'), out, where) ==
             coap::oscore_conf_error::too_large));
  BOOST_TEST((oscore::parse_conf("#" + std::string(oscore::max_conf_line_length, 'x') + "\n", out, where) ==
             coap::oscore_conf_error::too_large));
  std::string many = "master_secret,hex,01\nsender_id,hex,ff\n";
  for (int i = 0; i <= static_cast<int>(oscore::max_conf_recipients); ++i) {
    char line[40];
    std::snprintf(line, sizeof line, "recipient_id,hex,%02x\n", i);
    many += line;
  }
  BOOST_TEST((oscore::parse_conf(many, out, where) == coap::oscore_conf_error::too_large));
  BOOST_TEST(where.line == 2u + oscore::max_conf_recipients + 1u);
}

BOOST_AUTO_TEST_CASE(load_from_file) {
  oscore::conf out;
  oscore::conf_diagnostic where;
  const auto missing = oscore::load_conf("/nonexistent/oscore.conf", out, where);
  BOOST_TEST((missing == std::errc::no_such_file_or_directory));
  BOOST_TEST(where.to_string().find("/nonexistent/oscore.conf") == 0u);

  const std::string path = std::string(std::getenv("TEST_TMPDIR") ? std::getenv("TEST_TMPDIR") : "/tmp") +
                           "/oscore_conf_test.conf";
  {
    std::ofstream f(path, std::ios::binary);
    f << man_client << "bogus,hex,00\n";
  }
  const auto ec = oscore::load_conf(path, out, where);
  BOOST_TEST((ec == coap::oscore_conf_error::unknown_keyword));
  BOOST_TEST(where.to_string() == path + ":22: unknown keyword 'bogus'");
  {
    std::ofstream f(path, std::ios::binary);
    f << man_client;
  }
  BOOST_TEST(!oscore::load_conf(path, out, where));
  BOOST_TEST((out.sender_id == ascii("client")));
  std::remove(path.c_str());
}

BOOST_AUTO_TEST_SUITE_END()
