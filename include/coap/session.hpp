// libcoap's coap_session_t (coap_session(3)) as a C++ handle: copies share one session and
// count as references (coap_session_reference / coap_session_release). When the last handle
// of a client session goes, the session closes and its queues are freed; a server session
// that no handle holds stays in its endpoint's idle pool until the idle timeout.
#pragma once

#include <coap/context.hpp>
#include <coap/detail/block_client.hpp>
#include <coap/detail/observe_client.hpp>
#include <coap/detail/ping_operation.hpp>
#include <coap/error.hpp>
#include <coap/message.hpp>
#include <coap/observation.hpp>
#include <coap/policies.hpp>
#include <coap/session_config.hpp>
#include <coap/session_description.hpp>
#include <coap/uri.hpp>

#include <boost/asio/associated_executor.hpp>
#include <boost/assert.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

namespace coap {

template <transport_policy Transport, security_policy Security = default_security_t<Transport>,
          class Allocator = std::allocator<std::uint8_t>>
  requires transport_supports<Transport, Security>
class session {
 public:
  using transport_type = Transport;
  using security_type = Security;
  using allocator_type = Allocator;
  using impl_type = typename Transport::template session_impl<Security, Allocator>;
  using context_type = basic_context<Allocator>;
  using message_type = basic_message<Allocator>;
  using endpoint_type = typename impl_type::endpoint_type;
  using response_signature = void(std::error_code, message_type);
  using observation_type = basic_observation<Allocator>;
  using observe_signature = void(std::error_code, observation_type);
  using executor_type = typename context_type::executor_type;

  // An empty handle.
  session() noexcept = default;
  // Adopts a session implementation (for endpoints and tests); counts as one reference.
  explicit session(std::shared_ptr<impl_type> impl) noexcept : impl_(std::move(impl)) {
    if (impl_) impl_->add_handle();
  }
  session(const session& o) noexcept : impl_(o.impl_) {
    if (impl_) impl_->add_handle();
  }
  session(session&& o) noexcept : impl_(std::move(o.impl_)) {}
  session& operator=(session o) noexcept {
    std::swap(impl_, o.impl_);
    return *this;
  }
  ~session() { release(); }

  // ---- coap_new_client_session ----
  // A client session to `server`, from local_if when given (coap_session(3)'s local_if).
  // A server endpoint without a port (port 0) gets the transport's default port (5684 when
  // secure). A secure session (DTLS, TLS) made this way uses the context's set-up
  // (security::set_pki; PSK has none: error::security_not_configured).
  static session create_client(context_type& ctx, endpoint_type server, std::error_code& ec,
                               std::optional<endpoint_type> local_if = std::nullopt) {
    return make_client(ctx, server, ctx.config().session, nullptr, ec, local_if);
  }
  static session create_client(context_type& ctx, endpoint_type server, const session_config& config,
                               std::error_code& ec, std::optional<endpoint_type> local_if = std::nullopt) {
    return make_client(ctx, server, config, nullptr, ec, local_if);
  }

  // ---- coap_new_client_session_psk / coap_new_client_session_pki ----
  // A secure client session with its own PSK (identity, key) or PKI set-up. The handshake
  // starts at once; requests made meanwhile wait for it. Only a secure session has these.
  using security_config = client_config_t<Security>;
  static session create_client(context_type& ctx, endpoint_type server, const security_config& security,
                               std::error_code& ec, std::optional<endpoint_type> local_if = std::nullopt)
    requires configured_security<Security>
  {
    return make_client(ctx, server, ctx.config().session, &security, ec, local_if);
  }
  static session create_client(context_type& ctx, endpoint_type server, const session_config& config,
                               const security_config& security, std::error_code& ec,
                               std::optional<endpoint_type> local_if = std::nullopt)
    requires configured_security<Security>
  {
    return make_client(ctx, server, config, &security, ec, local_if);
  }

  // A client session from a URI ("coap://host:port", "coaps://[::1]/"): the scheme must fit the
  // transport and security (coap, coaps, coap+tcp, coaps+tcp); the host is resolved (first
  // address) and the scheme's default port applies when the URI names none. An IP literal is
  // converted without a lookup; a host name blocks on DNS (getaddrinfo) in the calling
  // thread, as libcoap's coap_new_client_session does: async_create_client does not.
  static session create_client(context_type& ctx, std::string_view uri_text, std::error_code& ec,
                               std::optional<endpoint_type> local_if = std::nullopt) {
    uri u;
    auto server = resolve(ctx, uri_text, ec, &u);
    return server ? make_client(ctx, *server, ctx.config().session, nullptr, ec, local_if, checked_host(u))
                  : session();
  }
  static session create_client(context_type& ctx, std::string_view uri_text, const security_config& security,
                               std::error_code& ec, std::optional<endpoint_type> local_if = std::nullopt)
    requires configured_security<Security>
  {
    uri u;
    auto server = resolve(ctx, uri_text, ec, &u);
    return server ? make_client(ctx, *server, ctx.config().session, &security, ec, local_if, checked_host(u))
                  : session();
  }

  // ---- asynchronous set-up ----
  // A client session from a URI, made without blocking the executor: the host is resolved
  // asynchronously, then the session made and, over TCP, connected; the operation completes
  // once the session is established (UDP: at once; DTLS/TLS: after the handshake; TCP: after
  // the server's CSM) with (error_code, session), or with the error that ended it first (the
  // resolver's, unsupported_scheme, connection_refused, a TLS alert, handshake_timeout,
  // csm_timeout, ...) and an empty handle. Completion on the handler's associated executor.
  using create_signature = void(std::error_code, session);
  template <class CompletionToken>
  static auto async_create_client(context_type& ctx, std::string_view uri_text, const session_config& config,
                                  CompletionToken&& token) {
    return initiate_create(ctx, uri_text, config, std::nullopt, std::forward<CompletionToken>(token));
  }
  template <class CompletionToken>
  static auto async_create_client(context_type& ctx, std::string_view uri_text, CompletionToken&& token) {
    return initiate_create(ctx, uri_text, ctx.config().session, std::nullopt, std::forward<CompletionToken>(token));
  }
  template <class CompletionToken>
  static auto async_create_client(context_type& ctx, std::string_view uri_text, const security_config& security,
                                  CompletionToken&& token)
    requires configured_security<Security>
  {
    return initiate_create(ctx, uri_text, ctx.config().session, security, std::forward<CompletionToken>(token));
  }
  template <class CompletionToken>
  static auto async_create_client(context_type& ctx, std::string_view uri_text, const session_config& config,
                                  const security_config& security, CompletionToken&& token)
    requires configured_security<Security>
  {
    return initiate_create(ctx, uri_text, config, security, std::forward<CompletionToken>(token));
  }

  // ---- coap_session_reference / coap_session_release ----
  // Drops this handle's reference (the handle becomes empty).
  void release() {
    if (auto impl = std::exchange(impl_, nullptr)) impl->remove_handle();
  }
  // How many handles share the session.
  std::size_t use_count() const noexcept { return impl_ ? impl_->handles() : 0; }
  explicit operator bool() const noexcept { return impl_ && impl_->is_open(); }
  bool is_open() const noexcept { return impl_ && impl_->is_open(); }
  // Ends the session now; pending requests fail with error::session_closed.
  void close() {
    if (impl_) impl_->close(error::session_closed);
  }

  // ---- requests (RFC 7252 section 4 and 5; block-wise: RFC 7959, RFC 8323 section 6) ----
  // Sends a request; completes with the response, or an error (timeout, reset_by_peer,
  // session_closed, message_too_large, queue_full, no_memory). Any Asio completion token
  // works. The message ID is assigned; an empty token is replaced by a random one.
  // Block-wise, transparently (detail/block_client.hpp): a payload larger than one message
  // holds goes as Block1 blocks (config().block_szx, lowered to what max_pdu_size() leaves;
  // BERT over TCP when block_szx is 7 and the peer's CSM offered it), each answered 2.31
  // Continue; a response with Block2 is fetched to its end (new tokens, same options, its
  // ETag checked: one restart, then error::etag_mismatch; over config().max_body_size:
  // error::message_too_large), and the handler gets the first block's options (without
  // Block2 and Size2) with the whole body. Any other answer midway (4.08, 4.13 with Size1,
  // 5.03, ...) is delivered as it is: it is data. To choose the block size of one request,
  // give it a Block1 option (the upload's SZX; the upload goes block-wise even when small)
  // or a Block2 option with NUM 0 (the download's SZX: early negotiation, section 2.4).
  // Completion: on the handler's associated executor, with work tracked on it meanwhile.
  // Cancellation (the handler's associated slot, any type): the handler gets
  // boost::asio::error::operation_aborted at once; the exchange is abandoned and a late
  // answer dropped.
  // Memory: the exchange (its encoded copy, queue and pending entries, the response message,
  // the block-wise state) comes from the session's Allocator; the type-erased handler from
  // the handler's associated allocator (asio::bind_allocator(alloc, handler)). When either
  // refuses, the handler gets error::no_memory and the session goes on.
  // The default completion token is asio::deferred: `co_await s.async_request(m)` in a
  // coroutine, or `auto op = s.async_request(m); std::move(op)(handler);`.
  template <class CompletionToken = boost::asio::deferred_t>
  auto async_request(message_type request, CompletionToken&& token = {}) {
    return boost::asio::async_initiate<CompletionToken, response_signature>(
        [](auto handler, std::shared_ptr<impl_type> impl, message_type request) {
          if (!impl) return fail_empty(std::move(handler));
          auto erased = impl->erase_handler(handler);
          if (!erased) return;
          // The session lives on its context's executor: start there (inline when already on it).
          auto ex = impl->context().get_executor();
          boost::asio::dispatch(ex, [impl = std::move(impl), request = std::move(request),
                                     handler = std::move(*erased)]() mutable {
            detail::block_transfer<impl_type>::start(impl, std::move(request), std::move(handler));
          });
        },
        token, impl_, std::move(request));
  }
  // CoAP ping: an empty CON that the peer answers with RST (section 4.3); over TCP, Ping and
  // Pong (RFC 8323 section 5.4). Completion and cancellation as for async_request: a cancelled
  // ping completes with operation_aborted at once, its retransmissions stop and a late answer
  // is dropped (detail/ping_operation.hpp).
  template <class CompletionToken = boost::asio::deferred_t>
  auto async_ping(CompletionToken&& token = {}) {
    return boost::asio::async_initiate<CompletionToken, response_signature>(
        [](auto handler, std::shared_ptr<impl_type> impl) {
          if (!impl) return fail_empty(std::move(handler));
          auto erased = impl->erase_handler(handler);
          if (!erased) return;
          auto ex = impl->context().get_executor();
          boost::asio::dispatch(ex, [impl = std::move(impl), handler = std::move(*erased)]() mutable {
            detail::ping_operation<impl_type>::start(impl, std::move(handler));
          });
        },
        token, impl_);
  }

  // ---- Observe (RFC 7641 section 3; RFC 8323 section 7 over TCP) ----
  // Registers: `request` is a GET or FETCH (else error::invalid_message); Observe=0 is set,
  // and a token when it has none. Completes once the first response arrived, with the
  // observation whose async_next yields that response first. An error when the registration
  // failed (timeout, reset_by_peer, session_closed, queue_full beyond
  // config().max_observations, no_memory, operation_aborted when cancelled through the
  // handler's slot). A response without Observe, or an error code, is not an error here: the
  // observation yields it and then ends with error::not_observable. Notifications are
  // acknowledged, ordered and filtered for freshness (section 3.4), buffered up to
  // config().observation_buffer (the oldest dropped), re-registered when Max-Age passes
  // without one (section 3.3.1), and fetched whole when they carry Block2.
  template <class CompletionToken = boost::asio::deferred_t>
  auto async_observe(message_type request, CompletionToken&& token = {}) {
    return boost::asio::async_initiate<CompletionToken, observe_signature>(
        [](auto handler, std::shared_ptr<impl_type> impl, message_type request) {
          if (!impl) {
            auto ex = boost::asio::get_associated_executor(handler);
            return boost::asio::post(ex, [h = std::move(handler)]() mutable {
              std::move(h)(make_error_code(error::session_closed), observation_type());
            });
          }
          auto io = impl->context().get_executor();
          auto erased = detail::erase_completion<observe_signature>(handler, io, observation_type());
          if (!erased) return;
          boost::asio::dispatch(io, [impl = std::move(impl), request = std::move(request),
                                     handler = std::move(*erased)]() mutable {
            start_observation(impl, std::move(request), std::move(handler));
          });
        },
        token, impl_, std::move(request));
  }

  // The executor the session runs on (its context's); empty for an empty handle.
  executor_type get_executor() const noexcept { return impl_ ? impl_->context().get_executor() : executor_type(); }

  // ---- coap_session_set_mtu / coap_session_max_pdu_size ----
  // On an empty handle: nothing, and 0. Over UDP the MTU is the session's configuration's: a
  // server session's own copy is made first (config(); bad_alloc when the allocator refuses).
  void set_mtu(std::size_t mtu) {
    if (impl_) impl_->set_mtu(mtu);
  }
  [[nodiscard]] std::size_t max_pdu_size() const noexcept { return impl_ ? impl_->max_pdu_size() : 0; }

  // True once the session can carry requests (see async_create_client); false when empty or
  // closed.
  [[nodiscard]] bool established() const noexcept { return impl_ && impl_->established(); }
  // The negotiated (D)TLS cipher suite ("PSK_WITH_AES_128_CCM_8"), empty before the handshake;
  // only a secure session has one.
  [[nodiscard]] std::string_view cipher_suite() const noexcept
    requires Security::secure
  {
    return impl_ ? std::string_view(impl_->security_channel().cipher_suite()) : std::string_view();
  }

  // ---- reliable transports only (RFC 8323 section 5.3) ----
  // True once the peer's Capabilities and Settings Message arrived; only a reliable transport
  // has one, so a session<udp> has no such member.
  bool peer_csm_received() const noexcept
    requires Transport::reliable
  {
    return impl_ && impl_->peer_csm_received();
  }

  // ---- coap_session_set_app_data / coap_session_get_app_data, typed ----
  // app_data<T>() is nullptr unless a T* was stored.
  template <class T>
  void set_app_data(T* data) noexcept {
    if (impl_) impl_->set_app_data(data);
  }
  template <class T>
  [[nodiscard]] T* app_data() const noexcept {
    return impl_ ? impl_->template app_data<T>() : nullptr;
  }

  // ---- coap_session_str ----
  // "local <-> remote PROTOCOL", written when asked (see session_description: keep the object).
  session_description description() const noexcept { return impl_ ? impl_->description() : session_description(); }
  // Who the (D)TLS handshake proved the peer to be, once established: a client's PSK identity
  // (server sessions) or the CommonName of the peer's certificate when it chained to a trust
  // anchor; empty otherwise (see tls_channel::authenticated_peer).
  std::string_view authenticated_peer() const noexcept {
    return impl_ ? impl_->security_channel().authenticated_peer() : std::string_view();
  }

  // Precondition for config() and context(): a non-empty handle (asserted in debug builds).
  // This session's configuration, to change it: a server session reading its context's
  // (ctx.config().session) gets its own copy first (bad_alloc when the allocator refuses).
  session_config& config() {
    BOOST_ASSERT(impl_);
    return impl_->own_config();
  }
  // To read it: no copy.
  const session_config& config() const noexcept {
    BOOST_ASSERT(impl_);
    return impl_->config();
  }
  // Default-constructed endpoints on an empty handle.
  endpoint_type remote_endpoint() const { return impl_ ? impl_->remote_endpoint() : endpoint_type(); }
  endpoint_type local_endpoint() const { return impl_ ? impl_->local_endpoint() : endpoint_type(); }
  context_type& context() const noexcept {
    BOOST_ASSERT(impl_);
    return impl_->context();
  }
  // The per-peer object behind the handle, for tests and benchmarks that look inside (the
  // record layer's overhead, say); not part of the stable interface.
  impl_type* implementation() const noexcept { return impl_.get(); }

 private:
  // `host`: the URI's host, for a policy that checks it against the server's certificate.
  static session make_client(context_type& ctx, endpoint_type server, const session_config& config,
                             const security_config* security, std::error_code& ec,
                             const std::optional<endpoint_type>& local_if, std::string_view host = {}) {
    if (server.port() == 0) server.port(Security::secure ? Transport::default_secure_port : Transport::default_port);
    typename Security::state_ptr state{};
    if constexpr (configured_security<Security>) {
      state = Security::client_state(ctx, security, ec, host);
      if (ec) return {};
    } else {
      (void)security;
      (void)host;
    }
    return session(Transport::template make_client<Security>(ctx, server, local_if, config, state, ec));
  }

  // RFC 7252 section 9.1.3.3: the host a server's certificate must name; none for an IPv6
  // literal (see pki_config::verify_host).
  static std::string_view checked_host(const uri& u) noexcept {
    return u.host_kind == host_kind::ipv6 ? std::string_view() : std::string_view(u.host);
  }

  static std::optional<endpoint_type> resolve(context_type& ctx, std::string_view uri_text, std::error_code& ec,
                                              uri* parsed = nullptr) {
    uri local;
    uri& u = parsed ? *parsed : local;
    if ((ec = parse_uri(uri_text, u))) return std::nullopt;
    if (is_reliable(u.scheme) != Transport::reliable || is_secure(u.scheme) != Security::secure) {
      ec = error::unsupported_scheme;
      return std::nullopt;
    }
    typename Transport::protocol_type::resolver resolver(ctx.get_executor());
    boost::system::error_code bec;
    auto results = resolver.resolve(u.host, std::to_string(u.port),
                                    Transport::protocol_type::resolver::numeric_service, bec);
    if (bec) {
      ec = bec;
      return std::nullopt;
    }
    if (results.empty()) {
      ec = make_error_code(std::errc::host_unreachable);
      return std::nullopt;
    }
    return results.begin()->endpoint();
  }

  template <class CompletionToken>
  static auto initiate_create(context_type& ctx, std::string_view uri_text, const session_config& config,
                              std::optional<security_config> security, CompletionToken&& token) {
    return boost::asio::async_initiate<CompletionToken, create_signature>(
        [&ctx](auto handler, std::string text, session_config cfg, std::optional<security_config> sec) {
          auto io = ctx.get_executor();
          auto erased = detail::erase_completion<create_signature>(handler, io, session());
          if (!erased) return;
          auto op = std::make_shared<create_operation>(ctx, std::move(*erased), cfg, std::move(sec));
          boost::asio::dispatch(io, [op, text = std::move(text)] { op->start(text); });
        },
        token, std::string(uri_text), config, std::move(security));
  }

  // One async_create_client: resolve, make, wait for establishment.
  struct create_operation : std::enable_shared_from_this<create_operation> {
    using handler_type = boost::asio::any_completion_handler<create_signature>;
    using resolver_type = typename Transport::protocol_type::resolver;
    create_operation(context_type& c, handler_type h, const session_config& cfg, std::optional<security_config> sec)
        : ctx(c), handler(std::move(h)), config(cfg), security(std::move(sec)), resolver(c.get_executor()) {}

    void start(const std::string& text) {
      if (auto ec = parse_uri(text, target)) return finish(ec, {});
      if (is_reliable(target.scheme) != Transport::reliable || is_secure(target.scheme) != Security::secure)
        return finish(error::unsupported_scheme, {});
      resolver.async_resolve(target.host, std::to_string(target.port), resolver_type::numeric_service,
                             [self = this->shared_from_this()](const boost::system::error_code& bec, auto results) {
                               self->resolved(bec, std::move(results));
                             });
    }
    template <class Results>
    void resolved(const boost::system::error_code& bec, Results results) {
      if (bec) return finish(bec, {});
      if (results.empty()) return finish(make_error_code(std::errc::host_unreachable), {});
      std::error_code ec;
      const security_config* sec = security ? &*security : nullptr;
      // A handle holds the session while it gets ready (the last release would close it).
      auto handle = make_client(ctx, results.begin()->endpoint(), config, sec, ec, std::nullopt, checked_host(target));
      if (ec || !handle.impl_) return finish(ec ? ec : make_error_code(error::session_closed), {});
      made = std::move(handle.impl_);  // the handle's count moves with it
      made->when_ready([self = this->shared_from_this()](std::error_code e) {
        self->finish(e, e ? nullptr : self->made);
      });
    }
    void finish(std::error_code ec, std::shared_ptr<impl_type> ready) {
      // The result's handle first, then ours goes: a failed session closes with it.
      auto result = session(std::move(ready));
      if (auto held = std::exchange(made, nullptr)) held->remove_handle();
      detail::complete_later(ctx.get_executor(), std::move(handler), ec, std::move(result));
    }

    context_type& ctx;
    handler_type handler;
    session_config config;
    std::optional<security_config> security;
    resolver_type resolver;
    uri target;
    std::shared_ptr<impl_type> made;  // holds one handle count while waiting
  };

  using observe_handler = boost::asio::any_completion_handler<observe_signature>;
  static void start_observation(const std::shared_ptr<impl_type>& impl, message_type request, observe_handler h) {
    auto io = impl->context().get_executor();
    auto fail = [&](error e) { detail::complete_later(io, std::move(h), make_error_code(e), observation_type()); };
    if (!impl->is_open()) return fail(error::session_closed);
    if (request.code() != code(method::get) && request.code() != code(method::fetch)) return fail(error::invalid_message);
    using state_type = detail::observation_state<impl_type>;
    std::shared_ptr<state_type> state;
    try {
      const auto observe = static_cast<std::uint16_t>(option_number::observe);
      request.remove_option(observe);
      request.add_uint_option(observe, 0);
      // Notifications are told apart by token alone: never an empty one.
      if (request.token().empty())
        request.set_token(coap::token::from_uint(impl->context().random(), impl->config().token_length ? impl->config().token_length : 8));
      using state_allocator = typename std::allocator_traits<Allocator>::template rebind_alloc<state_type>;
      state = std::allocate_shared<state_type>(state_allocator(impl->context().get_allocator()), impl, std::move(request));
      if (!impl->add_observation(state)) return fail(error::queue_full);
      state->start(h);
    } catch (const std::bad_alloc&) {
      return fail(error::no_memory);
    }
  }

  template <class Handler>
  static void fail_empty(Handler handler) {
    auto ex = boost::asio::get_associated_executor(handler);
    boost::asio::post(ex, [h = std::move(handler)]() mutable {
      std::move(h)(make_error_code(error::session_closed), message_type());
    });
  }

  std::shared_ptr<impl_type> impl_;
};

}  // namespace coap
