// Tests of detail/os_random.hpp: random tokens and message IDs (RFC 7252 sections 4.4, 5.3.1).
#include <coap/detail/os_random.hpp>

#define BOOST_TEST_MODULE os_random
#include <boost/test/unit_test.hpp>

#include <bit>
#include <cstdint>
#include <set>

BOOST_AUTO_TEST_CASE(draws_do_not_repeat_across_refills) {
  coap::detail::os_random r;
  std::set<std::uint64_t> seen;
  // 100 refills of the 256-byte pool.
  for (int i = 0; i < 3200; ++i) BOOST_TEST(seen.insert(r.next()).second);
}

BOOST_AUTO_TEST_CASE(bits_are_balanced) {
  coap::detail::os_random r;
  // 64,000 bits: a fair source gives 32,000 +- 4 standard deviations (126).
  long ones = 0;
  for (int i = 0; i < 1000; ++i) ones += std::popcount(r.next());
  BOOST_TEST(ones > 32000 - 506);
  BOOST_TEST(ones < 32000 + 506);
}

BOOST_AUTO_TEST_CASE(two_generators_differ) {
  // Each draws from the kernel: no shared seed, no shared sequence.
  coap::detail::os_random a, b;
  BOOST_TEST(a.next() != b.next());
}
