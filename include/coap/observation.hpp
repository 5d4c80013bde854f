// RFC 7641 section 3 (Observe, client side): the handle of one observation, as
// session::async_observe gives it. Notifications come in order, fresh (section 3.4), a large
// state whole (RFC 7959 section 2.6), with Asio's completion tokens:
//
//   auto [ec, obs] = co_await session.async_observe(get("time"), asio::use_awaitable);
//   for (;;) {
//     auto [ec, m] = co_await obs.async_next(asio::use_awaitable);
//     if (ec) break;  // error::not_observable, session_closed, operation_aborted, ...
//   }
#pragma once

#include <coap/detail/observe_client.hpp>
#include <coap/error.hpp>
#include <coap/message.hpp>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>

#include <memory>
#include <system_error>
#include <utility>

namespace coap {

// A movable, copyable handle: copies share one observation. When the last handle goes, the
// observation is forgotten (the next notification is answered with RST, section 3.6), and
// the session's table entry with it. Every member is safe on an empty handle.
template <class Allocator = std::allocator<std::uint8_t>>
class basic_observation {
 public:
  using message_type = basic_message<Allocator>;
  using next_signature = void(std::error_code, message_type);
  using state_type = detail::observation_state_base<Allocator>;

  basic_observation() noexcept = default;
  explicit basic_observation(std::shared_ptr<state_type> state) noexcept : state_(std::move(state)) {}

  // The next message: first the response to the registration, then each notification, in
  // order. When the observation ends, the messages still buffered come first, then the
  // reason, every time: error::not_observable (an answer without Observe, or a 4.xx/5.xx,
  // which is delivered before), a session error (session_closed, timeout of a re-registration,
  // reset_by_peer, ...), or boost::asio::error::operation_aborted after cancel() or forget().
  // One wait at a time (a second fails with error::queue_full). Cancelling the wait through
  // the handler's cancellation slot completes it with operation_aborted; the observation goes
  // on. An empty handle completes with boost::asio::error::bad_descriptor.
  template <class CompletionToken = boost::asio::deferred_t>
  auto async_next(CompletionToken&& token = {}) {
    return boost::asio::async_initiate<CompletionToken, next_signature>(
        [](auto handler, std::shared_ptr<state_type> state) {
          if (state) return state->start_next(handler);
          auto ex = boost::asio::get_associated_executor(handler);
          boost::asio::post(ex, [h = std::move(handler)]() mutable {
            std::move(h)(std::error_code(boost::system::error_code(boost::asio::error::bad_descriptor)),
                         message_type());
          });
        },
        token, state_);
  }

  // Section 3.6: deregisters with a GET carrying Observe=1 and the registration's token. What
  // is buffered is dropped; the next async_next (or the pending one) completes with
  // operation_aborted.
  void cancel() {
    if (state_) state_->cancel();
  }
  // Stops locally: the server learns of it when its next notification is answered with RST.
  void forget() {
    if (state_) state_->forget();
  }
  // True until the observation ended (buffered notifications may remain).
  [[nodiscard]] bool active() const noexcept { return state_ && state_->active(); }
  // The registration's token, which every notification carries.
  coap::token token() const noexcept { return state_ ? state_->token() : coap::token(); }
  explicit operator bool() const noexcept { return static_cast<bool>(state_); }

 private:
  std::shared_ptr<state_type> state_;
};

using observation = basic_observation<>;

}  // namespace coap
