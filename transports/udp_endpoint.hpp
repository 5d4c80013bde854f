// libcoap's coap_endpoint_t over UDP (coap_session(3): "servers get a session per new peer,
// made by the library"): one socket, a session per peer address, the idle pool (sessions no
// handle references, freed after the idle timeout) and the context's session cap. RFC 7252
// section 8: once it joins multicast groups, a socket per group and the queue of answers
// waiting out their leisure (detail/multicast_group.hpp, docs/multicast.md).
#pragma once

#include <coap/context.hpp>
#include <coap/detail/idle_pool.hpp>
#include <coap/detail/endpoint_text.hpp>
#include <coap/detail/multicast_group.hpp>
#include <coap/detail/reuse_port.hpp>
#include <coap/detail/stateless_response.hpp>
#include <coap/udp_codec.hpp>

#include <boost/asio/ip/udp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <chrono>
#include <memory>
#include <new>
#include <string>
#include <unordered_map>
#include <vector>

#include "udp_session.hpp"

namespace coap::transports {

template <class Security, class Allocator, class Socket = boost::asio::ip::udp::socket>
class udp_endpoint final : public detail::endpoint_base,
                           public session_owner<udp_session_impl<Security, Allocator, Socket>>,
                           public std::enable_shared_from_this<udp_endpoint<Security, Allocator, Socket>> {
  template <class T>
  using rebind = typename std::allocator_traits<Allocator>::template rebind_alloc<T>;
  using clock = std::chrono::steady_clock;

 public:
  using session_impl = udp_session_impl<Security, Allocator, Socket>;
  using socket_type = Socket;
  using protocol_type = typename Socket::protocol_type;
  using endpoint_type = typename Socket::endpoint_type;
  using context_type = basic_context<Allocator>;
  using group_answers = detail::delayed_group_answers<Socket, Allocator>;

  udp_endpoint(context_type& ctx, const endpoint_type& local, typename Security::state_ptr security,
               std::error_code& ec)
      : ctx_(ctx), security_(std::move(security)), socket_(ctx.get_executor()), sweep_timer_(ctx.get_executor()),
        buffer_(receive_buffer_size, 0, rebind<std::uint8_t>(ctx.get_allocator())),
        sessions_(16, std::hash<endpoint_type>(), std::equal_to<endpoint_type>(),
                  rebind<std::pair<const endpoint_type, std::shared_ptr<session_impl>>>(ctx.get_allocator())),
        description_(rebind<char>(ctx.get_allocator())) {
    boost::system::error_code bec;
    socket_.open(local.protocol(), bec);
    // An IPv6 endpoint serves IPv6 only, so that the same port can also serve IPv4.
    if (!bec && local.address().is_v6()) set_v6_only(socket_, bec);
    if (!bec && ctx.config().udp_reuse_address) set_reuse_address(socket_, bec);  // section 8 (docs/multicast.md)
    if (!bec && ctx.config().reuse_port) set_reuse_port(socket_, bec);  // one socket per shard (coap/shards.hpp)
    if (!bec) socket_.bind(local, bec);
    if (!bec) socket_.non_blocking(true, bec);
    ec = bec;
    if (ec) return;
    local_ = socket_.local_endpoint(bec);  // once: each server session copies it
    char text[detail::max_endpoint_text + 8];
    const auto n = detail::write_endpoint_text(text, local_);
    const auto with_space = detail::append_text(text, n, " ");
    description_.assign(text, detail::append_text(text, with_space, Security::datagram_protocol));
  }

  void start() {
    receive();
    schedule_sweep();
  }

  std::uint16_t local_port() const { return local_.port(); }

  // ---- endpoint_base ----
  void close() override {
    if (closed_) return;
    closed_ = true;
    sweep_timer_.cancel();
    group_.close();
    boost::system::error_code ignored;
    socket_.close(ignored);
    auto sessions = std::move(sessions_);
    sessions_.clear();
    for (auto& [peer, s] : sessions) s->close(error::session_closed);
  }
  std::size_t session_count() const noexcept override { return sessions_.size(); }
  std::optional<clock::time_point> oldest_idle() const noexcept override {
    const auto it = detail::find_oldest_idle(sessions_, session_of);
    if (it == sessions_.end()) return std::nullopt;
    return session_of(*it).last_activity();
  }
  bool evict_oldest_idle() override {
    const auto victim = detail::find_oldest_idle(sessions_, session_of);
    if (victim == sessions_.end()) return false;
    free_session(victim);
    return true;
  }
  std::string_view description() const noexcept override { return description_; }
  // RFC 7641: the sessions with observers notify them. A session that a send ends leaves
  // sessions_ while it runs: the iterator has moved on by then, and `s` keeps it alive.
  std::size_t notify_observers(std::uint64_t resource_id) override {
    std::size_t sent = 0;
    for_each_observed([&](session_impl& s) { sent += s.notify_observers(resource_id); });
    return sent;
  }
  // RFC 7252 section 8 (detail/multicast_group.hpp): NoSec over Asio's UDP socket only.
  std::error_code join_group(const boost::asio::ip::address& group, std::string_view interface) override {
    if constexpr (!detail::joins_groups<Security>() || !std::is_same_v<Socket, boost::asio::ip::udp::socket>)
      return std::make_error_code(std::errc::operation_not_supported);
    else return group_.join(ctx_, this->shared_from_this(), socket_, group, interface);
  }
  // A datagram that arrived at a joined group: a NON request is served as from its sender and
  // answered after the leisure (detail/multicast_answers.hpp); anything else is dropped.
  void on_group_datagram(std::span<const std::uint8_t> d, const endpoint_type& from) {
    if constexpr (detail::joins_groups<Security>()) {
      if (closed_ || !group_.answers() || !detail::group_request_admitted(ctx_, d)) return;
      on_datagram(d, from, group_.answers());
    }
  }
  // What became of the group requests (tests, operators); zeros before the first join.
  detail::group_answer_counters group_counters() const noexcept {
    return group_.answers() ? group_.answers()->counters() : detail::group_answer_counters{};
  }
  void resource_removed(std::uint64_t resource_id) override {
    for_each_observed([&](session_impl& s) { s.resource_removed(resource_id); });
  }
  template <class F>
  void for_each_observed(F f) {
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      if (session_of(*it).observer_count() == 0) {
        ++it;
        continue;
      }
      auto s = it->second;
      ++it;
      f(*s);
    }
  }

  // ---- session_owner: a session that ends (a failed handshake, close_notify, close()) leaves
  // the endpoint at once ----
  void session_closed(session_impl& s) override {
    if (closed_) return;
    auto it = sessions_.find(s.remote_endpoint());
    if (it == sessions_.end() || it->second.get() != &s) return;
    auto keep = std::move(it->second);  // `s` is still running close()
    sessions_.erase(it);
  }

  // The session of a peer, if it exists (tests and the session handle use it).
  std::shared_ptr<session_impl> find_session(const endpoint_type& peer) const {
    auto it = sessions_.find(peer);
    return it == sessions_.end() ? nullptr : it->second;
  }

 private:
  static constexpr std::size_t receive_buffer_size = 65536;
  // At most this many datagrams are read in one go before yielding to other work.
  static constexpr int drain_limit = 64;

  void receive() {
    if (closed_) return;
    auto self = this->shared_from_this();
    socket_.async_receive_from(boost::asio::buffer(buffer_), sender_,
                               [self](const boost::system::error_code& ec, std::size_t n) { self->on_receive(ec, n); });
  }

  void on_receive(const boost::system::error_code& ec, std::size_t n) {
    if (closed_ || ec == boost::asio::error::operation_aborted) return;
    if (!ec) {
      on_datagram({buffer_.data(), n}, sender_);
      // Drain what else is queued without going back to the reactor each time.
      for (int i = 0; i < drain_limit && !closed_; ++i) {
        boost::system::error_code rec;
        const std::size_t m = socket_.receive_from(boost::asio::buffer(buffer_), sender_, 0, rec);
        if (rec) break;
        on_datagram({buffer_.data(), m}, sender_);
      }
    }
    receive();
  }

  // A datagram from `from`; `group`: it arrived at a joined group (section 8). The peer is a
  // parameter so that a group datagram's sender is never written to sender_: the unicast
  // socket's next read may already have completed into it (a read that found a datagram
  // waiting completes at once, its handler queued behind the group socket's).
  void on_datagram(std::span<const std::uint8_t> d, const endpoint_type& from, group_answers* group = nullptr) {
    auto it = sessions_.find(from);
    if (it != sessions_.end() && !it->second->is_open()) {
      // A session that ended (a failed handshake, say) does not hold on to its peer's address.
      free_session(it);
      it = sessions_.end();
    }
    if (it == sessions_.end()) {
      std::vector<std::uint8_t> primer;
      if constexpr (Security::secure) {
        if (!admit_handshake(d, from, primer)) return;
      } else {
        if (!admit(d, from)) return;
      }
      try {
        if (!dedup_)  // section 4.5: one deduplication store for the endpoint's sessions
          dedup_ = std::allocate_shared<dedup_store>(ctx_.get_allocator(), ctx_.config().dedup_droppable_capacity,
                                                     ctx_.config().dedup_capacity, ctx_.get_allocator());
        auto s = std::allocate_shared<session_impl>(ctx_.get_allocator(), ctx_, socket_, local_, from, dedup_);
        it = sessions_.emplace(from, std::move(s)).first;  // no effect when it throws
      } catch (const std::bad_alloc&) {
        // The allocator refused the session: the peer is refused as at the cap, statelessly.
        return refuse(d, from, "out of memory");
      }
      it->second->set_owner(this->weak_from_this());
      coap::detail::context_access::emit(ctx_, session_event::session_created, *it->second);
      if constexpr (Security::secure) {
        auto session = it->second;
        session->start_handshake_as_server(security_, primer);
      }
    }
    // Keep the session alive while it handles the datagram, even if it is evicted meanwhile.
    auto session = it->second;
    if (group) session->on_group_datagram(d, *group);
    else session->on_datagram(d);
  }

  // A new peer: within the cap (evicting the oldest idle session if needed), or refused.
  bool admit(std::span<const std::uint8_t> d, const endpoint_type& from) {
    // Only a message worth a session makes one: a well-formed request or ping. Anything else
    // from an unknown peer gets the stateless answer of section 4.2/4.3 and no state.
    message_view m;
    udp_codec::header h;
    if (udp_codec::parse_header(d, h) || h.version != udp_codec::version) return false;
    if (udp_codec::parse(d, m)) {
      if (h.type == message_type::confirmable) send_empty(message_type::reset, h.message_id, from);
      return false;
    }
    if (m.type() == message_type::acknowledgement || m.type() == message_type::reset) return false;
    if (!m.code().is_request()) {
      if (m.type() == message_type::confirmable) send_empty(message_type::reset, m.message_id(), from);
      return false;
    }
    if (coap::detail::context_access::make_room_for_session(ctx_)) return true;
    refuse(d, from, "session limit");
    return false;
  }

  // RFC 6347 section 4.2.1: a new DTLS peer gets a HelloVerifyRequest and no state until it
  // returns the cookie; then a session, within the handshake and session caps. Anything else
  // from an unknown peer is dropped.
  bool admit_handshake(std::span<const std::uint8_t> d, const endpoint_type& from, std::vector<std::uint8_t>& primer) {
    auto hello = Security::check_client_hello(d, detail::endpoint_string(from), *security_);
    using check = decltype(hello.check);
    if (hello.check == check::cookie_missing) send(hello.reply, from);
    if (hello.check != check::cookie_valid) return false;
    std::size_t handshakes = 0;
    for (const auto& entry : sessions_) handshakes += entry.second->handshaking();
    // Beyond the caps the hello is dropped: the client retransmits it, and may get in later.
    if (handshakes >= ctx_.config().max_handshakes || !coap::detail::context_access::make_room_for_session(ctx_)) return false;
    primer = std::move(hello.primer);
    return true;
  }

  // Section 5.9.3.4: refused for now. A CON gets 5.03 with Max-Age, statelessly (in the clear:
  // not for DTLS, whose peers are refused by silence).
  void refuse(std::span<const std::uint8_t> d, const endpoint_type& to, std::string_view why) {
    if constexpr (Security::secure) return;
    message_view m;
    if (udp_codec::parse(d, m) || m.type() != message_type::confirmable) return;
    std::uint8_t wire[detail::max_stateless_response];
    if (const auto n = detail::encode_service_unavailable(wire, m, why)) send({wire, n}, to);
  }

  void send(std::span<const std::uint8_t> wire, const endpoint_type& to) {
    boost::system::error_code ec;
    socket_.send_to(boost::asio::buffer(wire.data(), wire.size()), to, 0, ec);
  }
  void send_empty(message_type t, std::uint16_t mid, const endpoint_type& to) {
    std::array<std::uint8_t, udp_codec::header_size> wire;
    udp_codec::encode_empty(t, mid, wire);
    send(wire, to);
  }

  // The idle pool: a session nobody holds is freed after idle_session_timeout without traffic.
  void schedule_sweep() {
    if (closed_) return;
    sweep_timer_.expires_after(detail::sweep_period(ctx_.config().idle_session_timeout));
    auto self = this->shared_from_this();
    sweep_timer_.async_wait([self](const boost::system::error_code& ec) {
      if (ec || self->closed_) return;
      detail::free_expired(self->sessions_, session_of, self->ctx_.config().idle_session_timeout,
                           [&](auto it) { self->free_session(it); });
      self->schedule_sweep();
    });
  }
  template <class It>
  void free_session(It it) {
    auto s = std::move(it->second);
    sessions_.erase(it);
    s->set_owner({});  // it is already out of the table
    coap::detail::context_access::emit(ctx_, session_event::session_freed, *s);
    s->close(error::session_closed);
  }

  static constexpr auto session_of = [](auto& entry) -> auto& { return *entry.second; };

  // A socket without the option (a user's datagram_socket) has no dual-stack to turn off.
  static void set_v6_only(Socket& socket, boost::system::error_code& ec) {
    if constexpr (requires { socket.set_option(boost::asio::ip::v6_only(true), ec); })
      socket.set_option(boost::asio::ip::v6_only(true), ec);
  }

  static void set_reuse_address(Socket& socket, boost::system::error_code& ec) {
    if constexpr (requires { socket.set_option(boost::asio::socket_base::reuse_address(true), ec); })
      socket.set_option(boost::asio::socket_base::reuse_address(true), ec);
  }

  static void set_reuse_port(Socket& socket, boost::system::error_code& ec) {
    if constexpr (requires { socket.set_option(detail::reuse_port(true), ec); })
      socket.set_option(detail::reuse_port(true), ec);
    else ec = boost::asio::error::operation_not_supported;  // the user's socket cannot share a port
  }

  context_type& ctx_;
  typename Security::state_ptr security_;  // DTLS credentials and policy (nullptr_t for no_sec)
  Socket socket_;
  boost::asio::steady_timer sweep_timer_;
  std::vector<std::uint8_t, rebind<std::uint8_t>> buffer_;
  endpoint_type local_;   // the bound address (port 0 resolved)
  endpoint_type sender_;
  std::unordered_map<endpoint_type, std::shared_ptr<session_impl>, std::hash<endpoint_type>,
                     std::equal_to<endpoint_type>,
                     rebind<std::pair<const endpoint_type, std::shared_ptr<session_impl>>>>
      sessions_;
  std::basic_string<char, std::char_traits<char>, rebind<char>> description_;
  detail::group_membership<udp_endpoint, Allocator> group_;  // section 8: empty until a join
  using dedup_store = typename session_impl::dedup_store;
  std::shared_ptr<dedup_store> dedup_;  // made with the first session
  bool closed_ = false;
};

}  // namespace coap::transports
