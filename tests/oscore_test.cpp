// RFC 8613: the Appendix C test vectors byte for byte (key derivation C.1-C.3, requests
// C.4-C.6, responses C.7-C.8), the section 5.4 and 6.3 examples, option value validation,
// replay windows, tampering, unknown contexts, Observe, Proxy-Uri and sequence persistence.
#include <coap/security/oscore.hpp>

#define BOOST_TEST_MODULE oscore
#include <boost/test/unit_test.hpp>
#include <botan/aead.h>

#include <coap/message.hpp>
#include <coap/udp_codec.hpp>

#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

// Boost.Test prints both sides of a failed comparison.
namespace coap {
inline std::ostream& operator<<(std::ostream& os, code c) { return os << to_string(c); }
}  // namespace coap

namespace oscore_core = coap::oscore_core;
using bytes = std::vector<std::uint8_t>;

namespace {

bytes from_hex(std::string_view h) {
  bytes out;
  auto nibble = [](char c) -> std::uint8_t {
    if (c >= '0' && c <= '9') return static_cast<std::uint8_t>(c - '0');
    return static_cast<std::uint8_t>(c - 'a' + 10);
  };
  for (std::size_t i = 0; i + 1 < h.size(); i += 2)
    out.push_back(static_cast<std::uint8_t>((nibble(h[i]) << 4) | nibble(h[i + 1])));
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

std::string encode_hex(const coap::message& m) {
  bytes out;
  const auto ec = coap::udp_codec::encode(m, out);
  BOOST_TEST_REQUIRE(!ec, ec.message());
  return to_hex(out);
}

// Parses hex into a view; the bytes must outlive the view.
coap::message_view parse(const bytes& datagram) {
  coap::message_view v;
  const auto ec = coap::udp_codec::parse(datagram, v);
  BOOST_TEST_REQUIRE(!ec, ec.message());
  return v;
}

constexpr std::string_view master_secret = "0102030405060708090a0b0c0d0e0f10";
constexpr std::string_view master_salt = "9e7ca92223786340";
constexpr std::string_view id_context = "37cbf3210017a2d3";

// The contexts of C.1 (with salt), C.2 (without) and C.3 (with ID Context), either side.
oscore_core::context_params c1(bool client) {
  oscore_core::context_params p;
  p.master_secret = from_hex(master_secret);
  p.master_salt = from_hex(master_salt);
  p.sender_id = client ? bytes{} : from_hex("01");
  p.recipient_id = client ? from_hex("01") : bytes{};
  return p;
}
oscore_core::context_params c2(bool client) {
  oscore_core::context_params p;
  p.master_secret = from_hex(master_secret);
  p.sender_id = from_hex(client ? "00" : "01");
  p.recipient_id = from_hex(client ? "01" : "00");
  return p;
}
oscore_core::context_params c3(bool client) {
  auto p = c1(client);
  p.id_context = from_hex(id_context);
  return p;
}

struct derivation_vector {
  oscore_core::context_params params;
  std::string_view info_sender, info_recipient, info_iv;
  std::string_view sender_key, recipient_key, common_iv;
  std::string_view sender_nonce, recipient_nonce;
};

void check_derivation(const derivation_vector& v) {
  const auto& p = v.params;
  std::optional<std::span<const std::uint8_t>> idc;
  if (p.id_context) idc = std::span<const std::uint8_t>(*p.id_context);
  BOOST_TEST(to_hex(oscore_core::kdf_info(p.sender_id, idc, p.algorithm, "Key", 16)) == v.info_sender);
  BOOST_TEST(to_hex(oscore_core::kdf_info(p.recipient_id, idc, p.algorithm, "Key", 16)) == v.info_recipient);
  BOOST_TEST(to_hex(oscore_core::kdf_info({}, idc, p.algorithm, "IV", 13)) == v.info_iv);

  oscore_core::derived_keys keys;
  const auto ec = oscore_core::derive_keys(p, keys);
  BOOST_TEST_REQUIRE(!ec, ec.message());
  BOOST_TEST(to_hex(keys.sender_key) == v.sender_key);
  BOOST_TEST(to_hex(keys.recipient_key) == v.recipient_key);
  BOOST_TEST(to_hex(keys.common_iv) == v.common_iv);

  // "a Partial IV equal to 0 (both for sender and recipient)".
  const oscore_core::context ctx(p);
  BOOST_TEST(to_hex(ctx.common_iv()) == v.common_iv);
  const auto zero = oscore_core::encode_partial_iv(0);
  BOOST_TEST(to_hex(zero.bytes()) == "00");
  BOOST_TEST(to_hex(oscore_core::make_nonce(ctx.common_iv(), ctx.sender_id(), zero.bytes()).bytes()) == v.sender_nonce);
  BOOST_TEST(to_hex(oscore_core::make_nonce(ctx.common_iv(), ctx.recipient_id(), zero.bytes()).bytes()) ==
             v.recipient_nonce);
}

// Appendix C.4 to C.6: the unprotected and protected requests, with their parameters.
struct request_vector {
  oscore_core::context_params client, server;
  std::string_view unprotected;
  std::string_view aad_array, aad, nonce, option, ciphertext, protected_request;
};

request_vector c4() {
  return {c1(true), c1(false),
          "44015d1f00003974396c6f63616c686f737483747631",
          "8501810a40411440",
          "8368456e63727970743040488501810a40411440",
          "4622d4dd6d944168eefb549868",
          "0914",
          "612f1092f1776f1c1668b3825e",
          "44025d1f00003974396c6f63616c686f7374620914ff612f1092f1776f1c1668b3825e"};
}

request_vector c5() {
  return {c2(true), c2(false),
          "440171c30000b932396c6f63616c686f737483747631",
          "8501810a4100411440",
          "8368456e63727970743040498501810a4100411440",
          "bf35ae297d2dace910c52e99ed",
          "091400",
          "4ed339a5a379b0b8bc731fffb0",
          "440271c30000b932396c6f63616c686f737463091400ff4ed339a5a379b0b8bc731fffb0"};
}

request_vector c6() {
  auto client = c3(true);
  client.send_kid_context = true;
  return {client, c3(false),
          "44012f8eef9bbf7a396c6f63616c686f737483747631",
          "8501810a40411440",
          "8368456e63727970743040488501810a40411440",
          "2ca58fb85ff1b81c0b7181b84a",
          "19140837cbf3210017a2d3",
          "72cd7273fd331ac45cffbe55c3",
          "44022f8eef9bbf7a396c6f63616c686f73746b19140837cbf3210017a2d3ff72cd7273fd331ac45cffbe55c3"};
}

void check_request(request_vector v) {
  v.client.initial_sequence_number = 20;  // "Sender Sequence Number: 20"
  oscore_core::context client(v.client);
  const auto piv = oscore_core::encode_partial_iv(20);
  BOOST_TEST(to_hex(piv.bytes()) == "14");
  BOOST_TEST(to_hex(oscore_core::aad_array(client.algorithm(), client.sender_id(), piv.bytes())) == v.aad_array);
  BOOST_TEST(to_hex(oscore_core::make_aad(client.algorithm(), client.sender_id(), piv.bytes())) == v.aad);
  BOOST_TEST(to_hex(oscore_core::make_nonce(client.common_iv(), client.sender_id(), piv.bytes()).bytes()) == v.nonce);

  const bytes unprotected = from_hex(v.unprotected);
  const coap::message original(parse(unprotected));
  coap::message protected_request;
  oscore_core::request_binding client_binding;
  auto ec = oscore_core::protect_request(client, original, protected_request, client_binding);
  BOOST_TEST_REQUIRE(!ec, ec.message());
  BOOST_TEST(to_hex(protected_request.find(coap::option_number::oscore)->value()) == v.option);
  BOOST_TEST(to_hex(protected_request.payload()) == v.ciphertext);
  BOOST_TEST(encode_hex(protected_request) == v.protected_request);
  BOOST_TEST(client.sender_sequence_number() == 21u);

  // The server side of the same vector: the RFC's bytes decrypt to the unprotected request,
  // so the plaintext (code, Uri-Path, no payload) is the RFC's too.
  oscore_core::context server(v.server);
  const bytes wire = from_hex(v.protected_request);
  coap::message decrypted;
  oscore_core::request_binding server_binding;
  ec = oscore_core::unprotect_request(server, parse(wire), decrypted, server_binding);
  BOOST_TEST_REQUIRE(!ec, ec.message());
  BOOST_TEST(encode_hex(decrypted) == v.unprotected);
  BOOST_TEST(to_hex(server_binding.request_kid.bytes()) == to_hex(client.sender_id()));
  BOOST_TEST(to_hex(server_binding.request_piv.bytes()) == "14");
}

constexpr std::string_view c4_request = "44025d1f00003974396c6f63616c686f7374620914ff612f1092f1776f1c1668b3825e";
constexpr std::string_view c7_unprotected = "64455d1f00003974ff48656c6c6f20576f726c6421";

}  // namespace

BOOST_AUTO_TEST_SUITE(appendix_c)

BOOST_AUTO_TEST_CASE(c1_1_client_key_derivation_with_master_salt) {
  check_derivation({c1(true), "8540f60a634b657910", "854101f60a634b657910", "8540f60a6249560d",
                    "f0910ed7295e6ad4b54fc793154302ff", "ffb14e093c94c9cac9471648b4f98710",
                    "4622d4dd6d944168eefb54987c", "4622d4dd6d944168eefb54987c", "4722d4dd6d944169eefb54987c"});
}

BOOST_AUTO_TEST_CASE(c1_2_server_key_derivation_with_master_salt) {
  check_derivation({c1(false), "854101f60a634b657910", "8540f60a634b657910", "8540f60a6249560d",
                    "ffb14e093c94c9cac9471648b4f98710", "f0910ed7295e6ad4b54fc793154302ff",
                    "4622d4dd6d944168eefb54987c", "4722d4dd6d944169eefb54987c", "4622d4dd6d944168eefb54987c"});
}

BOOST_AUTO_TEST_CASE(c2_1_client_key_derivation_without_master_salt) {
  check_derivation({c2(true), "854100f60a634b657910", "854101f60a634b657910", "8540f60a6249560d",
                    "321b26943253c7ffb6003b0b64d74041", "e57b5635815177cd679ab4bcec9d7dda",
                    "be35ae297d2dace910c52e99f9", "bf35ae297d2dace910c52e99f9", "bf35ae297d2dace810c52e99f9"});
}

BOOST_AUTO_TEST_CASE(c2_2_server_key_derivation_without_master_salt) {
  check_derivation({c2(false), "854101f60a634b657910", "854100f60a634b657910", "8540f60a6249560d",
                    "e57b5635815177cd679ab4bcec9d7dda", "321b26943253c7ffb6003b0b64d74041",
                    "be35ae297d2dace910c52e99f9", "bf35ae297d2dace810c52e99f9", "bf35ae297d2dace910c52e99f9"});
}

BOOST_AUTO_TEST_CASE(c3_1_client_key_derivation_with_id_context) {
  check_derivation({c3(true), "85404837cbf3210017a2d30a634b657910", "8541014837cbf3210017a2d30a634b657910",
                    "85404837cbf3210017a2d30a6249560d", "af2a1300a5e95788b356336eeecd2b92",
                    "e39a0c7c77b43f03b4b39ab9a268699f", "2ca58fb85ff1b81c0b7181b85e", "2ca58fb85ff1b81c0b7181b85e",
                    "2da58fb85ff1b81d0b7181b85e"});
}

BOOST_AUTO_TEST_CASE(c3_2_server_key_derivation_with_id_context) {
  check_derivation({c3(false), "8541014837cbf3210017a2d30a634b657910", "85404837cbf3210017a2d30a634b657910",
                    "85404837cbf3210017a2d30a6249560d", "e39a0c7c77b43f03b4b39ab9a268699f",
                    "af2a1300a5e95788b356336eeecd2b92", "2ca58fb85ff1b81c0b7181b85e", "2da58fb85ff1b81d0b7181b85e",
                    "2ca58fb85ff1b81c0b7181b85e"});
}

BOOST_AUTO_TEST_CASE(c4_request_client) { check_request(c4()); }
BOOST_AUTO_TEST_CASE(c5_request_client) { check_request(c5()); }
BOOST_AUTO_TEST_CASE(c6_request_client_with_kid_context) { check_request(c6()); }

// C.7 and C.8: the server verifies C.4's request, then protects "Hello World!" (2.05) without
// and with a Partial IV; the client verifies each back to the unprotected response.
void check_response(oscore_core::response_nonce mode, std::string_view option, std::string_view ciphertext,
                    std::string_view protected_response) {
  oscore_core::context server(c1(false));
  const bytes request_wire = from_hex(c4_request);
  coap::message request;
  oscore_core::request_binding server_binding;
  auto ec = oscore_core::unprotect_request(server, parse(request_wire), request, server_binding);
  BOOST_TEST_REQUIRE(!ec, ec.message());

  const bytes unprotected = from_hex(c7_unprotected);
  const coap::message response(parse(unprotected));
  coap::message protected_out;
  ec = oscore_core::protect_response(server, server_binding, response, protected_out, mode);
  BOOST_TEST_REQUIRE(!ec, ec.message());
  BOOST_TEST(to_hex(protected_out.find(coap::option_number::oscore)->value()) == option);
  BOOST_TEST(to_hex(protected_out.payload()) == ciphertext);
  BOOST_TEST(encode_hex(protected_out) == protected_response);

  // The client that sent C.4 (Sender Sequence Number 20).
  auto client_params = c1(true);
  client_params.initial_sequence_number = 20;
  oscore_core::context client(client_params);
  coap::message request_out;
  oscore_core::request_binding client_binding;
  const bytes original_request = from_hex("44015d1f00003974396c6f63616c686f737483747631");
  ec = oscore_core::protect_request(client, coap::message(parse(original_request)), request_out, client_binding);
  BOOST_TEST_REQUIRE(!ec, ec.message());
  const bytes response_wire = from_hex(protected_response);
  coap::message decrypted;
  ec = oscore_core::unprotect_response(client, client_binding, parse(response_wire), decrypted);
  BOOST_TEST_REQUIRE(!ec, ec.message());
  BOOST_TEST(encode_hex(decrypted) == c7_unprotected);
}

BOOST_AUTO_TEST_CASE(c7_response_server_without_partial_iv) {
  // Parameters the RFC lists: the nonce is the request's.
  oscore_core::context server(c1(false));
  BOOST_TEST(to_hex(oscore_core::make_nonce(server.common_iv(), bytes{}, from_hex("14")).bytes()) ==
             "4622d4dd6d944168eefb549868");
  check_response(oscore_core::response_nonce::from_request, "", "dbaad1e9a7e7b2a813d3c31524378303cdafae119106",
                 "64445d1f0000397490ffdbaad1e9a7e7b2a813d3c31524378303cdafae119106");
}

BOOST_AUTO_TEST_CASE(c8_response_server_with_partial_iv) {
  oscore_core::context server(c1(false));
  BOOST_TEST(to_hex(oscore_core::make_nonce(server.common_iv(), server.sender_id(), from_hex("00")).bytes()) ==
             "4722d4dd6d944169eefb54987c");
  check_response(oscore_core::response_nonce::new_partial_iv, "0100", "4d4c13669384b67354b2b6175ff4b8658c666a6cf88e",
                 "64445d1f00003974920100ff4d4c13669384b67354b2b6175ff4b8658c666a6cf88e");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(cose_examples)

// Section 5.4's example: AES-CCM-16-64-128, request_kid 0x00, request_piv 0x25.
BOOST_AUTO_TEST_CASE(section_5_4_aad) {
  const auto alg = oscore_core::aead_algorithm::aes_ccm_16_64_128;
  BOOST_TEST(to_hex(oscore_core::aad_array(alg, from_hex("00"), from_hex("25"))) == "8501810a4100412540");
  BOOST_TEST(to_hex(oscore_core::make_aad(alg, from_hex("00"), from_hex("25"))) ==
             "8368456e63727970743040498501810a4100412540");
}

// Section 6.3's compressed COSE objects: option values both ways.
BOOST_AUTO_TEST_CASE(section_6_3_option_values) {
  struct example {
    std::string_view piv;
    bool has_kid;
    std::string_view kid;
    bool has_kid_context;
    std::string_view kid_context;
    std::string_view value;
  };
  const example examples[] = {
      {"05", true, "25", false, "", "090525"},
      {"00", true, "", false, "", "0900"},
      {"05", true, "", true, "44616c656b", "19050544616c656b"},
      {"", false, "", false, "", ""},
      {"07", false, "", false, "", "0107"},
  };
  for (const auto& e : examples) {
    const bytes piv = from_hex(e.piv), kid = from_hex(e.kid), kid_context = from_hex(e.kid_context);
    oscore_core::option_fields f;
    f.partial_iv = piv;
    f.has_kid = e.has_kid;
    f.kid = kid;
    f.has_kid_context = e.has_kid_context;
    f.kid_context = kid_context;
    oscore_core::option_value value;
    BOOST_TEST_REQUIRE(!oscore_core::encode_option_value(f, value));
    BOOST_TEST(to_hex(value.bytes()) == e.value);

    const bytes wire = from_hex(e.value);
    oscore_core::option_fields d;
    BOOST_TEST_REQUIRE(!oscore_core::decode_option_value(wire, d));
    BOOST_TEST(to_hex(d.partial_iv) == e.piv);
    BOOST_TEST(d.has_kid == e.has_kid);
    BOOST_TEST(to_hex(d.kid) == e.kid);
    BOOST_TEST(d.has_kid_context == e.has_kid_context);
    BOOST_TEST(to_hex(d.kid_context) == e.kid_context);
  }
}

BOOST_AUTO_TEST_CASE(malformed_option_values) {
  const std::string_view malformed[] = {
      "00",          // all flags zero: the value must be empty (section 2)
      "2900",        // reserved bit
      "8900",        // reserved bit
      "06000000000000",  // n = 6
      "07000000000000",  // n = 7
      "03aabb",      // Partial IV shorter than n
      "10",          // h without the length byte
      "110503aabb",  // 'kid context' longer than the rest
      "0105ff",      // bytes after the fields, no 'kid' flagged
  };
  for (auto m : malformed) {
    const bytes wire = from_hex(m);
    oscore_core::option_fields f;
    BOOST_TEST(oscore_core::decode_option_value(wire, f) == coap::oscore_error::malformed_message, m);
  }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(verification)

// A client (C.1) and its server; requests carry "tv1" as Uri-Path and a payload.
struct pair {
  oscore_core::context client{c1(true)};
  oscore_core::context server{c1(false)};

  coap::message request(std::string_view payload = "x") {
    coap::message m(coap::method::put);
    m.set_message_id(7);
    m.add(coap::options::uri_path{}, "tv1");
    m.set_payload(payload);
    return m;
  }
  bytes protect(const coap::message& m) {
    coap::message out;
    oscore_core::request_binding b;
    const auto ec = oscore_core::protect_request(client, m, out, b);
    BOOST_TEST_REQUIRE(!ec, ec.message());
    bytes wire;
    BOOST_TEST_REQUIRE(!coap::udp_codec::encode(out, wire));
    return wire;
  }
  std::error_code deliver(const bytes& wire) {
    coap::message out;
    oscore_core::request_binding b;
    return oscore_core::unprotect_request(server, parse(wire), out, b);
  }
};

BOOST_AUTO_TEST_CASE(replayed_request_rejected) {
  pair p;
  const bytes wire = p.protect(p.request());
  BOOST_TEST(!p.deliver(wire));
  const auto ec = p.deliver(wire);
  BOOST_TEST(ec == coap::oscore_error::replay_detected);
  const auto reply = coap::error_reply(ec);
  BOOST_TEST_REQUIRE(reply.has_value());
  BOOST_TEST(coap::code(reply->code) == coap::code(coap::response_code::unauthorized));
  BOOST_TEST(reply->diagnostic == "Replay detected");
}

BOOST_AUTO_TEST_CASE(replay_window_slides) {
  pair p;
  std::vector<bytes> sent;
  for (int i = 0; i < 101; ++i) sent.push_back(p.protect(p.request()));
  BOOST_TEST(!p.deliver(sent[100]));
  BOOST_TEST(!p.deliver(sent[69]));  // 31 behind: inside the default window of 32
  BOOST_TEST(p.deliver(sent[68]) == coap::oscore_error::replay_detected);  // 32 behind: too old
  BOOST_TEST(p.deliver(sent[69]) == coap::oscore_error::replay_detected);  // duplicate
  BOOST_TEST(!p.deliver(sent[90]));
  BOOST_TEST(p.deliver(sent[90]) == coap::oscore_error::replay_detected);

  oscore_core::replay_window w;
  BOOST_TEST(w.size() == 32u);
  w.accept(100);
  w.accept(200);  // slides by 100: 100 falls out
  BOOST_TEST(!w.is_fresh(100));
  BOOST_TEST(!w.is_fresh(168));
  BOOST_TEST(w.is_fresh(169));
  w.accept(169);
  BOOST_TEST(!w.is_fresh(169));
  BOOST_TEST(!w.is_fresh(200));
  BOOST_TEST(w.is_fresh(201));
  w.reset(500);  // Appendix B.1.2: nothing below 500
  BOOST_TEST(!w.is_fresh(499));
  BOOST_TEST(w.is_fresh(500));
}

BOOST_AUTO_TEST_CASE(tampered_ciphertext_fails_and_does_not_advance_the_window) {
  pair p;
  const bytes wire = p.protect(p.request("hello"));
  for (std::size_t i : {wire.size() - 1, wire.size() - 9, wire.size() - 12}) {  // tag and ciphertext
    bytes tampered = wire;
    tampered[i] ^= 0x01;
    const auto ec = p.deliver(tampered);
    BOOST_TEST(ec == coap::oscore_error::decryption_failed);
    const auto reply = coap::error_reply(ec);
    BOOST_TEST_REQUIRE(reply.has_value());
    BOOST_TEST(coap::code(reply->code) == coap::code(coap::response_code::bad_request));
    BOOST_TEST(reply->diagnostic == "Decryption failed");
  }
  // A changed Partial IV changes the nonce and the AAD: it fails too.
  bytes other_piv = wire;
  const auto oscore_at = std::string_view(reinterpret_cast<const char*>(other_piv.data()), other_piv.size())
                             .find(std::string_view("\x09\x00", 2));
  BOOST_TEST_REQUIRE(oscore_at != std::string_view::npos);
  other_piv[oscore_at + 1] = 0x01;
  BOOST_TEST(p.deliver(other_piv) == coap::oscore_error::decryption_failed);
  BOOST_TEST(!p.deliver(wire));  // the genuine message still verifies
}

BOOST_AUTO_TEST_CASE(wrong_kid_is_context_not_found) {
  pair p;
  auto stranger_params = c1(true);
  stranger_params.sender_id = from_hex("02");
  oscore_core::context stranger(stranger_params);
  coap::message out;
  oscore_core::request_binding b;
  BOOST_TEST_REQUIRE(!oscore_core::protect_request(stranger, p.request(), out, b));
  bytes wire;
  BOOST_TEST_REQUIRE(!coap::udp_codec::encode(out, wire));
  const auto ec = p.deliver(wire);
  BOOST_TEST(ec == coap::oscore_error::security_context_not_found);
  const auto reply = coap::error_reply(ec);
  BOOST_TEST_REQUIRE(reply.has_value());
  BOOST_TEST(coap::code(reply->code) == coap::code(coap::response_code::unauthorized));
  BOOST_TEST(reply->diagnostic == "Security context not found");

  // A 'kid context' the server's context does not have.
  auto with_context = c3(true);
  with_context.send_kid_context = true;
  oscore_core::context other(with_context);
  BOOST_TEST_REQUIRE(!oscore_core::protect_request(other, p.request(), out, b));
  BOOST_TEST_REQUIRE(!coap::udp_codec::encode(out, wire));
  BOOST_TEST(p.deliver(wire) == coap::oscore_error::security_context_not_found);
}

BOOST_AUTO_TEST_CASE(lookup_among_contexts) {
  oscore_core::context a(c1(false)), b(c2(false));
  oscore_core::context client(c2(true));
  coap::message out, decrypted;
  oscore_core::request_binding binding;
  coap::message m(coap::method::get);
  m.add(coap::options::uri_path{}, "x");
  BOOST_TEST_REQUIRE(!oscore_core::protect_request(client, m, out, binding));
  oscore_core::context* used = nullptr;
  auto find = [&](const oscore_core::option_fields& f) -> oscore_core::context* {
    for (auto* c : {&a, &b})
      if (c->matches(f)) return used = c;
    return nullptr;
  };
  bytes wire;
  BOOST_TEST_REQUIRE(!coap::udp_codec::encode(out, wire));
  BOOST_TEST(!oscore_core::unprotect_request(find, parse(wire), decrypted, binding));
  BOOST_TEST(used == &b);
  BOOST_TEST(decrypted.code() == coap::code(coap::method::get));
}

BOOST_AUTO_TEST_CASE(malformed_messages_are_bad_option) {
  pair p;
  // C.4's request without its payload, and with a kid-less OSCORE option.
  const bytes no_payload = from_hex("44025d1f00003974396c6f63616c686f7374620914");
  auto ec = p.deliver(no_payload);
  BOOST_TEST(ec == coap::oscore_error::malformed_message);
  const auto reply = coap::error_reply(ec);
  BOOST_TEST_REQUIRE(reply.has_value());
  BOOST_TEST(coap::code(reply->code) == coap::code(coap::response_code::bad_option));
  const bytes no_kid = from_hex("44025d1f00003974396c6f63616c686f7374620114ff612f1092f1776f1c1668b3825e");
  BOOST_TEST(p.deliver(no_kid) == coap::oscore_error::malformed_message);
  const bytes reserved = from_hex("44025d1f00003974396c6f63616c686f7374622914ff612f1092f1776f1c1668b3825e");
  BOOST_TEST(p.deliver(reserved) == coap::oscore_error::malformed_message);
  const bytes padded_piv = from_hex("44025d1f00003974396c6f63616c686f7374630a0014ff612f1092f1776f1c1668b3825e");
  BOOST_TEST(p.deliver(padded_piv) == coap::oscore_error::malformed_message);
  const bytes plain = from_hex("44015d1f00003974396c6f63616c686f737483747631");
  BOOST_TEST(p.deliver(plain) == coap::oscore_error::not_protected);
  BOOST_TEST(!coap::error_reply(coap::oscore_error::not_protected).has_value());
}

BOOST_AUTO_TEST_CASE(nested_oscore_and_roles_refused) {
  pair p;
  auto m = p.request();
  m.add_option(coap::option_number::oscore, std::span<const std::uint8_t>());
  coap::message out;
  oscore_core::request_binding b;
  BOOST_TEST(oscore_core::protect_request(p.client, m, out, b) == coap::oscore_error::nested_oscore);
  coap::message response(coap::response_code::content);
  BOOST_TEST(oscore_core::protect_request(p.client, response, out, b) == coap::oscore_error::invalid_message);
  BOOST_TEST(oscore_core::protect_response(p.server, b, p.request(), out) == coap::oscore_error::invalid_message);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(options_and_observe)

BOOST_AUTO_TEST_CASE(class_u_options_stay_outside) {
  oscore_core::context client(c1(true)), server(c1(false));
  coap::message m(coap::method::get);
  m.add(coap::options::uri_host{}, "example.com");
  m.add(coap::options::uri_port{}, 5683);
  m.add(coap::options::uri_path{}, "a");
  m.add(coap::options::uri_query{}, "q=1");
  m.add(coap::options::hop_limit{}, 16);
  m.add(coap::options::accept{}, 0);
  coap::message out, back;
  oscore_core::request_binding b;
  BOOST_TEST_REQUIRE(!oscore_core::protect_request(client, m, out, b));
  BOOST_TEST(out.code() == coap::code(coap::method::post));
  BOOST_TEST(out.find(coap::option_number::uri_host).has_value());
  BOOST_TEST(out.find(coap::option_number::uri_port).has_value());
  BOOST_TEST(out.find(coap::option_number::hop_limit).has_value());
  BOOST_TEST(!out.find(coap::option_number::uri_path).has_value());
  BOOST_TEST(!out.find(coap::option_number::uri_query).has_value());
  BOOST_TEST(!out.find(coap::option_number::accept).has_value());
  // An Outer Class E option a proxy added is discarded (section 8.2 step 1).
  out.add(coap::options::max_age{}, 0);
  BOOST_TEST_REQUIRE(!oscore_core::unprotect_request(server, out, back, b));
  BOOST_TEST(encode_hex(back) == encode_hex(m));
}

BOOST_AUTO_TEST_CASE(proxy_uri_is_split) {
  oscore_core::context client(c1(true)), server(c1(false));
  coap::message m(coap::method::get);
  m.add(coap::options::proxy_uri{}, "coap://example.com/resource?q=1");
  coap::message out, back;
  oscore_core::request_binding b;
  BOOST_TEST_REQUIRE(!oscore_core::protect_request(client, m, out, b));
  BOOST_TEST(*out.get(coap::options::proxy_uri{}) == "coap://example.com");
  BOOST_TEST(!out.find(coap::option_number::uri_path).has_value());
  BOOST_TEST_REQUIRE(!oscore_core::unprotect_request(server, out, back, b));
  BOOST_TEST(*back.get(coap::options::proxy_uri{}) == "coap://example.com");
  BOOST_TEST(*back.get(coap::options::uri_path{}) == "resource");
  BOOST_TEST(*back.get(coap::options::uri_query{}) == "q=1");

  coap::message http(coap::method::get);
  http.add(coap::options::proxy_uri{}, "http://example.com/x");
  BOOST_TEST(oscore_core::protect_request(client, http, out, b) == coap::oscore_error::unsupported_proxy_uri);
}

BOOST_AUTO_TEST_CASE(observe_registration_and_notifications) {
  oscore_core::context client(c1(true)), server(c1(false));
  coap::message registration(coap::method::get);
  registration.add(coap::options::observe{}, 0);
  registration.add(coap::options::uri_path{}, "glucose");
  coap::message wire_request, at_server;
  oscore_core::request_binding client_binding, server_binding;
  BOOST_TEST_REQUIRE(!oscore_core::protect_request(client, registration, wire_request, client_binding));
  BOOST_TEST(wire_request.code() == coap::code(coap::method::fetch));  // section 4.1.3.5
  BOOST_TEST(wire_request.get(coap::options::observe{}).value_or(0xffffffffu) == 0u);
  BOOST_TEST(client_binding.observe);
  BOOST_TEST_REQUIRE(!oscore_core::unprotect_request(server, wire_request, at_server, server_binding));
  BOOST_TEST(server_binding.observe);
  BOOST_TEST(at_server.code() == coap::code(coap::method::get));
  BOOST_TEST(at_server.get(coap::options::observe{}).value_or(0xffffffffu) == 0u);

  std::vector<coap::message> notifications;
  for (std::uint32_t i = 0; i < 3; ++i) {
    coap::message n(coap::response_code::content);
    n.add(coap::options::observe{}, 7 + i);
    n.set_payload(std::to_string(220 - i));
    coap::message protected_n;
    BOOST_TEST_REQUIRE(!oscore_core::protect_response(server, server_binding, n, protected_n));
    BOOST_TEST(protected_n.code() == coap::code(coap::response_code::content));
    BOOST_TEST(protected_n.get(coap::options::observe{}).value_or(0xffffffffu) == 7 + i);  // Outer Observe
    // The first reuses the request's nonce; the others get their own Partial IV (8.3.1).
    BOOST_TEST(protected_n.find(coap::option_number::oscore)->value().empty() == (i == 0));
    notifications.push_back(protected_n);
  }
  coap::message got;
  BOOST_TEST_REQUIRE(!oscore_core::unprotect_response(client, client_binding, notifications[0], got));
  BOOST_TEST(got.payload_string() == "220");
  BOOST_TEST_REQUIRE(!oscore_core::unprotect_response(client, client_binding, notifications[2], got));
  BOOST_TEST(got.payload_string() == "218");
  BOOST_TEST(got.get(coap::options::observe{}).value_or(0xffffffffu) == 1u);  // Partial IV 1 (server's second number)
  // Older, replayed, and a second notification without Partial IV: all refused (7.4.1).
  BOOST_TEST(oscore_core::unprotect_response(client, client_binding, notifications[1], got) ==
             coap::oscore_error::replay_detected);
  BOOST_TEST(oscore_core::unprotect_response(client, client_binding, notifications[2], got) ==
             coap::oscore_error::replay_detected);
  BOOST_TEST(oscore_core::unprotect_response(client, client_binding, notifications[0], got) ==
             coap::oscore_error::replay_detected);
}

BOOST_AUTO_TEST_CASE(observe_in_response_to_a_plain_request_refused) {
  oscore_core::context client(c1(true)), server(c1(false));
  coap::message get(coap::method::get), wire, at_server, response_wire, got;
  oscore_core::request_binding cb, sb;
  BOOST_TEST_REQUIRE(!oscore_core::protect_request(client, get, wire, cb));
  BOOST_TEST_REQUIRE(!oscore_core::unprotect_request(server, wire, at_server, sb));
  coap::message n(coap::response_code::content);
  n.add(coap::options::observe{}, 3);
  BOOST_TEST_REQUIRE(!oscore_core::protect_response(server, sb, n, response_wire));
  BOOST_TEST(oscore_core::unprotect_response(client, cb, response_wire, got) == coap::oscore_error::unexpected_observe);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(context_state)

BOOST_AUTO_TEST_CASE(sequence_number_persistence) {
  std::vector<std::uint64_t> stored;
  bool fail = false;
  auto params = c1(true);
  params.persistence.interval = 10;
  params.persistence.store = [&](std::uint64_t n) {
    if (fail) return false;
    stored.push_back(n);
    return true;
  };
  {
    oscore_core::context ctx(params);
    std::uint64_t n = 0;
    for (int i = 0; i < 25; ++i) BOOST_TEST_REQUIRE(!ctx.next_sequence_number(n));
    BOOST_TEST(n == 24u);
    BOOST_TEST((stored == std::vector<std::uint64_t>{0, 10, 20}));
    for (int i = 0; i < 5; ++i) BOOST_TEST_REQUIRE(!ctx.next_sequence_number(n));
    fail = true;
    BOOST_TEST(ctx.next_sequence_number(n) == coap::oscore_error::sequence_number_not_stored);
    BOOST_TEST(ctx.sender_sequence_number() == 30u);  // not consumed
  }
  // After a "reboot": SSN2 = SSN1 + K (+ F).
  fail = false;
  params.persistence.last_stored = stored.back();
  oscore_core::context rebooted(params);
  BOOST_TEST(rebooted.sender_sequence_number() == 30u);
  std::uint64_t n = 0;
  BOOST_TEST_REQUIRE(!rebooted.next_sequence_number(n));
  BOOST_TEST(n == 30u);
  BOOST_TEST(stored.back() == 30u);
  params.persistence.margin = 5;
  BOOST_TEST(oscore_core::context(params).sender_sequence_number() == 35u);
}

BOOST_AUTO_TEST_CASE(sequence_number_exhaustion) {
  auto params = c1(true);
  params.initial_sequence_number = oscore_core::max_sequence_number;
  oscore_core::context ctx(params);
  coap::message out;
  oscore_core::request_binding b;
  coap::message get(coap::method::get);
  BOOST_TEST_REQUIRE(!oscore_core::protect_request(ctx, get, out, b));
  BOOST_TEST(to_hex(b.request_piv.bytes()) == "ffffffffff");
  BOOST_TEST(oscore_core::protect_request(ctx, get, out, b) == coap::oscore_error::sequence_number_exhausted);
  // A moved-from context protects nothing more.
  oscore_core::context fresh(c1(true));
  oscore_core::context moved(std::move(fresh));
  BOOST_TEST(oscore_core::protect_request(fresh, get, out, b) == coap::oscore_error::sequence_number_exhausted);
  BOOST_TEST(!oscore_core::protect_request(moved, get, out, b));
}

BOOST_AUTO_TEST_CASE(invalid_parameters) {
  std::error_code ec;
  auto p = c1(true);
  p.sender_id = bytes(8, 1);  // nonce 13 - 6 = 7 bytes at most
  BOOST_TEST(!oscore_core::context::make(p, ec).has_value());
  BOOST_TEST(ec == coap::oscore_error::invalid_context_parameters);
  p = c1(true);
  p.algorithm = static_cast<oscore_core::aead_algorithm>(99);
  BOOST_TEST(!oscore_core::context::make(p, ec).has_value());
  BOOST_TEST(ec == coap::oscore_error::unsupported_algorithm);
  p = c1(true);
  p.recipient_id = p.sender_id;
  BOOST_CHECK_THROW(oscore_core::context{p}, std::system_error);
}

// Every supported AEAD algorithm round-trips a request and a response.
BOOST_AUTO_TEST_CASE(algorithms_round_trip) {
  using A = oscore_core::aead_algorithm;
  for (A alg : {A::a128gcm, A::a192gcm, A::a256gcm, A::aes_ccm_16_64_128, A::aes_ccm_16_64_256, A::aes_ccm_64_64_128,
                A::aes_ccm_64_64_256, A::chacha20_poly1305, A::aes_ccm_16_128_128, A::aes_ccm_16_128_256,
                A::aes_ccm_64_128_128, A::aes_ccm_64_128_256}) {
    BOOST_TEST_CONTEXT("algorithm " << static_cast<int>(alg)) {
      auto cp = c1(true), sp = c1(false);
      cp.algorithm = sp.algorithm = alg;
      oscore_core::context client(cp), server(sp);
      coap::message req(coap::method::post), wire, at_server, resp(coap::response_code::changed), resp_wire, got;
      req.set_payload("ping");
      resp.set_payload("pong");
      oscore_core::request_binding cb, sb;
      BOOST_TEST_REQUIRE(!oscore_core::protect_request(client, req, wire, cb));
      BOOST_TEST(wire.payload().size() == 1 + 1 + 4 + oscore_core::parameters_of(alg)->tag_length);
      BOOST_TEST_REQUIRE(!oscore_core::unprotect_request(server, wire, at_server, sb));
      BOOST_TEST(at_server.payload_string() == "ping");
      BOOST_TEST_REQUIRE(!oscore_core::protect_response(server, sb, resp, resp_wire));
      BOOST_TEST_REQUIRE(!oscore_core::unprotect_response(client, cb, resp_wire, got));
      BOOST_TEST(got.payload_string() == "pong");
      BOOST_TEST(got.code() == coap::code(coap::response_code::changed));
    }
  }
}

// Section 5 for every AES-CCM algorithm: the context's CCM (security/oscore/impl/aead.cpp,
// RFC 3610 over Botan's AES) gives Botan's own CCM mode's bytes, for empty and long AADs and
// plaintexts of 0 to 70 bytes, opens them again, and refuses each with a flipped byte.
BOOST_AUTO_TEST_CASE(ccm_matches_botan) {
  using A = oscore_core::aead_algorithm;
  for (A alg : {A::aes_ccm_16_64_128, A::aes_ccm_16_64_256, A::aes_ccm_64_64_128, A::aes_ccm_64_64_256,
                A::aes_ccm_16_128_128, A::aes_ccm_16_128_256, A::aes_ccm_64_128_128, A::aes_ccm_64_128_256}) {
    BOOST_TEST_CONTEXT("algorithm " << static_cast<int>(alg)) {
      const auto params = *oscore_core::parameters_of(alg);
      auto cp = c1(true), sp = c1(false);
      cp.algorithm = sp.algorithm = alg;
      oscore_core::context client(cp), server(sp);
      oscore_core::derived_keys keys;
      BOOST_TEST_REQUIRE(!oscore_core::derive_keys(cp, keys));
      const std::string name = "AES-" + std::to_string(params.key_length * 8) + "/CCM(" +
                               std::to_string(params.tag_length) + "," + std::to_string(15 - params.nonce_length) + ")";
      auto botan = Botan::AEAD_Mode::create_or_throw(name, Botan::ENCRYPTION);
      botan->set_key(keys.sender_key.data(), keys.sender_key.size());
      bytes nonce(params.nonce_length);
      for (std::size_t i = 0; i < nonce.size(); ++i) nonce[i] = static_cast<std::uint8_t>(0xa0 + i);
      for (std::size_t aad_size : {0u, 1u, 15u, 16u, 17u, 40u, 300u}) {
        bytes aad(aad_size);
        for (std::size_t i = 0; i < aad.size(); ++i) aad[i] = static_cast<std::uint8_t>(i * 7 + 1);
        for (std::size_t size = 0; size <= 70; ++size) {
          BOOST_TEST_CONTEXT("aad " << aad_size << ", plaintext " << size) {
            bytes plaintext(size);
            for (std::size_t i = 0; i < size; ++i) plaintext[i] = static_cast<std::uint8_t>(i * 13 + aad_size);
            bytes ours, opened;
            BOOST_TEST_REQUIRE(!oscore_core::detail::seal(client, nonce, aad, plaintext, ours));
            botan->set_associated_data(aad.data(), aad.size());
            botan->start(nonce.data(), nonce.size());
            Botan::secure_vector<std::uint8_t> theirs(plaintext.begin(), plaintext.end());
            botan->finish(theirs);
            BOOST_TEST(ours == bytes(theirs.begin(), theirs.end()));
            BOOST_TEST_REQUIRE(!oscore_core::detail::open(server, nonce, aad, ours, opened));
            BOOST_TEST(opened == plaintext);
            for (std::size_t flip = 0; flip < ours.size(); flip += 5) {
              bytes bad = ours;
              bad[flip] ^= 0x01;
              BOOST_TEST(oscore_core::detail::open(server, nonce, aad, bad, opened) ==
                         coap::oscore_error::decryption_failed);
            }
          }
        }
      }
      bytes opened;
      BOOST_TEST(oscore_core::detail::open(server, nonce, {}, bytes(params.tag_length - 1), opened) ==
                 coap::oscore_error::decryption_failed);
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()
