// A type-erased completion handler that can be stored in containers. Boost 1.81's
// any_completion_handler move-assignment constructs from `other` as an lvalue, which picks the
// converting constructor and recurses without end; this holder assigns through the (correct)
// move constructor instead.
#pragma once

#include <boost/asio/any_completion_handler.hpp>

#include <utility>

namespace coap::detail {

template <class Signature>
class handler_slot {
 public:
  using handler_type = boost::asio::any_completion_handler<Signature>;

  handler_slot() = default;
  handler_slot(handler_type h) noexcept : h_(std::move(h)) {}
  handler_slot(handler_slot&& o) noexcept : h_(std::move(o.h_)) {}
  handler_slot& operator=(handler_slot&& o) noexcept {
    handler_type(std::move(o.h_)).swap(h_);
    return *this;
  }
  handler_slot(const handler_slot&) = delete;
  handler_slot& operator=(const handler_slot&) = delete;

  explicit operator bool() const noexcept { return static_cast<bool>(h_); }
  // Moves the handler out, leaving the slot empty.
  handler_type take() noexcept { return handler_type(std::move(h_)); }

 private:
  handler_type h_;
};

}  // namespace coap::detail
