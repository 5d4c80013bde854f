// RFC 7252 sections 3.2 and 5.4: the owning message, its option order, typed values and
// the allocator all of its storage comes from.
#include <coap/message.hpp>

#define BOOST_TEST_MODULE message
#include <boost/test/unit_test.hpp>

#include <coap/udp_codec.hpp>

#include <cstdlib>
#include <string>
#include <vector>

namespace {

// Counts what it hands out; every byte of a message must come through it.
struct allocation_log {
  std::size_t allocations = 0;
  std::size_t live_bytes = 0;
};

template <class T>
struct counting_allocator {
  using value_type = T;
  allocation_log* log;
  explicit counting_allocator(allocation_log* l) : log(l) {}
  template <class U>
  counting_allocator(const counting_allocator<U>& o) : log(o.log) {}
  T* allocate(std::size_t n) {
    ++log->allocations;
    log->live_bytes += n * sizeof(T);
    return static_cast<T*>(std::malloc(n * sizeof(T)));
  }
  void deallocate(T* p, std::size_t n) {
    log->live_bytes -= n * sizeof(T);
    std::free(p);
  }
  template <class U>
  bool operator==(const counting_allocator<U>& o) const { return log == o.log; }
};

}  // namespace

BOOST_AUTO_TEST_CASE(code_names) {
  BOOST_TEST(coap::to_string(coap::response_code::content) == "2.05 Content");
  BOOST_TEST(coap::to_string(coap::response_code::not_found) == "4.04 Not Found");
  BOOST_TEST(coap::to_string(coap::method::ipatch) == "0.07 iPATCH");
  BOOST_TEST(coap::to_string(coap::signal_code::abort) == "7.05 Abort");
  BOOST_TEST(coap::to_string(coap::code(coap::make_code(4, 31))) == "4.31");
  BOOST_TEST(coap::code(coap::method::get).is_request());
  BOOST_TEST(coap::code(coap::response_code::bad_option).is_response());
  BOOST_TEST(coap::code(coap::make_code(1, 0)).is_reserved_class());
}

BOOST_AUTO_TEST_CASE(option_properties) {
  using namespace coap;
  const auto* host = find_option(3);
  BOOST_TEST_REQUIRE(host != nullptr);
  BOOST_TEST(host->name == "Uri-Host");
  BOOST_TEST(host->critical());
  BOOST_TEST(host->unsafe());
  BOOST_TEST(!find_option(4)->critical());  // ETag: elective, safe
  BOOST_TEST(!find_option(4)->unsafe());
  BOOST_TEST(find_option(4)->repeatable);
  BOOST_TEST(find_option(60)->no_cache_key());  // Size1
  BOOST_TEST(find_option(28)->no_cache_key());  // Size2
  BOOST_TEST(!find_option(11)->no_cache_key());
  BOOST_TEST(find_option(14)->unsafe());  // Max-Age
  BOOST_TEST(find_option(292)->name == "Request-Tag");
  BOOST_TEST(find_option(252)->max_length == 40);
  BOOST_TEST(find_option(2) == nullptr);
  BOOST_TEST(find_signal_option(signal_code::csm, 2)->name == "Max-Message-Size");
  BOOST_TEST(find_signal_option(signal_code::release, 4)->name == "Hold-Off");
  BOOST_TEST(find_signal_option(signal_code::abort, 2)->name == "Bad-CSM-Option");
  BOOST_TEST(find_signal_option(signal_code::ping, 4) == nullptr);
  static_assert(options::uri_path::format == option_format::string);
  static_assert(options::block2::format == option_format::uint);
}

BOOST_AUTO_TEST_CASE(typed_options) {
  coap::message m(coap::method::get);
  m.add(coap::options::content_format{}, 0);
  m.add(coap::options::max_age{}, 0x10000);
  m.add(coap::options::uri_path{}, "x");
  m.add(coap::options::if_none_match{});
  m.add(coap::options::etag{}, std::vector<std::uint8_t>{1, 2});
  BOOST_TEST(m.find(12)->value().empty());  // 0 is the empty uint
  BOOST_TEST(m.find(14)->value().size() == 3u);
  BOOST_TEST(*m.get(coap::options::max_age{}) == 0x10000u);
  BOOST_TEST(*m.get(coap::options::uri_path{}) == "x");
  BOOST_TEST(!m.get(coap::options::uri_query{}).has_value());
  std::vector<std::uint16_t> numbers;
  for (auto o : m.options()) numbers.push_back(o.number());
  BOOST_TEST((numbers == std::vector<std::uint16_t>{4, 5, 11, 12, 14}));
}

BOOST_AUTO_TEST_CASE(remove_and_replace) {
  coap::message m(coap::method::get);
  m.add(coap::options::uri_path{}, "a");
  m.add(coap::options::uri_query{}, "q");
  m.add(coap::options::uri_path{}, "b");
  m.remove_option(11);
  BOOST_TEST(m.count(11) == 0u);
  BOOST_TEST(m.find(15)->as_string() == "q");
  m.set_content_format(coap::content_format::json);
  m.set_content_format(coap::content_format::cbor);
  BOOST_TEST(m.count(12) == 1u);
  BOOST_TEST(m.find(12)->as_uint() == 60u);
}

BOOST_AUTO_TEST_CASE(view_round_trip) {
  coap::message m(coap::method::put, coap::message_type::non_confirmable);
  m.set_message_id(0x4242);
  m.set_token(coap::token::from_uint(0x11223344, 4));
  m.add(coap::options::uri_path{}, "r");
  m.set_payload(std::string_view("body"));
  std::vector<std::uint8_t> wire;
  BOOST_TEST_REQUIRE(!coap::udp_codec::encode(m, wire));
  coap::message_view v;
  BOOST_TEST_REQUIRE(!coap::udp_codec::parse(wire, v));
  coap::message copy(v);
  std::vector<std::uint8_t> again;
  BOOST_TEST_REQUIRE(!coap::udp_codec::encode(copy, again));
  BOOST_TEST(again == wire);
  BOOST_TEST((copy.token_value() == coap::token::from_uint(0x11223344, 4)));
}

BOOST_AUTO_TEST_CASE(all_storage_comes_from_the_allocator) {
  allocation_log log;
  using alloc = counting_allocator<std::uint8_t>;
  {
    coap::basic_message<alloc> m{alloc(&log)};
    m.set_code(coap::method::post);
    m.add(coap::options::uri_path{}, "sensors");
    m.set_payload(std::string_view("a payload"));
    BOOST_TEST(log.allocations > 0u);
    BOOST_TEST(log.live_bytes > 0u);

    // Reuse after clear(): the capacity is kept, nothing new is allocated.
    const auto before = log.allocations;
    for (int i = 0; i < 100; ++i) {
      m.clear();
      m.set_code(coap::method::post);
      m.add(coap::options::uri_path{}, "sensors");
      m.set_payload(std::string_view("a payload"));
    }
    BOOST_TEST(log.allocations == before);
  }
  BOOST_TEST(log.live_bytes == 0u);
}

BOOST_AUTO_TEST_CASE(tokens) {
  coap::token t;
  const std::uint8_t nine[9] = {};
  BOOST_TEST(!t.assign(nine));
  BOOST_TEST(t.empty());
  const std::uint8_t two[2] = {1, 2};
  BOOST_TEST(t.assign(two));
  BOOST_TEST(t.size() == 2u);
  BOOST_TEST((coap::token::from_uint(0x0102, 2) == t));
}
