// RFC 7252 sections 5.7.2 (forward proxy), 5.7.3 (reverse proxy) and 5.6 (caching), RFC 8768
// (Hop-Limit): a CoAP proxy whose upstream session types are template arguments. The scheme of
// a request's target picks, among them, the session type that serves it:
//
//   coap::context ctx(io.get_executor());
//   ctx.add_endpoint<coap::udp>(address, 5683);
//   coap::proxy<coap::session<coap::udp>, coap::session<coap::tcp>> proxy(
//       coap::proxy_policy::allow({"sensors.example", "10.0.0.7"}));
//   proxy.install(ctx);          // requests with Proxy-Uri / Proxy-Scheme now go upstream
//   proxy.map("/sensors", "coap+tcp://10.0.0.7/");    // and /sensors/... as a reverse proxy
//
// The proxy is an application object like a client session: the context must outlive it.
// docs/proxy.md says what is done and what is not.
#pragma once

#include <coap/code.hpp>
#include <coap/context.hpp>
#include <coap/detail/proxy_cache.hpp>
#include <coap/detail/proxy_request.hpp>
#include <coap/detail/server_dispatch.hpp>
#include <coap/error.hpp>
#include <coap/message.hpp>
#include <coap/resource.hpp>
#include <coap/session.hpp>
#include <coap/udp_codec.hpp>
#include <coap/uri.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace coap {

// Which targets a forward proxy may reach: not an open relay by accident. A default-made
// policy refuses everything (5.05 Proxying Not Supported, as a server without a proxy);
// allow_all() says "open relay" in so many words; allow() lists the hosts.
class proxy_policy {
 public:
  enum class verdict : std::uint8_t {
    allowed,
    disabled,        // proxying is off: 5.05
    scheme_refused,  // the scheme is not allowed: 5.05
    host_refused,    // the host is not allowed: 4.03
  };

  proxy_policy() = default;
  static proxy_policy deny_all() { return {}; }
  static proxy_policy allow_all() {
    proxy_policy p;
    p.enabled_ = true;
    p.any_host_ = true;
    return p;
  }
  // Only these hosts (names compared case-insensitively, IP literals as URIs write them,
  // IPv6 with or without brackets), over every scheme unless only() restricts them.
  static proxy_policy allow(std::initializer_list<std::string_view> hosts) {
    proxy_policy p;
    p.enabled_ = true;
    for (auto h : hosts) p.allow_host(h);
    return p;
  }
  proxy_policy& allow_host(std::string_view host) {
    enabled_ = true;
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    std::string h(host);
    for (auto& c : h)
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    hosts_.push_back(std::move(h));
    return *this;
  }
  // Restricts the schemes a target may have (all four by default).
  proxy_policy& only(std::initializer_list<coap::scheme> schemes) {
    schemes_ = 0;
    for (auto s : schemes) schemes_ = static_cast<std::uint8_t>(schemes_ | bit(s));
    return *this;
  }

  [[nodiscard]] verdict check(const uri& target) const noexcept {
    if (!enabled_) return verdict::disabled;
    if (!(schemes_ & bit(target.scheme))) return verdict::scheme_refused;
    if (any_host_) return verdict::allowed;
    for (const auto& h : hosts_)
      if (h == target.host) return verdict::allowed;
    return verdict::host_refused;
  }

 private:
  static constexpr std::uint8_t bit(coap::scheme s) noexcept {
    return static_cast<std::uint8_t>(1u << static_cast<unsigned>(s));
  }
  bool enabled_ = false;
  bool any_host_ = false;
  std::uint8_t schemes_ = 0x0F;
  std::vector<std::string> hosts_;
};

struct proxy_config {
  // RFC 8768 section 3: the Hop-Limit a request without one is forwarded with.
  unsigned hop_limit = 16;
  // Upstream sessions kept open, one per origin (scheme, host, port); beyond, the least
  // recently used goes.
  std::size_t max_upstream_sessions = 64;
  // A forwarded request unanswered after this long (session set-up included) gets 5.04.
  std::chrono::milliseconds upstream_timeout{20000};
  // RFC 7252 section 5.2.2 downstream: install() sets the context's
  // session.deferred_ack_delay to this when it is 0 there, so that an answer the origin gives
  // within it goes piggybacked (one datagram instead of an empty ACK, a CON and its ACK).
  std::chrono::milliseconds downstream_ack_delay{50};
  // For the upstream sessions (retransmission, connect and handshake timeouts, block size).
  session_config upstream{};
  proxy_cache_config cache{};
  // RFC 7641 section 5: upstream observations at once, each shared by every downstream
  // observer of its target (and its cache key). Beyond, a registration is forwarded as a
  // plain GET and answered without Observe (not registered).
  std::size_t max_observations = 64;
};

// What the proxy did, for operators and tests.
struct proxy_counters {
  std::uint64_t requests = 0;           // proxy requests received (forward and reverse)
  std::uint64_t forwarded = 0;          // requests sent upstream
  std::uint64_t cache_hits = 0;         // answered from the cache, no upstream traffic
  std::uint64_t revalidated = 0;        // stale entries made fresh by 2.03 Valid
  std::uint64_t refused = 0;            // by the policy: 5.05 or 4.03, no upstream traffic
  std::uint64_t hop_limit_reached = 0;  // 5.08
  std::uint64_t bad_gateway = 0;        // 5.02
  std::uint64_t gateway_timeout = 0;    // 5.04
  std::uint64_t sessions_created = 0;   // upstream sessions made
  std::uint64_t local = 0;              // addressed to one of the proxy's own names
  // RFC 7641 section 5.
  std::uint64_t observations_started = 0;  // upstream registrations sent
  std::uint64_t observers_joined = 0;      // downstream registrations answered by a running one
  std::uint64_t notifications = 0;         // upstream notifications, each fanned out downstream
  std::uint64_t observations_ended = 0;    // by the origin (error, no Observe) or a failure
  std::uint64_t observations_released = 0; // deregistered upstream: the last observer left
};

// A session type the proxy can send on: a coap::session<Transport, Security, Allocator>.
template <class S>
concept upstream_session = requires {
  typename S::transport_type;
  typename S::security_type;
  typename S::context_type;
  typename S::message_type;
  { S::transport_type::reliable } -> std::convertible_to<bool>;
  { S::security_type::secure } -> std::convertible_to<bool>;
};

template <upstream_session... Upstream>
class proxy {
  static_assert(sizeof...(Upstream) > 0, "a proxy needs at least one upstream session type");
  using first_session = std::tuple_element_t<0, std::tuple<Upstream...>>;

 public:
  using context_type = typename first_session::context_type;
  using allocator_type = typename context_type::allocator_type;
  using response_type = basic_response<allocator_type>;
  using observation_type = typename first_session::observation_type;
  using logger = std::function<void(std::string_view)>;
  static_assert((std::is_same_v<context_type, typename Upstream::context_type> && ...),
                "every upstream session type runs on the same kind of context");

  // Whether the session type S carries a scheme (coap: UDP without security, coaps+tcp: TCP
  // with a channel security, ...).
  template <class S>
  static constexpr bool serves(coap::scheme s) noexcept {
    return is_reliable(s) == static_cast<bool>(S::transport_type::reliable) &&
           is_secure(s) == static_cast<bool>(S::security_type::secure);
  }
  // Whether any upstream type carries it; else requests for it are answered 5.05.
  static constexpr bool supports(coap::scheme s) noexcept { return (serves<Upstream>(s) || ...); }

  explicit proxy(proxy_policy policy, proxy_config config = {})
      : state_(std::make_shared<state>(std::move(policy), config)) {}
  proxy(const proxy&) = delete;
  proxy& operator=(const proxy&) = delete;
  // The upstream sessions close; a context this proxy was installed on answers proxy
  // requests 5.05 from then on.
  ~proxy() {
    if (!state_) return;
    state_->end_all_observations();
    state_->pool.clear();
  }

  // Sets the context's proxy handler (requests with Proxy-Uri or Proxy-Scheme) and, for
  // map(), its unknown-resource handler (the one set before is called for other paths).
  // Upstream sessions are made on this context. Call it from the context's executor.
  void install(context_type& ctx) {
    state_->ctx = &ctx;
    if (!state_->cache) state_->cache.emplace(state_->config.cache, ctx.get_allocator());
    if (ctx.config().session.deferred_ack_delay.count() == 0)
      ctx.config().session.deferred_ack_delay = state_->config.downstream_ack_delay;
    std::weak_ptr<state> weak = state_;
    ctx.resources().set_proxy_handler([weak](const request& req, response_type& res) {
      if (auto s = weak.lock()) return s->on_forward(req, res);
      detail::refuse(res, response_code::proxying_not_supported);
    });
    auto previous = ctx.resources().unknown_handler();
    ctx.resources().set_unknown_handler([weak, previous](const request& req, response_type& res) {
      if (auto s = weak.lock(); s && s->on_reverse(req, res)) return;
      if (previous) return previous(req, res);
      detail::refuse(res, response_code::not_found);
    });
  }

  // Section 5.7.3: requests to paths under `prefix` ("/sensors") are forwarded to `origin`
  // ("coap://10.0.0.7:5683/base"), the rest of their path appended to the origin's. Mapped
  // origins are the operator's: the policy does not apply to them. Errors: parse_uri's, and
  // unsupported_scheme when no upstream type serves the origin's scheme.
  std::error_code map(std::string_view prefix, std::string_view origin) {
    typename state::mapping m;
    if (auto ec = parse_uri(origin, m.origin)) return ec;
    if (!supports(m.origin.scheme)) return error::unsupported_scheme;
    std::size_t start = 0;
    while (start < prefix.size()) {
      auto end = prefix.find('/', start);
      if (end == std::string_view::npos) end = prefix.size();
      if (end > start) m.prefix.emplace_back(prefix.substr(start, end - start));
      start = end + 1;
    }
    state_->mappings.push_back(std::move(m));
    return {};
  }

  // libcoap's coap-server -P scheme://address[:port]: every forward-proxy request (other than
  // to one of the proxy's own names) goes to this next-hop proxy, its Proxy-Uri kept.
  std::error_code set_next_hop(std::string_view next_hop) {
    uri u;
    if (auto ec = parse_uri(next_hop, u)) return ec;
    if (!supports(u.scheme)) return error::unsupported_scheme;
    state_->next_hop = std::move(u);
    return {};
  }
  // A name this proxy is known by (libcoap's -P ...,name1,name2): a request whose target host
  // is one of them is served by this context's own resources, not forwarded (no loop).
  void add_name(std::string_view name) {
    std::string n(name);
    for (auto& c : n)
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    state_->names.push_back(std::move(n));
  }

  // The (D)TLS set-up of the upstream sessions of type S (PSK has no context default: without
  // this, coaps targets served by a psk session get 5.02).
  template <class S>
    requires(S::security_type::secure)
  void set_upstream_security(const typename S::security_config& config) {
    std::get<index_of<S>()>(state_->security) = config;
  }

  // Refusals and upstream failures, one line each.
  void set_logger(logger l) { state_->log = std::move(l); }

  [[nodiscard]] const proxy_counters& counters() const noexcept { return state_->counters; }
  [[nodiscard]] std::size_t upstream_session_count() const noexcept { return state_->pool.size(); }
  [[nodiscard]] std::size_t cache_entries() const noexcept { return state_->cache ? state_->cache->size() : 0; }
  // Upstream observations now (each shared by its downstream observers).
  [[nodiscard]] std::size_t observation_count() const noexcept { return state_->observations.size(); }
  // What the cache's entries take from the context's allocator (bounded by cache.max_bytes).
  [[nodiscard]] std::size_t cache_bytes() const noexcept { return state_->cache ? state_->cache->bytes() : 0; }
  void clear_cache() noexcept {
    if (state_->cache) state_->cache->clear();
  }
  [[nodiscard]] const proxy_policy& policy() const noexcept { return state_->policy; }
  [[nodiscard]] const proxy_config& config() const noexcept { return state_->config; }

 private:
  template <class S>
  static constexpr std::size_t index_of() noexcept {
    constexpr bool same[] = {std::is_same_v<S, Upstream>...};
    for (std::size_t i = 0; i < sizeof...(Upstream); ++i)
      if (same[i]) return i;
    return sizeof...(Upstream);
  }

  using clock = std::chrono::steady_clock;

  // RFC 7641 section 5: one upstream observation, shared by the downstream observers of its
  // target. They observe a hidden resource of the context (observe_as), whose notifications
  // run the proxy's handler on each registration: it answers with `latest` (or, once ended,
  // with `final_answer`), so each observer gets its own token and the resource's sequence.
  struct shared_observation {
    enum class phase : std::uint8_t { registering, active, ended };
    struct waiter {
      deferred_response reply;
      detail::block_request blocks;
    };
    std::string key;            // the cache key of the registration
    std::string resource_path;  // the hidden resource
    std::uint64_t resource_id = 0;
    phase now = phase::registering;
    observation_type upstream;
    coap::message latest;        // the latest 2.xx, without Observe, Block2, Size2, Max-Age
    clock::time_point fresh_until{};
    coap::message final_answer;  // what the observers hear last
    std::vector<waiter> waiting; // registrations until the first upstream answer
  };
  using observation_ptr = std::shared_ptr<shared_observation>;

  // One request on its way upstream: its answer goes downstream with the deferred response.
  struct forward_op {
    forward_op(const typename context_type::executor_type& ex, const request& req)
        : deadline(ex), blocks(req.message(), detail::answer_room(req)) {}
    deferred_response reply;
    coap::message upstream;
    std::string origin;   // the pool key, "coap+tcp://host:port"
    std::string key;      // the cache key
    bool cache_fresh = false;   // a GET: its 2.05 may be reused for new requests
    bool revalidating = false;  // upstream carries the stale entry's ETag
    bool done = false;
    std::weak_ptr<shared_observation> observation;  // set for an upstream registration
    boost::asio::steady_timer deadline;
    boost::asio::cancellation_signal cancel;
    detail::block_request blocks;
  };
  using op_ptr = std::shared_ptr<forward_op>;

  struct pooled {
    std::string origin;
    std::variant<std::monostate, Upstream...> session;
    bool connecting = true;
    std::vector<std::function<void(std::error_code)>> waiters;
  };

  struct state : std::enable_shared_from_this<state> {
    struct mapping {
      std::vector<std::string> prefix;
      uri origin;
    };

    state(proxy_policy p, const proxy_config& c) : policy(std::move(p)), config(c) {}

    context_type* ctx = nullptr;
    proxy_policy policy;
    proxy_config config;
    // Made by install(), from the context's allocator.
    std::optional<detail::basic_proxy_cache<allocator_type>> cache;
    proxy_counters counters;
    logger log;
    std::vector<std::string> names;
    std::optional<uri> next_hop;
    std::vector<mapping> mappings;
    std::tuple<std::optional<client_config_t<typename Upstream::security_type>>...> security;
    std::list<pooled> pool;  // most recently used first
    std::vector<observation_ptr> observations;
    // Set while the observers of one shared observation are notified: the handler then
    // answers from it and starts nothing.
    const shared_observation* fanning_out = nullptr;
    std::uint64_t next_observation = 0;

    void note(std::string_view what, const uri& target) {
      if (!log) return;
      std::string line(what);
      line += ": ";
      line += to_string(target);
      log(line);
    }

    static void answer(response_type& res, response_code c, std::string_view diagnostic = {}) {
      res.message().clear_options_and_payload();
      res.set_code(c);
      res.set_payload(diagnostic.empty() ? name(c) : diagnostic);
    }

    // ---- section 5.7.2: a request with Proxy-Uri or Proxy-Scheme ----
    void on_forward(const request& req, response_type& res) {
      if (!fanning_out) ++counters.requests;
      const message_view& m = req.message();
      uri target;
      if (auto ec = detail::proxy_target(m, detail::local_host_of(req.session()), target)) {
        if (ec == make_error_code(error::unsupported_scheme)) return answer(res, response_code::proxying_not_supported);
        return answer(res, response_code::bad_request, "invalid Proxy-Uri");
      }
      if (is_own_name(target)) return serve_locally(req, res, target);
      switch (policy.check(target)) {
        case proxy_policy::verdict::allowed: break;
        case proxy_policy::verdict::disabled:
        case proxy_policy::verdict::scheme_refused:
          ++counters.refused;
          note("refused (scheme)", target);
          return answer(res, response_code::proxying_not_supported);
        case proxy_policy::verdict::host_refused:
          ++counters.refused;
          note("refused (host)", target);
          return answer(res, response_code::forbidden);
      }
      const uri& hop = next_hop ? *next_hop : target;
      if (!supports(hop.scheme)) {
        ++counters.refused;
        note("no upstream session type", target);
        return answer(res, response_code::proxying_not_supported);
      }
      relay(req, res, target, hop, next_hop ? detail::target_form::proxy : detail::target_form::origin, 0);
    }

    // ---- section 5.7.3: a request to a mapped path ----
    bool on_reverse(const request& req, response_type& res) {
      for (const auto& map : mappings) {
        std::size_t matched = 0;
        for (std::string_view segment : req.path()) {
          if (matched == map.prefix.size() || segment != map.prefix[matched]) break;
          ++matched;
        }
        if (matched != map.prefix.size()) continue;
        if (!fanning_out) ++counters.requests;
        uri target = map.origin;
        std::size_t segment = 0;
        for (std::string_view s : req.path())
          if (segment++ >= matched) target.path.emplace_back(s);
        for (std::string_view q : req.queries()) target.query.emplace_back(q);
        relay(req, res, target, target, detail::target_form::origin, matched);
        return true;
      }
      return false;
    }

    bool is_own_name(const uri& target) const noexcept {
      return std::find(names.begin(), names.end(), target.host) != names.end();
    }

    // A target naming this proxy: the request without its Proxy-* options, through this
    // context's resources (whose answer the session then cuts into blocks as usual).
    void serve_locally(const request& req, response_type& res, const uri& target) {
      ++counters.local;
      coap::message local(req.message());
      for (auto n : {option_number::proxy_uri, option_number::proxy_scheme, option_number::uri_host,
                     option_number::uri_port, option_number::uri_path, option_number::uri_query})
        local.remove_option(static_cast<std::uint16_t>(n));
      add_uri_options(local, target, false, false);
      std::vector<std::uint8_t> wire;
      message_view view;
      if (udp_codec::encode(local, wire) || udp_codec::parse(wire, view))
        return answer(res, response_code::bad_request);
      const request inner(view, req.session(), req.authenticated_peer());
      detail::dispatch_request(ctx->resources(), inner, res);
      // An observable resource of ours is observed through this name too: its notifications
      // run this handler again on the registration.
      if (auto r = ctx->resources().find(inner); r && r->is_observable) res.observe_as(r->id);
    }

    void relay(const request& req, response_type& res, const uri& target, const uri& hop, detail::target_form form,
               std::size_t /*reverse_prefix*/) {
      const message_view& m = req.message();
      const auto hops = detail::next_hop_limit(m, config.hop_limit);
      if (hops == 0) {
        ++counters.hop_limit_reached;
        note("hop limit reached", target);
        return answer(res, response_code::hop_limit_reached);
      }
      const auto now = clock::now();
      if (req.method() == method::get && m.find(option_number::observe) && !detail::block_request(m).asks_later_block())
        if (observe(req, res, target, hop, form, hops, now)) return;
      auto op = std::make_shared<forward_op>(ctx->get_executor(), req);
      op->key = detail::cache_key(m, target);
      op->cache_fresh = req.method() == method::get;
      const bool later_block = op->blocks.asks_later_block();
      auto* cached = config.cache.enabled ? cache->find(op->key, now) : nullptr;
      if (cached && ((op->cache_fresh && cached->fresh_until > now) || later_block)) {
        ++counters.cache_hits;
        return answer_stored(cached->response, cached->fresh_until, res, now);
      }
      if (later_block && !op->cache_fresh) {
        // RFC 7959 section 2.7: the rest of an unsafe method's answer is not made afresh.
        return answer(res, response_code::request_entity_incomplete);
      }
      detail::build_forwarded(m, target, form, hops, op->upstream);
      if (cached && cached->validatable && op->cache_fresh && !m.find(option_number::etag)) {
        // Section 5.6.2: a stale entry with an ETag is validated, not fetched again.
        if (auto etag = cached->response.find(option_number::etag)) {
          op->upstream.add_option(option_number::etag, etag->value());
          op->revalidating = true;
        }
      }
      op->origin = detail::origin_of(hop);
      op->reply = res.defer();
      start(op, hop);
    }

    // The deadline of an upstream exchange (or registration), then the upstream session.
    void start(const op_ptr& op, const uri& hop) {
      std::weak_ptr<state> weak = this->shared_from_this();
      op->deadline.expires_after(config.upstream_timeout);
      op->deadline.async_wait([weak, op](const boost::system::error_code& ec) {
        if (ec) return;
        auto self = weak.lock();
        if (!self || op->done) return;
        ++self->counters.gateway_timeout;
        self->finish(op, response_code::gateway_timeout);
        op->cancel.emit(boost::asio::cancellation_type::terminal);
      });
      send<0>(hop.scheme, op);
    }

    // A stored answer (a cache entry, an observation's latest notification) with the Max-Age
    // left of it. Not cut here: an answer made in the handler is cut into blocks by the session
    // (and kept for the blocks that follow), as any resource's is.
    template <class Stored>
    static void answer_stored(const Stored& stored, clock::time_point fresh_until, response_type& res,
                              clock::time_point now) {
      auto& out = res.message();
      out.clear_options_and_payload();
      out.set_code(stored.code());
      for (option_view o : stored.options()) out.add_option(o.number(), o.value());
      out.add_uint_option(static_cast<std::uint16_t>(option_number::max_age), detail::remaining_max_age(fresh_until, now));
      out.set_payload(stored.payload());
    }

    // The scheme picks the first upstream type that serves it: a chain of constant checks.
    template <std::size_t I>
    void send(coap::scheme s, const op_ptr& op) {
      if constexpr (I == sizeof...(Upstream)) {
        finish(op, response_code::proxying_not_supported);
      } else {
        using session_type = std::tuple_element_t<I, std::tuple<Upstream...>>;
        if (serves<session_type>(s)) return send_on<session_type>(op);
        send<I + 1>(s, op);
      }
    }

    typename std::list<pooled>::iterator find_pooled(const std::string& origin) {
      return std::find_if(pool.begin(), pool.end(), [&](const pooled& p) { return p.origin == origin; });
    }

    // Upstream sessions pooled per origin and reused; requests for an origin whose session is
    // still being made wait for it.
    template <class S>
    void send_on(const op_ptr& op) {
      if (op->done) return;
      std::weak_ptr<state> weak = this->shared_from_this();
      auto it = find_pooled(op->origin);
      if (it != pool.end() && !it->connecting) {
        pool.splice(pool.begin(), pool, it);
        auto& session = std::get<S>(it->session);
        if (session.is_open()) return request_on(session, op);
        pool.erase(it);
        it = pool.end();
      }
      if (it != pool.end()) {
        it->waiters.push_back([weak, op](std::error_code ec) {
          if (auto self = weak.lock()) ec ? self->failed(op, ec) : self->template send_on<S>(op);
        });
        return;
      }
      make_room();
      pool.push_front(pooled{op->origin, std::monostate{}, true, {}});
      ++counters.sessions_created;
      auto done = boost::asio::bind_executor(ctx->get_executor(), [weak, origin = op->origin, op](std::error_code ec, S made) {
        auto self = weak.lock();
        if (!self) return;
        std::vector<std::function<void(std::error_code)>> waiters;
        auto entry = self->find_pooled(origin);
        if (entry != self->pool.end() && entry->connecting) {
          waiters = std::move(entry->waiters);
          if (ec) {
            self->pool.erase(entry);
          } else {
            entry->session = std::move(made);
            entry->connecting = false;
          }
        }
        if (ec) self->failed(op, ec);
        else self->template send_on<S>(op);
        for (auto& w : waiters) w(ec);
      });
      auto& sec = std::get<index_of<S>()>(security);
      if constexpr (S::security_type::secure) {
        if (sec) return S::async_create_client(*ctx, op->origin, config.upstream, *sec, std::move(done));
      }
      (void)sec;
      S::async_create_client(*ctx, op->origin, config.upstream, std::move(done));
    }

    // The least recently used sessions go beyond the bound (not one being made).
    void make_room() {
      while (pool.size() >= std::max<std::size_t>(config.max_upstream_sessions, 1)) {
        auto victim = std::find_if(pool.rbegin(), pool.rend(), [](const pooled& p) { return !p.connecting; });
        if (victim == pool.rend()) return;
        pool.erase(std::next(victim).base());
      }
    }

    template <class S>
    void request_on(S& session, const op_ptr& op) {
      typename S::message_type out(op->upstream.code(), message_type::confirmable,
                                   typename S::allocator_type(ctx->get_allocator()));
      for (option_view o : op->upstream.options()) out.add_option(o.number(), o.value());
      out.set_payload(op->upstream.payload());
      ++counters.forwarded;
      std::weak_ptr<state> weak = this->shared_from_this();
      if (!op->observation.expired()) {
        // RFC 7641 section 5: one registration upstream for every downstream observer.
        session.async_observe(
            std::move(out),
            boost::asio::bind_cancellation_slot(
                op->cancel.slot(), boost::asio::bind_executor(ctx->get_executor(), [weak, op](std::error_code ec,
                                                                                           observation_type o) {
                  if (auto self = weak.lock()) self->registered(op, ec, std::move(o));
                })));
        return;
      }
      session.async_request(
          std::move(out),
          boost::asio::bind_cancellation_slot(
              op->cancel.slot(),
              boost::asio::bind_executor(ctx->get_executor(),
                                         [weak, op](std::error_code ec, typename S::message_type response) {
                                           if (auto self = weak.lock()) self->answered(op, ec, response);
                                         })));
    }

    void failed(const op_ptr& op, std::error_code ec) {
      if (op->done) return;
      const bool timed_out = ec == make_error_code(error::timeout) || ec == make_error_code(error::csm_timeout) ||
                             ec == make_error_code(error::handshake_timeout) ||
                             ec == detail::operation_aborted() || ec == std::errc::timed_out;
      if (log) log(std::string("upstream ") + op->origin + ": " + ec.message());
      if (timed_out) {
        ++counters.gateway_timeout;
        return finish(op, response_code::gateway_timeout);
      }
      ++counters.bad_gateway;
      finish(op, response_code::bad_gateway);
    }

    template <class Message>
    void answered(const op_ptr& op, std::error_code ec, const Message& response) {
      if (op->done) return;
      if (ec) return failed(op, ec);
      const auto now = clock::now();
      coap::message out(response.code(), message_type::confirmable);
      if (op->revalidating && response.code() == code(response_code::valid)) {
        auto* entry = cache->find(op->key, now);
        if (!entry) {
          ++counters.bad_gateway;
          return finish(op, response_code::bad_gateway);
        }
        // Section 5.6.2: the stored representation is fresh again; its options updated by
        // those of the 2.03 (Max-Age, ETag).
        coap::message valid(response_code::valid);
        for (option_view o : response.options()) valid.add_option(o.number(), o.value());
        cache->refresh(*entry, now, cache->freshness_of(valid));
        ++counters.revalidated;
        out.set_code(entry->response.code());
        for (option_view o : entry->response.options()) out.add_option(o.number(), o.value());
        out.add_uint_option(static_cast<std::uint16_t>(option_number::max_age),
                            detail::remaining_max_age(entry->fresh_until, now));
        out.set_payload(entry->response.payload());
      } else {
        for (option_view o : response.options())
          if (!detail::describes_one_block(o.number())) out.add_option(o.number(), o.value());
        out.set_payload(response.payload());
        const bool large = out.payload().size() > detail::client_block_room;
        if (config.cache.enabled) {
          if (out.code() == code(response_code::content)) {
            const auto fresh = op->cache_fresh ? cache->freshness_of(out) : std::chrono::seconds(0);
            cache->store(op->key, out, now, fresh, large ? config.cache.block_transfer_window : std::chrono::seconds(0));
          } else if (out.code().code_class() == 2 && large) {
            cache->store(op->key, out, now, std::chrono::seconds(0), config.cache.block_transfer_window);
          }
        }
      }
      op->blocks.cut(out);
      finish(op, out);
    }

    void finish(const op_ptr& op, response_code c) {
      coap::message out(c, message_type::confirmable);
      out.set_payload(name(c));
      finish(op, out);
    }
    void finish(const op_ptr& op, const coap::message& out) {
      if (op->done) return;
      op->done = true;
      op->deadline.cancel();
      if (auto obs = op->observation.lock()) return end_observation(obs, out);
      op->reply.send(out);
    }

    // ---- RFC 7641 section 5: observing through the proxy ----
    observation_ptr find_observation(const std::string& key) const {
      for (const auto& o : observations)
        if (o->key == key) return o;
      return nullptr;
    }

    // A GET with Observe: joins the shared observation of its target, or starts one. False:
    // forwarded as a plain GET (Observe=1 without one, or past max_observations).
    bool observe(const request& req, response_type& res, const uri& target, const uri& hop, detail::target_form form,
                 unsigned hops, clock::time_point now) {
      const message_view& m = req.message();
      const bool registers = m.find(option_number::observe)->as_uint() == 0;
      auto key = detail::cache_key(m, target);
      if (auto obs = find_observation(key)) {
        switch (obs->now) {
          case shared_observation::phase::active:
            if (registers) {
              res.observe_as(obs->resource_id);
              if (!fanning_out) ++counters.observers_joined;
            }
            answer_stored(obs->latest, obs->fresh_until, res, now);
            return true;
          case shared_observation::phase::ended:
            answer_with(res, obs->final_answer);
            return true;
          case shared_observation::phase::registering:
            if (!registers || fanning_out) return false;
            res.observe_as(obs->resource_id);
            obs->waiting.push_back({res.defer(), detail::block_request(m, detail::answer_room(req))});
            ++counters.observers_joined;
            return true;
        }
      }
      if (fanning_out) {
        // Not reached: an observation being notified is in the list until it is done.
        answer(res, response_code::bad_gateway);
        return true;
      }
      if (!registers || observations.size() >= config.max_observations) return false;

      auto obs = std::make_shared<shared_observation>();
      obs->key = std::move(key);
      obs->resource_path = ".proxy-observation/" + std::to_string(++next_observation);
      auto& resource = ctx->add_resource(obs->resource_path);
      resource.hidden = true;
      resource.observable();
      resource.on(method::get, [](const request&, response_type& r) { detail::refuse(r, response_code::not_found); });
      obs->resource_id = resource.id;
      std::weak_ptr<state> weak = this->shared_from_this();
      resource.on_unobserved = [weak, ex = ctx->get_executor(), id = resource.id] {
        boost::asio::post(ex, [weak, id] {
          if (auto self = weak.lock()) self->release_if_unobserved(id);
        });
      };
      res.observe_as(obs->resource_id);
      obs->waiting.push_back({res.defer(), detail::block_request(m, detail::answer_room(req))});
      observations.push_back(obs);
      ++counters.observations_started;

      auto op = std::make_shared<forward_op>(ctx->get_executor(), req);
      op->key = obs->key;
      op->observation = obs;
      detail::build_forwarded(m, target, form, hops, op->upstream);
      op->origin = detail::origin_of(hop);
      start(op, hop);
      return true;
    }

    static void answer_with(response_type& res, const coap::message& m) {
      auto& out = res.message();
      out.clear_options_and_payload();
      out.set_code(m.code());
      for (option_view o : m.options()) out.add_option(o.number(), o.value());
      out.set_payload(m.payload());
    }

    void registered(const op_ptr& op, std::error_code ec, observation_type upstream) {
      auto obs = op->observation.lock();
      if (op->done || !obs || obs->now == shared_observation::phase::ended) {
        upstream.cancel();  // timed out or released meanwhile: deregistered (section 3.6)
        return;
      }
      if (ec) return failed(op, ec);
      op->done = true;
      op->deadline.cancel();
      obs->upstream = std::move(upstream);
      next_notification(obs);
    }

    void next_notification(const observation_ptr& obs) {
      std::weak_ptr<state> weak = this->shared_from_this();
      std::weak_ptr<shared_observation> which = obs;
      obs->upstream.async_next(boost::asio::bind_executor(
          ctx->get_executor(), [weak, which](std::error_code ec, typename observation_type::message_type m) {
            auto self = weak.lock();
            auto obs = which.lock();
            if (self && obs) self->on_upstream(obs, ec, m);
          }));
    }

    // The upstream observation's next message: its first answer, a notification, or its end.
    template <class Message>
    void on_upstream(const observation_ptr& obs, std::error_code ec, const Message& m) {
      if (obs->now == shared_observation::phase::ended) return;
      const auto now = clock::now();
      if (ec) {
        if (log) log(std::string("upstream observation ") + obs->key.substr(1, obs->key.find('\0') - 1) + ": " + ec.message());
        const bool timed_out = ec == make_error_code(error::timeout) || ec == std::errc::timed_out;
        ++(timed_out ? counters.gateway_timeout : counters.bad_gateway);
        coap::message out(timed_out ? response_code::gateway_timeout : response_code::bad_gateway);
        out.set_payload(name(timed_out ? response_code::gateway_timeout : response_code::bad_gateway));
        return end_observation(obs, out);
      }
      coap::message state(m.code(), message_type::confirmable);
      for (option_view o : m.options()) {
        const auto n = static_cast<option_number>(o.number());
        if (n != option_number::observe && n != option_number::max_age && !detail::describes_one_block(o.number()))
          state.add_option(o.number(), o.value());
      }
      state.set_payload(m.payload());
      const auto max_age = m.find(option_number::max_age);
      const auto fresh_for = max_age ? std::chrono::seconds(max_age->as_uint()) : config.cache.default_max_age;
      if (m.code() == code(response_code::content)) {
        // Notifications keep the cache fresh (RFC 7641 section 5): plain GETs are hits.
        cache->store(obs->key, state, now, fresh_for,
                    state.payload().size() > detail::client_block_room ? config.cache.block_transfer_window
                                                                      : std::chrono::seconds(0));
      }
      if (m.code().code_class() != 2 || !m.find(option_number::observe)) {
        // Sections 3.2 and 4.2: an error, or an answer without Observe, ends it.
        return end_observation(obs, state);
      }
      obs->latest = std::move(state);
      obs->fresh_until = now + fresh_for;
      if (obs->now == shared_observation::phase::registering) {
        obs->now = shared_observation::phase::active;
        // The waiting registrations get the first state; each becomes an observer then.
        coap::message first(obs->latest);
        first.add_uint_option(static_cast<std::uint16_t>(option_number::max_age),
                              static_cast<std::uint32_t>(fresh_for.count()));
        auto waiting = std::move(obs->waiting);
        obs->waiting.clear();
        for (auto& w : waiting) {
          coap::message out(first);
          w.blocks.cut(out);
          w.reply.send(out);
        }
        // Every waiting session went meanwhile: nobody observes.
        if (auto* r = ctx->resources().find_by_id(obs->resource_id); !r || r->observer_count == 0)
          return release_if_unobserved(obs->resource_id);
      } else {
        ++counters.notifications;
        notify(*obs);
      }
      next_notification(obs);
    }

    void notify(const shared_observation& obs) {
      auto* resource = ctx->resources().find_by_id(obs.resource_id);
      if (!resource) return;
      fanning_out = &obs;
      try {
        ctx->notify_observers(*resource);
      } catch (...) {
        fanning_out = nullptr;
        throw;
      }
      fanning_out = nullptr;
    }

    // The upstream observation ended (its last answer `last`): the registrations still waiting
    // get `last` and are not registered; the observers hear it as their final notification (a
    // 2.xx without Observe cannot be one: 5.02 then); the hidden resource goes.
    void end_observation(const observation_ptr& obs, const coap::message& last) {
      if (obs->now == shared_observation::phase::ended) return;
      obs->now = shared_observation::phase::ended;
      ++counters.observations_ended;
      auto* resource = ctx->resources().find_by_id(obs->resource_id);
      if (resource) resource->observable(false);
      auto waiting = std::move(obs->waiting);
      obs->waiting.clear();
      for (auto& w : waiting) {
        coap::message out(last);
        w.blocks.cut(out);
        w.reply.send(out);
      }
      if (last.code().code_class() == 2) {
        obs->final_answer = coap::message(response_code::bad_gateway);
        obs->final_answer.set_payload(std::string_view("upstream observation ended"));
      } else {
        obs->final_answer = last;
      }
      if (resource && resource->observer_count) notify(*obs);
      drop(obs);
    }

    // Section 3.6 upstream when the last downstream observer left (deregistered, reset, or
    // its session closed).
    void release_if_unobserved(std::uint64_t resource_id) {
      auto it = std::find_if(observations.begin(), observations.end(),
                             [&](const observation_ptr& o) { return o->resource_id == resource_id; });
      if (it == observations.end()) return;
      auto obs = *it;
      auto* resource = ctx->resources().find_by_id(resource_id);
      if (resource && resource->observer_count) return;
      // Registrations still waiting are answered first (then this is checked again).
      if (obs->now == shared_observation::phase::registering) return;
      obs->now = shared_observation::phase::ended;
      ++counters.observations_released;
      obs->upstream.cancel();
      drop(obs);
    }

    void drop(const observation_ptr& obs) {
      observations.erase(std::remove(observations.begin(), observations.end(), obs), observations.end());
      ctx->remove_resource(obs->resource_path);  // observers still there hear 4.04 (section 4.2)
    }

    // The proxy goes: every downstream observer hears 5.02 (its final notification).
    void end_all_observations() {
      auto all = observations;
      for (auto& obs : all) {
        coap::message out(response_code::bad_gateway);
        out.set_payload(std::string_view("proxy closed"));
        obs->upstream.cancel();
        end_observation(obs, out);
      }
    }
  };

  std::shared_ptr<state> state_;
};

}  // namespace coap
