// RFC 8613 section 8.2 and 8.3 in a server session<udp, oscore>: the coap-cpp OSCORE server whose
// allocations per protected request bench/run_oscore_bench counts. GET /time answers like
// libcoap's (bench::answer_time) to protected and unprotected requests; the security contexts
// come from a coap-oscore-conf(5) file, as coap-server -E reads it (one per recipient_id,
// Appendix B.1.2 as the file says).
//
// Global operator new and delete are replaced by counting versions (bench/counting_new.cpp):
// every allocation of the server, Botan's through operator new included, is counted; Botan's
// secure_vector memory comes from its own locked pool (or calloc) and is not. After the first
// --warmup-requests requests the count is snapshot; on SIGTERM/SIGINT, or after --duration
// seconds, the server prints the allocations per request since then and exits.
//
// Usage: oscore_bench_server --conf server.conf [--host 127.0.0.1] [--port 5683]
//                            [--warmup-requests N] [--duration seconds]
// Prints "oscore_bench_server listening on HOST:PORT" once bound, and one line of key=value
// pairs starting with "oscore_bench_server" at the end.
#include "bench/bench_server.hpp"

#include <coap/context.hpp>
#include <coap/resource.hpp>
#include <coap/security/oscore.hpp>
#include <coap/security/oscore/conf_file.hpp>
#include <coap/transports/udp.hpp>

#include <boost/asio/io_context.hpp>

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace {

[[noreturn]] void usage(const char* what) { bench::usage_error("oscore_bench_server", what); }

struct options : bench::address_options {
  std::string conf;
  std::uint64_t warmup_requests = 100000;
  double duration = 0;  // 0: until a signal
};

options parse_options(int argc, char** argv) {
  options o;
  bench::parse_arguments(argc, argv, 1, usage, o, [&o](std::string_view a, auto& value) {
    if (a == "--conf") o.conf = value();
    else if (a == "--warmup-requests") o.warmup_requests = std::stoull(value());
    else if (a == "--duration") o.duration = std::stod(value());
    else return false;
    return true;
  });
  if (o.conf.empty()) usage("--conf is required");
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  const options o = parse_options(argc, argv);
  boost::asio::io_context io(1);
  coap::context ctx(io.get_executor());

  namespace core = coap::oscore_core;
  core::conf conf;
  core::conf_diagnostic where;
  if (auto ec = core::load_conf(o.conf, conf, where)) usage(("--conf: " + where.to_string()).c_str());
  for (std::size_t i = 0; i < conf.recipient_ids.size(); ++i) {
    core::context_params p;
    if (auto ec = conf.params(i, p)) usage(("--conf: " + ec.message()).c_str());
    if (auto ec = coap::set_oscore(ctx, p)) usage(("--conf: " + ec.message()).c_str());
  }

  bench::request_counter c(o.warmup_requests);
  ctx.add_resource("time").on(coap::method::get, [&c](const coap::request&, coap::basic_response<>& res) {
    bench::answer_time(res);
    c.count();
  });

  if (!bench::listen<coap::udp, coap::oscore>(ctx, o.host, o.port, "oscore_bench_server", usage)) return 1;
  bench::run_until_stopped(io, o.duration, [&ctx] { ctx.stop(); });
  c.print("oscore_bench_server");
  return 0;
}
