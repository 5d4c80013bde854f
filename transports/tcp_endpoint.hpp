// libcoap's coap_endpoint_t over TCP (RFC 8323 section 3): an acceptor, a session per
// connection, the idle pool and the context's session cap, as for UDP.
#pragma once

#include <coap/context.hpp>
#include <coap/detail/idle_pool.hpp>
#include <coap/detail/endpoint_text.hpp>
#include <coap/detail/reuse_port.hpp>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <chrono>
#include <list>
#include <memory>
#include <new>
#include <string>

#include "tcp_session.hpp"

namespace coap::transports {

template <class Security, class Allocator>
class tcp_endpoint final : public detail::endpoint_base,
                           public session_owner<tcp_session_impl<Security, Allocator>>,
                           public std::enable_shared_from_this<tcp_endpoint<Security, Allocator>> {
  template <class T>
  using rebind = typename std::allocator_traits<Allocator>::template rebind_alloc<T>;
  using clock = std::chrono::steady_clock;

 public:
  using session_impl = tcp_session_impl<Security, Allocator>;
  using protocol_type = boost::asio::ip::tcp;
  using endpoint_type = protocol_type::endpoint;
  using context_type = basic_context<Allocator>;

  tcp_endpoint(context_type& ctx, const endpoint_type& local, typename Security::state_ptr security,
               std::error_code& ec)
      : ctx_(ctx), security_(std::move(security)), acceptor_(ctx.get_executor()), sweep_timer_(ctx.get_executor()),
        sessions_(rebind<std::shared_ptr<session_impl>>(ctx.get_allocator())),
        description_(rebind<char>(ctx.get_allocator())) {
    boost::system::error_code bec;
    acceptor_.open(local.protocol(), bec);
    if (!bec) acceptor_.set_option(protocol_type::acceptor::reuse_address(true), bec);
    if (!bec && local.address().is_v6()) acceptor_.set_option(boost::asio::ip::v6_only(true), bec);
    // One listening socket per shard (coap/shards.hpp): the kernel spreads new connections.
    if (!bec && ctx.config().reuse_port) acceptor_.set_option(detail::reuse_port(true), bec);
    if (!bec) acceptor_.bind(local, bec);
    if (!bec) acceptor_.listen(protocol_type::acceptor::max_listen_connections, bec);
    ec = bec;
    if (ec) return;
    char text[detail::max_endpoint_text + 8];
    const auto n = detail::append_text(text, detail::write_endpoint_text(text, acceptor_.local_endpoint(bec)), " ");
    description_.assign(text, detail::append_text(text, n, Security::stream_protocol));
  }

  void start() {
    accept();
    schedule_sweep();
  }
  std::uint16_t local_port() const {
    boost::system::error_code ec;
    return acceptor_.local_endpoint(ec).port();
  }

  // ---- endpoint_base ----
  void close() override {
    if (closed_) return;
    closed_ = true;
    sweep_timer_.cancel();
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    auto sessions = std::move(sessions_);
    sessions_.clear();
    for (auto& s : sessions) s->close(error::session_closed);
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
  // sessions_ (a list) while it runs: the iterator has moved on by then, and `s` keeps it alive.
  std::size_t notify_observers(std::uint64_t resource_id) override {
    std::size_t sent = 0;
    for_each_observed([&](session_impl& s) { sent += s.notify_observers(resource_id); });
    return sent;
  }
  void resource_removed(std::uint64_t resource_id) override {
    for_each_observed([&](session_impl& s) { s.resource_removed(resource_id); });
  }
  template <class F>
  void for_each_observed(F f) {
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      if ((*it)->observer_count() == 0) {
        ++it;
        continue;
      }
      auto s = *it;
      ++it;
      f(*s);
    }
  }

  // ---- session_owner: a session that ends leaves the endpoint at once ----
  void session_closed(session_impl& s) override {
    if (closed_) return;
    auto it = std::find_if(sessions_.begin(), sessions_.end(), [&](const auto& p) { return p.get() == &s; });
    if (it == sessions_.end()) return;
    auto keep = std::move(*it);  // `s` is still running close()
    sessions_.erase(it);
  }

 private:
  void accept() {
    if (closed_) return;
    auto self = this->shared_from_this();
    acceptor_.async_accept([self](const boost::system::error_code& ec, protocol_type::socket socket) {
      if (self->closed_) return;
      if (!ec) self->on_accept(std::move(socket));
      self->accept();
    });
  }

  void on_accept(protocol_type::socket socket) {
    boost::system::error_code ec;
    const auto peer = socket.remote_endpoint(ec);
    if (ec) return;  // already gone
    if (!coap::detail::context_access::make_room_for_session(ctx_) || !room_for_handshake()) {
      // Refused for now: a CSM then an Abort saying why (RFC 8323 section 5.6), then close.
      // (Over TLS there is no CoAP before the handshake: the connection just closes.)
      if constexpr (!Security::secure) session_impl::send_refusal(socket, "session limit");
      socket.close(ec);
      return;
    }
    // The allocator may refuse the session (or its list node): the peer is refused as at the
    // cap, and the endpoint goes on.
    std::shared_ptr<session_impl> s;
    try {
      sessions_.emplace_back();  // the node first: on failure, nothing else is left to undo
      try {
        s = std::allocate_shared<session_impl>(ctx_.get_allocator(), ctx_, std::move(socket), peer,
                                               ctx_.config().session);
      } catch (...) {
        sessions_.pop_back();
        throw;
      }
      sessions_.back() = s;
    } catch (const std::bad_alloc&) {
      // The socket is still ours unless the session's constructor took it and then failed.
      if (socket.is_open()) {
        if constexpr (!Security::secure) session_impl::send_refusal(socket, "out of memory");
        socket.close(ec);
      }
      return;
    }
    s->set_owner(this->weak_from_this());
    coap::detail::context_access::emit(ctx_, session_event::session_created, *s);
    try {
      s->start_server(security_);
    } catch (const std::bad_alloc&) {
      s->refuse("out of memory", error::no_memory);  // leaves sessions_ through session_closed
    }
  }

  // Connections still in their TLS handshake, within context_config::max_handshakes.
  bool room_for_handshake() const noexcept {
    if constexpr (Security::secure) {
      std::size_t n = 0;
      for (const auto& s : sessions_) n += s->handshaking();
      return n < ctx_.config().max_handshakes;
    } else {
      return true;
    }
  }

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
    auto s = std::move(*it);
    sessions_.erase(it);
    s->set_owner({});  // it is already out of the list
    coap::detail::context_access::emit(ctx_, session_event::session_freed, *s);
    s->close(error::session_closed);
  }

  static constexpr auto session_of = [](auto& entry) -> auto& { return *entry; };

  context_type& ctx_;
  typename Security::state_ptr security_;  // TLS credentials and policy (nullptr_t for no_sec)
  protocol_type::acceptor acceptor_;
  boost::asio::steady_timer sweep_timer_;
  std::list<std::shared_ptr<session_impl>, rebind<std::shared_ptr<session_impl>>> sessions_;
  std::basic_string<char, std::char_traits<char>, rebind<char>> description_;
  bool closed_ = false;
};

}  // namespace coap::transports
