// libcoap's coap_session_t (coap_session(3)) as a C++ handle: copies share one session and
// count as references (coap_session_reference / coap_session_release). When the last handle
// of a client session goes, the session closes and its queues are freed; a server session
// that no handle holds stays in its endpoint's idle pool until the idle timeout.
#pragma once

#include <coap/context.hpp>
#include <coap/error.hpp>
#include <coap/message.hpp>
#include <coap/policies.hpp>
#include <coap/session_config.hpp>
#include <coap/uri.hpp>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>

#include <memory>
#include <optional>
#include <string_view>
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
    requires Security::secure
  {
    return make_client(ctx, server, ctx.config().session, &security, ec, local_if);
  }
  static session create_client(context_type& ctx, endpoint_type server, const session_config& config,
                               const security_config& security, std::error_code& ec,
                               std::optional<endpoint_type> local_if = std::nullopt)
    requires Security::secure
  {
    return make_client(ctx, server, config, &security, ec, local_if);
  }

  // A client session from a URI ("coap://host:port", "coaps://[::1]/"): the scheme must fit the
  // transport and security (coap, coaps, coap+tcp, coaps+tcp); the host is resolved (blocking,
  // first address) and the scheme's default port applies when the URI names none.
  static session create_client(context_type& ctx, std::string_view uri_text, std::error_code& ec,
                               std::optional<endpoint_type> local_if = std::nullopt) {
    uri u;
    auto server = resolve(ctx, uri_text, ec, &u);
    return server ? make_client(ctx, *server, ctx.config().session, nullptr, ec, local_if, checked_host(u))
                  : session();
  }
  static session create_client(context_type& ctx, std::string_view uri_text, const security_config& security,
                               std::error_code& ec, std::optional<endpoint_type> local_if = std::nullopt)
    requires Security::secure
  {
    uri u;
    auto server = resolve(ctx, uri_text, ec, &u);
    return server ? make_client(ctx, *server, ctx.config().session, &security, ec, local_if, checked_host(u))
                  : session();
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

  // ---- requests (RFC 7252 section 4 and 5) ----
  // Sends a request; completes with the response, or an error (timeout, reset_by_peer,
  // session_closed, message_too_large, queue_full, no_memory). Any Asio completion token
  // works. The message ID is assigned; an empty token is replaced by a random one.
  // Memory: the exchange (its encoded copy, queue and pending entries, the response message)
  // comes from the session's Allocator; the type-erased handler from the handler's associated
  // allocator (asio::bind_allocator(alloc, handler)). When either refuses, the handler gets
  // error::no_memory and the session goes on.
  template <class CompletionToken>
  auto async_request(message_type request, CompletionToken&& token) {
    return boost::asio::async_initiate<CompletionToken, response_signature>(
        [](auto handler, std::shared_ptr<impl_type> impl, message_type request) {
          if (!impl) return fail_empty(std::move(handler));
          // The session lives on its context's executor: start there (inline when already on it).
          auto ex = impl->context().get_executor();
          boost::asio::dispatch(ex, [impl = std::move(impl), request = std::move(request),
                                     handler = std::move(handler)]() mutable {
            if (auto erased = impl->erase_handler(handler)) impl->start_request(std::move(request), std::move(*erased));
          });
        },
        token, impl_, std::move(request));
  }
  // CoAP ping: an empty CON that the peer answers with RST (section 4.3).
  template <class CompletionToken>
  auto async_ping(CompletionToken&& token) {
    return boost::asio::async_initiate<CompletionToken, response_signature>(
        [](auto handler, std::shared_ptr<impl_type> impl) {
          if (!impl) return fail_empty(std::move(handler));
          auto ex = impl->context().get_executor();
          boost::asio::dispatch(ex, [impl = std::move(impl), handler = std::move(handler)]() mutable {
            if (auto erased = impl->erase_handler(handler)) impl->start_ping(std::move(*erased));
          });
        },
        token, impl_);
  }

  // ---- coap_session_set_mtu / coap_session_max_pdu_size ----
  void set_mtu(std::size_t mtu) noexcept { impl_->set_mtu(mtu); }
  std::size_t max_pdu_size() const noexcept { return impl_->max_pdu_size(); }

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
  void set_app_data(T* data) noexcept { impl_->set_app_data(data); }
  template <class T>
  T* app_data() const noexcept { return impl_->template app_data<T>(); }

  // ---- coap_session_str ----
  std::string_view description() const noexcept { return impl_ ? impl_->description() : std::string_view(); }
  // Who the (D)TLS handshake proved the peer to be, once established: a client's PSK identity
  // (server sessions) or the CommonName of the peer's certificate when it chained to a trust
  // anchor; empty otherwise (see tls_channel::authenticated_peer).
  std::string_view authenticated_peer() const noexcept {
    return impl_ ? impl_->security_channel().authenticated_peer() : std::string_view();
  }

  session_config& config() noexcept { return impl_->config(); }
  endpoint_type remote_endpoint() const { return impl_->remote_endpoint(); }
  endpoint_type local_endpoint() const { return impl_->local_endpoint(); }
  context_type& context() const noexcept { return impl_->context(); }
  impl_type* implementation() const noexcept { return impl_.get(); }

 private:
  // `host`: the URI's host, for a policy that checks it against the server's certificate.
  static session make_client(context_type& ctx, endpoint_type server, const session_config& config,
                             const security_config* security, std::error_code& ec,
                             const std::optional<endpoint_type>& local_if, std::string_view host = {}) {
    if (server.port() == 0) server.port(Security::secure ? Transport::default_secure_port : Transport::default_port);
    typename Security::state_ptr state{};
    if constexpr (Security::secure) {
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
