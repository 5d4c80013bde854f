// A UDP forwarder on loopback that drops, duplicates or delays datagrams as a test script says:
// the network misbehaving, with real sockets on both sides.
#pragma once

#include <boost/asio.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

namespace coap::test {

class lossy_udp_proxy {
 public:
  enum class direction { to_server, to_client };
  enum class action { forward, drop, duplicate, delay };
  // Decides the fate of the n-th datagram (counted per direction, from 0).
  using policy = std::function<action(direction, std::size_t n, std::span<const std::uint8_t>)>;

  lossy_udp_proxy(boost::asio::any_io_executor ex, boost::asio::ip::udp::endpoint server, policy p,
                  std::chrono::milliseconds delay = std::chrono::milliseconds(50))
      : front_(ex, {boost::asio::ip::make_address("127.0.0.1"), 0}),
        back_(ex, {boost::asio::ip::make_address("127.0.0.1"), 0}), server_(server),
        policy_(std::move(p)), delay_(delay), ex_(ex) {
    read_front();
    read_back();
  }

  boost::asio::ip::udp::endpoint endpoint() const { return front_.local_endpoint(); }
  std::size_t seen(direction d) const { return d == direction::to_server ? to_server_ : to_client_; }
  // Sends `bytes` on as if the other side had sent them (to_server: from the client's
  // address as the server sees it): a spoofed datagram.
  void inject(direction d, const std::vector<std::uint8_t>& bytes) { send(d, bytes); }
  void close() {
    front_.close();
    back_.close();
  }

 private:
  void read_front() {
    front_.async_receive_from(boost::asio::buffer(front_buf_), client_, [this](auto ec, std::size_t n) {
      if (ec) return;
      handle(direction::to_server, to_server_++, {front_buf_.data(), n});
      read_front();
    });
  }
  void read_back() {
    back_.async_receive_from(boost::asio::buffer(back_buf_), from_server_, [this](auto ec, std::size_t n) {
      if (ec) return;
      handle(direction::to_client, to_client_++, {back_buf_.data(), n});
      read_back();
    });
  }
  void handle(direction d, std::size_t n, std::span<const std::uint8_t> bytes) {
    auto copy = std::make_shared<std::vector<std::uint8_t>>(bytes.begin(), bytes.end());
    switch (policy_(d, n, bytes)) {
      case action::drop: return;
      case action::forward: return send(d, *copy);
      case action::duplicate:
        send(d, *copy);
        return send(d, *copy);
      case action::delay: {
        auto timer = std::make_shared<boost::asio::steady_timer>(ex_, delay_);
        timer->async_wait([this, timer, copy, d](auto ec) {
          if (!ec) send(d, *copy);
        });
        return;
      }
    }
  }
  void send(direction d, const std::vector<std::uint8_t>& bytes) {
    boost::system::error_code ignored;
    if (d == direction::to_server) back_.send_to(boost::asio::buffer(bytes), server_, 0, ignored);
    else front_.send_to(boost::asio::buffer(bytes), client_, 0, ignored);
  }

  boost::asio::ip::udp::socket front_, back_;
  boost::asio::ip::udp::endpoint server_, client_, from_server_;
  policy policy_;
  std::chrono::milliseconds delay_;
  boost::asio::any_io_executor ex_;
  std::array<std::uint8_t, 65536> front_buf_{}, back_buf_{};
  std::size_t to_server_ = 0, to_client_ = 0;
};

}  // namespace coap::test
