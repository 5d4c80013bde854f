// Uses coap-cpp from another workspace, through @coap_cpp//:coap, @coap_cpp//transports:udp and
// @coap_cpp//security:psk: a server and a client in one process, on loopback, one GET /hello
// over UDP without security and one over DTLS with a pre-shared key. tools/test compares what
// it prints:
//   coap (UDP, NoSec): 2.05 Content world
//   coaps (DTLS, PSK): 2.05 Content world
#include <coap/coap.hpp>
#include <coap/security/psk.hpp>
#include <coap/session.hpp>
#include <coap/transports/udp.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address_v4.hpp>

#include <chrono>
#include <cstdint>
#include <iostream>
#include <string>
#include <system_error>
#include <vector>

namespace {

const auto loopback = boost::asio::ip::address_v4::loopback();

coap::message get_hello() {
  coap::message request(coap::method::get);
  request.add(coap::options::uri_path{}, "hello");
  return request;
}

bool fail(const char* what, std::error_code ec) {
  std::cerr << what << ": " << ec.message() << '\n';
  return false;
}

}  // namespace

int main() {
  boost::asio::io_context io;
  const std::string secret = "consumer secret";
  const std::vector<std::uint8_t> key(secret.begin(), secret.end());

  // The server: GET /hello on a NoSec UDP endpoint and on a DTLS-PSK endpoint, ports chosen
  // by the system.
  coap::context server(io.get_executor());
  server.add_resource("hello").on(coap::method::get, [](const coap::request&, coap::basic_response<>& res) {
    res.set(coap::response_code::content, "world");
  });
  coap::security::psk_server_config server_psk;
  server_psk.key = key;
  std::uint16_t udp_port = 0, dtls_port = 0;
  if (auto ec = coap::security::set_psk(server, server_psk)) return fail("set_psk", ec), 1;
  if (auto ec = server.add_endpoint<coap::udp>(loopback, 0, &udp_port)) return fail("UDP endpoint", ec), 1;
  if (auto ec = server.add_endpoint<coap::udp, coap::psk>(loopback, 0, &dtls_port))
    return fail("DTLS endpoint", ec), 1;

  // The client: one session of each kind.
  coap::context client(io.get_executor());
  std::error_code ec;
  auto plain = coap::session<coap::udp>::create_client(client, {loopback, udp_port}, ec);
  if (ec) return fail("UDP session", ec), 1;
  coap::security::psk_client_config client_psk;
  client_psk.identity = "consumer";
  client_psk.key = key;
  auto secure = coap::session<coap::udp, coap::psk>::create_client(client, {loopback, dtls_port}, client_psk, ec);
  if (ec) return fail("DTLS session", ec), 1;

  std::string results[2] = {"no answer", "no answer"};
  int pending = 2;
  auto on_response = [&](int i) {
    return [&, i](std::error_code ec, coap::message response) {
      results[i] = ec ? "error: " + ec.message()
                      : coap::to_string(response.code()) + " " + std::string(response.payload_string());
      if (--pending == 0) io.stop();
    };
  };
  plain.async_request(get_hello(), on_response(0));
  secure.async_request(get_hello(), on_response(1));
  io.run_for(std::chrono::seconds(20));

  std::cout << "coap (UDP, NoSec): " << results[0] << '\n' << "coaps (DTLS, PSK): " << results[1] << '\n';
  return pending == 0 ? 0 : 1;
}
