// An installed coap-cpp, NoSec over UDP: a server and a client on loopback, one GET.
// Prints "2.05 Content world"; exits non-zero otherwise. Links no Botan.
#include <coap/coap.hpp>
#include <coap/session.hpp>
#include <coap/transports/udp.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>

#include <chrono>
#include <cstdint>
#include <iostream>
#include <string>
#include <string_view>

int main() {
  using namespace std::chrono_literals;
  boost::asio::io_context io;
  const auto loopback = boost::asio::ip::make_address("127.0.0.1");

  coap::context server(io.get_executor());
  server.add_resource("hello").on(coap::method::get, [](const coap::request&, coap::basic_response<>& res) {
    res.set_payload(std::string_view("world"));
  });
  std::uint16_t port = 0;
  if (const auto ec = server.add_endpoint<coap::udp>(loopback, 0, &port)) {
    std::cerr << "add_endpoint: " << ec.message() << '\n';
    return 1;
  }

  coap::context client(io.get_executor());
  std::error_code ec;
  auto session = coap::session<coap::udp>::create_client(client, {loopback, port}, ec);
  if (ec) {
    std::cerr << "create_client: " << ec.message() << '\n';
    return 1;
  }
  coap::message get(coap::method::get);
  get.add(coap::options::uri_path{}, "hello");
  bool done = false;
  std::string answer;
  session.async_request(get, [&](std::error_code rec, coap::message response) {
    done = true;
    answer = rec ? "error: " + rec.message() : coap::to_string(response.code()) + " " + std::string(response.payload_string());
  });
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!done && std::chrono::steady_clock::now() < deadline) {
    io.run_for(10ms);
    io.restart();
  }
  std::cout << (done ? answer : "no answer in 10 s") << '\n';
  return answer == "2.05 Content world" ? 0 : 1;
}
