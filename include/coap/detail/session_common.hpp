// What every session has, whatever its transport (coap_session(3)): its context, peer and
// local addresses, configuration, printable description (coap_session_str), typed
// application data, handle count, last activity, and the posting of request completions.
// A CRTP base: Derived provides close(std::error_code) and idle().
#pragma once

#include <coap/context.hpp>
#include <coap/detail/endpoint_text.hpp>
#include <coap/detail/handler_slot.hpp>
#include <coap/message.hpp>
#include <coap/message_view.hpp>
#include <coap/session_config.hpp>

#include <boost/asio/post.hpp>

#include <algorithm>
#include <chrono>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <typeinfo>

namespace coap::detail {

// Makes room for `extra` more elements, growing geometrically: the one place a session
// allocates for a new exchange, done before any state changes so that a refusal (bad_alloc)
// leaves the session as it was.
template <class Vector>
void reserve_more(Vector& v, std::size_t extra) {
  if (v.capacity() - v.size() >= extra) return;
  v.reserve(std::max(v.size() + extra, 2 * v.capacity()));
}

template <class Derived, class Endpoint, class Allocator>
class session_common {
 protected:
  template <class T>
  using rebind = typename std::allocator_traits<Allocator>::template rebind_alloc<T>;
  using clock = std::chrono::steady_clock;

 public:
  using endpoint_type = Endpoint;
  using context_type = basic_context<Allocator>;
  using owned_message = basic_message<Allocator>;
  using response_signature = void(std::error_code, owned_message);
  using response_handler = boost::asio::any_completion_handler<response_signature>;
  enum class role : std::uint8_t { client, server };

  std::string_view description() const noexcept { return description_; }
  const endpoint_type& remote_endpoint() const noexcept { return peer_; }
  const endpoint_type& local_endpoint() const noexcept { return local_; }
  bool is_client() const noexcept { return role_ == role::client; }
  bool is_open() const noexcept { return !closed_; }
  session_config& config() noexcept { return config_; }
  context_type& context() noexcept { return ctx_; }

  template <class T>
  void set_app_data(T* p) noexcept {
    app_data_ = const_cast<void*>(static_cast<const void*>(p));
    app_type_ = &typeid(T);
  }
  template <class T>
  T* app_data() const noexcept {
    return app_type_ && *app_type_ == typeid(T) ? static_cast<T*>(app_data_) : nullptr;
  }

  // coap_session_reference / coap_session_release: the last handle of a client session
  // closes it; a server session stays for its endpoint's idle pool.
  void add_handle() noexcept { ++handles_; }
  void remove_handle() {
    if (--handles_ == 0 && role_ == role::client) derived().close(error::session_closed);
  }
  std::size_t handles() const noexcept { return handles_; }
  clock::time_point last_activity() const noexcept { return last_activity_; }

 protected:
  session_common(context_type& ctx, role r, const endpoint_type& peer, const session_config& config)
      : ctx_(ctx), role_(r), peer_(peer), config_(config), description_(rebind<char>(ctx.get_allocator())),
        last_activity_(clock::now()) {}

  Derived& derived() noexcept { return static_cast<Derived&>(*this); }

  // libcoap's coap_session_str: "local <-> remote PROTOCOL". Formatted on the stack: the only
  // allocation is description_'s own, from the session's allocator.
  void describe(std::string_view protocol) {
    char text[2 * max_endpoint_text + 16];
    std::size_t n = write_endpoint_text(text, local_);
    n = append_text(text, n, " <-> ");
    n += write_endpoint_text(std::span<char>(text).subspan(n), peer_);
    n = append_text(text, n, " ");
    n = append_text(text, n, protocol);
    description_.assign(text, n);
  }

  // Ends the session's life-cycle for observers: closed, or failed with a reason.
  void emit_closed(std::error_code why) {
    const bool normal = why == error::session_closed;
    ctx_.emit(normal ? session_event::closed : session_event::failed, description_,
              normal ? std::error_code() : why);
  }

  // Completions are posted, never run inline: a handler may start requests or release the
  // session freely. (A lambda rather than asio::append: Boost 1.81's any_completion_handler
  // recurses when asio copies it as an lvalue.) The posted function's memory is Asio's: the
  // context's any_io_executor type-erases it with std::allocator, which Asio recycles per
  // thread; the handler's own memory follows its associated allocator (see erase_handler).
  void deliver(response_handler h, std::error_code ec, owned_message m) {
    boost::asio::post(ctx_.get_executor(), [h = std::move(h), ec, m = std::move(m)]() mutable {
      std::move(h)(ec, std::move(m));
    });
  }
  // The response is copied into a message from the session's allocator; when that refuses,
  // the request completes with error::no_memory (the session itself goes on).
  void complete(response_handler h, std::error_code ec, const message_view* response) {
    owned_message m{Allocator(ctx_.get_allocator())};
    if (response) {
      try {
        m.assign(*response);
      } catch (const std::bad_alloc&) {
        m = owned_message{Allocator(ctx_.get_allocator())};
        ec = error::no_memory;
      }
    }
    deliver(std::move(h), ec, std::move(m));
  }
  void fail_soon(response_handler h, std::error_code ec) {
    deliver(std::move(h), ec, owned_message{Allocator(ctx_.get_allocator())});
  }

 public:
  // Type-erases a completion handler (asio::any_completion_handler): its storage comes from
  // the handler's associated allocator (asio::bind_allocator), which is how an Asio user
  // keeps handler memory in an arena. When that allocator refuses, the handler is completed
  // with error::no_memory as it is, and nullopt is returned.
  template <class Handler>
  std::optional<response_handler> erase_handler(Handler& handler) {
    std::optional<response_handler> erased;
    try {
      // any_completion_handler allocates before it moves the handler: on failure `handler`
      // is intact.
      erased.emplace(std::move(handler));
    } catch (const std::bad_alloc&) {
      boost::asio::post(ctx_.get_executor(), [h = std::move(handler), a = Allocator(ctx_.get_allocator())]() mutable {
        std::move(h)(make_error_code(error::no_memory), owned_message{a});
      });
    }
    return erased;
  }

 protected:
  context_type& ctx_;
  role role_;
  bool closed_ = false;
  endpoint_type peer_;
  endpoint_type local_;
  session_config config_;
  std::basic_string<char, std::char_traits<char>, rebind<char>> description_;
  std::size_t handles_ = 0;
  clock::time_point last_activity_;
  void* app_data_ = nullptr;
  const std::type_info* app_type_ = nullptr;
};

}  // namespace coap::detail
