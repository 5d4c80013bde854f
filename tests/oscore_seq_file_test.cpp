// RFC 8613 Appendix B.1.1 with a file: no Sender Sequence Number is used twice across
// restarts (clean or not), the file is what libcoap 4.3.5's seq_file holds after the same
// numbers ("N\n", N above every number used), files libcoap wrote are resumed from, writes
// are atomic, and bad content or a failing store is an error, never a reused number.
#include <coap/security/oscore/seq_file.hpp>

#define BOOST_TEST_MODULE oscore_seq_file
#include <boost/test/unit_test.hpp>

#include <coap/security/oscore.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <new>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

// Allocations counted (plain operator new and delete replaced in this binary): a store, which
// with K = 1 runs for every message, allocates nothing.
namespace {
std::atomic<std::size_t> allocations{0};
}  // namespace
void* operator new(std::size_t n) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return ::operator new(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace oscore = coap::oscore_core;
namespace fs = std::filesystem;

namespace {

// A fresh folder per test under Bazel's TEST_TMPDIR (or /tmp).
struct folder {
  fs::path path;
  folder() {
    const char* base = std::getenv("TEST_TMPDIR");
    path = fs::path(base ? base : "/tmp") /
           ("oscore_seq_" + std::to_string(::getpid()) + "_" +
            boost::unit_test::framework::current_test_case().p_name.get());
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~folder() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

std::string read(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

void write(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
}

oscore::context_params base_params() {
  oscore::context_params p;
  p.master_secret = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  p.sender_id = {};
  p.recipient_id = {1};
  return p;
}

oscore::sequence_number_file open_ok(const std::string& path, std::uint64_t k, std::uint64_t margin = 0) {
  std::error_code ec;
  oscore::conf_diagnostic where;
  auto f = oscore::sequence_number_file::open(path, {k, margin, true}, ec, where);
  BOOST_TEST_REQUIRE(!ec, ec.message() << ": " << where.to_string());
  BOOST_TEST_REQUIRE(f.has_value());
  return std::move(*f);
}

// Takes `count` numbers from a context resumed from the file, as a process would.
std::vector<std::uint64_t> run(const std::string& path, std::uint64_t k, int count) {
  auto file = open_ok(path, k);
  auto params = base_params();
  file.apply(params);
  oscore::context ctx(params);
  std::vector<std::uint64_t> used;
  for (int i = 0; i < count; ++i) {
    std::uint64_t n = 0;
    const auto ec = ctx.next_sequence_number(n);
    BOOST_TEST_REQUIRE(!ec, ec.message());
    used.push_back(n);
  }
  return used;
}

}  // namespace

BOOST_AUTO_TEST_CASE(missing_file_is_created_and_starts_at_zero) {
  folder d;
  const auto path = d.file("client.seq");
  const auto f = open_ok(path, 1);
  BOOST_TEST(f.start() == 0u);
  BOOST_TEST(read(path) == "0\n");
}

// libcoap 4.3.5's coap-client writes "2\n" after its first run with ssn_freq 1 (numbers 0 and
// 1: the Echo round trip of Appendix B.1.2 and the request), and "4\n" after one number with
// ssn_freq 4: the value is always above every number used. The same here.
BOOST_AUTO_TEST_CASE(file_holds_what_libcoap_writes) {
  folder d;
  const auto k1 = d.file("k1.seq");
  BOOST_TEST((run(k1, 1, 2) == std::vector<std::uint64_t>{0, 1}));
  BOOST_TEST(read(k1) == "2\n");
  const auto k4 = d.file("k4.seq");
  BOOST_TEST((run(k4, 4, 1) == std::vector<std::uint64_t>{0}));
  BOOST_TEST(read(k4) == "4\n");
  BOOST_TEST((run(k4, 4, 5) == std::vector<std::uint64_t>{4, 5, 6, 7, 8}));
  BOOST_TEST(read(k4) == "12\n");
}

BOOST_AUTO_TEST_CASE(no_number_reused_across_restarts) {
  folder d;
  const auto path = d.file("s.seq");
  std::set<std::uint64_t> seen;
  // Runs that stop anywhere (the context is dropped without any shutdown step, as a crash),
  // with the interval changing between runs as a user might change ssn_freq.
  const std::vector<std::pair<std::uint64_t, int>> runs = {{10, 3}, {10, 10}, {10, 11}, {3, 1}, {7, 20}, {1, 2}, {10, 0}};
  for (const auto& [k, count] : runs) {
    for (const auto n : run(path, k, count)) BOOST_TEST_REQUIRE(seen.insert(n).second, "reused " << n);
  }
  // Every used number is below the stored bound.
  BOOST_TEST(std::stoull(read(path)) > *seen.rbegin());
}

BOOST_AUTO_TEST_CASE(resumes_from_a_libcoap_file_rounding_up_to_k) {
  folder d;
  const auto path = d.file("libcoap.seq");
  write(path, "2\n");  // as libcoap left it
  BOOST_TEST(open_ok(path, 1).start() == 2u);
  BOOST_TEST(open_ok(path, 4).start() == 4u);
  BOOST_TEST(open_ok(path, 4, 3).start() == 8u);  // margin F
  write(path, "  17 \r\n");
  BOOST_TEST(open_ok(path, 1).start() == 17u);
  write(path, "");  // libcoap's "must be empty" case
  BOOST_TEST(open_ok(path, 1).start() == 0u);
  // stored() reports the file.
  write(path, "40\n");
  BOOST_TEST(open_ok(path, 16).stored() == 40u);
  BOOST_TEST(open_ok(path, 16).start() == 48u);
}

BOOST_AUTO_TEST_CASE(bad_content_is_refused) {
  folder d;
  const auto path = d.file("bad.seq");
  struct bad {
    std::string text;
    std::error_code error;
  };
  const std::vector<bad> cases = {
      {"abc\n", coap::oscore_conf_error::bad_sequence_number_file},
      {"12x\n", coap::oscore_conf_error::bad_sequence_number_file},
      {"-1\n", coap::oscore_conf_error::bad_sequence_number_file},
      {"1 2\n", coap::oscore_conf_error::bad_sequence_number_file},
      {std::string(100, '1'), coap::oscore_conf_error::bad_sequence_number_file},  // over 64 bytes
      {"99999999999999999999\n", coap::oscore_error::sequence_number_exhausted},   // over 2^64
      {"1099511627776\n", coap::oscore_error::sequence_number_exhausted},          // 2^40
  };
  for (const auto& c : cases) {
    write(path, c.text);
    std::error_code ec;
    oscore::conf_diagnostic where;
    const auto f = oscore::sequence_number_file::open(path, {1, 0, true}, ec, where);
    BOOST_TEST_CONTEXT(c.text) {
      BOOST_TEST(!f.has_value());
      BOOST_TEST((ec == c.error), ec.message());
      BOOST_TEST(where.to_string().find(path + ": ") == 0u, where.to_string());
    }
  }
  // The last number below 2^40 may still be used, once; K rounds past it.
  write(path, "1099511627775\n");
  BOOST_TEST(open_ok(path, 1).start() == oscore::max_sequence_number);
  std::error_code ec;
  oscore::conf_diagnostic where;
  BOOST_TEST(!oscore::sequence_number_file::open(path, {2, 0, true}, ec, where).has_value());
  BOOST_TEST((ec == coap::oscore_error::sequence_number_exhausted));
  BOOST_TEST(!oscore::sequence_number_file::open(path, {0, 0, true}, ec, where).has_value());
  BOOST_TEST((ec == coap::oscore_error::invalid_context_parameters));
}

BOOST_AUTO_TEST_CASE(unreadable_or_unwritable) {
  folder d;
  std::error_code ec;
  oscore::conf_diagnostic where;
  // A folder in the way of the file: reading it fails with the system's error.
  fs::create_directories(d.file("dir.seq"));
  BOOST_TEST(!oscore::sequence_number_file::open(d.file("dir.seq"), {}, ec, where).has_value());
  BOOST_TEST((ec.category() == std::generic_category()));
  // A missing folder: the file cannot be created.
  BOOST_TEST(!oscore::sequence_number_file::open(d.file("no/such/x.seq"), {}, ec, where).has_value());
  BOOST_TEST((ec == std::errc::no_such_file_or_directory));
  BOOST_TEST(where.to_string().find("cannot create") != std::string::npos);
}

// When the store fails the number is not used: protecting fails, the number is still the next
// one, and once storing works again numbering goes on from it.
BOOST_AUTO_TEST_CASE(failing_store_uses_no_number) {
  folder d;
  const auto path = d.file("s.seq");
  auto file = open_ok(path, 2);
  auto params = base_params();
  file.apply(params);
  oscore::context ctx(params);
  std::uint64_t n = 0;
  BOOST_TEST_REQUIRE(!ctx.next_sequence_number(n));  // 0, stored 2
  BOOST_TEST_REQUIRE(!ctx.next_sequence_number(n));  // 1
  // The temporary file's name taken by a folder: the write fails (as a full disk would).
  fs::create_directories(path + ".tmp");
  BOOST_TEST((ctx.next_sequence_number(n) == coap::oscore_error::sequence_number_not_stored));
  BOOST_TEST(ctx.sender_sequence_number() == 2u);
  BOOST_TEST(read(path) == "2\n");
  fs::remove(path + ".tmp");
  BOOST_TEST_REQUIRE(!ctx.next_sequence_number(n));
  BOOST_TEST(n == 2u);
  BOOST_TEST(read(path) == "4\n");
  BOOST_TEST(file.stored() == 4u);
  // Nothing is left beside the file.
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(d.path)) names.push_back(e.path().filename().string());
  BOOST_TEST((names == std::vector<std::string>{"s.seq"}));
}

// The store keeps the file's state alive: the context may outlive the sequence_number_file.
BOOST_AUTO_TEST_CASE(store_outlives_the_file_object) {
  folder d;
  const auto path = d.file("s.seq");
  auto params = base_params();
  open_ok(path, 1).apply(params);
  oscore::context ctx(params);
  std::uint64_t n = 0;
  for (int i = 0; i < 3; ++i) BOOST_TEST_REQUIRE(!ctx.next_sequence_number(n));
  BOOST_TEST(read(path) == "3\n");
}

BOOST_AUTO_TEST_CASE(a_store_allocates_nothing) {
  folder d;
  for (const bool sync : {false, true}) {
    const auto path = d.file(sync ? "synced.seq" : "unsynced.seq");
    std::error_code ec;
    oscore::conf_diagnostic where;
    auto file = oscore::sequence_number_file::open(path, {1, 0, sync}, ec, where);
    BOOST_TEST_REQUIRE(file.has_value());
    auto params = base_params();
    file->apply(params);
    oscore::context ctx(params);
    std::uint64_t n = 0;
    BOOST_TEST_REQUIRE(!ctx.next_sequence_number(n));
    constexpr int count = 200;
    const std::size_t before = allocations.load();
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < count; ++i) BOOST_TEST_REQUIRE(!ctx.next_sequence_number(n));
    const auto elapsed = std::chrono::steady_clock::now() - start;
    BOOST_TEST(allocations.load() - before == 0u);
    BOOST_TEST(read(path) == std::to_string(count + 1) + "\n");
    // A measurement, not a check: what K = 1 costs per message on this file system.
    BOOST_TEST_MESSAGE("K = 1, sync " << sync << ": "
                       << std::chrono::duration_cast<std::chrono::microseconds>(elapsed).count() / count
                       << " us per store");
  }
}
