// Tutorial step 5 (docs/tutorial.md): a custom allocator. basic_context<Allocator> takes any
// allocator of bytes; its endpoints, sessions and messages allocate from it. Here each context
// has a std::pmr::monotonic_buffer_resource over a fixed buffer, so this GET touches the global
// heap only for Asio's own bookkeeping.
#include <coap/session.hpp>
#include <coap/transports/udp.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address_v4.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <memory_resource>

using allocator = std::pmr::polymorphic_allocator<std::uint8_t>;
using context = coap::basic_context<allocator>;
using message = coap::basic_message<allocator>;
using session = coap::session<coap::udp, coap::no_sec, allocator>;

int main() {
  boost::asio::io_context io;
  const auto loopback = boost::asio::ip::address_v4::loopback();

  // Fixed buffers; new_delete_resource would also do, or an arena of your own.
  alignas(std::max_align_t) static std::array<std::byte, 256 * 1024> server_memory, client_memory;
  std::pmr::monotonic_buffer_resource server_arena(server_memory.data(), server_memory.size(),
                                                   std::pmr::null_memory_resource());
  std::pmr::monotonic_buffer_resource client_arena(client_memory.data(), client_memory.size(),
                                                   std::pmr::null_memory_resource());

  context server(io.get_executor(), {}, allocator(&server_arena));
  server.add_resource("hello").on(coap::method::get, [](const coap::request&, coap::basic_response<allocator>& res) {
    res.set(coap::response_code::content, "world");
  });
  std::uint16_t port = 0;
  if (auto ec = server.add_endpoint<coap::udp>(loopback, 0, &port)) return std::cerr << ec.message() << '\n', 1;

  context client(io.get_executor(), {}, allocator(&client_arena));
  std::error_code ec;
  auto s = session::create_client(client, {loopback, port}, ec);
  if (ec) return std::cerr << ec.message() << '\n', 1;

  int status = 1;
  message request(coap::method::get, coap::message_type::confirmable, allocator(&client_arena));
  request.add(coap::options::uri_path{}, "hello");
  s.async_request(request, [&](std::error_code ec, message response) {
    if (ec) {
      std::cerr << "GET /hello: " << ec.message() << '\n';  // error::no_memory when the arena is spent
    } else {
      std::cout << coap::to_string(response.code()) << ' ' << response.payload_string() << '\n';
      status = 0;
    }
    io.stop();
  });
  io.run_for(std::chrono::seconds(10));
  return status;
}
