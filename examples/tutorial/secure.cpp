// Tutorial step 4 (docs/tutorial.md): a secure session, DTLS 1.2 with a pre-shared key
// (RFC 7252 section 9.1.3.1). The server's key is set once on its context (set_psk); the client
// gives its identity and key per session. Both in one process, over loopback.
#include <coap/security/psk.hpp>
#include <coap/session.hpp>
#include <coap/transports/udp.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address_v4.hpp>

#include <chrono>
#include <cstdint>
#include <iostream>
#include <string_view>
#include <vector>

int main() {
  boost::asio::io_context io;
  const auto loopback = boost::asio::ip::address_v4::loopback();
  constexpr std::string_view secret = "tutorial key";
  const std::vector<std::uint8_t> key(secret.begin(), secret.end());

  coap::context server(io.get_executor());
  server.add_resource("hello").on(coap::method::get, [](const coap::request& req, coap::basic_response<>& res) {
    // The identity the handshake authenticated.
    res.set(coap::response_code::content, "hello, " + std::string(req.authenticated_peer()));
  });
  coap::security::psk_server_config server_psk;
  server_psk.key = key;
  std::uint16_t port = 0;
  if (auto ec = coap::security::set_psk(server, server_psk)) return std::cerr << ec.message() << '\n', 1;
  if (auto ec = server.add_endpoint<coap::udp, coap::psk>(loopback, 0, &port))
    return std::cerr << ec.message() << '\n', 1;

  coap::context client(io.get_executor());
  coap::security::psk_client_config client_psk;
  client_psk.identity = "tutorial";
  client_psk.key = key;
  std::error_code ec;
  // The handshake starts at once; the request waits for it.
  auto session = coap::session<coap::udp, coap::psk>::create_client(client, {loopback, port}, client_psk, ec);
  if (ec) return std::cerr << ec.message() << '\n', 1;

  int status = 1;
  coap::message request(coap::method::get);
  request.add(coap::options::uri_path{}, "hello");
  session.async_request(request, [&](std::error_code ec, coap::message response) {
    if (ec) {
      std::cerr << "GET /hello: " << ec.message() << '\n';  // a TLS alert, handshake_timeout, ...
    } else {
      std::cout << coap::to_string(response.code()) << ' ' << response.payload_string() << '\n';
      status = 0;
    }
    io.stop();
  });
  io.run_for(std::chrono::seconds(10));
  return status;
}
