// RFC 8323 sections 3 to 5 for one TCP connection: framing on a byte stream, the
// Capabilities and Settings Message exchange (section 5.3), Ping/Pong (5.4), Release (5.5) and
// Abort (5.6), requests matched by token (no types, IDs, retransmission or deduplication:
// the connection is reliable), and the server side shared with UDP (section 5.7 of RFC 7252).
// With a secure policy (psk, pki) the byte stream is TLS 1.2 (RFC 8323 section 9): the
// security's channel sits between the socket and the framing, and the CSM waits for the
// handshake.
#pragma once

#include <coap/context.hpp>
#include <coap/detail/frame_buffer.hpp>
#include <coap/detail/operation_slot.hpp>
#include <coap/detail/peer_capabilities.hpp>
#include <coap/detail/request_queue.hpp>
#include <coap/detail/no_response.hpp>
#include <coap/detail/server_dispatch.hpp>
#include <coap/detail/server_exchange.hpp>
#include <coap/detail/server_side.hpp>
#include <coap/detail/session_common.hpp>
#include <coap/detail/stream_scratch.hpp>
#include <coap/detail/stream_writer.hpp>
#include <coap/detail/token_exchanges.hpp>
#include <coap/message.hpp>
#include <coap/tcp_codec.hpp>

#include <boost/asio/bind_allocator.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <algorithm>
#include <chrono>
#include <memory>
#include <new>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace coap::transports {

template <class Security, class Allocator>
class tcp_session_impl final
    : public detail::session_common<tcp_session_impl<Security, Allocator>,
                                    boost::asio::ip::tcp::endpoint, Allocator>,
      public detail::server_side<tcp_session_impl<Security, Allocator>, Allocator>,
      public std::enable_shared_from_this<tcp_session_impl<Security, Allocator>> {
  using common = detail::session_common<tcp_session_impl, boost::asio::ip::tcp::endpoint, Allocator>;
  using server = detail::server_side<tcp_session_impl, Allocator>;
  friend common;
  friend server;
  template <class T>
  using rebind = typename common::template rebind<T>;
  using clock = std::chrono::steady_clock;
  using bytes = std::vector<std::uint8_t, rebind<std::uint8_t>>;
  using common::closed_;
  using common::config_;
  using common::ctx_;
  using common::handles_;
  using common::last_activity_;
  using common::local_;
  using common::peer_;
  using common::arm_timer;
  using common::make_timer;
  using server::deferred_;
  using server::forget_observers;
  using server::notification;
  using server::server_;

 public:
  using protocol_type = boost::asio::ip::tcp;
  using socket_type = protocol_type::socket;
  using typename common::context_type;
  using typename common::endpoint_type;
  using typename common::owned_message;
  using typename common::response_handler;
  using typename common::response_signature;
  using typename common::role;
  using common::description;
  // The protocol in the session's description (coap_session_str).
  static constexpr std::string_view protocol_name = Security::stream_protocol;

  // A server session on an accepted connection.
  tcp_session_impl(context_type& ctx, socket_type accepted, const endpoint_type& peer,
                   const session_config& config)
      : tcp_session_impl(ctx, role::server, peer, config, std::move(accepted)) {
    boost::system::error_code ec;
    local_ = socket_.local_endpoint(ec);
  }
  // A client session that will connect to `server`.
  tcp_session_impl(context_type& ctx, const endpoint_type& server, const session_config& config)
      : tcp_session_impl(ctx, role::client, server, config, socket_type(ctx.get_executor())) {
  }

  // Called by the endpoint or the transport once the object is owned by a shared_ptr. What
  // the connection needs is allocated first: when the allocator refuses, bad_alloc leaves
  // nothing sent and the endpoint refuses the peer (refuse()).
  void start_server(const typename Security::state_ptr& security) {
    reserve_buffers();
    socket_.set_option(protocol_type::no_delay(true));
    socket_.non_blocking(true);
    begin(security);
  }
  void start_client(const std::optional<endpoint_type>& local_if, const typename Security::state_ptr& security,
                    std::error_code& ec) {
    if constexpr (message_security<Security>) {
      tls_.start_client(security);  // OSCORE's context
      tls_.keep_protected_requests();  // for Outer Block2 (RFC 8613 section 4.1.3.4.2)
    }
    boost::system::error_code bec;
    socket_.open(peer_.protocol(), bec);
    if (!bec && local_if) socket_.bind(*local_if, bec);
    if ((ec = bec)) return;
    make_timer();
    setup_deadline_ = clock::now() + config_->connect_timeout;
    auto self = this->shared_from_this();
    socket_.async_connect(peer_, [self, security](const boost::system::error_code& e) { self->on_connect(e, security); });
    arm_timer();
  }

  // Section 5.6: a peer we cannot serve gets a CSM and an Abort saying why, written at once
  // from the stack, and the connection ends (a session that never started).
  void refuse(std::string_view diagnostic, std::error_code why) {
    if constexpr (!Security::secure) send_refusal(socket_, diagnostic);
    close(why);
  }
  static void send_refusal(socket_type& socket, std::string_view diagnostic) {
    detail::stream_writer<Allocator>::send_refusal(socket, diagnostic);
  }

  // libcoap's coap_session_max_pdu_size: over TCP, the peer's Max-Message-Size (section
  // 5.3.1), or a smaller limit set with set_mtu.
  void set_mtu(std::size_t mtu) noexcept { mtu_limit_ = std::max<std::size_t>(mtu, 64); }
  std::size_t max_pdu_size() const noexcept { return std::min(peer_csm_.max_message_size, mtu_limit_); }
  bool peer_csm_received() const noexcept { return peer_csm_.received; }
  bool peer_block_wise() const noexcept { return peer_csm_.block_wise; }

  // A session with observers is not idle: they end with the connection or by deregistering.
  bool idle() const noexcept {
    return handles_ == 0 && pending_.empty() && queue_.empty() && deferred_.empty() && server_.observers.empty();
  }
  bool handshaking() const noexcept {
    if constexpr (Security::secure) return !closed_ && tls_.handshaking();
    else return false;
  }
  const auto& security_channel() const noexcept { return tls_; }

  // ---- the TLS channel's callbacks (security/detail/tls_channel.hpp) ----
  void tls_wire(std::span<const std::uint8_t> d) {
    if constexpr (Security::secure) tls_io_.out.insert(tls_io_.out.end(), d.begin(), d.end());
  }
  // Decrypted bytes join the stream that read_some cuts into frames.
  void tls_plaintext(std::span<const std::uint8_t> d) {
    if (!closed_) in_.ensure().append(d);
  }
  void tls_established() { flush(); }  // what waited (our CSM) goes out now
  void tls_failed(std::error_code ec) { close(ec); }
  std::string tls_peer_identity() const { return {}; }

  // ---- client operations ----
  // The queue entry, pending entry and output bytes come from the session's allocator; when
  // it refuses, the request fails with error::no_memory and nothing else changes.
  void start_request(owned_message request, response_handler handler) {
    if (closed_) return this->fail_soon(std::move(handler), close_reason_);
    if (request.code().is_signal() || request.code().is_reserved_class() || request.code().is_empty())
      return this->fail_soon(std::move(handler), error::invalid_message);
    if (request.token().empty() && config_->token_length)
      request.set_token(coap::token::from_uint(ctx_.random(), config_->token_length));
    if (!peer_csm_.received) {
      // Section 5.3: nothing but the CSM goes out before the peer's CSM is in.
      if (queue_.size() >= config_->max_queued_requests) return this->fail_soon(std::move(handler), error::queue_full);
      return enqueue(std::move(request), std::move(handler));
    }
    send_request(request, std::move(handler), pending_kind::request);
  }

  // A cancelled request (the handler's cancellation slot, detail/block_client.hpp): its
  // pending or queue entry goes without completing its handler (the operation already
  // completed with operation_aborted); a late answer matches nothing and is ignored.
  void abandon(const coap::token& t) {
    if (!pending_.abandon(t)) queue_.remove(t);
  }

  // Section 5.4: Ping, answered by Pong; its token is the key for abandon().
  coap::token start_ping(response_handler handler) {
    const auto key = coap::token::from_uint(ctx_.random(), config_->token_length ? config_->token_length : 1);
    if (closed_) return this->fail_soon(std::move(handler), close_reason_), key;
    owned_message ping{coap::code(signal_code::ping), message_type::confirmable, Allocator(ctx_.get_allocator())};
    ping.set_token(key);
    if (!peer_csm_.received) return enqueue(std::move(ping), std::move(handler)), key;
    send_request(ping, std::move(handler), pending_kind::ping);
    return key;
  }

  // Ends the session: waiting requests fail with `why`; the connection is closed once what
  // is queued for it (an Abort, say) has been written. A session that we close in good order
  // (released, evicted, stopped) tells the peer with Release (section 5.5).
  void close(std::error_code why) {
    if (closed_) return;
    if (why == error::session_closed && connected_ && !peer_closing_) {
      owned_message release{coap::code(signal_code::release), message_type::confirmable,
                            Allocator(ctx_.get_allocator())};
      try {
        send_message(release);
      } catch (const std::bad_alloc&) {
        // No room for the Release: the connection just closes.
      }
    }
    closed_ = true;
    close_reason_ = why;
    this->cancel_timer();
    pending_.fail_all([&](response_handler h) { this->complete(std::move(h), why, nullptr); });
    queue_.fail_all([&](response_handler h) { this->complete(std::move(h), why, nullptr); });
    deferred_.clear();
    forget_observers();
    this->end_observations(why);
    this->signal_ready(why);
    batching_ = false;
    flush();  // what is queued (an Abort, a Release) still goes out before the shutdown
    if constexpr (Security::secure) {
      tls_.close();  // close_notify after it
      flush();
    }
    if (!out_.writing()) shutdown_socket();
    this->emit_closed(why);
  }

 private:
  // ---- RFC 8323 section 7 (RFC 7641 section 4), detail::server_side's hooks ----
  // Over a reliable transport every notification is simply sent (no CON/NON); an observer
  // ends with the connection, Observe=1, or an error notification.
  using observer = typename server::observer;
  bool notify(observer&, bool) { return !send_message(notification()); }
  void notify_gone(observer&) { (void)send_message(notification()); }

  // TLS: raw bytes per read (a full record is 16 KiB plus overhead; Botan keeps partial ones).
  static constexpr std::size_t tls_read_size = 4096;

  // A TLS connection's buffers are its own and made now; a plain connection reads into and
  // frames into its context's (stream_scratch.hpp), whose output keeps room for a CSM or a
  // 5.03, and holds bytes of its own only while they wait.
  void reserve_buffers() {
    if constexpr (Security::secure) {
      tls_io_.in.resize(tls_read_size);
      in_.ensure().reserve();
      out_.reserve();
    } else {
      scratch().reserve_output(detail::stream_writer<Allocator>::initial_size);
    }
    make_timer();  // for the CSM's deadline
  }
  auto& scratch() noexcept { return detail::context_access::stream_scratch(ctx_); }

  // Where the next frame goes: after bytes of ours that wait; else into the context's shared
  // buffer when it is free (plain connections); else into our own. `take` claims the shared
  // one, which flush() gives back.
  bytes& output_buffer(bool take) {
    if constexpr (!Security::secure) {
      if (connected_ && !out_.waiting()) {
        auto& shared = scratch();
        if (auto* b = take ? shared.output_for(this) : shared.output_free_for(this)) return *b;
      }
    }
    return out_.frames();
  }

  // The response is built and its output room reserved before the exchange is taken off
  // deferred_: when the allocator refuses, send() returns false and may be tried again.
  template <class Fill>
  bool send_deferred_as(std::uint64_t id, Fill fill) {
    const auto* d = deferred_.find(id);
    if (!d || closed_) return false;
    try {
      owned_message out{coap::code(), message_type::confirmable, Allocator(ctx_.get_allocator())};
      fill(out);
      out.set_token(d->request_token);
      out_.reserve_for(output_buffer(false), out, max_output());
      deferred_.erase(id);
      send_message(out);
      return true;
    } catch (const std::bad_alloc&) {
      return false;
    }
  }

  // Queues a request until the peer's CSM is in; no effect but error::no_memory when the
  // allocator refuses the queue entry.
  void enqueue(owned_message request, response_handler handler) {
    if (auto refused = queue_.push(std::move(request), std::move(handler)))
      this->fail_soon(std::move(refused), error::no_memory);
  }

  using pending_table = detail::token_exchanges<Allocator, response_signature>;
  using pending_kind = typename pending_table::kind;
  // Output beyond this is a peer that does not read: the session fails rather than grow.
  std::size_t max_output() const noexcept { return 16 * config_->max_message_size + 65536; }
  // Our largest frame: header (at most 6 bytes), token and Max-Message-Size.
  std::size_t max_frame() const noexcept { return 6 + 8 + config_->max_message_size; }

  tcp_session_impl(context_type& ctx, role r, const endpoint_type& peer, const session_config& config,
                   socket_type socket)
      : common(ctx, r, peer, config), server(Allocator(ctx.get_allocator())), socket_(std::move(socket)),
        pending_(ctx.get_allocator()), queue_(ctx.get_allocator()), in_(ctx.get_allocator()),
        out_(ctx.get_allocator()) {}

  // ---- connection set-up ----
  void on_connect(const boost::system::error_code& ec, const typename Security::state_ptr& security) {
    try {
      connected(ec, security);
    } catch (const std::bad_alloc&) {
      close(error::no_memory);
    }
  }
  void connected(const boost::system::error_code& ec, const typename Security::state_ptr& security) {
    if (closed_) return;
    setup_deadline_ = never;
    if (ec) return close(ec);
    reserve_buffers();
    boost::system::error_code ignored;
    local_ = socket_.local_endpoint(ignored);
    socket_.set_option(protocol_type::no_delay(true), ignored);
    socket_.non_blocking(true, ignored);
    begin(security);
  }
  // The connection is up: the TLS handshake starts (a client's ClientHello), our CSM is sent
  // (held until the handshake completes when secure), and reading begins.
  void begin(const typename Security::state_ptr& security) {
    connected_ = true;
    if constexpr (Security::secure) {
      if (this->is_client()) tls_.start_client(security, false);
      else tls_.start_server(security, false);
    } else {
      (void)security;
    }
    send_csm();
    read();
    arm_timer();
  }

  // Section 5.3: our CSM.
  void send_csm() {
    owned_message csm{coap::code(signal_code::csm), message_type::confirmable, Allocator(ctx_.get_allocator())};
    detail::peer_capabilities::describe_ours(csm, *config_);
    send_message(csm);
    setup_deadline_ = clock::now() + config_->csm_timeout;
  }

  // ---- writing ----
  void send_request(owned_message& request, response_handler handler, pending_kind kind) {
    std::size_t size = 0;
    if (auto ec = tcp_codec::encoded_size(request, size)) return this->fail_soon(std::move(handler), ec);
    // Section 5.3.1: never more than the peer accepts (the frame's header is not counted).
    if (size - 2 - request.token().size() > max_pdu_size())
      return this->fail_soon(std::move(handler), error::message_too_large);
    try {
      // Every allocation for this exchange, before the handler moves into it.
      pending_.reserve_one();
      out_.reserve_for(output_buffer(false), request, max_output());
      make_timer();
    } catch (const std::bad_alloc&) {
      return this->fail_soon(std::move(handler), error::no_memory);
    }
    if (kind == pending_kind::request && detail::expects_no_response(request)) {
      // RFC 7967: a request asking for no answer of any class is done once sent (an empty
      // message completes it); a late answer matches nothing and is ignored.
      send_message(request);
      return this->complete(std::move(handler), {}, nullptr);
    }
    pending_.add(kind, request.token_value(), clock::now() + config_->response_timeout, std::move(handler));
    if (auto ec = send_message(request)) {
      if (auto i = pending_.find(request.token())) finish(*i, ec, nullptr);
      return;
    }
    arm_timer();
  }

  // Every message goes through here on its way to the wire; OSCORE (message_security)
  // protects requests and responses first (signals and empty messages stay as they are).
  // Fails only when protecting fails.
  template <class M>
  std::error_code send_message(const M& m) {
    if constexpr (message_security<Security>)
      return tls_.outgoing(m, [&](const auto& wire_message) {
        append_message(wire_message);
        return std::error_code();
      });
    append_message(m);
    return {};
  }
  // Each frame is flushed at once, or with the others of one read (batching_): a shared buffer
  // taken here is given back by that flush.
  template <class M>
  void append_message(const M& m) {
    const auto appended = out_.append(output_buffer(true), m, max_output());
    if (appended == detail::stream_writer<Allocator>::appended::over_limit) return close(error::queue_full);
    flush();
  }

  // The bytes for the socket: the frames themselves, or the TLS records they became.
  bytes& wire_out() noexcept {
    if constexpr (Security::secure) return tls_io_.out;
    else return out_.frames();
  }

  void flush() {
    if (batching_ || !connected_) return;
    if constexpr (!Security::secure) {
      auto& shared = scratch();
      if (shared.owns_output(this)) {
        // Our frames were framed in the context's buffer (nothing of ours waited): written
        // now, the rest into our own buffer for the asynchronous write, and the buffer free
        // again whatever happens (Asio's bad_alloc included).
        struct give_back {
          detail::stream_scratch<Allocator>& s;
          const void* owner;
          ~give_back() { s.give_back_output(owner); }
        };
        boost::system::error_code ec;
        {
          give_back done{shared, this};
          ec = out_.write(socket_, *shared.output_for(this), write_done());
        }
        if (ec) close(ec);
        return;
      }
    }
    if constexpr (Security::secure) {
      // Frames become TLS records once the handshake is done (one record per flush).
      if (tls_.established() && !out_.frames().empty()) {
        tls_.send(out_.frames());
        out_.frames().clear();
      }
    }
    const auto ec = out_.write(socket_, wire_out(), write_done());
    if (ec) close(ec);
  }
  // The asynchronous write's handler, made only when one starts.
  auto write_done() {
    return [this] {
      return [self = this->shared_from_this()](const boost::system::error_code& ec, std::size_t) {
        self->out_.written();
        if (ec) return self->close(ec);
        if (self->closed_) return self->shutdown_socket();
        self->flush();
      };
    };
  }

  void shutdown_socket() {
    boost::system::error_code ignored;
    socket_.shutdown(protocol_type::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

  // Section 5.6: Abort with a diagnostic payload, then the connection closes.
  void abort(std::string_view diagnostic, std::optional<std::uint32_t> bad_csm_option = std::nullopt) {
    if (closed_) return;
    try {
      owned_message a{coap::code(signal_code::abort), message_type::confirmable, Allocator(ctx_.get_allocator())};
      if (bad_csm_option) a.add_uint_option(signal_option::bad_csm_option, *bad_csm_option);
      a.set_payload(diagnostic);
      send_message(a);
    } catch (const std::bad_alloc&) {
      // No room for the Abort: the connection just closes.
    }
    close(error::invalid_message);
  }

  // ---- reading ----
  // TLS records are read into the connection's own buffer. A plain connection waits until its
  // socket is readable and then reads into its context's buffer (stream_scratch.hpp): an idle
  // connection holds no read buffer. (Asio re-arms the descriptor for each wait, so bytes that
  // came before it are seen: one read per wake-up, no read that finds nothing.)
  void read() {
    if (closed_) return;
    auto self = this->shared_from_this();
    if constexpr (Security::secure) {
      // TLS records arrive in tls_io_.in; their plaintext is appended to in_ (tls_plaintext).
      socket_.async_read_some(boost::asio::buffer(tls_io_.in),
                              [self](const boost::system::error_code& ec, std::size_t n) { self->on_read(ec, n); });
    } else {
      socket_.async_wait(socket_type::wait_read,
                         boost::asio::bind_allocator(wait_slot_.get_allocator(),
                                                     [self](const boost::system::error_code& ec) { self->on_read(ec, 0); }));
    }
  }

  // A refusal of the allocator while reading (a larger input buffer, a signal's answer, room
  // for output) ends the connection with error::no_memory; requests refused that way are
  // answered 5.03 when that needs no memory (on_request).
  void on_read(const boost::system::error_code& ec, std::size_t n) {
    try {
      read_some(ec, n);
    } catch (const std::bad_alloc&) {
      close(error::no_memory);
    }
  }

  // The answers to every frame of one read go out in one write.
  struct batch {
    tcp_session_impl& s;
    explicit batch(tcp_session_impl& session) : s(session) { s.batching_ = true; }
    batch(const batch&) = delete;
    batch& operator=(const batch&) = delete;
    ~batch() {
      s.batching_ = false;
      try {
        s.flush();
      } catch (const std::bad_alloc&) {
        // Asio could not allocate the write: the next message or timer flushes again.
      }
    }
  };

  void read_some(const boost::system::error_code& ec, std::size_t n) {
    if (closed_) return;
    if (ec) return peer_ended(ec);
    if constexpr (Security::secure) {
      last_activity_ = clock::now();
      batch one_write(*this);
      tls_.received({tls_io_.in.data(), n});
      if (closed_) return;
      auto& in = in_.ensure();
      if (!handled(in.cut(max_frame(), frame_handler()))) return;
      go_on_reading();
    } else {
      read_plain();
    }
  }

  // The socket is readable. A frame begun in an earlier read continues in our own buffer;
  // otherwise the read goes to the context's buffer, its whole frames are handled there, and
  // only the start of a frame that did not end is copied into our own.
  void read_plain() {
    auto& shared = scratch();
    auto* own = in_.get();
    std::span<std::uint8_t> room;
    if (!own || !own->partial()) room = shared.take_input();
    const bool in_shared = !room.empty();
    struct give_back {
      detail::stream_scratch<Allocator>* s;
      ~give_back() {
        if (s) s->give_back_input();
      }
    } input{in_shared ? &shared : nullptr};
    if (!in_shared) {
      own = &in_.ensure();
      room = own->read_space(max_frame());
      if (room.empty()) return abort("frame too large");
    }
    boost::system::error_code ec;
    const std::size_t got = socket_.read_some(boost::asio::buffer(room.data(), room.size()), ec);
    if (ec == boost::asio::error::would_block || ec == boost::asio::error::try_again) return read();
    if (ec) return peer_ended(ec);
    last_activity_ = clock::now();
    batch one_write(*this);
    if (in_shared) {
      const std::span<const std::uint8_t> data = room.first(got);
      std::size_t consumed = 0;
      auto on_frame = frame_handler();
      if (!handled(detail::frame_buffer<Allocator>::cut_frames(data, max_frame(), on_frame, consumed))) return;
      if (consumed < got) in_.ensure().append(data.subspan(consumed));
    } else {
      own->commit(got);
      if (!handled(own->cut(max_frame(), frame_handler()))) return;
    }
    go_on_reading();
  }

  // An orderly close by the peer ends the session normally.
  void peer_ended(const boost::system::error_code& ec) {
    peer_closing_ = true;
    close(ec == boost::asio::error::eof ? make_error_code(error::session_closed) : std::error_code(ec));
  }

  auto frame_handler() {
    return [this](const message_view& m) {
      on_message(m);
      return !closed_;
    };
  }
  // False when the connection ends: a frame that cannot be cut is aborted.
  bool handled(const typename detail::frame_buffer<Allocator>::result& cut) {
    using problem = typename detail::frame_buffer<Allocator>::problem;
    if (cut.what == problem::malformed_header) return abort("malformed frame"), false;
    // Section 5.3.1: a frame beyond our Max-Message-Size is refused before it is buffered.
    if (cut.what == problem::too_large) return abort("message larger than Max-Message-Size"), false;
    // The reason (a std::string, from the global heap) is formatted on this error path only.
    if (cut.what == problem::malformed_frame) return abort("malformed frame: " + cut.parse_error.message()), false;
    return !closed_;
  }
  void go_on_reading() {
    if (closed_) return;
    const auto* own = in_.get();
    partial_deadline_ = own && own->partial() ? last_activity_ + config_->partial_frame_timeout : never;
    arm_timer();
    read();
  }

  void on_message(const message_view& m) {
    const code c = m.code();
    if (!peer_csm_.received && c != code(signal_code::csm))
      return abort("the first message must be a CSM");  // section 5.3
    if (c.is_empty()) return;  // an empty message (0.00) is always allowed and ignored
    if (c.is_signal()) return on_signal(m);
    if (c.is_request()) return on_request(m);
    if (c.is_response()) return on_response(m);
    // Classes 1 and 6 are reserved: nothing sensible can be answered.
  }

  void on_signal(const message_view& m) {
    const code c = m.code();
    // Section 5.2: unknown critical options in a signal are a connection error.
    if (auto bad = detail::peer_capabilities::unknown_critical_option(m)) {
      if (c == code(signal_code::csm)) return abort("unsupported critical CSM option", *bad);
      return abort("unsupported critical signalling option");
    }
    switch (static_cast<signal_code>(c.raw())) {
      case signal_code::csm: {
        if (peer_csm_.update(m)) {
          setup_deadline_ = never;
          // The wait for this CSM ends now: a connection with nothing else to time gives its
          // timer back at once (session_common::arm_timer) rather than after csm_timeout.
          if (!next_deadline()) this->cancel_timer();
          if (this->is_client()) coap::detail::context_access::emit(ctx_, session_event::connected, *this);
          this->signal_ready({});
          while (!queue_.empty() && !closed_) {
            auto q = queue_.pop();
            send_request(q.request, q.handler.take(),
                         q.request.code() == code(signal_code::ping) ? pending_kind::ping : pending_kind::request);
          }
        }
        return;
      }
      case signal_code::ping: {
        owned_message pong{coap::code(signal_code::pong), message_type::confirmable, Allocator(ctx_.get_allocator())};
        pong.set_token(m.token());
        // Custody: answered at once, nothing queued.
        if (m.find(signal_option::custody)) pong.add_empty_option(signal_option::custody);
        (void)send_message(pong);
        return;
      }
      case signal_code::pong: {
        if (auto i = pending_.find(m.token())) finish(*i, {}, nullptr);
        return;
      }
      case signal_code::release:
        // Section 5.5: the peer will close; an Alternative-Address is not followed.
        peer_closing_ = true;
        return close(error::session_closed);
      case signal_code::abort:
        peer_closing_ = true;
        return close(error::aborted_by_peer);
    }
    abort("unknown signalling code");
  }

  void on_response(const message_view& received) {
    message_view m = received;
    auto i = pending_.find(received.token());
    if (i && pending_[*i].what != pending_kind::request) i.reset();
    if constexpr (message_security<Security>) {
      // RFC 8613 section 8.4: a response that does not verify fails its request; an
      // unverified notification is dropped.
      if (auto ec = tls_.incoming_response(received, m)) {
        // Section 4.1.3.4.2: an intermediary cut the protected answer into Outer Block2
        // blocks; the next is asked for with the same protected request.
        if (i && tls_.asks_next_block(ec))
          ec = tls_.send_next_block_request(received.token(), [this](const auto& again) { append_message(again); });
        if (i && ec) finish(*i, ec, nullptr);
        return;
      }
    }
    if (i) return finish(*i, {}, &m);
    // RFC 8323 section 7 (RFC 7641 section 3): a notification of an observation of ours.
    // Anything else answers nothing of ours and is ignored (TCP has no RST).
    (void)this->deliver_notification(m);
  }

  // RFC 7252 section 5.9.3.4 (RFC 8323 keeps it): without memory, 5.03 with Max-Age, built
  // on the stack; it still needs room in out_ (its capacity usually has it). Without, on_read
  // closes.
  void on_request(const message_view& received) {
    message_view m = received;
    if constexpr (message_security<Security>) {
      // RFC 8613 section 8.2: a request that fails verification gets an unprotected error.
      if (auto ec = tls_.incoming_request(received, m)) {
        owned_message reply{Allocator(ctx_.get_allocator())};
        const bool protect = tls_.reply_for(ec, reply);
        (void)reply.set_token(received.token());
        if (protect) (void)send_message(reply);
        else append_message(reply);
        return;
      }
    }
    this->guard(m, [&] { dispatch(m); }, [&](detail::stack_message& busy) { (void)send_message(busy); });
  }

  void dispatch(const message_view& m) {
    auto answer = detail::context_access::answer_messages(ctx_).take();
    auto& response = *answer;
    const auto served = this->serve(m, true, response);
    if (served.deferred || served.suppressed) return;  // suppressed: RFC 7967
    response.set_token(m.token());
    std::size_t size = 0;
    if (tcp_codec::encoded_size(response, size) || size - 2 - m.token().size() > max_pdu_size())
      this->replace_with_internal_error(m, "response too large or not encodable", response);
    (void)send_message(response);
  }

  void finish(std::size_t i, std::error_code ec, const message_view* response) {
    this->complete(pending_.take(i), ec, response);
  }

  // RFC 8323 section 6: BERT once both CSMs offered Block-Wise-Transfer (ours always does).
  detail::block_context blocks() const noexcept { return {max_pdu_size(), peer_csm_.block_wise}; }
  // RFC 9175 section 2.4: a TCP peer's address was verified by its handshake.
  static constexpr bool address_spoofable = false;

  // ---- one timer for every deadline of the connection ----
  std::optional<clock::time_point> next_deadline() const noexcept {
    std::optional<clock::time_point> next;
    auto consider = [&](std::optional<clock::time_point> t) {
      if (t && (!next || *t < *next)) next = t;
    };
    if (setup_deadline_ != never) consider(setup_deadline_);
    if (partial_deadline_ != never) consider(partial_deadline_);
    consider(pending_.next_deadline());
    if (config_->keepalive_interval.count() > 0 && peer_csm_.received) consider(last_activity_ + config_->keepalive_interval);
    return next;
  }

  void on_timer() {
    try {
      check_deadlines();
    } catch (const std::bad_alloc&) {
      close(error::no_memory);  // a keepalive Ping found no room
    }
  }
  void check_deadlines() {
    if (closed_) return;
    const auto now = clock::now();
    // Before the connection is up, the connect's deadline; after, the peer's CSM's.
    if (setup_deadline_ <= now) return close(connected_ ? make_error_code(error::csm_timeout) : make_error_code(error::timeout));
    if (partial_deadline_ <= now) return close(error::timeout);
    pending_.expire(now, [this](response_handler h) { this->complete(std::move(h), error::timeout, nullptr); });
    if (config_->keepalive_interval.count() > 0 && peer_csm_.received && last_activity_ + config_->keepalive_interval <= now) {
      // Section 5.4: a keepalive Ping; its Pong (or any traffic) resets the clock.
      last_activity_ = now;
      owned_message ping{coap::code(signal_code::ping), message_type::confirmable, Allocator(ctx_.get_allocator())};
      send_message(ping);
    }
  }

  socket_type socket_;
  bool connected_ = false;
  bool batching_ = false;  // frames of one read are being handled: flush once, after them
  bool peer_closing_ = false;  // the peer ended the connection: no Release goes back
  detail::peer_capabilities peer_csm_;  // what the peer's CSM said
  std::size_t mtu_limit_ = static_cast<std::size_t>(-1);
  // Deadlines, `never` when not running: the connect's and then the peer CSM's (setup), and a
  // frame begun but not finished (partial).
  static constexpr clock::time_point never = clock::time_point::max();
  clock::time_point setup_deadline_ = never, partial_deadline_ = never;
  std::error_code close_reason_ = make_error_code(error::session_closed);
  pending_table pending_;
  detail::request_queue<owned_message, response_signature> queue_;
  // The memory of a plain connection's wait for input (operation_slot.hpp): Boost 1.81's wait
  // operation with an any_io_executor takes 208 bytes.
  struct no_wait_slot {};
  [[no_unique_address]] std::conditional_t<Security::secure, no_wait_slot, detail::operation_slot<208>> wait_slot_;
  // Our own input: a TLS connection's plaintext, or a frame a read cut in two (made then).
  detail::lazy<detail::frame_buffer<Allocator>, Allocator> in_;
  detail::stream_writer<Allocator> out_;
  // TLS only: the socket's raw input and the records waiting to be written.
  struct tls_buffers {
    bytes in, out;
    explicit tls_buffers(const Allocator& a) : in(rebind<std::uint8_t>(a)), out(rebind<std::uint8_t>(a)) {}
  };
  struct no_tls_buffers {
    explicit no_tls_buffers(const Allocator&) noexcept {}
  };
  [[no_unique_address]] std::conditional_t<Security::secure, tls_buffers, no_tls_buffers> tls_io_{ctx_.get_allocator()};
  // The TLS record layer (empty for no_sec). Last: it refers to the members above.
  [[no_unique_address]] typename Security::template channel<tcp_session_impl> tls_{*this};
};

}  // namespace coap::transports
