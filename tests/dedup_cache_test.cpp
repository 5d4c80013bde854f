// RFC 7252 section 4.5: the deduplication store keeps each message ID for its lifetime, up to
// a bound, and finds it again after any mix of inserts, expiries and evictions; one store
// serves many sessions (owners), and at its bound it drops only what may be processed again.
#include <coap/detail/dedup_cache.hpp>

#define BOOST_TEST_MODULE dedup_cache
#include <boost/test/unit_test.hpp>

#include <map>
#include <random>

using cache = coap::detail::dedup_ring<std::allocator<std::uint8_t>>;
using store = coap::detail::dedup_cache<std::allocator<std::uint8_t>>;
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

// A model check: random inserts (colliding IDs included) against a list that applies the
// same capacity and lifetime rules: arrival order, expiry from the front, and an entry past
// its own lifetime not found even while an older one holds it in the ring.
BOOST_AUTO_TEST_CASE(matches_a_reference_model) {
  std::mt19937 rng(7);
  struct record {
    std::uint64_t key;
    clock_type::time_point expires;
  };
  for (std::size_t capacity : {1u, 2u, 7u, 64u, 300u}) {
    cache c(capacity);
    std::vector<record> order;  // arrival order, as the ring holds them
    auto now = clock_type::time_point{} + 1h;
    for (int step = 0; step < 20000; ++step) {
      now += std::chrono::milliseconds(rng() % 3);
      while (!order.empty() && order.front().expires <= now) order.erase(order.begin());
      // A narrow key range makes probe chains collide and wrap.
      const std::uint64_t key = rng() % (capacity * 3 + 5);
      bool live = false;
      for (const auto& r : order)
        if (r.key == key) live = r.expires > now;  // the latest record of the key counts
      const bool held = c.find(key, now) != nullptr;
      BOOST_TEST_REQUIRE(held == live, "capacity " << capacity << " step " << step);
      if (!held) {
        if (order.size() == capacity) order.erase(order.begin());
        // Lifetimes of 40 to 60 ms: a later entry may expire before an earlier one.
        const auto expires = now + std::chrono::milliseconds(40 + rng() % 21);
        c.insert(key, expires);
        order.push_back({key, expires});
      }
      BOOST_TEST_REQUIRE(c.size() == order.size());
    }
  }
}

// Section 4.5: a message ID may be reused after its lifetime; an entry behind an older, longer
// lived one is not found once its own lifetime has passed.
BOOST_AUTO_TEST_CASE(an_expired_entry_is_not_found_behind_a_live_one) {
  cache c(8);
  const auto t0 = clock_type::time_point{} + 1h;
  c.insert(1, t0 + 10s);
  c.insert(2, t0 + 1s);
  BOOST_TEST(c.find(2, t0 + 2s) == nullptr);
  BOOST_TEST(c.size() == 2u);  // still in the ring, behind 1
  c.insert(2, t0 + 20s).answer = {7};
  BOOST_TEST_REQUIRE(c.find(2, t0 + 2s) != nullptr);
  BOOST_TEST(c.find(2, t0 + 2s)->answer.size() == 1u);
  // The stale record of 2 leaves with 1 without taking the new one's index entry.
  BOOST_TEST(c.find(1, t0 + 11s) == nullptr);
  BOOST_TEST_REQUIRE(c.find(2, t0 + 11s) != nullptr);
  BOOST_TEST(c.find(2, t0 + 11s)->answer.size() == 1u);
}

BOOST_AUTO_TEST_CASE(owners_keep_their_message_ids_apart) {
  store s(16, 16);
  const auto t0 = clock_type::time_point{} + 1h;
  const auto a = s.new_owner(), b = s.new_owner();
  BOOST_TEST(a != b);
  s.insert(a, 5, t0 + 10s, store::kind::droppable, t0)->answer = {1};
  BOOST_TEST(s.find(a, 5, t0) != nullptr);
  BOOST_TEST(s.find(b, 5, t0) == nullptr);
  s.insert(b, 5, t0 + 10s, store::kind::kept, t0)->answer = {2, 2};
  BOOST_TEST(s.find(a, 5, t0)->answer.size() == 1u);
  BOOST_TEST(s.find(b, 5, t0)->answer.size() == 2u);
}

// At the bound: droppable entries go oldest first; kept ones are never dropped before their
// lifetime, a new one is refused and told when to come back.
BOOST_AUTO_TEST_CASE(at_capacity_drops_only_what_may_be_processed_again) {
  store s(2, 2);
  const auto t0 = clock_type::time_point{} + 1h;
  const auto o = s.new_owner();
  for (std::uint16_t mid = 0; mid < 3; ++mid) BOOST_TEST(s.insert(o, mid, t0 + 100s, store::kind::droppable, t0) != nullptr);
  BOOST_TEST(s.find(o, 0, t0) == nullptr);
  BOOST_TEST(s.find(o, 2, t0) != nullptr);
  BOOST_TEST(s.insert(o, 10, t0 + 100s, store::kind::kept, t0) != nullptr);
  BOOST_TEST(s.insert(o, 11, t0 + 90s, store::kind::kept, t0 + 1s) != nullptr);
  BOOST_TEST(s.insert(o, 12, t0 + 100s, store::kind::kept, t0 + 2s) == nullptr);
  BOOST_TEST(s.retry_after(t0 + 2s) == 98u);  // when 10, the oldest, expires
  BOOST_TEST(s.find(o, 10, t0 + 2s) != nullptr);
  BOOST_TEST(s.find(o, 11, t0 + 2s) != nullptr);
  // Droppable ones still get in meanwhile.
  BOOST_TEST(s.insert(o, 20, t0 + 100s, store::kind::droppable, t0 + 2s) != nullptr);
  BOOST_TEST(s.insert(o, 12, t0 + 200s, store::kind::kept, t0 + 100s) != nullptr);
  BOOST_TEST(s.find(o, 12, t0 + 100s) != nullptr);
}

BOOST_AUTO_TEST_CASE(which_methods_may_be_processed_twice) {
  using coap::detail::idempotent_method;
  BOOST_TEST(idempotent_method(1));   // GET
  BOOST_TEST(!idempotent_method(2));  // POST
  BOOST_TEST(idempotent_method(3));   // PUT
  BOOST_TEST(idempotent_method(4));   // DELETE
  BOOST_TEST(idempotent_method(5));   // FETCH
  BOOST_TEST(!idempotent_method(6));  // PATCH
  BOOST_TEST(idempotent_method(7));   // iPATCH
  BOOST_TEST(!idempotent_method(8));  // unknown
}
