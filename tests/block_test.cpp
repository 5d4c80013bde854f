// RFC 7959 section 2.2: Block1/Block2 option values at their boundaries.
#include <coap/block.hpp>

#define BOOST_TEST_MODULE block
#include <boost/test/unit_test.hpp>

#include <array>
#include <cstdint>
#include <vector>

namespace coap {
// Boost.Test prints the operands of a failed assertion.
inline std::ostream& boost_test_print_type(std::ostream& os, error e) { return os << make_error_code(e).message(); }
}  // namespace coap

namespace {

coap::block_value decode_ok(std::uint32_t raw) {
  coap::block_value b;
  BOOST_TEST_REQUIRE(!coap::decode_block(raw, b), raw);
  return b;
}

std::error_code decode_bytes(std::vector<std::uint8_t> bytes, coap::block_value& b) {
  return coap::decode_block(std::span<const std::uint8_t>(bytes), b);
}

}  // namespace

static_assert(coap::encode({0, false, 0}) == 0);
static_assert(coap::encode({1, true, 6}) == 0x1e);
static_assert(coap::encode({coap::max_block_num, true, 6}) == 0xfffffe);
static_assert(coap::block_value{0, false, 6}.size() == 1024);
static_assert(coap::szx_for_size(1024) == 6);

BOOST_AUTO_TEST_CASE(sizes) {
  for (std::uint8_t szx = 0; szx <= 6; ++szx) BOOST_TEST((coap::block_value{0, false, szx}.size() == (16u << szx)));
  // Reserved and out-of-range SZX never shift past the type: 1024, BERT's unit.
  BOOST_TEST((coap::block_value{0, false, 7}.size() == 1024u));
  BOOST_TEST((coap::block_value{0, false, 255}.size() == 1024u));
  BOOST_TEST((coap::block_value{3, false, 2}.offset() == 192u));
  BOOST_TEST((coap::block_value{coap::max_block_num, false, 6}.offset() == std::size_t{coap::max_block_num} * 1024));
}

BOOST_AUTO_TEST_CASE(szx_for_sizes) {
  BOOST_TEST(coap::szx_for_size(0) == 0);
  BOOST_TEST(coap::szx_for_size(15) == 0);
  BOOST_TEST(coap::szx_for_size(16) == 0);
  BOOST_TEST(coap::szx_for_size(31) == 0);
  BOOST_TEST(coap::szx_for_size(32) == 1);
  BOOST_TEST(coap::szx_for_size(1023) == 5);
  BOOST_TEST(coap::szx_for_size(1024) == 6);
  BOOST_TEST(coap::szx_for_size(1152) == 6);  // RFC 7252's recommended datagram limit
  BOOST_TEST(coap::szx_for_size(SIZE_MAX) == 6);
  for (std::uint8_t szx = 0; szx <= 6; ++szx) BOOST_TEST(coap::szx_for_size(16u << szx) == szx);
}

BOOST_AUTO_TEST_CASE(encode_decode_round_trip) {
  for (std::uint32_t num : {0u, 1u, 15u, 16u, 4095u, 4096u, coap::max_block_num})
    for (bool more : {false, true})
      for (std::uint8_t szx = 0; szx <= 6; ++szx) {
        const coap::block_value b{num, more, szx};
        BOOST_TEST((decode_ok(coap::encode(b)) == b));
      }
}

BOOST_AUTO_TEST_CASE(decode_fields) {
  // Section 2.2's layout: NUM, then M (bit 3), then SZX (bits 0 to 2).
  auto b = decode_ok(0x0a);
  BOOST_TEST(b.num == 0u);
  BOOST_TEST(b.more);
  BOOST_TEST(b.szx == 2);
  b = decode_ok(0x16);
  BOOST_TEST(b.num == 1u);
  BOOST_TEST(!b.more);
  BOOST_TEST(b.szx == 6);
  b = decode_ok(0xfffff6);
  BOOST_TEST(b.num == coap::max_block_num);
}

BOOST_AUTO_TEST_CASE(decode_errors) {
  coap::block_value b;
  for (std::uint32_t raw : {0x7u, 0xfu, 0x17u, 0xfffff7u})
    BOOST_TEST(coap::decode_block(raw, b) == coap::error::invalid_block_option, raw);
  // NUM 2^20 does not fit three bytes.
  BOOST_TEST(coap::decode_block(0x1000000u, b) == coap::error::invalid_block_option);
  BOOST_TEST(coap::decode_block(0xffffffffu, b) == coap::error::invalid_block_option);
  BOOST_TEST(coap::decode_block(coap::encode({coap::max_block_num + 1, false, 0}), b) ==
             coap::error::invalid_block_option);
}

BOOST_AUTO_TEST_CASE(decode_from_bytes) {
  coap::block_value b;
  BOOST_TEST_REQUIRE(!decode_bytes({}, b));  // the empty uint is 0
  BOOST_TEST((b == coap::block_value{0, false, 0}));
  BOOST_TEST_REQUIRE(!decode_bytes({0x1e}, b));
  BOOST_TEST((b == coap::block_value{1, true, 6}));
  BOOST_TEST_REQUIRE(!decode_bytes({0x01, 0x06}, b));
  BOOST_TEST((b == coap::block_value{16, false, 6}));
  BOOST_TEST_REQUIRE(!decode_bytes({0xff, 0xff, 0xfe}, b));
  BOOST_TEST((b == coap::block_value{coap::max_block_num, true, 6}));
  // Leading zeros are accepted on receipt.
  BOOST_TEST_REQUIRE(!decode_bytes({0x00, 0x00, 0x0e}, b));
  BOOST_TEST((b == coap::block_value{0, true, 6}));
  BOOST_TEST(decode_bytes({0x07}, b) == coap::error::invalid_block_option);
  BOOST_TEST(decode_bytes({0x00, 0x00, 0x00, 0x00}, b) == coap::error::invalid_block_option);
  BOOST_TEST(decode_bytes({0x01, 0x00, 0x00, 0x00}, b) == coap::error::invalid_block_option);
}
