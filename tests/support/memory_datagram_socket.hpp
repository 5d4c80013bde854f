// A datagram_socket (coap/policies.hpp) that is no socket: datagrams travel between objects
// of one process through an in-memory network, so that basic_udp<memory_datagram_socket> is a
// CoAP transport written by a user, as docs/policies.md ("Writing a transport") describes.
// Addresses are Asio's UDP endpoints used as names only; nothing reaches the kernel.
#pragma once

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/post.hpp>

#include <cstdint>
#include <cstring>
#include <deque>
#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

namespace coap::test {

class memory_datagram_socket {
 public:
  using protocol_type = boost::asio::ip::udp;
  using endpoint_type = protocol_type::endpoint;
  using receive_handler = boost::asio::any_completion_handler<void(boost::system::error_code, std::size_t)>;

  // What the network did, for tests to check.
  struct statistics {
    std::size_t delivered = 0;  // datagrams queued at a bound address
    std::size_t unroutable = 0; // datagrams to an address nobody bound (UDP drops them too)
  };
  static statistics& stats() {
    static statistics s;
    return s;
  }

  explicit memory_datagram_socket(boost::asio::any_io_executor ex) : ex_(std::move(ex)) {}
  memory_datagram_socket(memory_datagram_socket&&) noexcept = default;
  memory_datagram_socket& operator=(memory_datagram_socket&& o) noexcept {
    unbind();
    ex_ = std::move(o.ex_);
    port_ = std::move(o.port_);
    peer_ = o.peer_;
    return *this;
  }
  ~memory_datagram_socket() { unbind(); }

  void open(const protocol_type&, boost::system::error_code& ec) { ec = {}; }
  void non_blocking(bool, boost::system::error_code& ec) { ec = {}; }

  void bind(const endpoint_type& local, boost::system::error_code& ec) {
    ec = {};
    endpoint_type e = local;
    if (e.port() == 0) e.port(network().next_port++);
    auto& slot = network().ports[e];
    if (!slot.expired()) {
      ec = boost::asio::error::address_in_use;
      return;
    }
    port_ = std::make_shared<port>();
    port_->local = e;
    slot = port_;
  }
  // A connected socket hears its peer only (as the kernel filters for a connected UDP socket).
  void connect(const endpoint_type& peer, boost::system::error_code& ec) {
    ec = {};
    if (!port_) bind(endpoint_type(peer.protocol(), 0), ec);
    if (port_) port_->peer = peer;
    peer_ = peer;
  }
  endpoint_type local_endpoint(boost::system::error_code& ec) const {
    ec = {};
    return port_ ? port_->local : endpoint_type();
  }

  std::size_t send_to(boost::asio::const_buffer data, const endpoint_type& to, int, boost::system::error_code& ec) {
    ec = {};
    if (!port_) {
      ec = boost::asio::error::bad_descriptor;
      return 0;
    }
    auto it = network().ports.find(to);
    auto target = it == network().ports.end() ? nullptr : it->second.lock();
    if (!target || (target->peer && *target->peer != port_->local)) {
      ++stats().unroutable;
      return data.size();
    }
    const auto* bytes = static_cast<const std::uint8_t*>(data.data());
    target->queue.push_back({port_->local, std::vector<std::uint8_t>(bytes, bytes + data.size())});
    ++stats().delivered;
    target->wake();
    return data.size();
  }

  std::size_t receive_from(boost::asio::mutable_buffer out, endpoint_type& from, int, boost::system::error_code& ec) {
    ec = {};
    if (!port_ || port_->queue.empty()) {
      ec = boost::asio::error::would_block;
      return 0;
    }
    return port_->pop(out, from);
  }

  template <class Handler>
  void async_receive_from(boost::asio::mutable_buffer out, endpoint_type& from, Handler&& handler) {
    if (!port_) {
      boost::asio::post(ex_, [h = std::forward<Handler>(handler)]() mutable {
        std::move(h)(boost::asio::error::bad_descriptor, 0);
      });
      return;
    }
    port_->waiting.emplace(waiting_receive{out, &from, receive_handler(std::forward<Handler>(handler)), ex_});
    port_->wake();
  }

  void close(boost::system::error_code& ec) {
    ec = {};
    unbind();
  }

 private:
  struct waiting_receive {
    boost::asio::mutable_buffer out;
    endpoint_type* from;
    receive_handler handler;
    boost::asio::any_io_executor ex;
  };
  struct port {
    endpoint_type local;
    std::optional<endpoint_type> peer;
    std::deque<std::pair<endpoint_type, std::vector<std::uint8_t>>> queue;
    std::optional<waiting_receive> waiting;

    std::size_t pop(boost::asio::mutable_buffer out, endpoint_type& from) {
      auto [sender, bytes] = std::move(queue.front());
      queue.pop_front();
      const std::size_t n = std::min(out.size(), bytes.size());
      std::memcpy(out.data(), bytes.data(), n);
      from = sender;
      return n;
    }
    // A waiting receive completes (posted, as a socket's would) when a datagram is queued.
    void wake() {
      if (!waiting || queue.empty()) return;
      auto w = std::move(*waiting);
      waiting.reset();
      const std::size_t n = pop(w.out, *w.from);
      boost::asio::post(w.ex, [h = std::move(w.handler), n]() mutable { std::move(h)(boost::system::error_code(), n); });
    }
    void abort() {
      if (!waiting) return;
      auto w = std::move(*waiting);
      waiting.reset();
      boost::asio::post(w.ex, [h = std::move(w.handler)]() mutable {
        std::move(h)(boost::asio::error::operation_aborted, 0);
      });
    }
  };
  struct network_state {
    std::map<endpoint_type, std::weak_ptr<port>> ports;
    std::uint16_t next_port = 49152;
  };
  static network_state& network() {
    static network_state n;
    return n;
  }

  void unbind() {
    if (!port_) return;
    port_->abort();
    auto it = network().ports.find(port_->local);
    if (it != network().ports.end() && it->second.lock() == port_) network().ports.erase(it);
    port_.reset();
  }

  boost::asio::any_io_executor ex_;
  std::shared_ptr<port> port_;
  std::optional<endpoint_type> peer_;
};

}  // namespace coap::test
