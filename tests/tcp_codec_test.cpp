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

// ---- RFC 8323 sections 3.2 and 5.3, sans-I/O: the receiving frame buffer
// (detail/frame_buffer.hpp) and the CSM state (detail/peer_capabilities.hpp), no socket. ----
#include <coap/detail/frame_buffer.hpp>
#include <coap/detail/peer_capabilities.hpp>

#include <algorithm>

BOOST_AUTO_TEST_CASE(frame_buffer_cuts_frames_across_reads) {
  coap::message get(coap::code(coap::method::get), coap::message_type::confirmable);
  get.set_token(coap::token::from_uint(0x1234, 2));
  get.set_payload("hello");
  const bytes one = encode(get);
  bytes two = one;
  two.insert(two.end(), one.begin(), one.end());

  coap::detail::frame_buffer<std::allocator<std::uint8_t>> in{std::allocator<std::uint8_t>()};
  in.reserve();
  // Both frames but the last byte: one comes out, the partial one stays.
  auto space = in.read_space(1024);
  BOOST_TEST_REQUIRE(space.size() >= two.size());
  std::copy(two.begin(), two.end() - 1, space.begin());
  in.commit(two.size() - 1);
  int frames = 0;
  auto r = in.cut(1024, [&](const coap::message_view& m) {
    BOOST_TEST(m.payload().size() == 5u);
    return ++frames, true;
  });
  BOOST_TEST((r.what == decltype(in)::problem::none));
  BOOST_TEST(frames == 1);
  BOOST_TEST(in.partial());
  // The last byte (as TLS plaintext would come): the second frame.
  in.append(std::span<const std::uint8_t>(&two.back(), 1));
  (void)in.cut(1024, [&](const coap::message_view&) { return ++frames, true; });
  BOOST_TEST(frames == 2);
  BOOST_TEST(!in.partial());
  // Section 5.3.1: a frame over the largest we accept is refused from its header alone.
  in.append(std::span<const std::uint8_t>(one.data(), 2));
  BOOST_TEST((in.cut(4, [](const coap::message_view&) { return true; }).what == decltype(in)::problem::too_large));
}

// An idle connection holds initial_size bytes; a read that fills the room doubles it.
BOOST_AUTO_TEST_CASE(frame_buffer_starts_small_and_grows_when_filled) {
  coap::message big(coap::code(coap::method::put), coap::message_type::confirmable);
  big.set_payload(std::string(700, 'x'));
  const bytes wire = encode(big);
  coap::detail::frame_buffer<std::allocator<std::uint8_t>> in{std::allocator<std::uint8_t>()};
  in.reserve();
  auto space = in.read_space(65536);
  BOOST_TEST(space.size() == 512u);
  std::copy(wire.begin(), wire.begin() + 512, space.begin());
  in.commit(512);
  int frames = 0;
  (void)in.cut(65536, [&](const coap::message_view&) { return ++frames, true; });
  BOOST_TEST(frames == 0);
  space = in.read_space(65536);
  BOOST_TEST(space.size() == 512u);  // 1024 bytes now, 512 of them the partial frame
  std::copy(wire.begin() + 512, wire.end(), space.begin());
  in.commit(wire.size() - 512);
  std::size_t payload = 0;
  (void)in.cut(65536, [&](const coap::message_view& m) { return payload = m.payload().size(), ++frames, true; });
  BOOST_TEST(payload == 700u);
  BOOST_TEST(frames == 1);
  BOOST_TEST(!in.partial());
}

BOOST_AUTO_TEST_CASE(peer_capabilities_from_csm) {
  coap::session_config c;
  coap::message ours(coap::code(coap::signal_code::csm), coap::message_type::confirmable);
  coap::detail::peer_capabilities::describe_ours(ours, c);
  const bytes wire = encode(ours);
  coap::message_view csm;
  BOOST_TEST_REQUIRE(!coap::tcp_codec::parse(wire, csm));
  coap::detail::peer_capabilities peer;
  BOOST_TEST(peer.max_message_size == 1152u);
  BOOST_TEST(peer.update(csm));   // the first CSM makes the connection ready
  BOOST_TEST(!peer.update(csm));  // later ones only update
  BOOST_TEST(peer.max_message_size == c.max_message_size);
  BOOST_TEST(peer.block_wise);
  BOOST_TEST(!coap::detail::peer_capabilities::unknown_critical_option(csm).has_value());
  // Section 5.2: a critical option the signal does not define.
  coap::message odd(coap::code(coap::signal_code::csm), coap::message_type::confirmable);
  odd.add_empty_option(9);
  const bytes odd_wire = encode(odd);
  BOOST_TEST_REQUIRE(!coap::tcp_codec::parse(odd_wire, csm));
  BOOST_TEST(coap::detail::peer_capabilities::unknown_critical_option(csm).value_or(0) == 9);
}
