// RFC 7252 section 3: parse and serialize cost of the UDP message format, coap-cpp against
// libcoap 4.3 in the same binary, on a typical request and a 1 KiB response.
//
// Every benchmark reports allocs_per_iter: heap allocations per iteration, counted by
// replacing the global operator new/delete and, with glibc, by interposing malloc, calloc and
// realloc (libcoap allocates with malloc). The view parse and the span encode must show 0.
#include <coap/code.hpp>
#include <coap/message.hpp>
#include <coap/message_view.hpp>
#include <coap/option.hpp>
#include <coap/udp_codec.hpp>

#include <benchmark/benchmark.h>
#include <coap3/coap.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <span>
#include <string_view>
#include <vector>

// ---- Allocation counting ----

namespace {
std::atomic<std::uint64_t> allocations{0};
void count_allocation() noexcept { allocations.fetch_add(1, std::memory_order_relaxed); }
}  // namespace

#if defined(__GLIBC__)
// glibc's own entry points: the interposed malloc below forwards to them.
extern "C" {
void* __libc_malloc(std::size_t size);
void* __libc_calloc(std::size_t count, std::size_t size);
void* __libc_realloc(void* p, std::size_t size);
void __libc_free(void* p);
}
extern "C" void* malloc(std::size_t size) noexcept {
  count_allocation();
  return __libc_malloc(size);
}
extern "C" void* calloc(std::size_t count, std::size_t size) noexcept {
  count_allocation();
  return __libc_calloc(count, size);
}
extern "C" void* realloc(void* p, std::size_t size) noexcept {
  count_allocation();
  return __libc_realloc(p, size);
}
extern "C" void free(void* p) noexcept { __libc_free(p); }
namespace {
void* raw_allocate(std::size_t size) noexcept { return __libc_malloc(size); }
void raw_free(void* p) noexcept { __libc_free(p); }
}  // namespace
#else
namespace {
void* raw_allocate(std::size_t size) noexcept { return std::malloc(size); }
void raw_free(void* p) noexcept { std::free(p); }
}  // namespace
#endif

void* operator new(std::size_t size) {
  count_allocation();
  if (void* p = raw_allocate(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t size) { return ::operator new(size); }
void operator delete(void* p) noexcept { raw_free(p); }
void operator delete[](void* p) noexcept { raw_free(p); }
void operator delete(void* p, std::size_t) noexcept { raw_free(p); }
void operator delete[](void* p, std::size_t) noexcept { raw_free(p); }

namespace {

std::uint64_t allocations_so_far() { return allocations.load(std::memory_order_relaxed); }

// Reports the allocations made since `before`, per iteration. Called right after the timed
// loop, before anything else touches the state (adding a counter allocates).
void report_allocations(benchmark::State& state, std::uint64_t before) {
  const auto n = allocations_so_far() - before;
  state.counters["allocs_per_iter"] =
      benchmark::Counter(static_cast<double>(n), benchmark::Counter::kAvgIterations);
}

void report_bytes(benchmark::State& state, std::size_t per_iteration) {
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(per_iteration));
}

// ---- The two messages, as fields ----

struct option_field {
  std::uint16_t number;
  bool is_uint;
  std::string_view text;  // when !is_uint
  std::uint32_t value;    // when is_uint
};

struct message_fields {
  coap::message_type type;
  coap::code code;
  std::uint16_t message_id;
  std::array<std::uint8_t, 4> token;
  std::vector<option_field> options;
  std::vector<std::uint8_t> payload;
};

const message_fields& typical_request() {
  static const message_fields m{
      coap::message_type::confirmable,
      coap::method::get,
      0x1234,
      {0x01, 0x02, 0x03, 0x04},
      {{11, false, "sensors", 0}, {11, false, "temp", 0}, {15, false, "unit=c", 0}},
      {}};
  return m;
}

const message_fields& kib_response() {
  static const message_fields m = [] {
    message_fields f{coap::message_type::acknowledgement,
                     coap::response_code::content,
                     0x1234,
                     {0x01, 0x02, 0x03, 0x04},
                     {{12, true, {}, 0}, {14, true, {}, 60}},
                     std::vector<std::uint8_t>(1024)};
    for (std::size_t i = 0; i < f.payload.size(); ++i)
      f.payload[i] = static_cast<std::uint8_t>('a' + i % 26);
    return f;
  }();
  return m;
}

// ---- coap-cpp ----

void fill(coap::message& m, const message_fields& f) {
  m.clear();
  m.set_type(f.type);
  m.set_code(f.code);
  m.set_message_id(f.message_id);
  m.set_token(std::span<const std::uint8_t>(f.token));
  for (const option_field& o : f.options) {
    if (o.is_uint)
      m.add_uint_option(o.number, o.value);
    else
      m.add_string_option(o.number, o.text);
  }
  m.set_payload(std::span<const std::uint8_t>(f.payload));
}

std::vector<std::uint8_t> encode_reference(const message_fields& f) {
  coap::message m;
  fill(m, f);
  std::vector<std::uint8_t> out;
  if (coap::udp_codec::encode(m, out)) {
    std::fprintf(stderr, "codec_bench: coap-cpp cannot encode a benchmark message\n");
    std::abort();
  }
  return out;
}

// Reads everything a receiver reads: header, token, each option's number and value, payload.
std::uint64_t walk(const coap::message_view& v) {
  std::uint64_t sum = v.message_id() + v.code().raw() + v.token().size();
  for (coap::option_view o : v.options()) {
    benchmark::DoNotOptimize(o.value().data());
    sum += o.number() + o.value().size();
  }
  benchmark::DoNotOptimize(v.payload().data());
  return sum + v.payload().size();
}

void coap_cpp_parse(benchmark::State& state, const message_fields& fields) {
  const std::vector<std::uint8_t> datagram = encode_reference(fields);
  coap::message_view view;
  const std::uint64_t before = allocations_so_far();
  for (auto _ : state) {
    if (coap::udp_codec::parse(datagram, view)) state.SkipWithError("parse failed");
    benchmark::DoNotOptimize(walk(view));
  }
  report_allocations(state, before);
  report_bytes(state, datagram.size());
}

// Encodes a message prepared once into a preallocated buffer.
void coap_cpp_encode(benchmark::State& state, const message_fields& fields) {
  coap::message m;
  fill(m, fields);
  std::vector<std::uint8_t> buffer(2048);
  std::size_t written = 0;
  const std::uint64_t before = allocations_so_far();
  for (auto _ : state) {
    if (coap::udp_codec::encode(m, std::span<std::uint8_t>(buffer), written))
      state.SkipWithError("encode failed");
    benchmark::DoNotOptimize(buffer.data());
    benchmark::ClobberMemory();
  }
  report_allocations(state, before);
  report_bytes(state, written);
}

// Builds the message from its fields each iteration (a reused coap::message), then encodes
// it: the work libcoap's coap_pdu_init + coap_add_* does.
void coap_cpp_build_encode(benchmark::State& state, const message_fields& fields) {
  coap::message m;
  fill(m, fields);  // first use sizes the message's buffers; later iterations reuse them
  std::vector<std::uint8_t> buffer(2048);
  std::size_t written = 0;
  const std::uint64_t before = allocations_so_far();
  for (auto _ : state) {
    fill(m, fields);
    if (coap::udp_codec::encode(m, std::span<std::uint8_t>(buffer), written))
      state.SkipWithError("encode failed");
    benchmark::DoNotOptimize(buffer.data());
    benchmark::ClobberMemory();
  }
  report_allocations(state, before);
  report_bytes(state, written);
}

// ---- libcoap ----

constexpr std::size_t libcoap_max_pdu = 2048;

std::uint64_t walk(const coap_pdu_t* pdu) {
  const coap_bin_const_t token = coap_pdu_get_token(pdu);
  std::uint64_t sum = static_cast<std::uint64_t>(coap_pdu_get_mid(pdu)) +
                      static_cast<std::uint64_t>(coap_pdu_get_code(pdu)) + token.length;
  coap_opt_iterator_t it;
  coap_option_iterator_init(pdu, &it, COAP_OPT_ALL);
  while (coap_opt_t* opt = coap_option_next(&it)) {
    benchmark::DoNotOptimize(coap_opt_value(opt));
    sum += it.number + coap_opt_length(opt);
  }
  std::size_t length = 0;
  const std::uint8_t* data = nullptr;
  coap_get_data(pdu, &length, &data);
  benchmark::DoNotOptimize(data);
  return sum + length;
}

// libcoap 4.3.1's shared library does not export coap_pdu_encode_header, which writes the
// 4-byte UDP header in front of the token (in the space coap_pdu_init reserves for it) when a
// PDU is sent. These are the same four stores, at the same place; the datagram then starts at
// the returned pointer and is the PDU's used size plus 4 long (coap_send's length).
const std::uint8_t* libcoap_encode_header(coap_pdu_t* pdu) {
  const coap_bin_const_t token = coap_pdu_get_token(pdu);
  auto* header = const_cast<std::uint8_t*>(token.s) - 4;
  header[0] = static_cast<std::uint8_t>(0x40 | (static_cast<unsigned>(coap_pdu_get_type(pdu)) << 4) |
                                        token.length);
  header[1] = static_cast<std::uint8_t>(coap_pdu_get_code(pdu));
  const auto mid = static_cast<std::uint16_t>(coap_pdu_get_mid(pdu));
  header[2] = static_cast<std::uint8_t>(mid >> 8);
  header[3] = static_cast<std::uint8_t>(mid);
  return header;
}

// The whole datagram, for checking only: the used size is not public, so its end is found
// from the payload or the last option.
std::span<const std::uint8_t> libcoap_datagram(coap_pdu_t* pdu) {
  const std::uint8_t* begin = libcoap_encode_header(pdu);
  const coap_bin_const_t token = coap_pdu_get_token(pdu);
  const std::uint8_t* end = token.s + token.length;
  std::size_t length = 0;
  const std::uint8_t* data = nullptr;
  if (coap_get_data(pdu, &length, &data)) return {begin, data + length};
  coap_opt_iterator_t it;
  coap_option_iterator_init(pdu, &it, COAP_OPT_ALL);
  while (coap_opt_t* opt = coap_option_next(&it)) end = coap_opt_value(opt) + coap_opt_length(opt);
  return {begin, end};
}

coap_pdu_t* libcoap_build(const message_fields& f) {
  coap_pdu_t* pdu = coap_pdu_init(static_cast<coap_pdu_type_t>(f.type),
                                  static_cast<coap_pdu_code_t>(f.code.raw()),
                                  static_cast<coap_mid_t>(f.message_id), libcoap_max_pdu);
  if (!pdu || !coap_add_token(pdu, f.token.size(), f.token.data())) std::abort();
  for (const option_field& o : f.options) {
    std::size_t added;
    if (o.is_uint) {
      std::uint8_t value[4];
      const unsigned length = coap_encode_var_safe(value, sizeof value, o.value);
      added = coap_add_option(pdu, o.number, length, value);
    } else {
      added = coap_add_option(pdu, o.number, o.text.size(),
                              reinterpret_cast<const std::uint8_t*>(o.text.data()));
    }
    if (added == 0) std::abort();
  }
  if (!f.payload.empty() && !coap_add_data(pdu, f.payload.size(), f.payload.data())) std::abort();
  return pdu;
}

// libcoap needs options added in order and has no allocation-free way to reuse a PDU for
// building in its public API: coap_pdu_init + coap_add_* + coap_delete_pdu per message.
void libcoap_build_encode(benchmark::State& state, const message_fields& fields) {
  const std::size_t size = encode_reference(fields).size();
  const std::uint64_t before = allocations_so_far();
  for (auto _ : state) {
    coap_pdu_t* pdu = libcoap_build(fields);
    benchmark::DoNotOptimize(libcoap_encode_header(pdu));
    benchmark::ClobberMemory();
    coap_delete_pdu(pdu);
  }
  report_allocations(state, before);
  report_bytes(state, size);
}

// One PDU reused across iterations, as coap-cpp reuses its view.
void libcoap_parse(benchmark::State& state, const message_fields& fields) {
  const std::vector<std::uint8_t> datagram = encode_reference(fields);
  coap_pdu_t* pdu = coap_pdu_init(COAP_MESSAGE_CON, COAP_EMPTY_CODE, 0, libcoap_max_pdu);
  if (!pdu) std::abort();
  // The first parse grows the PDU's buffer to the datagram's size; later ones reuse it.
  if (!coap_pdu_parse(COAP_PROTO_UDP, datagram.data(), datagram.size(), pdu)) std::abort();
  const std::uint64_t before = allocations_so_far();
  for (auto _ : state) {
    if (!coap_pdu_parse(COAP_PROTO_UDP, datagram.data(), datagram.size(), pdu))
      state.SkipWithError("coap_pdu_parse failed");
    benchmark::DoNotOptimize(walk(pdu));
  }
  report_allocations(state, before);
  coap_delete_pdu(pdu);
  report_bytes(state, datagram.size());
}

// Both libraries must agree on the bytes, or the comparison means nothing.
void check_agreement(const message_fields& f, const char* name) {
  const std::vector<std::uint8_t> ours = encode_reference(f);
  coap_pdu_t* built = libcoap_build(f);
  const auto theirs = libcoap_datagram(built);
  const bool same = std::ranges::equal(ours, theirs);
  coap_delete_pdu(built);

  coap_pdu_t* parsed = coap_pdu_init(COAP_MESSAGE_CON, COAP_EMPTY_CODE, 0, libcoap_max_pdu);
  const bool parses = coap_pdu_parse(COAP_PROTO_UDP, ours.data(), ours.size(), parsed) != 0;
  coap::message_view view;
  const bool agree = parses && !coap::udp_codec::parse(ours, view) && walk(view) == walk(parsed);
  coap_delete_pdu(parsed);
  if (!same || !agree) {
    std::fprintf(stderr, "codec_bench: coap-cpp and libcoap disagree on the %s\n", name);
    std::abort();
  }
}

}  // namespace

BENCHMARK_CAPTURE(coap_cpp_parse, request, typical_request());
BENCHMARK_CAPTURE(libcoap_parse, request, typical_request());
BENCHMARK_CAPTURE(coap_cpp_parse, response_1k, kib_response());
BENCHMARK_CAPTURE(libcoap_parse, response_1k, kib_response());
BENCHMARK_CAPTURE(coap_cpp_encode, request, typical_request());
BENCHMARK_CAPTURE(coap_cpp_build_encode, request, typical_request());
BENCHMARK_CAPTURE(libcoap_build_encode, request, typical_request());
BENCHMARK_CAPTURE(coap_cpp_encode, response_1k, kib_response());
BENCHMARK_CAPTURE(coap_cpp_build_encode, response_1k, kib_response());
BENCHMARK_CAPTURE(libcoap_build_encode, response_1k, kib_response());

int main(int argc, char** argv) {
  coap_startup();
  check_agreement(typical_request(), "typical request");
  check_agreement(kib_response(), "1 KiB response");
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
