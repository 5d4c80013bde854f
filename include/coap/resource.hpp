// RFC 7252 section 5.7 and 5.8 (server behaviour, method definitions) and RFC 6690 section 4
// (/.well-known/core): what a request handler sees, what it answers with, and the registry
// of resources that a context serves.
#pragma once

#include <coap/code.hpp>
#include <coap/content_format.hpp>
#include <coap/message.hpp>
#include <coap/message_view.hpp>
#include <coap/option.hpp>
#include <coap/session_description.hpp>

#include <algorithm>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace coap {

// A received request, valid for the duration of the handler call.
class request {
 public:
  // The session's description is a text, or (from a session) written only if asked for.
  request(const message_view& m, detail::session_text session_description,
          std::string_view authenticated_peer = {}, bool fresh = false, std::size_t max_message_size = 0) noexcept
      : message_(m), session_(session_description), peer_(authenticated_peer), fresh_(fresh),
        max_message_(max_message_size) {}

  const message_view& message() const noexcept { return message_; }
  coap::method method() const noexcept { return static_cast<coap::method>(message_.code().raw()); }
  bool confirmable() const noexcept { return message_.type() == message_type::confirmable; }
  // The largest message the session may send its peer (its max_pdu_size(); 0 when not
  // known): how large an answer made later (deferred) can be before it must go in blocks.
  std::size_t max_message_size() const noexcept { return max_message_; }

  // Uri-Path segments in order, without allocating: `for (auto s : req.path()) ...`.
  class option_values {
   public:
    option_values(option_range r, std::uint16_t n) : range_(r), number_(n) {}
    class iterator {
     public:
      using value_type = std::string_view;
      using difference_type = std::ptrdiff_t;
      iterator() = default;
      iterator(option_iterator it, option_iterator end, std::uint16_t n) : it_(it), end_(end), n_(n) {
        skip();
      }
      std::string_view operator*() const noexcept { return (*it_).as_string(); }
      iterator& operator++() noexcept {
        ++it_;
        skip();
        return *this;
      }
      iterator operator++(int) noexcept {
        auto c = *this;
        ++*this;
        return c;
      }
      friend bool operator==(const iterator& a, const iterator& b) noexcept { return a.it_ == b.it_; }

     private:
      void skip() noexcept {
        while (it_ != end_ && (*it_).number() != n_) ++it_;
      }
      option_iterator it_, end_;
      std::uint16_t n_ = 0;
    };
    iterator begin() const { return {range_.begin(), range_.end(), number_}; }
    iterator end() const { return {range_.end(), range_.end(), number_}; }

   private:
    option_range range_;
    std::uint16_t number_;
  };
  option_values path() const noexcept {
    return {message_.options(), static_cast<std::uint16_t>(option_number::uri_path)};
  }
  option_values queries() const noexcept {
    return {message_.options(), static_cast<std::uint16_t>(option_number::uri_query)};
  }
  // "a/b/c" (allocates from the global heap; for logging and convenience).
  std::string path_string() const;
  // The same in a string of the caller's allocator (the session's, say: res.message().get_allocator()).
  template <class CharAllocator>
  std::basic_string<char, std::char_traits<char>, CharAllocator> path_string(const CharAllocator& alloc) const {
    std::basic_string<char, std::char_traits<char>, CharAllocator> out(alloc);
    bool first = true;
    for (std::string_view s : path()) {
      if (!first) out += '/';
      out += s;
      first = false;
    }
    return out;
  }
  // The value of the first "key=value" Uri-Query item, or of a bare "key" (empty value).
  std::optional<std::string_view> query(std::string_view key) const noexcept;

  std::span<const std::uint8_t> payload() const noexcept { return message_.payload(); }
  std::string_view payload_string() const noexcept { return message_.payload_string(); }
  std::optional<coap::content_format> content_format() const noexcept {
    if (auto o = message_.find(option_number::content_format))
      return static_cast<coap::content_format>(o->as_uint());
    return std::nullopt;
  }
  std::span<const std::uint8_t> token() const noexcept { return message_.token(); }
  // Like coap_session_str: "127.0.0.1:5683 <-> 127.0.0.1:40000 UDP".
  std::string_view session() const noexcept { return session_.get(written_); }
  // Who the (D)TLS handshake proved the client to be: its PSK identity, or the CommonName of
  // its certificate when that chained to a trust anchor; empty over NoSec, for a client without
  // a certificate, or one not verified. For access control (libcoap 4.3:
  // coap_session_get_psk_identity).
  std::string_view authenticated_peer() const noexcept { return peer_; }
  // RFC 9175 section 2.3: the request carries an Echo value this server issued at most
  // session_config::echo_freshness ago: it was sent after that moment, not replayed from
  // before. A handler that needs this answers res.require_fresh() when it is false.
  bool fresh() const noexcept { return fresh_; }

 private:
  const message_view& message_;
  detail::session_text session_;
  mutable std::optional<session_description> written_;
  std::string_view peer_;
  bool fresh_ = false;
  std::size_t max_message_ = 0;
};

namespace detail {
// How the sessions prepare a response for its handler (basic_response::bind is theirs only).
struct response_access {
  template <class Response, class Sink>
  static void bind(Response& res, Sink&& sink, std::uint64_t exchange_id) {
    res.bind(std::forward<Sink>(sink), exchange_id);
  }
  // RFC 9175: whether the request being answered is fresh (set by the session before the
  // handler runs; the request is made from it).
  template <class Response>
  static void set_request_fresh(Response& res, bool fresh) noexcept { res.request_fresh_ = fresh; }
  template <class Response>
  static bool request_fresh(const Response& res) noexcept { return res.request_fresh_; }
};
}  // namespace detail

// A separate response (RFC 7252 section 5.2.2) that a handler promised with defer(): call
// send() once, from the context's executor, when the result is ready. It holds a weak_ptr to
// the session: no allocation (the control block is the session's, from its allocator).
class deferred_response {
 public:
  struct sink {
    virtual ~sink() = default;
    // Sends the response for the exchange with this id, copied into the session's memory.
    // False when the session's allocator refuses (the exchange stays: send may be retried).
    virtual bool send_deferred(std::uint64_t exchange_id, const coap::message& response) = 0;
    // The same, built in the session's memory directly (no message of the caller's).
    virtual bool send_deferred(std::uint64_t exchange_id, response_code c, std::string_view payload,
                               std::optional<coap::content_format> cf) = 0;
  };

  deferred_response() = default;
  deferred_response(std::weak_ptr<sink> s, std::uint64_t id) : sink_(std::move(s)), id_(id) {}

  // False when the session is gone (the response can no longer be delivered), or when the
  // session's allocator refused the response (it may be sent again later).
  bool send(const coap::message& response) const {
    if (auto s = sink_.lock()) return s->send_deferred(id_, response);
    return false;
  }
  bool send(response_code c, std::string_view payload = {},
            std::optional<coap::content_format> cf = std::nullopt) const {
    if (auto s = sink_.lock()) return s->send_deferred(id_, c, payload, cf);
    return false;
  }

 private:
  std::weak_ptr<sink> sink_;
  std::uint64_t id_ = 0;
};

// What a handler fills in. The message is owned by the session and reused, so answering
// makes no allocation once its capacity has grown.
template <class Allocator = std::allocator<std::uint8_t>>
class basic_response {
 public:
  using message_type = basic_message<Allocator>;

  explicit basic_response(message_type& m) noexcept : message_(m) {}

  void set_code(response_code c) noexcept { message_.set_code(c); }
  void set_payload(std::string_view p) { message_.set_payload(p); }
  void set_payload(std::span<const std::uint8_t> p) { message_.set_payload(p); }
  void set_content_format(coap::content_format f) { message_.set_content_format(f); }
  // Convenience: code, payload and content-format at once.
  void set(response_code c, std::string_view payload,
           std::optional<coap::content_format> cf = std::nullopt) {
    set_code(c);
    if (cf) set_content_format(*cf);
    set_payload(payload);
  }
  message_type& message() noexcept { return message_; }

  // Section 5.2.2: the answer comes later. A CON request is acknowledged at once with an
  // empty ACK; the response then goes out as its own CON (or NON) message.
  deferred_response defer() {
    deferred_ = true;
    return deferred_response(sink_, exchange_id_);
  }
  bool deferred() const noexcept { return deferred_; }

  // RFC 7641 section 4.5: this notification goes as a CON (over UDP), so that the observer's
  // acknowledgement shows it is still there. Without it, every Nth notification is CON
  // (context_config::observe_con_every) and the rest NON.
  void notify_confirmable() noexcept { confirmable_ = true; }
  bool confirmable_requested() const noexcept { return confirmable_; }

  // RFC 7641 section 4.1: a GET/FETCH with Observe=0 answered here registers its requester as
  // an observer of the resource with this id (resource::id) rather than of the one its path
  // names: a proxy's handler names the resource that stands for an upstream observation.
  void observe_as(std::uint64_t resource_id) noexcept { observed_ = resource_id; }
  std::uint64_t observed_resource() const noexcept { return observed_; }
  // RFC 9175 section 2.3: the request must prove its freshness first: 4.01 Unauthorized, and
  // the session adds an Echo value for the client to repeat the request with (coap-cpp's and
  // libcoap's clients do so once, by themselves). For handlers that check req.fresh().
  void require_fresh() {
    message_.clear_options_and_payload();
    set_code(response_code::unauthorized);
    set_payload(std::string_view("fresh Echo required"));
    echo_requested_ = true;
  }
  bool echo_requested() const noexcept { return echo_requested_; }

 private:
  // Called by the session before the handler runs (through detail::response_access).
  friend struct detail::response_access;
  void bind(std::weak_ptr<deferred_response::sink> s, std::uint64_t exchange_id) {
    sink_ = std::move(s);
    exchange_id_ = exchange_id;
    deferred_ = false;
    confirmable_ = false;
    observed_ = 0;
    echo_requested_ = false;
  }

  message_type& message_;
  std::weak_ptr<deferred_response::sink> sink_;
  std::uint64_t exchange_id_ = 0;
  std::uint64_t observed_ = 0;
  bool deferred_ = false;
  bool confirmable_ = false;
  bool echo_requested_ = false;
  bool request_fresh_ = false;
};

// A resource: a path, a handler per method, and its RFC 6690 attributes.
// Memory: resources are the context's set-up, shared by every session; they live on the
// global heap (std::string, std::function, std::shared_ptr), not in the Allocator. Calling a
// handler allocates nothing; only adding or removing resources does.
template <class Allocator = std::allocator<std::uint8_t>>
struct basic_resource {
  using handler = std::function<void(const request&, basic_response<Allocator>&)>;

  std::string path;  // "sensors/temp" (no leading slash); "" is the root
  std::array<handler, 7> handlers{};  // indexed by method code - 1
  // RFC 6690 section 3 attributes for /.well-known/core (rt, if, ct, title, sz, obs ...).
  // A value-less attribute like obs has an empty second member.
  std::vector<std::pair<std::string, std::string>> attributes;
  bool hidden = false;  // not listed in /.well-known/core
  // Answered 4.01 Unauthorized unless the request's sender is authenticated
  // (request::authenticated_peer() not empty): an OSCORE-protected request (RFC 8613), or one
  // over a (D)TLS session whose handshake named the peer. Set with require_authentication().
  bool requires_authentication = false;
  // RFC 7252 section 8 (docs/multicast.md): whether a request that arrived at a joined group
  // reaches this resource; opted out, such a request is dropped unanswered.
  bool serves_multicast = true;
  // RFC 9175 section 2.3: requests without a fresh Echo value (request::fresh()) are answered
  // 4.01 Unauthorized with an Echo option, their handler not run. Set with fresh_only().
  bool requires_fresh = false;

  // ---- RFC 7641: observing ----
  // A GET or FETCH with Observe=0 registers the requester (section 4.1); the context's
  // notify_observers(path) then sends each observer the current representation. Set with
  // observable(), which also lists the resource with "obs" in /.well-known/core. A handler
  // that defers its answer (separate response) registers its requester when that answer is
  // a 2.xx and the resource is still observable then (until then the observer gets no
  // notification); notifications that a handler defers are skipped.
  bool is_observable = false;
  // Unique within its registry (observers name their resource by it).
  std::uint64_t id = 0;
  // Section 4.4: the sequence number of the latest notification, 24 bits, wrapping.
  std::uint32_t observe_sequence = 0;
  // Observers registered now, over all sessions (capped: context_config::max_observers_per_resource).
  std::size_t observer_count = 0;
  // Called when observer_count drops to zero (the last observer deregistered, was reset, or
  // its session closed). It runs inside the session's bookkeeping: it must not change the
  // registry or notify; post anything more to the context's executor.
  std::function<void()> on_unobserved;

  basic_resource& observable(bool on = true) {
    is_observable = on;
    auto obs = std::find_if(attributes.begin(), attributes.end(), [](const auto& a) { return a.first == "obs"; });
    if (on && obs == attributes.end()) attributes.emplace_back("obs", std::string());
    if (!on && obs != attributes.end()) attributes.erase(obs);
    return *this;
  }

  basic_resource& require_authentication(bool on = true) {
    requires_authentication = on;
    return *this;
  }
  basic_resource& fresh_only(bool on = true) {
    requires_fresh = on;
    return *this;
  }

  basic_resource& multicast(bool on) {
    serves_multicast = on;
    return *this;
  }

  basic_resource& on(method m, handler h) {
    handlers[static_cast<std::size_t>(m) - 1] = std::move(h);
    return *this;
  }
  basic_resource& attribute(std::string name, std::string value = {}) {
    attributes.emplace_back(std::move(name), std::move(value));
    return *this;
  }
  bool matches(const request& r) const noexcept;
};

// RFC 7252 section 5.7: which resource a request addresses; RFC 6690: the link-format
// listing of /.well-known/core, with section 4.1's query filtering.
template <class Allocator = std::allocator<std::uint8_t>>
class basic_resource_registry {
 public:
  using resource = basic_resource<Allocator>;
  using handler = typename resource::handler;

  // Adds (or returns the existing) resource at path ("a/b" or "/a/b").
  resource& add(std::string_view path);
  bool remove(std::string_view path);
  // Shared, so that a handler may remove its own resource while it runs.
  std::shared_ptr<resource> find(const request& r) noexcept;
  resource* find(std::string_view path) noexcept;
  // By resource::id (observers keep it); nullptr once the resource was removed.
  resource* find_by_id(std::uint64_t id) noexcept;
  // Called for requests to paths with no resource (libcoap's "unknown resource"); the
  // default answers 4.04 Not Found.
  void set_unknown_handler(handler h) { unknown_ = std::move(h); }
  const handler& unknown_handler() const noexcept { return unknown_; }
  // RFC 7252 section 5.7.2: called for requests with Proxy-Uri or Proxy-Scheme (a forward
  // proxy); without one they are answered 5.05 Proxying Not Supported. It may defer.
  void set_proxy_handler(handler h) { proxy_ = std::move(h); }
  const handler& proxy_handler() const noexcept { return proxy_; }
  std::size_t size() const noexcept { return resources_.size(); }

  // The /.well-known/core body, filtered by the request's query (RFC 6690 section 4.1).
  std::string well_known_core(const request* filter = nullptr) const;
  // The same, appended to a string of the caller's (sessions use their allocator's).
  template <class String>
  void write_well_known_core(String& out, const request* filter = nullptr) const;

 private:
  std::vector<std::shared_ptr<resource>> resources_;
  handler unknown_;
  handler proxy_;
  std::uint64_t next_id_ = 0;
};

}  // namespace coap

#include <coap/impl/resource.hpp>
