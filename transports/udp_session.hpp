// RFC 7252 section 4 (message transmission) for one peer over UDP: message IDs, CON
// retransmission with exponential back-off, NSTART, piggybacked and separate responses, RST,
// ping, deduplication (section 4.5), and the server side of section 5.7/5.4.1 (dispatching
// requests, 4.02 for unrecognized critical options). One object per peer: a server session
// shares its endpoint's socket; a client session owns its socket. With a secure policy (psk,
// pki), every datagram is a DTLS record (RFC 7252 section 9.1, RFC 6347): the security's
// channel sits between the socket and the messages; requests wait for the handshake. A request
// that arrived at a multicast group is answered through its endpoint's leisure queue (section
// 8.2, detail/multicast_answers.hpp).
#pragma once

#include <coap/context.hpp>
#include <coap/detail/dedup_cache.hpp>
#include <coap/detail/endpoint_text.hpp>
#include <coap/detail/multicast_answers.hpp>
#include <coap/detail/no_response.hpp>
#include <coap/detail/request_queue.hpp>
#include <coap/detail/session_common.hpp>
#include <coap/detail/server_dispatch.hpp>
#include <coap/detail/server_exchange.hpp>
#include <coap/detail/server_side.hpp>
#include <coap/detail/udp_exchanges.hpp>
#include <coap/message.hpp>
#include <coap/udp_codec.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/ip/udp.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <memory>
#include <new>
#include <optional>
#include <string>
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
  using common::arm_timer;
  using common::make_timer;
  using server::deferred_;
  using server::forget_observers;
  using server::notification;
  using server::remove_observer;
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
  // The protocol in the session's description (coap_session_str).
  static constexpr std::string_view protocol_name = Security::datagram_protocol;

  using dedup_store = detail::dedup_cache<Allocator>;
  // A server session on its endpoint's socket, deduplicating in its endpoint's store.
  udp_session_impl(context_type& ctx, socket_type& shared_socket, const endpoint_type& local,
                   const endpoint_type& peer, std::shared_ptr<dedup_store> dedup)
      : udp_session_impl(ctx, role::server, peer, ctx.config().session) {
    dedup_ = std::move(dedup);
    dedup_owner_ = dedup_->new_owner();
    socket_ = &shared_socket;
    local_ = local;
  }
  // A client session on a socket of its own (already bound and non-blocking).
  udp_session_impl(context_type& ctx, socket_type own_socket, const endpoint_type& peer,
                   const session_config& config)
      : udp_session_impl(ctx, role::client, peer, config) {
    dedup_ = std::allocate_shared<dedup_store>(ctx.get_allocator(), config.dedup_capacity, config.dedup_capacity,
                                               ctx.get_allocator());
    dedup_owner_ = dedup_->new_owner();
    socket_ = &client_.ensure(std::move(own_socket)).socket;
    boost::system::error_code ignored;
    local_ = socket_->local_endpoint(ignored);
  }
  ~udp_session_impl() override = default;

  // libcoap's coap_session_set_mtu / coap_session_max_pdu_size: over UDP the largest PDU is
  // the MTU (the IP and UDP headers are excluded from it already), less the DTLS record's
  // header, nonce and tag when secure. The MTU is the session's own configuration's: bad_alloc
  // when the allocator refuses a server session its copy.
  void set_mtu(std::size_t mtu) { this->own_config().mtu = std::max<std::size_t>(mtu, 64); }
  std::size_t max_pdu_size() const noexcept {
    if constexpr (Security::secure) return config_->mtu - tls_.record_overhead();
    else return config_->mtu;
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
  const auto& security_channel() const noexcept { return tls_; }
  // OSCORE (message_security): the client's security context, before the first request.
  void start_message_security(const typename Security::state_ptr& state)
    requires message_security<Security>
  {
    tls_.start_client(state);
  }

  // True when nothing references or waits on the session: it may be pooled and freed.
  // A session with observers is not idle: its observers end by RST, a CON notification
  // that times out, deregistration or close (RFC 7641 sections 3.6 and 4.5).
  bool idle() const noexcept {
    return handles_ == 0 && exchanges_.empty() && queue_.empty() && deferred_.empty() && server_.observers.empty();
  }

  // ---- client operations ----
  // The queue entry or exchange comes from the session's allocator; when it refuses, the
  // request fails with error::no_memory and nothing else changes.
  void start_request(owned_message request, response_handler handler) {
    if (closed_) return this->fail_soon(std::move(handler), error::session_closed);
    if (request.code().is_signal() || request.code().is_reserved_class())
      return this->fail_soon(std::move(handler), error::invalid_message);
    if (request.type() != message_type::non_confirmable) request.set_type(message_type::confirmable);
    if (request.token().empty() && config_->token_length)
      request.set_token(coap::token::from_uint(ctx_.random(), config_->token_length));
    if (exchanges_.active_requests() >= std::max(config_->nstart, 1u) || !secured())
      return enqueue(std::move(request), std::move(handler));
    send_request(std::move(request), std::move(handler));
  }

  // A cancelled request or ping (the handler's cancellation slot, detail/block_client.hpp,
  // detail/ping_operation.hpp): its exchange or queue entry goes without completing its
  // handler (the operation already completed with operation_aborted); retransmissions stop,
  // the NSTART slot frees, and a late answer matches nothing (a CON one gets RST).
  void abandon(const coap::token& t) {
    if (exchanges_.abandon(t)) return start_queued();
    queue_.remove(t);
  }

  // Section 4.3: CoAP ping, an empty CON that the peer answers with RST. An empty message has
  // no token (section 4.1): the returned key, for abandon(), is the session's own.
  coap::token start_ping(response_handler handler) {
    const auto key = coap::token::from_uint(ctx_.random(), coap::token::max_size);
    if (closed_) return this->fail_soon(std::move(handler), error::session_closed), key;
    owned_message ping{Allocator(ctx_.get_allocator())};
    ping.set_type(message_type::confirmable);
    ping.set_token(key);  // taken off before it is encoded (send_request)
    // Queued until the handshake (start_queued tells it by its empty code).
    if (!secured()) return enqueue(std::move(ping), std::move(handler)), key;
    send_request(std::move(ping), std::move(handler), exchange_kind::ping);
    return key;
  }

  // Ends the session: every waiting request fails with `why`.
  void close(std::error_code why) {
    if (closed_) return;
    closed_ = true;
    this->cancel_timer();
    exchanges_.fail_all([&](response_handler h) { this->complete(std::move(h), why, nullptr); });
    queue_.fail_all([&](response_handler h) { this->complete(std::move(h), why, nullptr); });
    deferred_.clear();
    forget_observers();
    this->end_observations(why);
    this->signal_ready(why);
    if constexpr (Security::secure) tls_.close();
    if (auto* c = client_.get()) {
      boost::system::error_code ignored;
      c->socket.close(ignored);
    }
    this->emit_closed(why);
  }

  // Client sessions read their own socket.
  void start_receiving() {
    if (!client_.get() || closed_) return;
    auto& c = *client_.get();
    if (c.receive_buffer.empty()) c.receive_buffer.resize(receive_buffer_size);
    auto self = this->shared_from_this();
    c.socket.async_receive_from(
        boost::asio::buffer(c.receive_buffer), c.sender,
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

  // RFC 7252 section 8 (detail/multicast_answers.hpp): a NON request that arrived at a group
  // the endpoint joined; served as any, answered through `answers` (suppressed, or NON after
  // the leisure), never directly.
  void on_group_datagram(std::span<const std::uint8_t> d, detail::delayed_group_answers<Socket, Allocator>& answers) {
    group_answers_ = &answers;
    on_datagram(d);
    group_answers_ = nullptr;
  }

  // ---- the DTLS channel's callbacks (detail/tls_channel.hpp) ----
  void tls_wire(std::span<const std::uint8_t> d) { send_datagram(d); }
  void tls_plaintext(std::span<const std::uint8_t> d) {
    if (!closed_) on_plain_datagram(d);
  }
  void tls_established() {
    if (closed_) return;
    if (this->is_client()) coap::detail::context_access::emit(ctx_, session_event::connected, *this);
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
  // RFC 9175 section 2.4: without DTLS a datagram's source address may be forged.
  static constexpr bool address_spoofable = !Security::secure;
  // Answers to group requests (RFC 7252 section 8) follow the group rules (leisure, suppressed
  // errors): the amplification limit, whose 4.01 would be suppressed, is not applied to them.
  bool answering_group_request() const noexcept { return group_answers_ != nullptr; }

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
        if (c.is_empty() || c.is_reserved_class() || c.is_signal()) {
          // Section 4.3: an empty CON is a ping, answered by RST; section 4.2/4.3: so is a CON
          // with a code we cannot take (rejected). A NON of either kind is ignored.
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

  using exchange_table = detail::udp_exchanges<Allocator, response_signature>;
  using exchange = typename exchange_table::exchange;
  using exchange_kind = typename exchange_table::kind;
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
      if (d.ack_due) {
        // The request's ACK has not gone yet: the answer goes in it (section 5.2.1), and is
        // what a duplicate of the request gets.
        out.set_type(message_type::acknowledgement);
        out.set_message_id(d.request_message_id);
        auto* entry = dedup_->find(dedup_owner_, d.request_message_id, clock::now());  // forgotten: scratch
        std::vector<std::uint8_t, rebind<std::uint8_t>> scratch(rebind<std::uint8_t>(ctx_.get_allocator()));
        auto& wire = entry ? entry->answer : scratch;
        if (encode_message(out, wire)) wire.clear();
        deferred_.erase(id);
        if (!wire.empty()) send_bytes(wire);
        return true;
      }
      out.set_type(d.confirmable ? message_type::confirmable : message_type::non_confirmable);
      out.set_message_id(static_cast<std::uint16_t>(message_id_ + 1));
      exchange x(ctx_.get_allocator());
      if (encode_message(out, x.wire)) {
        deferred_.erase(id);  // the handler's message cannot be sent
        return true;
      }
      if (d.confirmable) {
        exchanges_.reserve_one();
        make_timer();
      }
      // Nothing allocates from here on.
      next_message_id();
      deferred_.erase(id);
      if (d.confirmable) {
        x.what = exchange_kind::separate_response;
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
      : common(ctx, r, peer, config), server(Allocator(ctx.get_allocator())), client_(ctx.get_allocator()),
        exchanges_(ctx.get_allocator()), queue_(ctx.get_allocator()),
        message_id_(static_cast<std::uint16_t>(ctx.random())) {}

  std::uint16_t next_message_id() noexcept { return ++message_id_; }

  // Queues a request (NSTART, or the handshake); error::no_memory when the entry is refused.
  void enqueue(owned_message request, response_handler handler) {
    if (queue_.size() >= config_->max_queued_requests) return this->fail_soon(std::move(handler), error::queue_full);
    if (auto refused = queue_.push(std::move(request), std::move(handler)))
      this->fail_soon(std::move(refused), error::no_memory);
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
    const coap::token key = request.token_value();
    if (kind == exchange_kind::ping) request.set_token(coap::token());  // a ping's key is not sent
    request.set_message_id(next_message_id());
    exchange x(ctx_.get_allocator());
    try {
      // Every allocation of the exchange happens here, before the handler moves into it.
      if (auto ec = encode_message(request, x.wire)) return this->fail_soon(std::move(handler), ec);
      exchanges_.reserve_one();
      make_timer();
    } catch (const std::bad_alloc&) {
      return this->fail_soon(std::move(handler), error::no_memory);
    }
    if (x.wire.size() > max_pdu_size()) return this->fail_soon(std::move(handler), error::message_too_large);
    if (kind == exchange_kind::request && request.type() == message_type::non_confirmable &&
        detail::expects_no_response(request)) {
      // RFC 7967: a NON asking for no answer of any class is done once sent (an empty
      // message completes it); a late answer matches nothing.
      send_bytes(x.wire);
      return this->complete(std::move(handler), {}, nullptr);
    }
    x.what = kind;
    x.message_id = request.message_id();
    x.token = key;
    x.confirmable = request.type() == message_type::confirmable;
    x.handler = std::move(handler);
    begin_exchange(std::move(x));
  }

  // Section 4.2: the first transmission, and the timer for the retransmissions. The caller
  // reserved room in exchanges_ and made the timer: nothing here allocates from the session's
  // allocator.
  void begin_exchange(exchange x) {
    exchange_table::schedule_first(x, clock::now(), *config_, [this] { return ctx_.random(); });
    send_bytes(x.wire);
    exchanges_.add(std::move(x));
    arm_timer();
  }

  // ---- the timer (detail::session_common's): section 4.2's retransmissions and time-outs ----
  std::optional<clock::time_point> next_deadline() const noexcept {
    auto next = exchanges_.next_deadline();
    if (auto ack = deferred_.next_ack_due(); ack && (!next || *ack < *next)) next = ack;
    return next;
  }
  void on_timer() {
    if (closed_) return;
    deferred_.send_due_acks(clock::now(), [this](std::uint16_t mid) { send_delayed_ack(mid); });
    exchanges_.on_deadline(
        clock::now(), config_->max_retransmit, [this](std::span<const std::uint8_t> wire) { send_bytes(wire); },
        [this](std::size_t i) { finish(i, error::timeout, nullptr); });
  }

  // Section 5.2.2: the empty ACK of a deferred request whose answer did not come in time
  // (session_config::deferred_ack_delay); kept for duplicates when there is memory.
  void send_delayed_ack(std::uint16_t message_id) {
    std::array<std::uint8_t, udp_codec::header_size> ack;
    udp_codec::encode_empty(message_type::acknowledgement, message_id, ack);
    send_bytes(ack);
    if (auto* entry = dedup_->find(dedup_owner_, message_id, clock::now())) try {
        entry->answer.assign(ack.begin(), ack.end());
      } catch (const std::bad_alloc&) {
      }
  }

  // Completes exchanges_[i] and starts a queued request if a slot opened.
  void finish(std::size_t i, std::error_code ec, const message_view* response) {
    exchange x = exchanges_.take(i);
    if (x.handler) this->complete(x.handler.take(), ec, response);
    // RFC 7641 section 4.5: an observer that does not acknowledge a CON notification (or
    // rejects it) is gone.
    if (x.what == exchange_kind::notification && ec) remove_observer(x.token);
    start_queued();
    this->release_timer_if_idle();
  }

  // Queued requests (and pings: empty code) go out while NSTART allows.
  void start_queued() {
    while (!queue_.empty() && exchanges_.active_requests() < std::max(config_->nstart, 1u) && !closed_ && secured()) {
      auto q = queue_.pop();
      const auto kind = q.request.code().is_empty() ? exchange_kind::ping : exchange_kind::request;
      send_request(std::move(q.request), q.handler.take(), kind);
    }
  }

  // ---- receiving ----
  void on_client_receive(const boost::system::error_code& ec, std::size_t n) {
    if (closed_ || ec == boost::asio::error::operation_aborted) return;
    // Other errors (an ICMP port-unreachable shows up as connection_refused on a connected
    // socket) do not end the session: the server may come up while we retransmit.
    if (auto& c = *client_.get(); !ec && c.sender == peer_) on_datagram({c.receive_buffer.data(), n});
    start_receiving();
  }

  void reject_malformed(std::span<const std::uint8_t> d, std::error_code ec) {
    // Section 3: an unknown version is silently ignored. Section 4.2/4.3: a CON with a format
    // error is rejected with RST; anything else malformed is dropped.
    udp_codec::header h;
    if (ec == error::unsupported_version || udp_codec::parse_header(d, h)) return;
    if (h.type == message_type::confirmable) send_empty(message_type::reset, h.message_id);
  }

  void on_ack(const message_view& m) {
    auto i = exchanges_.find_by_message_id(m.message_id());
    if (!i || !exchanges_[*i].confirmable || exchanges_[*i].acknowledged) return;
    exchange& x = exchanges_[*i];
    if (m.code().is_empty()) {
      if (x.what == exchange_kind::request) {
        // RFC 7967: a CON that asked for no answer of any class is done once acknowledged.
        if (message_view sent; !udp_codec::parse(x.wire, sent) && detail::expects_no_response(sent))
          return finish(*i, {}, nullptr);
        // Section 5.2.2: the response will come as its own message.
        x.acknowledged = true;
        x.deadline = clock::now() + config_->response_timeout;
        return;
      }
      return finish(*i, {}, nullptr);  // a separate response was acknowledged
    }
    // Section 5.3.2: a piggybacked response must carry the request's token.
    if (x.what != exchange_kind::request || !std::ranges::equal(x.token.bytes(), m.token())) return;
    if constexpr (message_security<Security>) {
      // RFC 8613 section 8.4: a response that does not verify fails its request.
      message_view verified;
      if (auto ec = tls_.incoming_response(m, verified)) {
        if (tls_.asks_next_block(ec)) return ask_next_outer_block(*i);
        return finish(*i, ec, nullptr);
      }
      return finish(*i, {}, &verified);
    }
    finish(*i, {}, &m);
  }

  void on_reset(const message_view& m) {
    auto i = exchanges_.find_by_message_id(m.message_id());
    if (!i) {
      // RFC 7641 section 3.6: an RST to a NON notification ends the observation.
      if (auto o = server_.observers.find_by_message_id(m.message_id())) {
        coap::detail::context_access::observer_left(ctx_, server_.observers.remove(*o));
        this->release_timer_if_idle();
      }
      return;
    }
    // A ping is answered by RST: that is its success.
    finish(*i, exchanges_[*i].what == exchange_kind::ping ? std::error_code() : make_error_code(error::reset_by_peer),
           nullptr);
  }

  // Section 5.2.2: a separate response (CON or NON) matched by token.
  void on_separate_response(const message_view& received) {
    const auto now = clock::now();
    const bool con = received.type() == message_type::confirmable;
    if (dedup_->find(dedup_owner_, received.message_id(), now)) {
      if (con) send_empty(message_type::acknowledgement, received.message_id());
      return;
    }
    message_view m = received;
    // RFC 8613 section 8.4: a response (or notification) that does not verify is dropped,
    // unacknowledged, as if it had not arrived; one block of it (section 4.1.3.4.2) is
    // acknowledged and the next asked for.
    if constexpr (message_security<Security>) {
      if (const auto ec = tls_.incoming_response(received, m)) {
        auto i = exchanges_.find_request_by_token(received.token());
        if (!tls_.asks_next_block(ec) || !i) return;
        dedup_->insert(dedup_owner_, received.message_id(), now + exchange_table::dedup_lifetime(*config_, con),
                       dedup_store::kind::droppable, now)
            ->status = dedup_state::answered;
        if (con) send_empty(message_type::acknowledgement, received.message_id());
        return ask_next_outer_block(*i);
      }
    }
    // RFC 7641 section 3.2/3.6: a notification of an observation of ours is acknowledged;
    // section 5.3.2 of RFC 7252: a response to nothing of ours is rejected (RST for a CON),
    // which also ends the peer's record of an observation we no longer want.
    auto i = exchanges_.find_request_by_token(m.token());
    if (!i && !this->deliver_notification(m)) return send_empty(message_type::reset, m.message_id());
    dedup_->insert(dedup_owner_, m.message_id(), now + exchange_table::dedup_lifetime(*config_, con),
                   dedup_store::kind::droppable, now)
        ->status = dedup_state::answered;
    if (con) send_empty(message_type::acknowledgement, m.message_id());
    if (i) finish(*i, {}, &m);
  }

  using dedup_state = detail::dedup_state;

  // Section 4.5 then 5.7: deduplicate, then dispatch to the resources.
  void on_request(const message_view& m) {
    const auto now = last_activity_;  // set as the datagram came (on_datagram)
    const bool con = m.type() == message_type::confirmable;
    if (auto* seen = dedup_->find(dedup_owner_, m.message_id(), now)) {
      // A duplicate: the same answer again (a CON), or nothing (a NON, or still in progress).
      if (con && seen->status == dedup_state::answered && !seen->answer.empty())
        send_bytes(seen->answer);
      return;
    }
    if constexpr (message_security<Security>) {
      // RFC 8613 section 8.2, after deduplication (a retransmission is not a replay).
      message_view verified;
      if (auto ec = tls_.incoming_request(m, verified)) return refuse_unverified(m, ec, now, con);
      return serve_request(verified, now, con);
    }
    serve_request(m, now, con);
  }

  // Section 5.9.3.4: no memory for this request now. A CON gets 5.03 with Max-Age, built
  // on the stack; the request is remembered as answered (without a copy to repeat), so
  // that its retransmissions are not dispatched half-way again.
  void serve_request(const message_view& m, clock::time_point now, bool con) {
    this->guard(m, [&] { dispatch(m, now, con); }, [&](detail::stack_message& busy) {
      forget(m.message_id(), now);
      if (!con) return;
      busy.set_type(message_type::acknowledgement);
      busy.set_message_id(m.message_id());
      std::uint8_t wire[detail::max_stateless_response];
      if (std::size_t n = 0; !udp_codec::encode(busy, wire, n)) send_bytes({wire, n});
    });
  }

  // RFC 8613 section 8.2: a request that failed verification gets an unprotected error (an
  // ACK for a CON, a NON for a NON), remembered for its retransmissions like any answer;
  // Appendix B.1.2's 4.01 with Echo goes protected.
  void refuse_unverified(const message_view& m, std::error_code ec, clock::time_point now, bool con)
    requires message_security<Security>
  {
    try {
      // Not processed: a retransmission may be refused again (droppable).
      auto& entry = *dedup_->insert(dedup_owner_, m.message_id(), now + exchange_table::dedup_lifetime(*config_, con),
                                    dedup_store::kind::droppable, now);
      entry.status = dedup_state::answered;
      owned_message reply{Allocator(ctx_.get_allocator())};
      const bool protect = tls_.reply_for(ec, reply);
      reply.set_type(con ? message_type::acknowledgement : message_type::non_confirmable);
      reply.set_message_id(con ? m.message_id() : next_message_id());
      (void)reply.set_token(m.token());
      if (protect ? encode_message(reply, entry.answer) : udp_codec::encode(reply, entry.answer)) return;
      send_bytes(entry.answer);
    } catch (const std::bad_alloc&) {
      // Unanswered, as the network could lose it; a retransmission tries again.
    }
  }

  // RFC 8613 section 4.1.3.4.2 with RFC 7959 section 2.4: the response to exchanges_[i] came
  // in Outer Block2 blocks, cut by an intermediary; the next one is asked for with the same
  // protected request (the intermediary knows it by its options) under a new Message ID,
  // with the Echo the intermediary may have asked for (RFC 9175 section 2.4), and the
  // exchange goes on.
  void ask_next_outer_block(std::size_t i)
    requires message_security<Security>
  {
    exchange& x = exchanges_[i];
    try {
      owned_message again{Allocator(ctx_.get_allocator())};
      message_view sent;
      if (udp_codec::parse(x.wire, sent)) return finish(i, error::invalid_message, nullptr);
      again.assign(sent);
      tls_.ask_next_block_in(again);
      again.set_message_id(next_message_id());
      if (udp_codec::encode(again, x.wire)) return finish(i, error::invalid_message, nullptr);
      x.message_id = again.message_id();
      make_timer();
    } catch (const std::bad_alloc&) {
      return finish(i, error::no_memory, nullptr);
    }
    x.acknowledged = false;
    x.retransmissions = 0;
    exchange_table::schedule_first(x, clock::now(), *config_, [this] { return ctx_.random(); });
    send_bytes(x.wire);
    arm_timer();
  }

  // Every request or response goes through here on its way to the wire: OSCORE protects it
  // first (message_security), the others encode it as it is. Retransmissions resend the
  // bytes (a retransmitted request is the same OSCORE message, RFC 8613 section 7.5).
  template <class Message, class Out>
  std::error_code encode_message(const Message& m, Out& out) {
    if constexpr (message_security<Security>)
      return tls_.outgoing(m, [&](const auto& wire_message) { return udp_codec::encode(wire_message, out); });
    else return udp_codec::encode(m, out);
  }

  void dispatch(const message_view& m, clock::time_point now, bool con) {
    // Section 4.5: a request that may not be processed twice is remembered until its lifetime
    // ends; with no room left for one, it is refused unprocessed (detail/dedup_cache.hpp).
    const auto kind = detail::idempotent_method(m.code().raw()) ? dedup_store::kind::droppable
                                                                  : dedup_store::kind::kept;
    auto answer = detail::context_access::answer_messages(ctx_).take();
    auto& response = *answer;
    auto* inserted =
        dedup_->insert(dedup_owner_, m.message_id(), now + exchange_table::dedup_lifetime(*config_, con), kind, now);
    if (!inserted) return refuse_unremembered(m, now, con);
    const auto inserts = dedup_->inserts();
    const auto served = this->serve(m, con, response);
    if (served.outcome == detail::dispatch_outcome::drop) {
      forget(m.message_id(), now);
      return;
    }

    if (served.deferred) {
      auto& entry = remembered(inserted, inserts, m.message_id(), now, con);
      entry.status = dedup_state::answered;
      if (con && config_->deferred_ack_delay.count() > 0) {
        // Section 5.2.2: the ACK waits a little; an answer ready by then goes in it.
        if (auto* d = deferred_.find(deferred_.mark())) {
          make_timer();
          d->ack_due = now + config_->deferred_ack_delay;
          arm_timer();
          return;
        }
      }
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

    if (group_answers_) {
      remembered(inserted, inserts, m.message_id(), now, con).status = dedup_state::answered;  // a duplicate gets nothing
      return group_answers_->answer(m, response, next_message_id(), peer_, max_pdu_size());
    }
    if (served.suppressed) {
      // RFC 7967 section 2: no answer; a CON is still acknowledged (an empty ACK, kept for
      // duplicates as the answer would be).
      auto& entry = remembered(inserted, inserts, m.message_id(), now, con);
      entry.status = dedup_state::answered;
      if (!con) return;
      std::array<std::uint8_t, udp_codec::header_size> ack;
      udp_codec::encode_empty(message_type::acknowledgement, m.message_id(), ack);
      entry.answer.assign(ack.begin(), ack.end());
      return send_bytes(ack);
    }
    // Section 5.2.1 (piggybacked in the ACK) or 5.2.3 (a NON request gets a NON response).
    response.set_type(con ? message_type::acknowledgement : message_type::non_confirmable);
    response.set_message_id(con ? m.message_id() : next_message_id());
    response.set_token(m.token());
    auto& entry = remembered(inserted, inserts, m.message_id(), now, con);
    entry.status = dedup_state::answered;
    if (auto ec = encode_message(response, entry.answer); ec || entry.answer.size() > max_pdu_size()) {
      this->replace_with_internal_error(m, ec ? "response not encodable" : "response too large", response);
      response.set_type(con ? message_type::acknowledgement : message_type::non_confirmable);
      response.set_message_id(con ? m.message_id() : message_id_);
      if (encode_message(response, entry.answer)) return forget(m.message_id(), now);
    }
    send_bytes(entry.answer);
  }

  // The entry dispatch() made: `e` itself while no insert came between (the handler may have
  // served another session of the endpoint), else found again, or a droppable one again.
  typename dedup_store::entry& remembered(typename dedup_store::entry* e, std::uint64_t inserts, std::uint16_t mid,
                                          clock::time_point now, bool con) {
    if (dedup_->inserts() == inserts) return *e;
    if (auto* found = dedup_->find(dedup_owner_, mid, now)) return *found;
    return *dedup_->insert(dedup_owner_, mid, now + exchange_table::dedup_lifetime(*config_, con),
                           dedup_store::kind::droppable, now);
  }

  // Section 5.9.3.4: the store has no room for one more request that may not be processed
  // twice. A CON gets 5.03 with Max-Age (when the oldest such entry expires), statelessly;
  // a NON is dropped. The request was not processed, so its retransmission may be.
  void refuse_unremembered(const message_view& m, clock::time_point now, bool con) {
    if (!con) return;
    std::uint8_t wire[detail::max_stateless_response];
    if (const auto n = detail::encode_service_unavailable(wire, m, "busy", dedup_->retry_after(now)))
      send_bytes({wire, n});
  }

  void forget(std::uint16_t mid, clock::time_point now) noexcept {
    // A dropped request leaves its ID remembered without an answer: duplicates are dropped too.
    if (auto* e = dedup_->find(dedup_owner_, mid, now)) {
      e->status = dedup_state::answered;
      e->answer.clear();
    }
  }

  // ---- notifications (RFC 7641 section 4.5) ----

  // Sends the notification built for `o` as CON or NON; true when it went out.
  bool send_notification(observer& o, bool con) {
    auto& buffers = server_.notifications.ensure();
    auto& n = buffers.message;
    n.set_token(o.token);
    n.set_type(con ? message_type::confirmable : message_type::non_confirmable);
    const auto mid = next_message_id();
    n.set_message_id(mid);
    o.last_message_id = mid;
    o.sent_any = true;
    exchange* in_flight = exchanges_.find_notification(o.token);
    // Section 4.5.2: a CON still in flight to this observer carries the newer state (a NON
    // beside it would leave the old state being retransmitted).
    if (in_flight) {
      con = true;
    } else if (con && exchanges_.other_notification_in_flight(o.token)) {
      // Section 4.5.1 (congestion control): one CON notification outstanding per peer
      // (NSTART 1), as libcoap does; this one goes NON and the observer's next one tries CON.
      con = false;
      o.since_confirmable = ctx_.config().observe_con_every ? ctx_.config().observe_con_every - 1 : 0;
    }
    n.set_type(con ? message_type::confirmable : message_type::non_confirmable);
    if (!con) {
      if (encode_message(n, buffers.wire) || buffers.wire.size() > max_pdu_size()) return false;
      send_bytes(buffers.wire);
      return true;
    }
    // Section 4.5.2: a CON notification still in flight carries the newer state from now on,
    // under the new message ID, keeping its retransmission count and timeout.
    if (in_flight) {
      if (encode_message(n, in_flight->wire)) return false;
      in_flight->message_id = mid;
      send_bytes(in_flight->wire);
      return true;
    }
    exchange x(ctx_.get_allocator());
    if (encode_message(n, x.wire) || x.wire.size() > max_pdu_size()) return false;
    exchanges_.reserve_one();
    make_timer();
    x.what = exchange_kind::notification;
    x.message_id = mid;
    x.token = o.token;
    x.confirmable = true;
    begin_exchange(std::move(x));
    return true;
  }

  // What only a client session has (a server session, the most numerous, pays a pointer for
  // it: issue 16's idle-session size): its own socket, the sender of what it reads there, its
  // receive buffer.
  struct client_part {
    socket_type socket;
    endpoint_type sender;
    bytes receive_buffer;
    client_part(socket_type s, const Allocator& a) : socket(std::move(s)), receive_buffer(rebind<std::uint8_t>(a)) {}
  };
  socket_type* socket_ = nullptr;
  detail::lazy<client_part, Allocator> client_;  // made by the client constructor
  std::shared_ptr<dedup_store> dedup_;  // the endpoint's, or a client session's own
  std::uint64_t dedup_owner_ = 0;
  exchange_table exchanges_;
  detail::request_queue<owned_message, response_signature> queue_;
  std::uint16_t message_id_;
  detail::delayed_group_answers<Socket, Allocator>* group_answers_ = nullptr;  // during on_group_datagram
  // The DTLS record layer (psk, pki), OSCORE's message layer (oscore), or an empty member
  // (no_sec). Last: it refers to the members above.
  [[no_unique_address]] typename Security::template channel<udp_session_impl> tls_{*this};
};

}  // namespace coap::transports
