// An installed coap-cpp used through pkg-config, TLS-PSK over TCP (RFC 8323 section 9): a
// server and a client on loopback, one GET of a resource that answers with the identity the
// handshake authenticated. Built with
//   g++ -std=c++20 tls_psk_get.cpp $(pkg-config --cflags --libs coap-cpp-psk)
// by tools/test.d/60-cmake-pkgconfig.sh.
// Prints "2.05 Content consumer"; exits non-zero otherwise.
#include <coap/coap.hpp>
#include <coap/security/psk.hpp>
#include <coap/session.hpp>
#include <coap/transports/tcp.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>

#include <chrono>
#include <cstdint>
#include <iostream>
#include <string>
#include <vector>

int main() {
  using namespace std::chrono_literals;
  boost::asio::io_context io;
  const auto loopback = boost::asio::ip::make_address("127.0.0.1");
  const std::string secret = "consumer secret";
  const std::vector<std::uint8_t> key(secret.begin(), secret.end());

  coap::context server(io.get_executor());
  server.add_resource("whoami").on(coap::method::get, [](const coap::request& req, coap::basic_response<>& res) {
    res.set_payload(req.authenticated_peer());
  });
  coap::security::psk_server_config server_psk;
  server_psk.key = key;
  std::uint16_t port = 0;
  if (const auto ec = coap::security::set_psk(server, server_psk)) {
    std::cerr << "set_psk: " << ec.message() << '\n';
    return 1;
  }
  if (const auto ec = server.add_endpoint<coap::tcp, coap::psk>(loopback, 0, &port)) {
    std::cerr << "add_endpoint: " << ec.message() << '\n';
    return 1;
  }

  coap::context client(io.get_executor());
  coap::security::psk_client_config client_psk;
  client_psk.identity = "consumer";
  client_psk.key = key;
  std::error_code ec;
  auto session = coap::session<coap::tcp, coap::psk>::create_client(client, {loopback, port}, client_psk, ec);
  if (ec) {
    std::cerr << "create_client: " << ec.message() << '\n';
    return 1;
  }
  coap::message get(coap::method::get);
  get.add(coap::options::uri_path{}, "whoami");
  bool done = false;
  std::string answer;
  session.async_request(get, [&](std::error_code rec, coap::message response) {
    done = true;
    answer = rec ? "error: " + rec.message() : coap::to_string(response.code()) + " " + std::string(response.payload_string());
  });
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (!done && std::chrono::steady_clock::now() < deadline) {
    io.run_for(10ms);
    io.restart();
  }
  std::cout << (done ? answer : "no answer in 20 s") << '\n';
  return answer == "2.05 Content consumer" ? 0 : 1;
}
