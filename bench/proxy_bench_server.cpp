// RFC 7252 sections 5.6-5.7 (forward proxy, cache): the coap-cpp proxy that
// bench/run_proxy_bench measures against libcoap's coap-server -P. A context on UDP with
// coap::proxy<session<udp>> installed (any target: the load is the operator's); with
// --cache off every request goes upstream, with --cache on the cache answers (Max-Age
// permitting). Global operator new is counted (bench/counting_new.cpp): after
// --warmup-requests proxy requests the count is snapshot, and the line printed at the end
// gives allocations per request since then.
//
// Usage: proxy_bench_server [--host 127.0.0.1] [--port 5683] [--cache on|off]
//                           [--upstream-nstart N] [--warmup-requests N] [--duration seconds]
// Prints "proxy_bench_server listening on HOST:PORT" once bound, and at the end one line
// "proxy_bench_server requests=... allocs_per_request=..." and one of the proxy's counters.
#include "bench/bench_server.hpp"

#include <coap/context.hpp>
#include <coap/proxy.hpp>
#include <coap/session.hpp>
#include <coap/transports/udp.hpp>

#include <boost/asio/io_context.hpp>

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>

namespace {

[[noreturn]] void usage(const char* what) { bench::usage_error("proxy_bench_server", what); }

struct options : bench::address_options {
  std::uint64_t warmup_requests = 100000;
  double duration = 0;  // 0: until a signal
  bool cache = false;
  unsigned upstream_nstart = 1;
};

options parse_options(int argc, char** argv) {
  options o;
  bench::parse_arguments(argc, argv, 1, usage, o, [&o](std::string_view a, auto& value) {
    if (a == "--warmup-requests") o.warmup_requests = std::stoull(value());
    else if (a == "--upstream-nstart") o.upstream_nstart = static_cast<unsigned>(std::stoul(value()));
    else if (a == "--duration") o.duration = std::stod(value());
    else if (a == "--cache") {
      const std::string v = value();
      if (v != "on" && v != "off") usage("--cache is on or off");
      o.cache = v == "on";
    } else return false;
    return true;
  });
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  const options o = parse_options(argc, argv);
  boost::asio::io_context io(1);
  coap::context ctx(io.get_executor());
  // One load generator at full speed, as libcoap's proxy is measured: no per-peer rate limit
  // (RFC 8516) nor amplification limit (RFC 9175 section 2.4; docs/options.md).
  ctx.config().session.max_request_rate = 0;
  ctx.config().session.amplification_factor = 0;
  coap::proxy_config config;
  config.cache.enabled = o.cache;
  // RFC 7252 section 4.7: CON requests outstanding to one origin (1 by default, as libcoap).
  config.upstream.nstart = o.upstream_nstart;
  std::optional<coap::proxy<coap::session<coap::udp>>> proxy;
  proxy.emplace(coap::proxy_policy::allow_all(), config);
  proxy->install(ctx);
  // Counted as they reach the proxy's handler.
  bench::request_counter c(o.warmup_requests);
  auto forward = ctx.resources().proxy_handler();
  ctx.resources().set_proxy_handler([&c, forward](const coap::request& r, coap::basic_response<>& res) {
    c.count();
    forward(r, res);
  });

  if (!bench::listen<coap::udp>(ctx, o.host, o.port, "proxy_bench_server", usage)) return 1;
  coap::proxy_counters n;
  bench::run_until_stopped(io, o.duration, [&] {
    n = proxy->counters();
    proxy.reset();
    ctx.stop();
  });
  c.print("proxy_bench_server");
  std::printf("proxy_bench_server counters forwarded=%llu cache_hits=%llu bad_gateway=%llu gateway_timeout=%llu\n",
              static_cast<unsigned long long>(n.forwarded), static_cast<unsigned long long>(n.cache_hits),
              static_cast<unsigned long long>(n.bad_gateway), static_cast<unsigned long long>(n.gateway_timeout));
  return 0;
}
