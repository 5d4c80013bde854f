// Tutorial step 3 (docs/tutorial.md): Observe (RFC 7641). A server whose /counter changes every
// 100 ms and notifies its observers; a client (a C++20 coroutine) that observes it, reads three
// notifications and cancels. Both in one process, over loopback UDP.
#include <coap/observation.hpp>
#include <coap/session.hpp>
#include <coap/transports/udp.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address_v4.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <iostream>
#include <string>

namespace asio = boost::asio;

int main() {
  asio::io_context io;
  const auto loopback = asio::ip::address_v4::loopback();

  // The server: GET /counter answers the current value; observable() accepts observers.
  coap::context server(io.get_executor());
  int counter = 0;
  server.add_resource("counter")
      .on(coap::method::get, [&](const coap::request&, coap::basic_response<>& res) {
        res.set(coap::response_code::content, std::to_string(counter));
      })
      .observable();
  std::uint16_t port = 0;
  if (auto ec = server.add_endpoint<coap::udp>(loopback, 0, &port)) return std::cerr << ec.message() << '\n', 1;

  // The state changes every 100 ms; each change notifies every observer.
  asio::steady_timer tick(io);
  auto change = [&](auto& self) -> void {
    tick.expires_after(std::chrono::milliseconds(100));
    tick.async_wait([&, self](std::error_code ec) {
      if (ec) return;
      ++counter;
      server.notify_observers("counter");
      self(self);
    });
  };
  change(change);

  // The client.
  coap::context client(io.get_executor());
  int status = 1;
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    std::error_code ec;
    auto session = coap::session<coap::udp>::create_client(client, {loopback, port}, ec);
    if (ec) co_return;
    coap::message get(coap::method::get);
    get.add(coap::options::uri_path{}, "counter");
    auto [observe_ec, observation] = co_await session.async_observe(get, asio::as_tuple(asio::use_awaitable));
    if (observe_ec) {
      std::cerr << "observe: " << observe_ec.message() << '\n';
      co_return;
    }
    int seen = 0;
    for (; seen < 3; ++seen) {  // the first is the answer to the registration
      auto [next_ec, m] = co_await observation.async_next(asio::as_tuple(asio::use_awaitable));
      if (next_ec) break;
      std::cout << "counter = " << m.payload_string() << '\n';
    }
    observation.cancel();  // a GET with Observe=1: the server forgets this observer
    status = seen == 3 ? 0 : 1;
    tick.cancel();
    asio::steady_timer linger(io, std::chrono::milliseconds(100));  // lets the cancellation go out
    co_await linger.async_wait(asio::use_awaitable);
    io.stop();
  }, asio::detached);

  io.run_for(std::chrono::seconds(10));
  return status;
}
