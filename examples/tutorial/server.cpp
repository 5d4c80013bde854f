// Tutorial step 1 (docs/tutorial.md): a server. GET /hello answers "world"; UDP and TCP on
// port 5683 (or the port given), IPv4 and IPv6, until Ctrl-C.
#include <coap/session.hpp>
#include <coap/transports/tcp.hpp>
#include <coap/transports/udp.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/signal_set.hpp>

#include <cstdlib>
#include <iostream>

int main(int argc, char** argv) {
  const auto port = static_cast<std::uint16_t>(argc > 1 ? std::atoi(argv[1]) : 5683);
  boost::asio::io_context io;
  coap::context ctx(io.get_executor());

  ctx.add_resource("hello")
      .on(coap::method::get, [](const coap::request&, coap::basic_response<>& res) {
        res.set(coap::response_code::content, "world", coap::content_format::text_plain);
      })
      .attribute("rt", "greeting");  // listed in /.well-known/core

  // IPv4 and IPv6 each: an IPv6 endpoint takes IPv6 only.
  for (const char* any : {"0.0.0.0", "::"}) {
    const auto address = boost::asio::ip::make_address(any);
    for (auto ec : {ctx.add_endpoint<coap::udp>(address, port), ctx.add_endpoint<coap::tcp>(address, port)})
      if (ec) {
        std::cerr << "cannot listen on [" << any << "]:" << port << ": " << ec.message() << '\n';
        return 1;
      }
  }

  boost::asio::signal_set stop(io, SIGINT, SIGTERM);
  stop.async_wait([&](auto, int) { ctx.stop(); });
  io.run();
}
