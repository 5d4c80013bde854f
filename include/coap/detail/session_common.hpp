// What every session has, whatever its transport (coap_session(3)): its context, peer and
// local addresses, configuration, printable description (coap_session_str), typed
// application data, handle count, last activity, and the posting of request completions.
// A CRTP base: Derived provides close(std::error_code) and idle().
#pragma once

#include <coap/context.hpp>
#include <coap/detail/handler_slot.hpp>
#include <coap/message.hpp>
#include <coap/message_view.hpp>
#include <coap/session_config.hpp>

#include <boost/asio/post.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <typeinfo>

namespace coap::detail {

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

  // libcoap's coap_session_str: "local <-> remote PROTOCOL".
  void describe(std::string_view protocol) {
    auto text = [](const endpoint_type& e) {
      const auto a = e.address();
      return a.is_v6() ? "[" + a.to_string() + "]:" + std::to_string(e.port())
                       : a.to_string() + ":" + std::to_string(e.port());
    };
    const std::string s = text(local_) + " <-> " + text(peer_) + " " + std::string(protocol);
    description_.assign(s.begin(), s.end());
  }

  // Ends the session's life-cycle for observers: closed, or failed with a reason.
  void emit_closed(std::error_code why) {
    const bool normal = why == error::session_closed;
    ctx_.emit(normal ? session_event::closed : session_event::failed, description_,
              normal ? std::error_code() : why);
  }

  // Completions are posted, never run inline: a handler may start requests or release the
  // session freely. (A lambda rather than asio::append: Boost 1.81's any_completion_handler
  // recurses when asio copies it as an lvalue.)
  void deliver(response_handler h, std::error_code ec, owned_message m) {
    boost::asio::post(ctx_.get_executor(), [h = std::move(h), ec, m = std::move(m)]() mutable {
      std::move(h)(ec, std::move(m));
    });
  }
  void complete(response_handler h, std::error_code ec, const message_view* response) {
    owned_message m{Allocator(ctx_.get_allocator())};
    if (response) m.assign(*response);
    deliver(std::move(h), ec, std::move(m));
  }
  void fail_soon(response_handler h, std::error_code ec) {
    deliver(std::move(h), ec, owned_message{Allocator(ctx_.get_allocator())});
  }

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
