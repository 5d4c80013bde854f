// RFC 7252 section 4.5: the deduplication cache keeps each message ID for its lifetime, up to
// a bound, and finds it again after any mix of inserts, expiries and evictions.
#include <coap/detail/dedup_cache.hpp>

#define BOOST_TEST_MODULE dedup_cache
#include <boost/test/unit_test.hpp>

#include <map>
#include <random>

using cache = coap::detail::dedup_cache<std::allocator<std::uint8_t>>;
using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

BOOST_AUTO_TEST_CASE(finds_what_it_holds) {
  cache c(4);
  const auto t0 = clock_type::time_point{} + 1h;
  BOOST_TEST(c.find(1, t0) == nullptr);
  c.insert(1, t0 + 10s).answer = {1, 2, 3};
  c.insert(2, t0 + 10s);
  BOOST_TEST_REQUIRE(c.find(1, t0) != nullptr);
  BOOST_TEST(c.find(1, t0)->answer.size() == 3u);
  BOOST_TEST(c.find(2, t0) != nullptr);
  BOOST_TEST(c.find(3, t0) == nullptr);
}

BOOST_AUTO_TEST_CASE(expires_in_arrival_order) {
  cache c(8);
  const auto t0 = clock_type::time_point{} + 1h;
  c.insert(10, t0 + 1s);
  c.insert(11, t0 + 2s);
  BOOST_TEST(c.find(10, t0 + 1500ms) == nullptr);
  BOOST_TEST(c.find(11, t0 + 1500ms) != nullptr);
  BOOST_TEST(c.size() == 1u);
  BOOST_TEST(c.find(11, t0 + 2s) == nullptr);
  BOOST_TEST(c.size() == 0u);
}

BOOST_AUTO_TEST_CASE(evicts_the_oldest_at_capacity) {
  cache c(3);
  const auto t0 = clock_type::time_point{} + 1h;
  for (std::uint16_t mid = 0; mid < 5; ++mid) c.insert(mid, t0 + 1h);
  BOOST_TEST(c.size() == 3u);
  BOOST_TEST(c.find(0, t0) == nullptr);
  BOOST_TEST(c.find(1, t0) == nullptr);
  for (std::uint16_t mid = 2; mid < 5; ++mid) BOOST_TEST(c.find(mid, t0) != nullptr);
}

// A model check: random inserts (colliding IDs included) against a std::map that applies the
// same capacity and lifetime rules.
BOOST_AUTO_TEST_CASE(matches_a_reference_model) {
  std::mt19937 rng(7);
  for (std::size_t capacity : {1u, 2u, 7u, 64u, 300u}) {
    cache c(capacity);
    std::map<std::uint16_t, clock_type::time_point> model;
    std::vector<std::uint16_t> order;  // arrival order of live IDs
    auto now = clock_type::time_point{} + 1h;
    for (int step = 0; step < 20000; ++step) {
      now += std::chrono::milliseconds(rng() % 3);
      // Expire in the model exactly as the cache does: from the front, by deadline.
      while (!order.empty() && model[order.front()] <= now) {
        model.erase(order.front());
        order.erase(order.begin());
      }
      // A narrow ID range makes probe chains collide and wrap.
      const auto mid = static_cast<std::uint16_t>(rng() % (capacity * 3 + 5));
      const bool held = c.find(mid, now) != nullptr;
      BOOST_TEST_REQUIRE(held == (model.count(mid) == 1), "capacity " << capacity << " step " << step);
      if (!held) {
        if (order.size() == capacity) {
          model.erase(order.front());
          order.erase(order.begin());
        }
        const auto expires = now + std::chrono::milliseconds(50 + rng() % 2);
        c.insert(mid, expires);
        model[mid] = expires;
        order.push_back(mid);
      }
      BOOST_TEST_REQUIRE(c.size() == order.size());
    }
  }
}
