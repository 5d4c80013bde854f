// RFC 7959 sections 2.2-2.5 and RFC 8323 section 6, the server's side, without sockets:
// Block1 reassembly (order, loss, duplicates, sizes, limits, expiry), the Block2 block cut
// from a whole representation, and RFC 7641 section 4.5's choice of CON notifications.
#include <coap/detail/block_server.hpp>

#define BOOST_TEST_MODULE block_server
#include <boost/test/unit_test.hpp>

#include <coap/detail/observe_server.hpp>
#include <coap/udp_codec.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;
using bytes = std::vector<std::uint8_t>;
using coap::detail::block1_step;

constexpr auto block1 = static_cast<std::uint16_t>(coap::option_number::block1);
constexpr auto block2 = static_cast<std::uint16_t>(coap::option_number::block2);
constexpr auto size1 = static_cast<std::uint16_t>(coap::option_number::size1);
constexpr auto size2 = static_cast<std::uint16_t>(coap::option_number::size2);

// A body whose bytes differ from block to block (251 is prime: no period of a block size).
bytes body_of(std::size_t n, std::uint8_t seed = 0) {
  bytes b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::uint8_t>((i + seed) % 251);
  return b;
}

// A message as the session sees it: encoded, then parsed into a view of the bytes.
struct parsed {
  bytes wire;
  coap::message_view view;
  explicit parsed(const coap::message& m) {
    BOOST_TEST_REQUIRE(!coap::udp_codec::encode(m, wire));
    BOOST_TEST_REQUIRE(!coap::udp_codec::parse(wire, view));
  }
  // `m` with one more option appended as raw bytes, past what the codec would encode (a value
  // longer than the option's registered bounds). Its number must exceed m's options'.
  parsed(const coap::message& m, std::uint16_t number, bytes value) {
    coap::message head(m);
    head.set_payload(bytes{});
    BOOST_TEST_REQUIRE(!coap::udp_codec::encode(head, wire));
    std::uint16_t last = 0;
    for (auto o : m.options()) last = o.number();
    const unsigned delta = number - last;
    BOOST_TEST_REQUIRE((delta > 0 && delta < 269 && value.size() < 13));
    if (delta < 13) {
      wire.push_back(static_cast<std::uint8_t>(delta << 4 | value.size()));
    } else {
      wire.push_back(static_cast<std::uint8_t>(0xd0 | value.size()));
      wire.push_back(static_cast<std::uint8_t>(delta - 13));
    }
    wire.insert(wire.end(), value.begin(), value.end());
    if (!m.payload().empty()) {
      wire.push_back(0xff);
      wire.insert(wire.end(), m.payload().begin(), m.payload().end());
    }
    BOOST_TEST_REQUIRE(!coap::udp_codec::parse(wire, view));
    BOOST_TEST_REQUIRE(view.find(number)->value().size() == value.size());
  }
  parsed(const parsed&) = delete;
  parsed& operator=(const parsed&) = delete;
};

// A PUT carrying block `num` of `body` in blocks of 2^(szx+4) bytes (1024 for BERT, whose
// payload is `units` times 1024 bytes).
coap::message put_block(const bytes& body, std::uint32_t num, std::uint8_t szx, std::string_view path = "up",
                        std::optional<std::uint8_t> request_tag = std::nullopt, std::size_t units = 1) {
  const std::size_t size = coap::block_value{0, false, szx}.size() * (szx == 7 ? units : 1);
  const std::size_t offset = num * coap::block_value{0, false, szx}.size();
  const std::size_t length = offset < body.size() ? std::min(size, body.size() - offset) : 0;
  const bool more = offset + length < body.size();
  coap::message m(coap::method::put);
  m.add(coap::options::uri_path{}, path);
  if (request_tag) m.add(coap::options::request_tag{}, std::span<const std::uint8_t>(&*request_tag, 1));
  m.add_uint_option(block1, coap::encode({num, more, szx}));
  m.set_payload(std::span<const std::uint8_t>(body.data() + offset, length));
  return m;
}

std::optional<coap::block_value> block_option(const coap::message& m, std::uint16_t number) {
  auto o = m.find(number);
  if (!o) return std::nullopt;
  coap::block_value b;
  if (coap::decode_block(o->value(), b)) {
    // BERT (SZX 7) does not decode as RFC 7959: read it by hand.
    const std::uint32_t raw = o->as_uint();
    return coap::block_value{raw >> 4, (raw & 8u) != 0, static_cast<std::uint8_t>(raw & 7u)};
  }
  return b;
}

struct assembler_fixture {
  coap::session_config config;
  coap::detail::block_counters counters;
  coap::detail::block1_assembler<std::allocator<std::uint8_t>> assembler{std::allocator<std::uint8_t>()};
  clock_type::time_point now = clock_type::time_point{} + 1h;

  struct result {
    block1_step step;
    coap::message answer;
    bytes body;  // after complete
  };
  // One request through the assembler, as serve_request does it.
  result feed(const coap::message& request, bool bert = false) {
    parsed p(request);
    return feed(p, bert);
  }
  result feed(const parsed& p, bool bert = false) {
    result r;
    r.step = assembler.on_request(p.view, r.answer, config, bert, counters, now);
    if (r.step == block1_step::complete) {
      const auto b = assembler.body();
      r.body.assign(b.begin(), b.end());
      assembler.release_completed();
    }
    return r;
  }
  // Feeds blocks first..last (inclusive) of `body`, expecting 2.31 for each.
  void feed_continue(const bytes& body, std::uint32_t first, std::uint32_t last, std::uint8_t szx,
                     std::string_view path = "up", std::optional<std::uint8_t> tag = std::nullopt) {
    for (std::uint32_t n = first; n <= last; ++n) {
      auto r = feed(put_block(body, n, szx, path, tag));
      BOOST_TEST_REQUIRE((r.step == block1_step::continue_), "block " << n);
      BOOST_TEST((r.answer.code() == coap::response_code::continue_));
      BOOST_TEST((block_option(r.answer, block1) == coap::block_value{n, true, szx}));
    }
  }
};

std::string code_of(const coap::message& m) { return coap::to_string(m.code()); }

}  // namespace

BOOST_FIXTURE_TEST_SUITE(block1_reassembly, assembler_fixture)

BOOST_AUTO_TEST_CASE(no_block1_is_dispatched_as_it_came) {
  coap::message m(coap::method::put);
  m.set_payload(std::string_view("plain"));
  auto r = feed(m);
  BOOST_TEST((r.step == block1_step::none));
  BOOST_TEST(r.answer.option_count() == 0u);
}

BOOST_AUTO_TEST_CASE(in_order_blocks_are_continued_then_completed) {
  const auto body = body_of(5000);  // 78 blocks of 64 bytes and one of 8
  feed_continue(body, 0, 77, 2);
  BOOST_TEST(assembler.partial_bodies() == 1u);
  auto last = feed(put_block(body, 78, 2));
  BOOST_TEST_REQUIRE((last.step == block1_step::complete));
  BOOST_TEST(last.body == body, boost::test_tools::per_element());
  // Section 2.3: the final response echoes Block1 (M=0).
  BOOST_TEST((block_option(last.answer, block1) == coap::block_value{78, false, 2}));
  BOOST_TEST(counters.bodies_completed == 1u);
  BOOST_TEST(assembler.partial_bodies() == 0u);
}

BOOST_AUTO_TEST_CASE(a_body_in_one_block_completes_at_once) {
  const auto body = body_of(40);
  auto r = feed(put_block(body, 0, 2));
  BOOST_TEST_REQUIRE((r.step == block1_step::complete));
  BOOST_TEST(r.body == body, boost::test_tools::per_element());
  BOOST_TEST((block_option(r.answer, block1) == coap::block_value{0, false, 2}));
  BOOST_TEST(assembler.partial_bodies() == 0u);
}

BOOST_AUTO_TEST_CASE(a_lost_block_is_4_08) {
  const auto body = body_of(640);
  feed_continue(body, 0, 1, 2);
  auto r = feed(put_block(body, 3, 2));  // block 2 never came
  BOOST_TEST((r.step == block1_step::refused));
  BOOST_TEST(code_of(r.answer) == "4.08 Request Entity Incomplete");
  BOOST_TEST(!r.answer.find(block1));
  BOOST_TEST(counters.incomplete == 1u);
  BOOST_TEST(assembler.partial_bodies() == 0u);
  // The body is gone: the late block 2 cannot revive it.
  BOOST_TEST(code_of(feed(put_block(body, 2, 2)).answer) == "4.08 Request Entity Incomplete");
  BOOST_TEST(counters.bodies_completed == 0u);
}

BOOST_AUTO_TEST_CASE(a_duplicated_block_is_answered_again_and_not_kept_twice) {
  const auto body = body_of(300);
  feed_continue(body, 0, 2, 2);
  feed_continue(body, 2, 2, 2);  // block 2 again (its 2.31 was lost; a new message ID)
  feed_continue(body, 3, 3, 2);
  auto last = feed(put_block(body, 4, 2));
  BOOST_TEST_REQUIRE((last.step == block1_step::complete));
  BOOST_TEST(last.body.size() == 300u);
  BOOST_TEST(last.body == body, boost::test_tools::per_element());
  BOOST_TEST(counters.incomplete == 0u);
}

BOOST_AUTO_TEST_CASE(block_zero_again_restarts_the_body) {
  const auto first = body_of(300, 1);
  const auto second = body_of(200, 2);
  feed_continue(first, 0, 2, 2);
  feed_continue(second, 0, 1, 2);  // a new body to the same resource
  BOOST_TEST(assembler.partial_bodies() == 1u);
  feed_continue(second, 2, 2, 2);
  auto last = feed(put_block(second, 3, 2));
  BOOST_TEST_REQUIRE((last.step == block1_step::complete));
  BOOST_TEST(last.body == second, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(reordered_blocks_are_4_08) {
  const auto body = body_of(640);
  feed_continue(body, 0, 0, 2);
  BOOST_TEST(code_of(feed(put_block(body, 2, 2)).answer) == "4.08 Request Entity Incomplete");
  BOOST_TEST(code_of(feed(put_block(body, 1, 2)).answer) == "4.08 Request Entity Incomplete");
  BOOST_TEST(counters.incomplete == 2u);
  BOOST_TEST(assembler.partial_bodies() == 0u);
}

BOOST_AUTO_TEST_CASE(a_block_size_change_mid_body_is_4_08) {
  const auto body = body_of(640);
  feed_continue(body, 0, 0, 3);  // 128 bytes
  // Block 2 of 64 bytes starts at offset 128, where the body stands, but in another size.
  auto r = feed(put_block(body, 2, 2));
  BOOST_TEST(code_of(r.answer) == "4.08 Request Entity Incomplete");
  BOOST_TEST(assembler.partial_bodies() == 0u);
}

BOOST_AUTO_TEST_CASE(a_short_block_that_is_not_the_last_is_4_08) {
  auto m = put_block(body_of(640), 0, 2);
  m.set_payload(body_of(63));
  auto r = feed(m);
  BOOST_TEST(code_of(r.answer) == "4.08 Request Entity Incomplete");
  BOOST_TEST(assembler.partial_bodies() == 0u);
}

BOOST_AUTO_TEST_CASE(size1_over_the_limit_is_4_13_with_the_limit) {
  config.max_body_size = 1000;
  auto m = put_block(body_of(2000), 0, 2);
  m.add_uint_option(size1, 2000);
  auto r = feed(m);
  BOOST_TEST((r.step == block1_step::refused));
  BOOST_TEST(code_of(r.answer) == "4.13 Request Entity Too Large");
  BOOST_TEST_REQUIRE(r.answer.find(size1).has_value());
  BOOST_TEST(r.answer.find(size1)->as_uint() == 1000u);
  BOOST_TEST(counters.too_large == 1u);
  BOOST_TEST(assembler.partial_bodies() == 0u);
}

BOOST_AUTO_TEST_CASE(size1_at_the_limit_is_accepted) {
  config.max_body_size = 1000;
  auto m = put_block(body_of(1000), 0, 2);
  m.add_uint_option(size1, 1000);
  BOOST_TEST((feed(m).step == block1_step::continue_));
}

BOOST_AUTO_TEST_CASE(a_body_growing_past_the_limit_is_4_13) {
  config.max_body_size = 200;
  const auto body = body_of(400);
  feed_continue(body, 0, 2, 2);  // 192 bytes
  auto r = feed(put_block(body, 3, 2));  // would end at 256
  BOOST_TEST(code_of(r.answer) == "4.13 Request Entity Too Large");
  BOOST_TEST(r.answer.find(size1)->as_uint() == 200u);
  BOOST_TEST(assembler.partial_bodies() == 0u);
}

BOOST_AUTO_TEST_CASE(a_body_of_exactly_the_limit_completes) {
  config.max_body_size = 200;
  const auto body = body_of(200);
  feed_continue(body, 0, 2, 2);
  auto r = feed(put_block(body, 3, 2));  // the last 8 bytes
  BOOST_TEST_REQUIRE((r.step == block1_step::complete));
  BOOST_TEST(r.body == body, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(an_offset_past_the_limit_is_4_13) {
  config.max_body_size = 1000;
  // Block 100 of 64 bytes starts at 6400: no body of ours can reach it.
  auto r = feed(put_block(body_of(8000), 100, 2));
  BOOST_TEST(code_of(r.answer) == "4.13 Request Entity Too Large");
  BOOST_TEST(r.answer.find(size1)->as_uint() == 1000u);
}

BOOST_AUTO_TEST_CASE(a_four_byte_block1_is_4_02) {
  auto m = put_block(body_of(64), 0, 2);
  m.remove_option(block1);
  parsed p(m, block1, {0, 0, 0, 0x02});
  auto r = feed(p);
  BOOST_TEST((r.step == block1_step::refused));
  BOOST_TEST(code_of(r.answer) == "4.02 Bad Option");
  BOOST_TEST(counters.bad_option == 1u);
}

BOOST_AUTO_TEST_CASE(szx_7_is_4_02_without_bert) {
  auto m = put_block(body_of(2048), 0, 7);
  auto r = feed(m, false);
  BOOST_TEST(code_of(r.answer) == "4.02 Bad Option");
  BOOST_TEST(assembler.partial_bodies() == 0u);
}

BOOST_AUTO_TEST_CASE(bert_blocks_are_multiples_of_1024) {
  const auto body = body_of(5000);
  // Block 0 carries two units (2048 bytes); the next starts at unit 2.
  auto r = feed(put_block(body, 0, 7, "up", std::nullopt, 2), true);
  BOOST_TEST_REQUIRE((r.step == block1_step::continue_));
  BOOST_TEST((block_option(r.answer, block1) == coap::block_value{0, true, 7}));
  r = feed(put_block(body, 2, 7, "up", std::nullopt, 2), true);
  BOOST_TEST_REQUIRE((r.step == block1_step::continue_));
  r = feed(put_block(body, 4, 7, "up", std::nullopt, 2), true);  // the last 904 bytes
  BOOST_TEST_REQUIRE((r.step == block1_step::complete));
  BOOST_TEST(r.body == body, boost::test_tools::per_element());
  BOOST_TEST((block_option(r.answer, block1) == coap::block_value{4, false, 7}));
}

BOOST_AUTO_TEST_CASE(a_bert_block_that_is_not_a_multiple_of_1024_is_4_08) {
  auto m = put_block(body_of(5000), 0, 7, "up", std::nullopt, 2);
  m.set_payload(body_of(1500));
  auto r = feed(m, true);
  BOOST_TEST(code_of(r.answer) == "4.08 Request Entity Incomplete");
}

BOOST_AUTO_TEST_CASE(too_many_partial_bodies_is_5_03) {
  config.max_partial_uploads = 2;
  const auto body = body_of(200);
  feed_continue(body, 0, 0, 2, "a");
  feed_continue(body, 0, 0, 2, "b");
  auto r = feed(put_block(body, 0, 2, "c"));
  BOOST_TEST((r.step == block1_step::refused));
  BOOST_TEST(code_of(r.answer) == "5.03 Service Unavailable");
  BOOST_TEST(r.answer.find(coap::option_number::max_age).has_value());
  BOOST_TEST(!r.answer.find(block1));
  BOOST_TEST(counters.busy == 1u);
  BOOST_TEST(assembler.partial_bodies() == 2u);
  // The bodies that are in progress go on; once one completes there is room again.
  feed_continue(body, 1, 2, 2, "a");
  BOOST_TEST((feed(put_block(body, 3, 2, "a")).step == block1_step::complete));
  BOOST_TEST((feed(put_block(body, 0, 2, "c")).step == block1_step::continue_));
}

BOOST_AUTO_TEST_CASE(request_tags_keep_bodies_to_one_uri_apart) {
  const auto one = body_of(300, 1);
  const auto two = body_of(250, 2);
  for (std::uint32_t n = 0; n <= 2; ++n) {
    feed_continue(one, n, n, 2, "up", 1);
    feed_continue(two, n, n, 2, "up", 2);
  }
  BOOST_TEST(assembler.partial_bodies() == 2u);
  auto r2 = feed(put_block(two, 3, 2, "up", 2));
  BOOST_TEST_REQUIRE((r2.step == block1_step::complete));
  BOOST_TEST(r2.body == two, boost::test_tools::per_element());
  auto r1 = feed(put_block(one, 3, 2, "up", 1));
  BOOST_TEST_REQUIRE((r1.step == block1_step::continue_));
  r1 = feed(put_block(one, 4, 2, "up", 1));
  BOOST_TEST_REQUIRE((r1.step == block1_step::complete));
  BOOST_TEST(r1.body == one, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_partial_body_expires_after_block_transfer_timeout) {
  config.block_transfer_timeout = 10s;
  const auto body = body_of(300);
  feed_continue(body, 0, 0, 2);
  now += 10s;  // exactly the timeout: still kept
  feed_continue(body, 1, 1, 2);
  now += 10s + 1ms;
  auto r = feed(put_block(body, 2, 2));
  BOOST_TEST(code_of(r.answer) == "4.08 Request Entity Incomplete");
  BOOST_TEST(counters.expired == 1u);
  BOOST_TEST(assembler.partial_bodies() == 0u);
}

BOOST_AUTO_TEST_CASE(expired_bodies_make_room) {
  config.max_partial_uploads = 1;
  config.block_transfer_timeout = 10s;
  const auto body = body_of(200);
  feed_continue(body, 0, 0, 2, "a");
  BOOST_TEST(code_of(feed(put_block(body, 0, 2, "b")).answer) == "5.03 Service Unavailable");
  now += 11s;
  BOOST_TEST((feed(put_block(body, 0, 2, "b")).step == block1_step::continue_));
  BOOST_TEST(counters.expired == 1u);
}

BOOST_AUTO_TEST_SUITE_END()

// ---- Block2 (section 2.4; RFC 8323 section 6) ----

namespace {

struct block2_fixture {
  coap::detail::block_counters counters;

  coap::message response(std::size_t n, coap::response_code c = coap::response_code::content) {
    coap::message r(c, coap::message_type::acknowledgement);
    r.set_payload(body_of(n));
    return r;
  }
  static coap::message get(std::optional<coap::block_value> b = std::nullopt, bool with_size2 = false) {
    coap::message m(coap::method::get);
    m.add(coap::options::uri_path{}, "big");
    if (b) m.add_uint_option(block2, coap::encode(*b));
    if (with_size2) m.add_uint_option(size2, 0);
    return m;
  }
  bool cut(const coap::message& request, coap::message& res, std::size_t room, std::uint8_t szx = 6,
           bool bert = false) {
    parsed p(request);
    return coap::detail::cut_block2(p.view, res, room, szx, bert, counters);
  }
};

bytes slice(const bytes& b, std::size_t offset, std::size_t n) {
  return bytes(b.begin() + static_cast<std::ptrdiff_t>(offset), b.begin() + static_cast<std::ptrdiff_t>(offset + n));
}
bytes payload_of(const coap::message& m) { return bytes(m.payload().begin(), m.payload().end()); }

}  // namespace

BOOST_FIXTURE_TEST_SUITE(block2_cut, block2_fixture)

BOOST_AUTO_TEST_CASE(a_body_that_fits_is_untouched) {
  auto res = response(100);
  BOOST_TEST(cut(get(), res, 1000));
  BOOST_TEST(res.option_count() == 0u);
  BOOST_TEST(payload_of(res) == body_of(100), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_larger_body_gives_block_zero) {
  auto res = response(3000);
  BOOST_TEST(cut(get(), res, 1100));
  BOOST_TEST((block_option(res, block2) == coap::block_value{0, true, 6}));
  BOOST_TEST_REQUIRE(res.find(size2).has_value());
  BOOST_TEST(res.find(size2)->as_uint() == 3000u);
  BOOST_TEST_REQUIRE(res.find(coap::option_number::etag).has_value());
  BOOST_TEST(res.find(coap::option_number::etag)->value().size() == 8u);
  BOOST_TEST(payload_of(res) == slice(body_of(3000), 0, 1024), boost::test_tools::per_element());
  BOOST_TEST(counters.bad_option == 0u);
}

BOOST_AUTO_TEST_CASE(blocks_of_one_body_share_its_etag) {
  auto first = response(3000);
  BOOST_TEST(cut(get(), first, 1100));
  auto third = response(3000);
  BOOST_TEST(cut(get(coap::block_value{2, false, 6}), third, 1100));
  BOOST_TEST((block_option(third, block2) == coap::block_value{2, false, 6}));
  BOOST_TEST(payload_of(third) == slice(body_of(3000), 2048, 952), boost::test_tools::per_element());
  // Size2 only on block 0 or when asked for.
  BOOST_TEST(!third.find(size2));
  const auto a = first.find(coap::option_number::etag)->value();
  const auto b = third.find(coap::option_number::etag)->value();
  BOOST_TEST(bytes(a.begin(), a.end()) == bytes(b.begin(), b.end()), boost::test_tools::per_element());
  // Another representation, another ETag.
  coap::message other(coap::response_code::content);
  other.set_payload(body_of(3000, 7));
  BOOST_TEST(cut(get(), other, 1100));
  const auto c = other.find(coap::option_number::etag)->value();
  BOOST_TEST((bytes(a.begin(), a.end()) != bytes(c.begin(), c.end())));
}

BOOST_AUTO_TEST_CASE(size2_in_the_request_is_answered) {
  auto res = response(3000);
  BOOST_TEST(cut(get(coap::block_value{1, false, 6}, true), res, 1100));
  BOOST_TEST_REQUIRE(res.find(size2).has_value());
  BOOST_TEST(res.find(size2)->as_uint() == 3000u);
}

BOOST_AUTO_TEST_CASE(the_handlers_etag_is_kept) {
  auto res = response(3000);
  const std::uint8_t tag[2] = {0xbe, 0xef};
  res.add_option(coap::option_number::etag, tag);
  BOOST_TEST(cut(get(), res, 1100));
  BOOST_TEST(res.count(static_cast<std::uint16_t>(coap::option_number::etag)) == 1u);
  BOOST_TEST(res.find(coap::option_number::etag)->value().size() == 2u);
}

BOOST_AUTO_TEST_CASE(a_block_past_the_end_is_4_02) {
  auto res = response(3000);
  BOOST_TEST(!cut(get(coap::block_value{3, false, 6}), res, 1100));
  BOOST_TEST(code_of(res) == "4.02 Bad Option");
  BOOST_TEST(!res.find(block2));
  BOOST_TEST(counters.bad_option == 1u);
  // Exactly at the end (2048 of 2048) is past it too.
  auto even = response(2048);
  BOOST_TEST(!cut(get(coap::block_value{2, false, 6}), even, 1100));
  BOOST_TEST(code_of(even) == "4.02 Bad Option");
}

BOOST_AUTO_TEST_CASE(a_malformed_block2_is_4_02) {
  parsed req(get(), block2, {0, 0, 0, 0x06});
  auto res = response(3000);
  BOOST_TEST(!coap::detail::cut_block2(req.view, res, 1100, 6, false, counters));
  BOOST_TEST(code_of(res) == "4.02 Bad Option");
  // SZX 7 outside BERT is reserved.
  auto bert_req = get(coap::block_value{0, false, 7});
  auto res2 = response(3000);
  BOOST_TEST(!cut(bert_req, res2, 1100));
  BOOST_TEST(code_of(res2) == "4.02 Bad Option");
}

BOOST_AUTO_TEST_CASE(the_clients_smaller_size_is_honoured) {
  auto res = response(3000);
  BOOST_TEST(cut(get(coap::block_value{3, false, 2}), res, 1100));
  BOOST_TEST((block_option(res, block2) == coap::block_value{3, true, 2}));
  BOOST_TEST(payload_of(res) == slice(body_of(3000), 192, 64), boost::test_tools::per_element());
  // Block 0 asked for in 16 bytes, even for a body that would fit whole.
  auto small = response(100);
  BOOST_TEST(cut(get(coap::block_value{0, false, 0}), small, 1100));
  BOOST_TEST((block_option(small, block2) == coap::block_value{0, true, 0}));
  BOOST_TEST(small.payload().size() == 16u);
}

BOOST_AUTO_TEST_CASE(a_larger_size_than_ours_is_reduced) {
  auto res = response(3000);
  // We prefer 64 bytes; the client asks for block 1 of 1024: it starts at 1024 = block 16 of 64.
  BOOST_TEST(cut(get(coap::block_value{1, false, 6}), res, 1100, 2));
  BOOST_TEST((block_option(res, block2) == coap::block_value{16, true, 2}));
  BOOST_TEST(payload_of(res) == slice(body_of(3000), 1024, 64), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(the_room_bounds_the_block_size) {
  auto res = response(3000);
  BOOST_TEST(cut(get(), res, 300));
  BOOST_TEST((block_option(res, block2) == coap::block_value{0, true, 4}));
  BOOST_TEST(res.payload().size() == 256u);
}

BOOST_AUTO_TEST_CASE(error_responses_are_never_split) {
  for (auto c : {coap::response_code::not_found, coap::response_code::internal_server_error}) {
    auto res = response(3000, c);
    BOOST_TEST(cut(get(), res, 1100));
    BOOST_TEST(res.payload().size() == 3000u);
    BOOST_TEST(!res.find(block2));
    auto asked = response(3000, c);
    BOOST_TEST(cut(get(coap::block_value{1, false, 6}), asked, 1100));
    BOOST_TEST(asked.payload().size() == 3000u);
    BOOST_TEST(!asked.find(block2));
  }
}

BOOST_AUTO_TEST_CASE(bert_sends_as_many_units_as_fit) {
  const auto body = body_of(10000);
  auto first = response(10000);
  BOOST_TEST(cut(get(), first, 5000, 7, true));
  BOOST_TEST((block_option(first, block2) == coap::block_value{0, true, 7}));
  BOOST_TEST(payload_of(first) == slice(body, 0, 4096), boost::test_tools::per_element());
  auto next = response(10000);
  BOOST_TEST(cut(get(coap::block_value{4, false, 7}), next, 5000, 7, true));
  BOOST_TEST((block_option(next, block2) == coap::block_value{4, true, 7}));
  BOOST_TEST(payload_of(next) == slice(body, 4096, 4096), boost::test_tools::per_element());
  auto last = response(10000);
  BOOST_TEST(cut(get(coap::block_value{8, false, 7}), last, 5000, 7, true));
  BOOST_TEST((block_option(last, block2) == coap::block_value{8, false, 7}));
  BOOST_TEST(payload_of(last) == slice(body, 8192, 1808), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(bert_without_room_for_1024_falls_back) {
  auto res = response(3000);
  BOOST_TEST(cut(get(coap::block_value{0, false, 7}), res, 600, 7, true));
  BOOST_TEST((block_option(res, block2) == coap::block_value{0, true, 5}));
  BOOST_TEST(res.payload().size() == 512u);
}

BOOST_AUTO_TEST_CASE(a_client_asking_for_bert_gets_it_where_both_offered) {
  // RFC 8323 section 6: where both CSMs offered Block-Wise-Transfer, a request for SZX 7 is
  // answered in BERT, whatever block size the server prefers for clients that do not ask.
  auto res = response(3000);
  BOOST_TEST(cut(get(coap::block_value{0, false, 7}), res, 5000, 6, true));
  BOOST_TEST((block_option(res, block2) == coap::block_value{0, false, 7}));
  BOOST_TEST(res.payload().size() == 3000u);
  // Without room for the whole body: as many 1024-byte units as fit, M set.
  auto big = response(3000);
  BOOST_TEST(cut(get(coap::block_value{0, false, 7}), big, 2100, 6, true));
  BOOST_TEST((block_option(big, block2) == coap::block_value{0, true, 7}));
  BOOST_TEST(big.payload().size() == 2048u);
}

BOOST_AUTO_TEST_SUITE_END()

// ---- RFC 7641 section 4.5: which notifications are confirmable ----

namespace {
using observers = coap::detail::observer_list<std::allocator<std::uint8_t>>;
}

BOOST_AUTO_TEST_SUITE(confirmable_notifications)

BOOST_AUTO_TEST_CASE(every_fifth_is_con) {
  observers::observer o{std::allocator<std::uint8_t>()};
  const auto t0 = clock_type::now();
  o.last_confirmable = t0;
  std::vector<int> con;
  for (int n = 1; n <= 12; ++n)
    if (observers::next_is_confirmable(o, false, 5, std::chrono::hours(24), t0 + std::chrono::seconds(n)))
      con.push_back(n);
  BOOST_TEST(con == (std::vector<int>{5, 10}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(the_handler_asks_and_the_count_starts_over) {
  observers::observer o{std::allocator<std::uint8_t>()};
  const auto t0 = clock_type::now();
  o.last_confirmable = t0;
  std::vector<int> con;
  for (int n = 1; n <= 8; ++n)
    if (observers::next_is_confirmable(o, n == 2, 5, std::chrono::hours(24), t0 + std::chrono::seconds(n)))
      con.push_back(n);
  BOOST_TEST(con == (std::vector<int>{2, 7}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(at_least_one_per_interval) {
  observers::observer o{std::allocator<std::uint8_t>()};
  const auto t0 = clock_type::now();
  o.last_confirmable = t0;
  std::vector<int> con;
  for (int n = 1; n <= 5; ++n)
    if (observers::next_is_confirmable(o, false, 0, std::chrono::seconds(10), t0 + std::chrono::seconds(5 * n)))
      con.push_back(5 * n);
  BOOST_TEST(con == (std::vector<int>{10, 20}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(every_one_and_never) {
  observers::observer o{std::allocator<std::uint8_t>()};
  const auto t0 = clock_type::now();
  o.last_confirmable = t0;
  for (int n = 1; n <= 3; ++n) BOOST_TEST(observers::next_is_confirmable(o, false, 1, std::chrono::hours(24), t0));
  for (int n = 1; n <= 10; ++n) BOOST_TEST(!observers::next_is_confirmable(o, false, 0, std::chrono::hours(24), t0));
}

BOOST_AUTO_TEST_CASE(registration_by_token) {
  observers list{std::allocator<std::uint8_t>()};
  auto request = [](std::uint8_t token, std::string_view path) {
    coap::message m(coap::method::get);
    m.set_token(coap::token::from_uint(token, 1));
    m.add(coap::options::observe{}, 0);
    m.add(coap::options::uri_path{}, path);
    return m;
  };
  parsed a(request(1, "a")), b(request(2, "a")), again(request(1, "b"));
  BOOST_TEST(list.add(10, a.view));
  BOOST_TEST(list.add(10, b.view));
  BOOST_TEST(!list.add(11, again.view));  // the same token: re-registration, now of resource 11
  BOOST_TEST(list.size() == 2u);
  BOOST_TEST(list[*list.find(a.view.token())].resource_id == 11u);
  // No notification went out yet: no message ID names an observer.
  BOOST_TEST(!list.find_by_message_id(0).has_value());
  BOOST_TEST(list.remove(0) == 11u);
  BOOST_TEST(list.size() == 1u);
}

BOOST_AUTO_TEST_SUITE_END()
