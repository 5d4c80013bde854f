// RFC 7252 section 8.1 and RFC 7390 section 2.7 (client side of group communication): one NON
// request to a multicast group, and every answer to it, from whichever server, until a time
// window closes. The request goes from a socket of its own, unconnected (a UDP client
// session's socket is connected to one server and would filter the answers out):
//
//   auto [ec, n] = co_await coap::async_group_request(
//       ex, {asio::ip::make_address("224.0.1.187"), 5683}, get("sensors"), 6s,
//       [](const coap::group_answer& a) { std::cout << a.from << " " << a.response.payload_string(); },
//       asio::as_tuple(asio::use_awaitable));
//
// Servers answer after a random leisure of up to 5 s (section 8.2): the window should be longer.
// Each answer carrying the request's token is handed over with its responder's address, in
// arrival order (a CON answer is acknowledged, and its retransmissions are not handed over
// twice); nothing is deduplicated across responders, whose answers are distinct even when two
// share an address. A Block2 answer (block 0 of a large body) is handed over as it is: the
// rest comes unicast from `from` through an ordinary session (section 8.2, RFC 7959 section
// 2.8). See docs/multicast.md.
#pragma once

#include <coap/detail/handler_slot.hpp>
#include <coap/detail/multicast_group.hpp>
#include <coap/detail/os_random.hpp>
#include <coap/detail/session_common.hpp>
#include <coap/error.hpp>
#include <coap/message.hpp>
#include <coap/udp_codec.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/multicast.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace coap {

// One answer to a group request, and the server that sent it (its unicast address).
struct group_answer {
  boost::asio::ip::udp::endpoint from;
  message response;
};

struct group_request_config {
  // Outgoing interface by name ("eth0"; empty: the routing table's choice).
  std::string interface;
  // IP_MULTICAST_TTL / IPV6_MULTICAST_HOPS: 1 keeps the request on the link.
  int hops = 1;
  // Whether servers on this host see the request (IP_MULTICAST_LOOP).
  bool loopback = true;
  // The window closes early after this many answers: a bound on what a group can make us hold.
  std::size_t max_answers = 1024;
};

namespace detail {

// One group request in flight: its socket, the window's timer, the user's handlers.
class group_request_op : public std::enable_shared_from_this<group_request_op> {
 public:
  using signature = void(std::error_code, std::size_t);
  using answer_handler = std::function<void(const group_answer&)>;

  group_request_op(boost::asio::any_io_executor io, group_request_config config)
      : io_(io), socket_(io), timer_(io), config_(std::move(config)) {}

  // Opens the socket, sends `request` (NON, its token set) to `group`, then gathers answers
  // until `window` ends; `done` completes once, with the count.
  void start(const boost::asio::ip::udp::endpoint& group, message request, std::chrono::milliseconds window,
             answer_handler on_answer, boost::asio::any_completion_handler<signature> done,
             boost::asio::any_io_executor handler_ex, boost::asio::cancellation_slot slot) {
    on_answer_ = std::move(on_answer);
    done_ = handler_slot<signature>(std::move(done));  // not operator= (handler_slot.hpp)
    handler_ex_ = std::move(handler_ex);
    slot_ = slot;
    if (slot_.is_connected()) {
      slot_.assign([weak = weak_from_this(), io = io_](boost::asio::cancellation_type type) {
        if (type == boost::asio::cancellation_type::none) return;
        boost::asio::post(io, [weak] {
          if (auto self = weak.lock()) self->finish(detail::operation_aborted());
        });
      });
    }
    if (!group.address().is_multicast()) return finish(std::make_error_code(std::errc::invalid_argument));
    // Section 8.1: a request to a group is NON.
    request.set_type(message_type::non_confirmable);
    if (request.token().empty()) request.set_token(coap::token::from_uint(random_.next(), 8));
    request.set_message_id(static_cast<std::uint16_t>(random_.next()));
    token_ = request.token_value();
    std::vector<std::uint8_t> wire;
    if (auto ec = udp_codec::encode(request, wire)) return finish(ec);
    if (auto ec = open(group)) return finish(ec);
    boost::system::error_code bec;
    socket_.send_to(boost::asio::buffer(wire), group, 0, bec);
    if (bec) return finish(bec);
    buffer_.resize(65536);
    receive();
    timer_.expires_after(window);
    timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (!ec) self->finish({});
    });
  }

 private:
  std::error_code open(const boost::asio::ip::udp::endpoint& group) {
    namespace mc = boost::asio::ip::multicast;
    const bool v6 = group.address().is_v6();
    unsigned index = 0;
    if (auto ec = interface_index(config_.interface, index)) return ec;
    boost::system::error_code bec;
    socket_.open(v6 ? boost::asio::ip::udp::v6() : boost::asio::ip::udp::v4(), bec);
    if (!bec) socket_.bind({v6 ? boost::asio::ip::udp::v6() : boost::asio::ip::udp::v4(), 0}, bec);
    if (!bec) socket_.set_option(mc::hops(config_.hops), bec);
    if (!bec) socket_.set_option(mc::enable_loopback(config_.loopback), bec);
    if (!bec && index) {
      if (v6) {
        socket_.set_option(mc::outbound_interface(index), bec);
      } else {
        ip_mreqn request{};
        request.imr_ifindex = static_cast<int>(index);
        if (::setsockopt(socket_.native_handle(), IPPROTO_IP, IP_MULTICAST_IF, &request, sizeof request) != 0)
          return last_socket_error();
      }
    }
    if (!bec) socket_.non_blocking(true, bec);
    return bec;
  }

  void receive() {
    socket_.async_receive_from(boost::asio::buffer(buffer_), sender_,
                               [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
                                 if (self->finished_ || ec == boost::asio::error::operation_aborted) return;
                                 if (!ec) self->on_datagram({self->buffer_.data(), n});
                                 if (!self->finished_) self->receive();
                               });
  }

  // An answer: a response with our token. Anything else is not ours and ignored (no RST: other
  // clients' traffic is not ours to reject on a shared group).
  void on_datagram(std::span<const std::uint8_t> d) {
    message_view m;
    if (udp_codec::parse(d, m) || !m.code().is_response() || !std::ranges::equal(m.token(), token_.bytes())) return;
    if (m.type() == message_type::acknowledgement || m.type() == message_type::reset) return;
    if (m.type() == message_type::confirmable) {
      std::array<std::uint8_t, udp_codec::header_size> ack;
      udp_codec::encode_empty(message_type::acknowledgement, m.message_id(), ack);
      boost::system::error_code ignored;
      socket_.send_to(boost::asio::buffer(ack), sender_, 0, ignored);
      // Section 4.5: a retransmitted CON answer is acknowledged again, handed over once.
      const seen key{sender_, m.message_id()};
      if (std::find(seen_.begin(), seen_.end(), key) != seen_.end()) return;
      seen_[seen_next_++ % seen_.size()] = key;
    }
    ++count_;
    auto answer = std::make_shared<group_answer>(group_answer{sender_, message(m)});
    boost::asio::dispatch(handler_ex_, [self = shared_from_this(), answer] {
      if (self->on_answer_) self->on_answer_(*answer);
    });
    if (count_ >= config_.max_answers) finish({});
  }

  void finish(std::error_code ec) {
    if (finished_) return;
    finished_ = true;
    timer_.cancel();
    boost::system::error_code ignored;
    socket_.close(ignored);
    if (slot_.is_connected()) slot_.clear();
    // After the answers dispatched before it (the same executor, in order).
    boost::asio::post(handler_ex_, [h = done_.take(), ec, n = count_]() mutable { std::move(h)(ec, n); });
  }

  struct seen {
    boost::asio::ip::udp::endpoint from;
    std::uint16_t message_id = 0;
    bool operator==(const seen&) const = default;
  };

  boost::asio::any_io_executor io_;
  boost::asio::ip::udp::socket socket_;
  boost::asio::steady_timer timer_;
  group_request_config config_;
  os_random random_;
  coap::token token_;
  std::vector<std::uint8_t> buffer_;
  boost::asio::ip::udp::endpoint sender_;
  answer_handler on_answer_;
  handler_slot<signature> done_;
  boost::asio::any_io_executor handler_ex_;
  boost::asio::cancellation_slot slot_;
  std::array<seen, 32> seen_{};
  std::size_t seen_next_ = 0;
  std::size_t count_ = 0;
  bool finished_ = false;
};

}  // namespace detail

// Sends `request` as a NON to `group` (an IPv4 or IPv6 multicast address and port) and calls
// on_answer(const group_answer&) for each answer until `window` has passed, then completes
// with (error_code, answers handed over). on_answer and the completion run on the completion
// handler's associated executor (default: `ex`), which must not run them concurrently.
// Errors: invalid_argument (not a multicast address), no_such_device (config.interface),
// the socket's (a group without a route: network_unreachable), boost::asio::error::
// operation_aborted when the handler's cancellation slot fires (the answers before it were
// handed over). A window of 0 sends and completes at once.
template <class OnAnswer, class CompletionToken>
auto async_group_request(boost::asio::any_io_executor ex, const boost::asio::ip::udp::endpoint& group,
                         message request, std::chrono::milliseconds window, OnAnswer on_answer,
                         CompletionToken&& token, group_request_config config) {
  return boost::asio::async_initiate<CompletionToken, detail::group_request_op::signature>(
      [](auto handler, boost::asio::any_io_executor io, boost::asio::ip::udp::endpoint to, message m,
         std::chrono::milliseconds w, OnAnswer each, group_request_config c) {
        boost::asio::any_io_executor handler_ex = boost::asio::get_associated_executor(handler, io);
        auto slot = boost::asio::get_associated_cancellation_slot(handler);
        auto op = std::make_shared<detail::group_request_op>(io, std::move(c));
        boost::asio::any_completion_handler<detail::group_request_op::signature> done(
            detail::tracked_handler<decltype(handler), boost::asio::any_io_executor>(std::move(handler), io));
        // Started from the executor: never inside the initiating function.
        boost::asio::post(io, [op, to, m = std::move(m), w, each = std::move(each), done = std::move(done),
                               handler_ex, slot]() mutable {
          op->start(to, std::move(m), w, std::move(each), std::move(done), handler_ex, slot);
        });
      },
      token, std::move(ex), group, std::move(request), window, std::move(on_answer), std::move(config));
}
// The same with the default configuration. An overload rather than a default argument: GCC 12
// frees a std::string temporary of a co_await expression wrongly (ASan: bad-free; a default
// argument is such a temporary). In a coroutine, pass a named group_request_config.
template <class OnAnswer, class CompletionToken = boost::asio::deferred_t>
auto async_group_request(boost::asio::any_io_executor ex, const boost::asio::ip::udp::endpoint& group,
                         message request, std::chrono::milliseconds window, OnAnswer on_answer,
                         CompletionToken&& token = {}) {
  return async_group_request(std::move(ex), group, std::move(request), window, std::move(on_answer),
                             std::forward<CompletionToken>(token), group_request_config());
}

}  // namespace coap
