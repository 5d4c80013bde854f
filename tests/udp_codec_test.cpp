// RFC 7252 section 3: the UDP message format, its boundaries and every parse/encode error.
#include <coap/udp_codec.hpp>

#define BOOST_TEST_MODULE udp_codec
#include <boost/test/unit_test.hpp>

#include <coap/message.hpp>

#include <string>
#include <vector>

using bytes = std::vector<std::uint8_t>;

namespace {

std::error_code parse(const bytes& b, coap::message_view& v) { return coap::udp_codec::parse(b, v); }

std::error_code parse_error(const bytes& b) {
  coap::message_view v;
  return parse(b, v);
}

bytes encode(const coap::message& m) {
  bytes out;
  auto ec = coap::udp_codec::encode(m, out);
  BOOST_TEST_REQUIRE(!ec, ec.message());
  return out;
}

}  // namespace

// RFC 7252 Appendix A, figure 16: GET /temperature, MID 0x7d34, no token.
BOOST_AUTO_TEST_CASE(rfc_get_temperature) {
  const bytes wire = {0x40, 0x01, 0x7d, 0x34, 0xbb, 't', 'e', 'm', 'p', 'e', 'r', 'a', 't', 'u', 'r', 'e'};
  coap::message_view v;
  BOOST_TEST_REQUIRE(!parse(wire, v));
  BOOST_TEST((v.type() == coap::message_type::confirmable));
  BOOST_TEST((v.code() == coap::code(coap::method::get)));
  BOOST_TEST(v.message_id() == 0x7d34);
  BOOST_TEST(v.token().empty());
  auto path = v.find(coap::option_number::uri_path);
  BOOST_TEST_REQUIRE(path.has_value());
  BOOST_TEST(path->as_string() == "temperature");
  BOOST_TEST(v.payload().empty());

  coap::message m(coap::method::get);
  m.set_message_id(0x7d34);
  m.add(coap::options::uri_path{}, "temperature");
  BOOST_TEST(encode(m) == wire);
}

// The piggybacked response: ACK 2.05 "22.3 C".
BOOST_AUTO_TEST_CASE(rfc_piggybacked_response) {
  const bytes wire = {0x60, 0x45, 0x7d, 0x34, 0xff, '2', '2', '.', '3', ' ', 'C'};
  coap::message_view v;
  BOOST_TEST_REQUIRE(!parse(wire, v));
  BOOST_TEST((v.type() == coap::message_type::acknowledgement));
  BOOST_TEST(coap::to_string(v.code()) == "2.05 Content");
  BOOST_TEST(v.payload_string() == "22.3 C");
  BOOST_TEST(v.options().empty());
  coap::message m(v);
  BOOST_TEST(encode(m) == wire);
}

BOOST_AUTO_TEST_CASE(token_and_empty_messages) {
  coap::message m(coap::method::post, coap::message_type::non_confirmable);
  m.set_message_id(7);
  m.set_token(coap::token::from_uint(0x0102030405060708ull));
  m.set_payload(std::string_view("x"));
  auto wire = encode(m);
  BOOST_TEST(wire[0] == 0x58);  // Ver 1, NON, TKL 8
  coap::message_view v;
  BOOST_TEST_REQUIRE(!parse(wire, v));
  BOOST_TEST(v.token().size() == 8u);
  BOOST_TEST(v.token()[7] == 8);

  // An empty ACK and a ping (empty CON) are exactly four bytes.
  coap::message ack;
  ack.set_type(coap::message_type::acknowledgement);
  ack.set_message_id(0xbeef);
  BOOST_TEST(encode(ack) == (bytes{0x60, 0x00, 0xbe, 0xef}));
  coap::message rst;
  rst.set_type(coap::message_type::reset);
  BOOST_TEST(encode(rst) == (bytes{0x70, 0x00, 0x00, 0x00}));
}

// Option delta and length at each boundary of the 4-bit, 8-bit and 16-bit encodings.
BOOST_AUTO_TEST_CASE(option_boundaries) {
  for (std::uint32_t number : {12u, 13u, 268u, 269u, 65535u}) {
    for (std::size_t length : {0u, 12u, 13u, 268u, 269u, 65804u}) {
      coap::message m(coap::method::post);
      // Number 12 (Content-Format) is bounded to 2 bytes: use it with length 0 only.
      if (number == 12 && length > 2) continue;
      // 268 and 269 and 65535 are unregistered, 13 too: no length bounds apply.
      m.add_option(static_cast<std::uint16_t>(number), bytes(length, 0xa5));
      auto wire = encode(m);
      coap::message_view v;
      BOOST_TEST_REQUIRE(!parse(wire, v), "number " << number << " length " << length);
      auto o = v.find(static_cast<std::uint16_t>(number));
      BOOST_TEST_REQUIRE(o.has_value());
      BOOST_TEST(o->value().size() == length);
      const std::size_t ext = (number < 13 ? 0 : number < 269 ? 1 : 2) +
                              (length < 13 ? 0 : length < 269 ? 1 : 2);
      BOOST_TEST(wire.size() == 4 + 1 + ext + length);
    }
  }
}

BOOST_AUTO_TEST_CASE(option_length_65805_is_refused) {
  coap::message m(coap::method::post);
  m.add_option(65000, bytes(65805, 0));
  bytes out;
  BOOST_TEST((coap::udp_codec::encode(m, out) == coap::error::option_value_too_long));
}

BOOST_AUTO_TEST_CASE(repeated_options_keep_order) {
  coap::message m(coap::method::get);
  m.add(coap::options::uri_query{}, "b=2");
  m.add(coap::options::uri_path{}, "one");
  m.add(coap::options::uri_path{}, "two");
  m.add(coap::options::uri_query{}, "a=1");
  coap::message_view v;
  auto wire = encode(m);
  BOOST_TEST_REQUIRE(!parse(wire, v));
  std::vector<std::string> seen;
  for (auto o : v.options()) seen.emplace_back(o.as_string());
  BOOST_TEST((seen == std::vector<std::string>{"one", "two", "b=2", "a=1"}));
  BOOST_TEST(v.count(11) == 2u);
}

BOOST_AUTO_TEST_CASE(parse_errors) {
  using coap::error;
  BOOST_TEST((parse_error({}) == error::truncated_header));
  BOOST_TEST((parse_error({0x40, 0x01, 0x00}) == error::truncated_header));
  BOOST_TEST((parse_error({0x80, 0x01, 0x00, 0x01}) == error::unsupported_version));
  BOOST_TEST((parse_error({0x00, 0x01, 0x00, 0x01}) == error::unsupported_version));
  for (std::uint8_t tkl = 9; tkl <= 15; ++tkl)
    BOOST_TEST((parse_error({static_cast<std::uint8_t>(0x40 | tkl), 0x01, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9,
                             10, 11, 12, 13, 14, 15}) == error::invalid_token_length));
  BOOST_TEST((parse_error({0x44, 0x01, 0x00, 0x01, 0xaa, 0xbb}) == error::truncated_token));
  // Delta nibble 15 without length 15 is not the payload marker.
  BOOST_TEST((parse_error({0x40, 0x01, 0x00, 0x01, 0xf0}) == error::reserved_option_nibble));
  BOOST_TEST((parse_error({0x40, 0x01, 0x00, 0x01, 0x1f}) == error::reserved_option_nibble));
  // Extended delta or length missing, or a value running past the end.
  BOOST_TEST((parse_error({0x40, 0x01, 0x00, 0x01, 0xd0}) == error::truncated_option));
  BOOST_TEST((parse_error({0x40, 0x01, 0x00, 0x01, 0xe0, 0x00}) == error::truncated_option));
  BOOST_TEST((parse_error({0x40, 0x01, 0x00, 0x01, 0x0d}) == error::truncated_option));
  BOOST_TEST((parse_error({0x40, 0x01, 0x00, 0x01, 0x0e, 0x01}) == error::truncated_option));
  BOOST_TEST((parse_error({0x40, 0x01, 0x00, 0x01, 0xb3, 'a', 'b'}) == error::truncated_option));
  // Two deltas of 65535+269 overflow the 16-bit option number.
  BOOST_TEST((parse_error({0x40, 0x01, 0x00, 0x01, 0xe0, 0xff, 0xff, 0xe0, 0xff, 0xff}) ==
              error::option_number_overflow));
  BOOST_TEST((parse_error({0x40, 0x01, 0x00, 0x01, 0xff}) == error::payload_marker_without_payload));
  BOOST_TEST((parse_error({0x40, 0x01, 0x00, 0x01, 0xb1, 'a', 0xff}) == error::payload_marker_without_payload));
  // Section 4.1: nothing may follow the message ID of an empty message.
  BOOST_TEST((parse_error({0x41, 0x00, 0x00, 0x01, 0xaa}) == error::empty_message_not_empty));
  BOOST_TEST((parse_error({0x60, 0x00, 0x00, 0x01, 0xff, 0x01}) == error::empty_message_not_empty));
}

BOOST_AUTO_TEST_CASE(header_of_a_malformed_message) {
  // The message ID of a CON whose options are broken, for the RST (section 4.2).
  const bytes wire = {0x40, 0x01, 0x12, 0x34, 0xf0};
  coap::udp_codec::header h;
  BOOST_TEST_REQUIRE(!coap::udp_codec::parse_header(wire, h));
  BOOST_TEST(h.message_id == 0x1234);
  BOOST_TEST((h.type == coap::message_type::confirmable));
}

BOOST_AUTO_TEST_CASE(encode_refuses) {
  using coap::error;
  bytes out;
  {
    coap::message m;
    m.set_code(coap::code(coap::make_code(1, 0)));
    BOOST_TEST((coap::udp_codec::encode(m, out) == error::reserved_code_class));
    m.set_code(coap::signal_code::ping);
    BOOST_TEST((coap::udp_codec::encode(m, out) == error::reserved_code_class));
  }
  {
    coap::message m;  // 0.00 with a token
    m.set_token(coap::token::from_uint(1, 1));
    BOOST_TEST((coap::udp_codec::encode(m, out) == error::empty_message_not_empty));
  }
  {
    coap::message m(coap::method::get, coap::message_type::acknowledgement);
    BOOST_TEST((coap::udp_codec::encode(m, out) == error::invalid_message));
  }
  {
    coap::message m(coap::method::get);
    m.add(coap::options::uri_host{}, "");  // Uri-Host is 1 to 255 bytes
    BOOST_TEST((coap::udp_codec::encode(m, out) == error::option_value_length));
  }
  {
    coap::message m(coap::method::get);
    m.add(coap::options::content_format{}, 0);
    m.add(coap::options::content_format{}, 50);
    BOOST_TEST((coap::udp_codec::encode(m, out) == error::option_not_repeatable));
  }
  {
    coap::message m(coap::method::get);
    m.set_payload(std::string_view("hello"));
    std::uint8_t small[8];
    std::size_t written = 0;
    BOOST_TEST((coap::udp_codec::encode(m, small, written) == error::buffer_too_small));
  }
}

BOOST_AUTO_TEST_CASE(error_messages_are_distinct) {
  std::vector<std::string> seen;
  for (int e = 1; e <= static_cast<int>(coap::error::not_observable); ++e) {
    auto ec = coap::make_error_code(static_cast<coap::error>(e));
    BOOST_TEST(std::string(ec.category().name()) == "coap");
    auto text = ec.message();
    BOOST_TEST(text != "unknown coap error");
    BOOST_TEST((std::find(seen.begin(), seen.end(), text) == seen.end()), text);
    seen.push_back(text);
  }
}

// ---- RFC 7252 section 4.2, sans-I/O (detail/udp_exchanges.hpp): the retransmission schedule
// of a UDP session's exchanges, driven with made-up times, no socket. ----
#include <coap/detail/udp_exchanges.hpp>

#include <chrono>

BOOST_AUTO_TEST_CASE(con_retransmission_schedule_without_a_socket) {
  using table = coap::detail::udp_exchanges<std::allocator<std::uint8_t>, void(std::error_code)>;
  using clock = table::clock;
  table t{std::allocator<std::uint8_t>()};
  coap::session_config c;
  c.ack_timeout = std::chrono::seconds(2);
  c.ack_random_factor = 1.5;
  c.max_retransmit = 4;
  const auto t0 = clock::time_point{} + std::chrono::hours(1);

  table::exchange x{std::allocator<std::uint8_t>()};
  x.message_id = 7;
  x.wire = {0x40, 0x01, 0x00, 0x07};
  // The lowest random number: the first timeout is ACK_TIMEOUT exactly.
  table::schedule_first(x, t0, c, [] { return std::uint64_t{0}; });
  BOOST_TEST((x.deadline == t0 + std::chrono::seconds(2)));
  t.reserve_one();
  t.add(std::move(x));
  BOOST_TEST(t.active_requests() == 1u);
  BOOST_TEST(t.find_by_message_id(7).has_value());

  // Section 4.2: 2, 4, 8, 16 s apart, MAX_RETRANSMIT times; then given up.
  int sent = 0, expired = 0;
  auto now = t0;
  std::chrono::seconds interval(2);
  for (int i = 0; i < 4; ++i) {
    now += interval;
    t.on_deadline(now, c.max_retransmit, [&](std::span<const std::uint8_t> w) { sent += w.size() == 4; },
                  [&](std::size_t) { ++expired; });
    BOOST_TEST(sent == i + 1);
    interval *= 2;
    BOOST_TEST((t.next_deadline() == now + interval));
  }
  now += interval;
  t.on_deadline(now, c.max_retransmit, [&](std::span<const std::uint8_t>) { ++sent; },
                [&](std::size_t i) { ++expired, (void)t.take(i); });
  BOOST_TEST(sent == 4);
  BOOST_TEST(expired == 1);
  BOOST_TEST(t.empty());
  BOOST_TEST(!t.next_deadline().has_value());

  // The highest random number: ACK_TIMEOUT * ACK_RANDOM_FACTOR (less a rounding step).
  table::exchange y{std::allocator<std::uint8_t>()};
  table::schedule_first(y, t0, c, [] { return ~std::uint64_t{0}; });
  BOOST_TEST((y.deadline > t0 + std::chrono::milliseconds(2999) && y.deadline <= t0 + std::chrono::seconds(3)));
  // A NON waits response_timeout, without asking for a random number.
  y.confirmable = false;
  table::schedule_first(y, t0, c, []() -> std::uint64_t { throw 1; });
  BOOST_TEST((y.deadline == t0 + c.response_timeout));
  // Section 4.8.2: NON_LIFETIME is MAX_TRANSMIT_SPAN + 100 s; a CON's ID is kept EXCHANGE_LIFETIME.
  BOOST_TEST((table::dedup_lifetime(c, true) == c.exchange_lifetime));
  BOOST_TEST((table::dedup_lifetime(c, false) == std::chrono::duration_cast<std::chrono::seconds>(c.max_transmit_span()) +
                                                     std::chrono::seconds(100)));
}
