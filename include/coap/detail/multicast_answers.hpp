// RFC 7252 section 8.2 (and RFC 7390 section 2.7): when the answer to a request that arrived at
// a multicast group goes out: NON, from the endpoint's unicast socket, at a random point within
// the leisure (context_config::multicast_leisure), unless it is suppressed (multicast_rules.hpp).
// One queue per endpoint, bounded (context_config::max_pending_group_answers): one answer more
// is dropped, as the network could drop it. Slots keep their buffers: after warm-up, an answer
// allocates nothing.
#pragma once

#include <coap/context.hpp>
#include <coap/detail/multicast_rules.hpp>
#include <coap/message_type.hpp>
#include <coap/message_view.hpp>
#include <coap/udp_codec.hpp>

#include <boost/asio/error.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <new>
#include <optional>
#include <span>
#include <vector>

namespace coap::detail {

// What became of group requests at one endpoint (tests, operators).
struct group_answer_counters {
  std::size_t scheduled = 0;   // answers queued for their leisure
  std::size_t sent = 0;        // answers that went out
  std::size_t suppressed = 0;  // errors and empty answers not sent (section 8.2, RFC 7967)
  std::size_t dropped = 0;     // the queue was full, or the answer could not be encoded
};

template <class Socket, class Allocator>
class delayed_group_answers : public std::enable_shared_from_this<delayed_group_answers<Socket, Allocator>> {
  using clock = std::chrono::steady_clock;
  template <class T>
  using rebind = typename std::allocator_traits<Allocator>::template rebind_alloc<T>;
  using bytes = std::vector<std::uint8_t, rebind<std::uint8_t>>;

 public:
  using endpoint_type = typename Socket::endpoint_type;

  // `socket`: the endpoint's unicast socket, which outlives the queue's use of it (the endpoint
  // calls close() before its socket goes).
  delayed_group_answers(basic_context<Allocator>& ctx, Socket& socket)
      : ctx_(ctx), socket_(socket), timer_(ctx.get_executor()), slots_(rebind<slot>(ctx.get_allocator())) {}

  // The session's answer to a group request from `peer` (`response` as its handler left it):
  // suppressed, or queued for a random point within the leisure as a NON with `message_id`.
  template <class Message>
  void answer(const message_view& request, Message& response, std::uint16_t message_id, const endpoint_type& peer,
              std::size_t max_pdu) {
    if (closed_) return;
    if (!group_answer_sent(request, response.code(), response.payload().size())) {
      ++counters_.suppressed;
      return;
    }
    response.set_type(message_type::non_confirmable);
    response.set_message_id(message_id);
    response.set_token(request.token());
    slot* s = free_slot();
    if (!s) {
      ++counters_.dropped;
      return;
    }
    if (udp_codec::encode(response, s->wire) || s->wire.size() > max_pdu) {
      ++counters_.dropped;
      return;
    }
    s->peer = peer;
    s->due = clock::now() + pick_leisure(ctx_.config().multicast_leisure, ctx_.random());
    s->used = true;
    ++pending_;
    ++counters_.scheduled;
    arm();
  }

  void close() noexcept {
    closed_ = true;
    timer_.cancel();
  }
  std::size_t pending() const noexcept { return pending_; }
  const group_answer_counters& counters() const noexcept { return counters_; }

 private:
  struct slot {
    explicit slot(const Allocator& a) : wire(rebind<std::uint8_t>(a)) {}
    clock::time_point due{};
    endpoint_type peer{};
    bytes wire;
    bool used = false;
  };

  // A free slot, a new one below the cap, or nullptr (full, or no memory).
  slot* free_slot() {
    for (auto& s : slots_)
      if (!s.used) return &s;
    if (slots_.size() >= ctx_.config().max_pending_group_answers) return nullptr;
    try {
      slots_.emplace_back(ctx_.get_allocator());
    } catch (const std::bad_alloc&) {
      return nullptr;
    }
    return &slots_.back();
  }

  std::optional<clock::time_point> earliest() const noexcept {
    std::optional<clock::time_point> t;
    for (const auto& s : slots_)
      if (s.used && (!t || s.due < *t)) t = s.due;
    return t;
  }

  // One wait, for the earliest answer; an earlier one re-arms it (the old wait ends aborted).
  void arm() {
    const auto next = earliest();
    if (!next || closed_ || (waiting_ && *next >= armed_for_)) return;
    armed_for_ = *next;
    waiting_ = true;
    timer_.expires_at(*next);
    timer_.async_wait([weak = this->weak_from_this()](const boost::system::error_code& ec) {
      if (ec == boost::asio::error::operation_aborted) return;
      if (auto self = weak.lock()) self->send_due();
    });
  }

  void send_due() {
    waiting_ = false;
    if (closed_) return;
    const auto now = clock::now();
    for (auto& s : slots_) {
      if (!s.used || s.due > now) continue;
      boost::system::error_code ec;
      // Non-blocking, as every send of the endpoint: a full buffer drops it, as the network could.
      socket_.send_to(boost::asio::buffer(s.wire.data(), s.wire.size()), s.peer, 0, ec);
      ++counters_.sent;
      s.used = false;
      --pending_;
    }
    arm();
  }

  basic_context<Allocator>& ctx_;
  Socket& socket_;
  boost::asio::steady_timer timer_;
  std::vector<slot, rebind<slot>> slots_;
  clock::time_point armed_for_{};
  std::size_t pending_ = 0;
  group_answer_counters counters_;
  bool waiting_ = false;
  bool closed_ = false;
};

}  // namespace coap::detail
