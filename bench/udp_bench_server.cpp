// RFC 7252 section 5.2.1: the coap-cpp server that bench/run_udp_bench measures against
// libcoap's coap-server. GET /x answers like libcoap's GET /time: 2.05 with Max-Age 1 and the
// current time as "%b %d %H:%M:%S" (15 bytes), piggybacked in the ACK.
//
// Global operator new and delete are replaced by counting versions. After the first
// --warmup-requests requests (counted in the handler) the allocation count is snapshot; on
// SIGTERM/SIGINT, or after --duration seconds, the server prints the allocations made per
// request since then (the goal is 0 at steady state) and exits.
//
// Usage: udp_bench_server [--host 127.0.0.1] [--port 5683] [--warmup-requests N]
//                         [--duration seconds] [--max-sessions N]
// Prints "udp_bench_server listening on HOST:PORT" once bound, and one line of key=value
// pairs starting with "udp_bench_server" at the end.
#include "bench/bench_server.hpp"

#include <coap/context.hpp>
#include <coap/resource.hpp>
#include <coap/transports/udp.hpp>

#include <boost/asio/io_context.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace {

[[noreturn]] void usage(const char* what) { bench::usage_error("udp_bench_server", what); }

struct options : bench::address_options {
  std::uint64_t warmup_requests = 100000;
  double duration = 0;  // 0: until a signal
  std::size_t max_sessions = 4096;
};

options parse_options(int argc, char** argv) {
  options o;
  bench::parse_arguments(argc, argv, 1, usage, o, [&o](std::string_view a, auto& value) {
    if (a == "--warmup-requests") o.warmup_requests = std::stoull(value());
    else if (a == "--duration") o.duration = std::stod(value());
    else if (a == "--max-sessions") o.max_sessions = std::stoul(value());
    else return false;
    return true;
  });
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  const options o = parse_options(argc, argv);
  boost::asio::io_context io(1);
  coap::context_config config;
  config.max_sessions = o.max_sessions;
  // One load generator at full speed, as libcoap's server is measured: no per-peer rate limit
  // (RFC 8516) nor amplification limit (RFC 9175 section 2.4; docs/options.md).
  config.session.max_request_rate = 0;
  config.session.amplification_factor = 0;
  coap::context ctx(io.get_executor(), config);

  bench::request_counter c(o.warmup_requests);
  ctx.add_resource("x").on(coap::method::get, [&c](const coap::request&, coap::basic_response<>& res) {
    bench::answer_time(res);  // like libcoap's GET /time
    c.count();
  });

  if (!bench::listen<coap::udp>(ctx, o.host, o.port, "udp_bench_server", usage)) return 1;
  bench::run_until_stopped(io, o.duration, [&ctx] { ctx.stop(); });
  c.print("udp_bench_server");
  return 0;
}
