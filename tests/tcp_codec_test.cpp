// RFC 8323 section 3.2: TCP framing, the Len boundaries, partial frames and signalling.
#include <coap/tcp_codec.hpp>

#define BOOST_TEST_MODULE tcp_codec
#include <boost/test/unit_test.hpp>

#include <coap/message.hpp>

#include <vector>

using bytes = std::vector<std::uint8_t>;

namespace {
bytes encode(const coap::message& m) {
  bytes out;
  auto ec = coap::tcp_codec::encode(m, out);
  BOOST_TEST_REQUIRE(!ec, ec.message());
  return out;
}
}  // namespace

// RFC 8323 figure 8 style: a GET with a 2-byte token and Uri-Path "a".
BOOST_AUTO_TEST_CASE(small_request) {
  coap::message m(coap::method::get);
  m.set_token(coap::token::from_uint(0xabcd, 2));
  m.add(coap::options::uri_path{}, "a");
  const bytes wire = encode(m);
  BOOST_TEST(wire == (bytes{0x22, 0x01, 0xab, 0xcd, 0xb1, 'a'}));
  std::uint64_t size = 0;
  BOOST_TEST(!coap::tcp_codec::frame_size(wire, size));
  BOOST_TEST(size == wire.size());
  coap::message_view v;
  BOOST_TEST_REQUIRE(!coap::tcp_codec::parse(wire, v));
  BOOST_TEST(v.find(11)->as_string() == "a");
}

// Len is options + marker + payload: each boundary of the nibble, 1-, 2- and 4-byte forms.
BOOST_AUTO_TEST_CASE(length_boundaries) {
  for (std::uint64_t len : {0u, 12u, 13u, 268u, 269u, 65804u, 65805u, 70000u}) {
    coap::message m(coap::response_code::content);
    if (len > 0) m.set_payload(bytes(len - 1, 0x5a));  // the marker is one byte of Len
    const bytes wire = encode(m);
    const std::size_t ext = len < 13 ? 0 : len < 269 ? 1 : len < 65805 ? 2 : 4;
    BOOST_TEST(wire.size() == 1 + ext + 1 + len, "len " << len);
    const unsigned nibble = wire[0] >> 4;
    BOOST_TEST(nibble == (len < 13 ? len : len < 269 ? 13u : len < 65805 ? 14u : 15u));
    std::uint64_t size = 0;
    BOOST_TEST(!coap::tcp_codec::frame_size(wire, size));
    BOOST_TEST(size == wire.size());
    coap::message_view v;
    BOOST_TEST_REQUIRE(!coap::tcp_codec::parse(wire, v));
    BOOST_TEST(v.payload().size() == (len ? len - 1 : 0));
  }
}

BOOST_AUTO_TEST_CASE(partial_frames) {
  coap::message m(coap::response_code::content);
  m.set_payload(bytes(1000, 1));
  const bytes wire = encode(m);  // Len 1001: nibble 14, 2 extension bytes
  std::uint64_t size = 99;
  BOOST_TEST(!coap::tcp_codec::frame_size(std::span(wire).first(0), size));
  BOOST_TEST(size == 0u);
  BOOST_TEST(!coap::tcp_codec::frame_size(std::span(wire).first(2), size));
  BOOST_TEST(size == 0u);  // the header is not complete yet
  BOOST_TEST(!coap::tcp_codec::frame_size(std::span(wire).first(3), size));
  BOOST_TEST(size == wire.size());
  coap::message_view v;
  BOOST_TEST((coap::tcp_codec::parse(std::span(wire).first(wire.size() - 1), v) ==
              coap::error::truncated_frame));
  bytes longer = wire;
  longer.push_back(0);
  BOOST_TEST((coap::tcp_codec::parse(longer, v) == coap::error::invalid_message));
}

BOOST_AUTO_TEST_CASE(parse_errors) {
  using coap::error;
  coap::message_view v;
  std::uint64_t size = 0;
  for (std::uint8_t tkl = 9; tkl <= 15; ++tkl) {
    const bytes wire = {tkl, 0x01};
    BOOST_TEST((coap::tcp_codec::frame_size(wire, size) == error::invalid_token_length));
    BOOST_TEST((coap::tcp_codec::parse(wire, v) == error::invalid_token_length));
  }
  BOOST_TEST((coap::tcp_codec::parse(bytes{}, v) == error::truncated_header));
  BOOST_TEST((coap::tcp_codec::parse(bytes{0x00}, v) == error::truncated_header));
  BOOST_TEST((coap::tcp_codec::parse(bytes{0x02, 0x01, 0xaa}, v) == error::truncated_token));
  BOOST_TEST((coap::tcp_codec::parse(bytes{0x10, 0x01, 0xff}, v) == error::payload_marker_without_payload));
  BOOST_TEST((coap::tcp_codec::parse(bytes{0x10, 0x01, 0xf0}, v) == error::reserved_option_nibble));
  BOOST_TEST((coap::tcp_codec::parse(bytes{0x10, 0x01, 0xd0}, v) == error::truncated_option));
  BOOST_TEST((coap::tcp_codec::parse(bytes{0xd0, 0x00, 0x01}, v) == error::truncated_frame));
  // A 4-byte Len of 0xffffffff + 65805 is computed without overflow and reported as missing.
  const bytes huge = {0xf0, 0xff, 0xff, 0xff, 0xff, 0x45};
  BOOST_TEST(!coap::tcp_codec::frame_size(huge, size));
  BOOST_TEST(size == 6u + 0xffffffffull + 65805u);
  BOOST_TEST((coap::tcp_codec::parse(huge, v) == error::truncated_frame));
}

// RFC 8323 section 5.3: a CSM with Max-Message-Size and Block-Wise-Transfer.
BOOST_AUTO_TEST_CASE(csm_signal) {
  coap::message csm(coap::signal_code::csm);
  csm.add_uint_option(2, 1152);
  csm.add_empty_option(4);
  const bytes wire = encode(csm);
  BOOST_TEST(wire == (bytes{0x40, 0xe1, 0x22, 0x04, 0x80, 0x20}));
  coap::message_view v;
  BOOST_TEST_REQUIRE(!coap::tcp_codec::parse(wire, v));
  BOOST_TEST((v.code() == coap::code(coap::signal_code::csm)));
  BOOST_TEST(v.find(2)->as_uint() == 1152u);
  // Signalling options are checked against their own registry: Max-Message-Size is 0-4 bytes.
  coap::message bad(coap::signal_code::csm);
  bad.add_option(2, bytes(5, 1));
  bytes out;
  BOOST_TEST((coap::tcp_codec::encode(bad, out) == coap::error::option_value_length));
}

BOOST_AUTO_TEST_CASE(reserved_class_refused) {
  coap::message m;
  m.set_code(coap::code(coap::make_code(6, 1)));
  bytes out;
  BOOST_TEST((coap::tcp_codec::encode(m, out) == coap::error::reserved_code_class));
}
