// RFC 7252 section 4.3 and RFC 8323 section 5.4 (CoAP ping) as an Asio operation that honours
// its handler's cancellation slot (terminal cancellation, any type): the handler gets
// operation_aborted at once, the ping is abandoned (retransmissions stop, a late RST or Pong is
// dropped). Transport-agnostic: a template on the session implementation, which provides
// start_ping(handler) returning the ping's key and abandon(key). A handler without a
// connected slot goes straight to the session, as cheap as before.
#pragma once

#include <coap/detail/session_common.hpp>
#include <coap/error.hpp>

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/post.hpp>

#include <memory>
#include <new>
#include <optional>
#include <system_error>
#include <utility>

namespace coap::detail {

template <class Impl>
class ping_operation : public std::enable_shared_from_this<ping_operation<Impl>> {
 public:
  using message = typename Impl::owned_message;
  using message_allocator = typename message::allocator_type;
  using response_handler = typename Impl::response_handler;

  static void start(const std::shared_ptr<Impl>& impl, response_handler done) {
    auto slot = done.get_cancellation_slot();
    if (!slot.is_connected()) {
      (void)impl->start_ping(std::move(done));
      return;
    }
    using op_allocator = typename std::allocator_traits<message_allocator>::template rebind_alloc<ping_operation>;
    std::shared_ptr<ping_operation> self;
    try {
      // allocate_shared allocates before it moves: on failure `done` is still ours.
      self = std::allocate_shared<ping_operation>(op_allocator(impl->context().get_allocator()), impl, std::move(done));
    } catch (const std::bad_alloc&) {
      complete_later(impl->context().get_executor(), std::move(done), make_error_code(error::no_memory),
                     message(message_allocator(impl->context().get_allocator())));
      return;
    }
    self->watch(slot);
    std::optional<response_handler> h;
    try {
      h.emplace(step{self});
    } catch (const std::bad_alloc&) {
      return self->finish(make_error_code(error::no_memory), message(self->allocator()));
    }
    self->key_ = impl->start_ping(std::move(*h));
  }

  ping_operation(const std::shared_ptr<Impl>& impl, response_handler done)
      : impl_(impl), io_(impl->context().get_executor()), done_(std::move(done)) {}

 private:
  message_allocator allocator() const { return message_allocator(impl_->context().get_allocator()); }

  // The session's completion: back into this operation; its type-erased storage comes from the
  // session's allocator.
  struct step {
    std::shared_ptr<ping_operation> self;
    using allocator_type = message_allocator;
    allocator_type get_allocator() const noexcept { return self->allocator(); }
    void operator()(std::error_code ec, message m) { self->finish(ec, std::move(m)); }
  };

  void watch(boost::asio::cancellation_slot slot) {
    slot_ = slot;
    std::weak_ptr<ping_operation> weak = this->shared_from_this();
    slot_.assign([weak, io = io_](boost::asio::cancellation_type type) {
      if (type == boost::asio::cancellation_type::none) return;
      // The signal may come from another thread: the operation lives on the session's executor.
      boost::asio::post(io, [weak] {
        if (auto self = weak.lock(); self && !self->finished_) {
          self->impl_->abandon(self->key_);
          self->finish(operation_aborted(), message(self->allocator()));
        }
      });
    });
  }

  void finish(std::error_code ec, message m) {
    if (finished_) return;  // cancelled: a late answer is dropped
    finished_ = true;
    if (slot_.is_connected()) slot_.clear();
    complete_later(io_, std::move(done_), ec, std::move(m));
  }

  std::shared_ptr<Impl> impl_;
  typename Impl::context_type::executor_type io_;
  response_handler done_;
  boost::asio::cancellation_slot slot_;
  coap::token key_;
  bool finished_ = false;
};

}  // namespace coap::detail
