// Tutorial step 2 (docs/tutorial.md): a client. GET coap://127.0.0.1/hello (or the URI given)
// and print the answer. Run tutorial_server first.
#include <coap/session.hpp>
#include <coap/transports/udp.hpp>

#include <boost/asio/io_context.hpp>

#include <iostream>
#include <string>

int main(int argc, char** argv) {
  const std::string uri = argc > 1 ? argv[1] : "coap://127.0.0.1";
  boost::asio::io_context io;
  coap::context ctx(io.get_executor());
  int status = 1;

  // Resolves the host without blocking, then hands over the session.
  coap::session<coap::udp>::async_create_client(ctx, uri, [&](std::error_code ec, coap::session<coap::udp> session) {
    if (ec) {
      std::cerr << uri << ": " << ec.message() << '\n';
      return;
    }
    coap::message request(coap::method::get);
    request.add(coap::options::uri_path{}, "hello");
    // The handler owns a copy of the handle, which keeps the session open until it runs.
    session.async_request(request, [&, session](std::error_code ec, coap::message response) {
      if (ec) {
        std::cerr << "GET /hello: " << ec.message() << '\n';  // e.g. timeout: no server
        return;
      }
      std::cout << coap::to_string(response.code()) << ' ' << response.payload_string() << '\n';
      status = 0;
    });
  });
  io.run();
  return status;
}
