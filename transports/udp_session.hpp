// RFC 7252 section 4 (message transmission) for one peer over UDP: message IDs, CON
// retransmission with exponential back-off, NSTART, piggybacked and separate responses, RST,
// ping, deduplication (section 4.5), and the server side of section 5.7/5.4.1 (dispatching
// requests, 4.02 for unrecognized critical options). One object per peer: a server session
// shares its endpoint's socket; a client session owns its socket. With a secure policy (psk,
// pki), every datagram is a DTLS record (RFC 7252 section 9.1, RFC 6347): the security's
// channel sits between the socket and the messages; requests wait for the handshake.
#pragma once

#include <coap/context.hpp>
#include <coap/detail/dedup_cache.hpp>
#include <coap/detail/endpoint_text.hpp>
#include <coap/detail/handler_slot.hpp>
#include <coap/detail/session_common.hpp>
#include <coap/detail/session_owner.hpp>
#include <coap/detail/server_dispatch.hpp>
#include <coap/detail/server_exchange.hpp>
#include <coap/detail/server_side.hpp>
#include <coap/message.hpp>
#include <coap/udp_codec.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <deque>
#include <memory>
#include <new>
#include <optional>
#include <random>
#include <string>
#include <typeinfo>
#include <vector>

namespace coap::transports {

// Socket: a datagram_socket (coap/policies.hpp), boost::asio::ip::udp::socket unless a user's
// transport says otherwise (basic_udp<Socket>, transports/udp.hpp).
template <class Security, class Allocator, class Socket = boost::asio::ip::udp::socket>
class udp_session_impl final
    : public detail::session_common<udp_session_impl<Security, Allocator, Socket>,
                                    typename Socket::endpoint_type, Allocator>,
      public detail::server_side<udp_session_impl<Security, Allocator, Socket>, Allocator>,
      public std::enable_shared_from_this<udp_session_impl<Security, Allocator, Socket>> {
  using common = detail::session_common<udp_session_impl, typename Socket::endpoint_type, Allocator>;
  using server = detail::server_side<udp_session_impl, Allocator>;
  friend common;
  friend server;
  template <class T>
  using rebind = typename common::template rebind<T>;
  using clock = std::chrono::steady_clock;
  using bytes = std::vector<std::uint8_t, rebind<std::uint8_t>>;
  using common::closed_;
  using common::config_;
  using common::ctx_;
  using common::last_activity_;
  using common::peer_;
  using common::local_;
  using common::handles_;
  using server::deferred_;
  using server::forget_observers;
  using server::notification_;
  using server::remove_observer;
  using server::response_;
  using server::server_;

 public:
  using socket_type = Socket;
  using protocol_type = typename Socket::protocol_type;
  using typename common::endpoint_type;
  using typename common::context_type;
  using typename common::owned_message;
  using typename common::response_signature;
  using typename common::response_handler;
  using typename common::role;
  using common::description;

  // A server session on its endpoint's socket.
  udp_session_impl(context_type& ctx, socket_type& shared_socket, const endpoint_type& local,
                   const endpoint_type& peer)
      : udp_session_impl(ctx, role::server, peer, ctx.config().session) {
    socket_ = &shared_socket;
    local_ = local;
    this->describe(Security::datagram_protocol);
  }
  // A client session on a socket of its own (already bound and non-blocking).
  udp_session_impl(context_type& ctx, socket_type own_socket, const endpoint_type& peer,
                   const session_config& config)
      : udp_session_impl(ctx, role::client, peer, config) {
    own_socket_.emplace(std::move(own_socket));
    socket_ = &*own_socket_;
    boost::system::error_code ignored;
    local_ = socket_->local_endpoint(ignored);
    this->describe(Security::datagram_protocol);
  }
  ~udp_session_impl() override = default;

  // libcoap's coap_session_set_mtu / coap_session_max_pdu_size: over UDP the largest PDU is
  // the MTU (the IP and UDP headers are excluded from it already), less the DTLS record's
  // header, nonce and tag when secure.
  void set_mtu(std::size_t mtu) noexcept { config_.mtu = std::max<std::size_t>(mtu, 64); }
  std::size_t max_pdu_size() const noexcept {
    if constexpr (Security::secure) return config_.mtu - tls_.record_overhead();
    else return config_.mtu;
  }

  // ---- DTLS (secure policies only) ----
  // A client starts its handshake; requests wait for it.
  void start_handshake_as_client(const typename Security::state_ptr& state)
    requires(Security::secure)
  {
    tls_.start_client(state, true);
  }
  // A server session starts from the ClientHello whose cookie its endpoint checked: `primer`
  // (the hello without cookie) first, then the hello itself through on_datagram.
  void start_handshake_as_server(const typename Security::state_ptr& state, std::span<const std::uint8_t> primer)
    requires(Security::secure)
  {
    tls_.start_server(state, true, primer);
  }
  bool handshaking() const noexcept {
    if constexpr (Security::secure) return !closed_ && tls_.handshaking();
    else return false;
  }
  // The endpoint hears about the end of a server session through this.
  void set_owner(std::weak_ptr<session_owner<udp_session_impl>> owner) noexcept { owner_ = std::move(owner); }
  const auto& security_channel() const noexcept { return tls_; }

  // True when nothing references or waits on the session: it may be pooled and freed.
  // A session with observers is not idle: its observers end by RST, a CON notification
  // that times out, deregistration or close (RFC 7641 sections 3.6 and 4.5).
  bool idle() const noexcept {
    return handles_ == 0 && exchanges_.empty() && queue_.empty() && deferred_.empty() && server_.observers.empty();
  }
  clock::time_point last_activity() const noexcept { return last_activity_; }

  // ---- client operations ----
  // The queue entry or exchange comes from the session's allocator; when it refuses, the
  // request fails with error::no_memory and nothing else changes.
  void start_request(owned_message request, response_handler handler) {
    if (closed_) return this->fail_soon(std::move(handler), error::session_closed);
    if (request.code().is_signal() || request.code().is_reserved_class())
      return this->fail_soon(std::move(handler), error::invalid_message);
    if (request.type() != message_type::non_confirmable) request.set_type(message_type::confirmable);
    if (request.token().empty() && config_.token_length)
      request.set_token(coap::token::from_uint(ctx_.random(), config_.token_length));
    if (active_requests() >= std::max(config_.nstart, 1u) || !secured()) {
      if (queue_.size() >= config_.max_queued_requests)
        return this->fail_soon(std::move(handler), error::queue_full);
      queued q{std::move(request), std::move(handler)};
      try {
        queue_.push_back(std::move(q));  // no effect when it throws: q keeps the handler
      } catch (const std::bad_alloc&) {
        this->fail_soon(q.handler.take(), error::no_memory);
      }
      return;
    }
    send_request(std::move(request), std::move(handler));
  }

  // A cancelled request (the handler's cancellation slot, detail/block_client.hpp): its
  // exchange or queue entry goes without completing its handler (the operation already
  // completed with operation_aborted); retransmissions stop, the NSTART slot frees, and a late
  // answer matches nothing (a CON one gets RST).
  void abandon(const coap::token& t) {
    for (std::size_t i = 0; i < exchanges_.size(); ++i) {
      if (exchanges_[i].kind != exchange_kind::request || !(exchanges_[i].token == t)) continue;
      exchanges_.erase(exchanges_.begin() + static_cast<std::ptrdiff_t>(i));
      start_queued();
      return;
    }
    for (auto it = queue_.begin(); it != queue_.end(); ++it)
      if (it->request.token_value() == t) {
        queue_.erase(it);
        return;
      }
  }

  // Section 4.3: CoAP ping, an empty CON that the peer answers with RST.
  void start_ping(response_handler handler) {
    if (closed_) return this->fail_soon(std::move(handler), error::session_closed);
    owned_message ping{Allocator(ctx_.get_allocator())};
    ping.set_type(message_type::confirmable);
    if (!secured()) {
      // Queued until the handshake (start_queued tells it by its empty code).
      if (queue_.size() >= config_.max_queued_requests) return this->fail_soon(std::move(handler), error::queue_full);
      queued q{std::move(ping), std::move(handler)};
      try {
        queue_.push_back(std::move(q));
      } catch (const std::bad_alloc&) {
        this->fail_soon(q.handler.take(), error::no_memory);
      }
      return;
    }
    send_request(std::move(ping), std::move(handler), exchange_kind::ping);
  }

  // Ends the session: every waiting request fails with `why`.
  void close(std::error_code why) {
    if (closed_) return;
    closed_ = true;
    timer_.cancel();
    auto exchanges = std::move(exchanges_);
    exchanges_.clear();
    for (auto& x : exchanges)
      if (x.handler) this->complete(x.handler.take(), why, nullptr);
    while (!queue_.empty()) {
      auto q = std::move(queue_.front());
      queue_.pop_front();
      this->complete(q.handler.take(), why, nullptr);
    }
    deferred_.clear();
    forget_observers();
    this->end_observations(why);
    this->signal_ready(why);
    if constexpr (Security::secure) tls_.close();
    if (own_socket_) {
      boost::system::error_code ignored;
      own_socket_->close(ignored);
    }
    this->emit_closed(why);
    if (auto owner = std::exchange(owner_, {}).lock()) owner->session_closed(*this);
  }

  // Client sessions read their own socket.
  void start_receiving() {
    if (!own_socket_ || closed_) return;
    if (receive_buffer_.empty()) receive_buffer_.resize(receive_buffer_size);
    auto self = this->shared_from_this();
    own_socket_->async_receive_from(
        boost::asio::buffer(receive_buffer_), sender_,
        [self](const boost::system::error_code& ec, std::size_t n) { self->on_client_receive(ec, n); });
  }

  // ---- one datagram from the peer (section 4) ----
  // A datagram whose handling needs memory the allocator refuses is answered as it can be
  // without any (see on_request) or dropped, as the network could drop it; the session goes on.
  void on_datagram(std::span<const std::uint8_t> d) {
    if (closed_) return;
    last_activity_ = clock::now();
    if constexpr (Security::secure) {
      tls_.received(d);  // records come back through tls_plaintext
      return;
    }
    on_plain_datagram(d);
  }

  // ---- the DTLS channel's callbacks (detail/tls_channel.hpp) ----
  void tls_wire(std::span<const std::uint8_t> d) { send_datagram(d); }
  void tls_plaintext(std::span<const std::uint8_t> d) {
    if (!closed_) on_plain_datagram(d);
  }
  void tls_established() {
    if (closed_) return;
    if (this->is_client()) coap::detail::context_access::emit(ctx_, session_event::connected, description());
    this->signal_ready({});
    start_queued();
  }
  void tls_failed(std::error_code ec) { close(ec); }
  std::string tls_peer_identity() const { return detail::endpoint_string(peer_); }

  using typename server::observer;

 private:
  // ---- RFC 7641 section 4 (detail::server_side's hooks) ----
  // Each observer of the resource gets the handler's current answer, NON or CON (section
  // 4.5); a CON still unacknowledged is replaced by the newer state, not queued (4.5.2).
  bool notify(observer& o, bool handler_asked) {
    const bool con = detail::observer_list<Allocator>::next_is_confirmable(
        o, handler_asked, ctx_.config().observe_con_every, ctx_.config().observe_con_interval, clock::now());
    return send_notification(o, con);
  }
  void notify_gone(observer& o) { send_notification(o, true); }
  detail::block_context blocks() const noexcept { return {max_pdu_size(), false}; }

  // One CoAP message (decrypted, when secure).
  void on_plain_datagram(std::span<const std::uint8_t> d) {
    message_view m;
    if (auto ec = udp_codec::parse(d, m)) return reject_malformed(d, ec);
    try {
      on_message(m);
    } catch (const std::bad_alloc&) {
      // Only the deduplication entry of a separate response gets here (requests, responses
      // and queued requests deal with a refusal themselves): unacknowledged, it comes again.
    }
  }

 private:
  void on_message(const message_view& m) {
    const code c = m.code();
    switch (m.type()) {
      case message_type::confirmable:
      case message_type::non_confirmable:
        if (c.is_empty()) {
          // Section 4.3: an empty CON is a ping, answered by RST; an empty NON is ignored.
          if (m.type() == message_type::confirmable) send_empty(message_type::reset, m.message_id());
          return;
        }
        if (c.is_reserved_class() || c.is_signal()) {
          // Section 4.2/4.3: reject (RST for a CON; ignore a NON).
          if (m.type() == message_type::confirmable) send_empty(message_type::reset, m.message_id());
          return;
        }
        if (c.is_request()) return on_request(m);
        return on_separate_response(m);
      case message_type::acknowledgement: return on_ack(m);
      case message_type::reset: return on_reset(m);
    }
  }

  static constexpr std::size_t receive_buffer_size = 65536;

  enum class exchange_kind : std::uint8_t { request, ping, separate_response, notification };

  // One message we sent and whose outcome we wait for.
  struct exchange {
    exchange_kind kind = exchange_kind::request;
    std::uint16_t message_id = 0;
    coap::token token;
    bool confirmable = true;
    bool acknowledged = false;  // an empty ACK came: the response follows separately
    unsigned retransmissions = 0;
    clock::duration interval{};
    clock::time_point deadline{};
    bytes wire;
    detail::handler_slot<response_signature> handler;
    explicit exchange(const Allocator& a) : wire(rebind<std::uint8_t>(a)) {}
  };
  struct queued {
    owned_message request;
    detail::handler_slot<response_signature> handler;
  };
  // Section 5.2.2: the separate response, built with `fill` in the session's memory.
  // Everything is allocated before the exchange is taken off deferred_: when the allocator
  // refuses, the handler's send() returns false and may be tried again.
  template <class Fill>
  bool send_deferred_as(std::uint64_t id, Fill fill) {
    const auto* found = deferred_.find(id);
    if (!found || closed_) return false;
    const auto d = *found;
    try {
      owned_message out{Allocator(ctx_.get_allocator())};
      fill(out);
      out.set_token(d.request_token);
      out.set_type(d.confirmable ? message_type::confirmable : message_type::non_confirmable);
      out.set_message_id(static_cast<std::uint16_t>(message_id_ + 1));
      exchange x(ctx_.get_allocator());
      if (udp_codec::encode(out, x.wire)) {
        deferred_.erase(id);  // the handler's message cannot be sent
        return true;
      }
      if (d.confirmable) detail::reserve_more(exchanges_, 1);
      // Nothing allocates from here on.
      next_message_id();
      deferred_.erase(id);
      if (d.confirmable) {
        x.kind = exchange_kind::separate_response;
        x.message_id = out.message_id();
        x.confirmable = true;
        begin_exchange(std::move(x));
      } else {
        send_bytes(x.wire);
      }
      return true;
    } catch (const std::bad_alloc&) {
      return false;
    }
  }

  udp_session_impl(context_type& ctx, role r, const endpoint_type& peer, const session_config& config)
      : common(ctx, r, peer, config), server(Allocator(ctx.get_allocator())), timer_(ctx.get_executor()),
        dedup_(config.dedup_capacity, ctx.get_allocator()), notify_wire_(rebind<std::uint8_t>(ctx.get_allocator())),
        exchanges_(rebind<exchange>(ctx.get_allocator())), queue_(rebind<queued>(ctx.get_allocator())),
        receive_buffer_(rebind<std::uint8_t>(ctx.get_allocator())),
        message_id_(static_cast<std::uint16_t>(ctx.random())) {}

  std::uint16_t next_message_id() noexcept { return ++message_id_; }

  std::size_t active_requests() const noexcept {
    return static_cast<std::size_t>(std::count_if(exchanges_.begin(), exchanges_.end(), [](const exchange& x) {
      return x.kind == exchange_kind::request || x.kind == exchange_kind::ping;
    }));
  }

  // True when requests may go out: always without security, after the handshake with it.
  bool secured() const noexcept {
    if constexpr (Security::secure) return tls_.established();
    else return true;
  }

  // ---- sending ----
  // One CoAP message, in a DTLS record when secure.
  void send_bytes(std::span<const std::uint8_t> wire) {
    if constexpr (Security::secure) tls_.send(wire);
    else send_datagram(wire);
  }
  void send_datagram(std::span<const std::uint8_t> wire) {
    boost::system::error_code ec;
    // Non-blocking: a full socket buffer drops the datagram, as the network could; CON
    // retransmission recovers it.
    socket_->send_to(boost::asio::buffer(wire.data(), wire.size()), peer_, 0, ec);
  }

  void send_empty(message_type t, std::uint16_t mid) {
    std::array<std::uint8_t, udp_codec::header_size> wire;
    udp_codec::encode_empty(t, mid, wire);
    send_bytes(wire);
  }

  void send_request(owned_message request, response_handler handler,
                    exchange_kind kind = exchange_kind::request) {
    request.set_message_id(next_message_id());
    exchange x(ctx_.get_allocator());
    try {
      // Every allocation of the exchange happens here, before the handler moves into it.
      if (auto ec = udp_codec::encode(request, x.wire)) return this->fail_soon(std::move(handler), ec);
      detail::reserve_more(exchanges_, 1);
    } catch (const std::bad_alloc&) {
      return this->fail_soon(std::move(handler), error::no_memory);
    }
    if (x.wire.size() > max_pdu_size()) return this->fail_soon(std::move(handler), error::message_too_large);
    x.kind = kind;
    x.message_id = request.message_id();
    x.token = request.token_value();
    x.confirmable = request.type() == message_type::confirmable;
    x.handler = std::move(handler);
    begin_exchange(std::move(x));
  }

  // Section 4.2: the first transmission, and the timer for the retransmissions. The caller
  // reserved room in exchanges_: nothing here allocates from the session's allocator.
  void begin_exchange(exchange x) {
    const auto now = clock::now();
    if (x.confirmable) {
      // The initial timeout is random between ACK_TIMEOUT and ACK_TIMEOUT * ACK_RANDOM_FACTOR.
      const double factor = 1.0 + (config_.ack_random_factor - 1.0) *
                                      (static_cast<double>(ctx_.random() >> 11) / 9007199254740992.0);
      x.interval = std::chrono::duration_cast<clock::duration>(config_.ack_timeout * factor);
      x.deadline = now + x.interval;
    } else {
      x.deadline = now + config_.response_timeout;
    }
    send_bytes(x.wire);
    exchanges_.push_back(std::move(x));
    arm_timer();
  }

  void arm_timer() {
    if (exchanges_.empty() || closed_) return;
    auto earliest = std::min_element(exchanges_.begin(), exchanges_.end(),
                                     [](const exchange& a, const exchange& b) { return a.deadline < b.deadline; })
                        ->deadline;
    if (timer_armed_ && timer_deadline_ <= earliest) return;
    timer_armed_ = true;
    timer_deadline_ = earliest;
    timer_.expires_at(earliest);
    auto self = this->shared_from_this();
    timer_.async_wait([self, earliest](const boost::system::error_code& ec) {
      if (self->timer_deadline_ == earliest) self->timer_armed_ = false;
      if (!ec) self->on_timer();
      else self->arm_timer();
    });
  }

  // Section 4.2: retransmit an unacknowledged CON with a doubled timeout, MAX_RETRANSMIT
  // times; then give up. A NON request, or a CON answered by an empty ACK, times out after
  // response_timeout.
  void on_timer() {
    if (closed_) return;
    const auto now = clock::now();
    for (std::size_t i = 0; i < exchanges_.size();) {
      exchange& x = exchanges_[i];
      if (x.deadline > now) {
        ++i;
        continue;
      }
      if (x.confirmable && !x.acknowledged && x.retransmissions < config_.max_retransmit) {
        ++x.retransmissions;
        x.interval *= 2;
        x.deadline = now + x.interval;
        send_bytes(x.wire);
        ++i;
        continue;
      }
      finish(i, error::timeout, nullptr);
    }
    arm_timer();
  }

  // Completes exchanges_[i] and starts a queued request if a slot opened.
  void finish(std::size_t i, std::error_code ec, const message_view* response) {
    exchange x = std::move(exchanges_[i]);
    exchanges_.erase(exchanges_.begin() + static_cast<std::ptrdiff_t>(i));
    if (x.handler) this->complete(x.handler.take(), ec, response);
    // RFC 7641 section 4.5: an observer that does not acknowledge a CON notification (or
    // rejects it) is gone.
    if (x.kind == exchange_kind::notification && ec) remove_observer(x.token);
    start_queued();
  }

  // Queued requests (and pings: empty code) go out while NSTART allows.
  void start_queued() {
    while (!queue_.empty() && active_requests() < std::max(config_.nstart, 1u) && !closed_ && secured()) {
      auto q = std::move(queue_.front());
      queue_.pop_front();
      const auto kind = q.request.code().is_empty() ? exchange_kind::ping : exchange_kind::request;
      send_request(std::move(q.request), q.handler.take(), kind);
    }
  }

  // ---- receiving ----
  void on_client_receive(const boost::system::error_code& ec, std::size_t n) {
    if (closed_ || ec == boost::asio::error::operation_aborted) return;
    // Other errors (an ICMP port-unreachable shows up as connection_refused on a connected
    // socket) do not end the session: the server may come up while we retransmit.
    if (!ec && sender_ == peer_) on_datagram({receive_buffer_.data(), n});
    start_receiving();
  }

  void reject_malformed(std::span<const std::uint8_t> d, std::error_code ec) {
    // Section 3: an unknown version is silently ignored. Section 4.2/4.3: a CON with a format
    // error is rejected with RST; anything else malformed is dropped.
    udp_codec::header h;
    if (ec == error::unsupported_version || udp_codec::parse_header(d, h)) return;
    if (h.type == message_type::confirmable) send_empty(message_type::reset, h.message_id);
  }

  std::optional<std::size_t> find_by_message_id(std::uint16_t mid) const noexcept {
    for (std::size_t i = 0; i < exchanges_.size(); ++i)
      if (exchanges_[i].message_id == mid) return i;
    return std::nullopt;
  }
  std::optional<std::size_t> find_request_by_token(std::span<const std::uint8_t> tok) const noexcept {
    for (std::size_t i = 0; i < exchanges_.size(); ++i) {
      const auto& x = exchanges_[i];
      if (x.kind == exchange_kind::request && std::ranges::equal(x.token.bytes(), tok)) return i;
    }
    return std::nullopt;
  }

  void on_ack(const message_view& m) {
    auto i = find_by_message_id(m.message_id());
    if (!i || !exchanges_[*i].confirmable || exchanges_[*i].acknowledged) return;
    exchange& x = exchanges_[*i];
    if (m.code().is_empty()) {
      if (x.kind == exchange_kind::request) {
        // Section 5.2.2: the response will come as its own message.
        x.acknowledged = true;
        x.deadline = clock::now() + config_.response_timeout;
        return;
      }
      return finish(*i, {}, nullptr);  // a separate response was acknowledged
    }
    // Section 5.3.2: a piggybacked response must carry the request's token.
    if (x.kind != exchange_kind::request || !std::ranges::equal(x.token.bytes(), m.token())) return;
    finish(*i, {}, &m);
  }

  void on_reset(const message_view& m) {
    auto i = find_by_message_id(m.message_id());
    if (!i) {
      // RFC 7641 section 3.6: an RST to a NON notification ends the observation.
      if (auto o = server_.observers.find_by_message_id(m.message_id()))
        coap::detail::context_access::observer_left(ctx_, server_.observers.remove(*o));
      return;
    }
    // A ping is answered by RST: that is its success.
    finish(*i, exchanges_[*i].kind == exchange_kind::ping ? std::error_code() : make_error_code(error::reset_by_peer),
           nullptr);
  }

  // Section 5.2.2: a separate response (CON or NON) matched by token.
  void on_separate_response(const message_view& m) {
    const auto now = clock::now();
    const bool con = m.type() == message_type::confirmable;
    if (auto* seen = dedup_.find(m.message_id(), now)) {
      if (con) send_empty(message_type::acknowledgement, m.message_id());
      (void)seen;
      return;
    }
    auto i = find_request_by_token(m.token());
    if (!i) {
      // RFC 7641 section 3.2/3.6: a notification of an observation of ours is acknowledged;
      // section 5.3.2 of RFC 7252: a response to nothing of ours is rejected (RST for a CON),
      // which also ends the peer's record of an observation we no longer want.
      if (this->deliver_notification(m)) {
        dedup_.insert(m.message_id(), now + (con ? config_.exchange_lifetime : non_lifetime())).status =
            dedup_state::answered;
        if (con) send_empty(message_type::acknowledgement, m.message_id());
      } else {
        send_empty(message_type::reset, m.message_id());
      }
      return;
    }
    dedup_.insert(m.message_id(), now + (con ? config_.exchange_lifetime : non_lifetime())).status =
        dedup_state::answered;
    if (con) send_empty(message_type::acknowledgement, m.message_id());
    finish(*i, {}, &m);
  }

  using dedup_state = typename detail::dedup_cache<Allocator>::state;

  std::chrono::seconds non_lifetime() const noexcept {
    // Section 4.8.2: NON_LIFETIME = MAX_TRANSMIT_SPAN + MAX_LATENCY (100 s).
    return std::chrono::duration_cast<std::chrono::seconds>(config_.max_transmit_span()) +
           std::chrono::seconds(100);
  }

  // Section 4.5 then 5.7: deduplicate, then dispatch to the resources.
  void on_request(const message_view& m) {
    const auto now = clock::now();
    const bool con = m.type() == message_type::confirmable;
    if (auto* seen = dedup_.find(m.message_id(), now)) {
      // A duplicate: the same answer again (a CON), or nothing (a NON, or still in progress).
      if (con && seen->status == dedup_state::answered && !seen->answer.empty())
        send_bytes(seen->answer);
      return;
    }
    // Section 5.9.3.4: no memory for this request now. A CON gets 5.03 with Max-Age, built
    // on the stack; the request is remembered as answered (without a copy to repeat), so
    // that its retransmissions are not dispatched half-way again.
    this->guard(m, [&] { dispatch(m, now, con); }, [&](detail::stack_message& busy) {
      forget(m.message_id(), now);
      if (!con) return;
      busy.set_type(message_type::acknowledgement);
      busy.set_message_id(m.message_id());
      std::uint8_t wire[detail::max_stateless_response];
      if (std::size_t n = 0; !udp_codec::encode(busy, wire, n)) send_bytes({wire, n});
    });
  }

  void dispatch(const message_view& m, clock::time_point now, bool con) {
    dedup_.insert(m.message_id(), now + (con ? config_.exchange_lifetime : non_lifetime()));
    const auto served = this->serve(m, con);
    if (served.outcome == detail::dispatch_outcome::drop) {
      forget(m.message_id(), now);
      return;
    }

    if (served.deferred) {
      auto& entry = *dedup_.find(m.message_id(), now);
      entry.status = dedup_state::answered;
      if (con) {
        // Section 5.2.2: acknowledge now; the response follows. The ACK is kept for
        // duplicates when there is memory; without it, a duplicate gets nothing.
        std::array<std::uint8_t, udp_codec::header_size> ack;
        udp_codec::encode_empty(message_type::acknowledgement, m.message_id(), ack);
        send_bytes(ack);
        try {
          entry.answer.assign(ack.begin(), ack.end());
        } catch (const std::bad_alloc&) {
        }
      }
      return;
    }

    // Section 5.2.1 (piggybacked in the ACK) or 5.2.3 (a NON request gets a NON response).
    response_.set_type(con ? message_type::acknowledgement : message_type::non_confirmable);
    response_.set_message_id(con ? m.message_id() : next_message_id());
    response_.set_token(m.token());
    auto& entry = *dedup_.find(m.message_id(), now);
    entry.status = dedup_state::answered;
    if (auto ec = udp_codec::encode(response_, entry.answer); ec || entry.answer.size() > max_pdu_size()) {
      this->replace_with_internal_error(m, ec ? "response not encodable" : "response too large");
      response_.set_type(con ? message_type::acknowledgement : message_type::non_confirmable);
      response_.set_message_id(con ? m.message_id() : message_id_);
      (void)udp_codec::encode(response_, entry.answer);
    }
    send_bytes(entry.answer);
  }

  void forget(std::uint16_t mid, clock::time_point now) noexcept {
    // A dropped request leaves its ID remembered without an answer: duplicates are dropped too.
    if (auto* e = dedup_.find(mid, now)) {
      e->status = dedup_state::answered;
      e->answer.clear();
    }
  }

  // ---- notifications (RFC 7641 section 4.5) ----

  // Sends response_ (a notification for `o`) as CON or NON; true when it went out.
  bool send_notification(observer& o, bool con) {
    notification_.set_token(o.token);
    notification_.set_type(con ? message_type::confirmable : message_type::non_confirmable);
    const auto mid = next_message_id();
    notification_.set_message_id(mid);
    o.last_message_id = mid;
    o.sent_any = true;
    bool own_in_flight = false, other_in_flight = false;
    for (const auto& x : exchanges_) {
      if (x.kind != exchange_kind::notification) continue;
      (x.token == o.token ? own_in_flight : other_in_flight) = true;
    }
    // Section 4.5.2: a CON still in flight to this observer carries the newer state (a NON
    // beside it would leave the old state being retransmitted).
    if (own_in_flight) {
      con = true;
    } else if (con && other_in_flight) {
      // Section 4.5.1 (congestion control): one CON notification outstanding per peer
      // (NSTART 1), as libcoap does; this one goes NON and the observer's next one tries CON.
      con = false;
      o.since_confirmable = ctx_.config().observe_con_every ? ctx_.config().observe_con_every - 1 : 0;
    }
    notification_.set_type(con ? message_type::confirmable : message_type::non_confirmable);
    if (!con) {
      if (udp_codec::encode(notification_, notify_wire_) || notify_wire_.size() > max_pdu_size()) return false;
      send_bytes(notify_wire_);
      return true;
    }
    // Section 4.5.2: a CON notification still in flight carries the newer state from now on,
    // under the new message ID, keeping its retransmission count and timeout.
    for (auto& x : exchanges_) {
      if (x.kind != exchange_kind::notification || !(x.token == o.token)) continue;
      if (udp_codec::encode(notification_, x.wire)) return false;
      x.message_id = mid;
      send_bytes(x.wire);
      return true;
    }
    exchange x(ctx_.get_allocator());
    if (udp_codec::encode(notification_, x.wire) || x.wire.size() > max_pdu_size()) return false;
    detail::reserve_more(exchanges_, 1);
    x.kind = exchange_kind::notification;
    x.message_id = mid;
    x.token = o.token;
    x.confirmable = true;
    begin_exchange(std::move(x));
    return true;
  }

  bool timer_armed_ = false;
  endpoint_type sender_;
  socket_type* socket_ = nullptr;
  std::optional<socket_type> own_socket_;
  boost::asio::steady_timer timer_;
  clock::time_point timer_deadline_{};
  detail::dedup_cache<Allocator> dedup_;
  bytes notify_wire_;
  std::vector<exchange, rebind<exchange>> exchanges_;
  std::deque<queued, rebind<queued>> queue_;
  bytes receive_buffer_;
  std::uint16_t message_id_;
  std::weak_ptr<session_owner<udp_session_impl>> owner_;
  // The DTLS record layer (empty for no_sec). Last: it refers to the members above.
  [[no_unique_address]] typename Security::template channel<udp_session_impl> tls_{*this};
};

}  // namespace coap::transports
