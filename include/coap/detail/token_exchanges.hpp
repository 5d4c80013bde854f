// RFC 8323 sections 3 and 5.4: over a reliable transport a request (or a Ping) is matched to
// its answer by token alone (no message IDs, no retransmission), and given up after a
// deadline. The requests of one connection waiting for their answers; transport-free.
#pragma once

#include <coap/detail/handler_slot.hpp>
#include <coap/detail/lazy.hpp>
#include <coap/detail/session_common.hpp>
#include <coap/token.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace coap::detail {

template <class Allocator, class Signature>
class token_exchanges {
 public:
  using clock = std::chrono::steady_clock;
  using handler_type = typename handler_slot<Signature>::handler_type;
  enum class kind : std::uint8_t { request, ping };
  struct pending {
    kind what;
    coap::token token;
    clock::time_point deadline;
    handler_slot<Signature> handler;
  };

  explicit token_exchanges(const Allocator& a) noexcept : list_(a) {}

  bool empty() const noexcept { return list_.empty(); }
  std::size_t size() const noexcept { return list_.size(); }
  const pending& operator[](std::size_t i) const noexcept { return list_.items()[i]; }

  // Room for one more, made before any state changes (bad_alloc leaves all as it was).
  void reserve_one() { reserve_more(list_.ensure(), 1); }
  // Enters an exchange; reserve_one() made its room, so nothing allocates.
  void add(kind k, const coap::token& t, clock::time_point deadline, handler_type h) noexcept {
    list_.get()->push_back(pending{k, t, deadline, std::move(h)});
  }
  std::optional<std::size_t> find(std::span<const std::uint8_t> token) const noexcept {
    const auto all = list_.items();
    for (std::size_t i = 0; i < all.size(); ++i)
      if (std::ranges::equal(all[i].token.bytes(), token)) return i;
    return std::nullopt;
  }
  handler_type take(std::size_t i) noexcept {
    auto& v = *list_.get();
    auto h = v[i].handler.take();
    v.erase(v.begin() + static_cast<std::ptrdiff_t>(i));
    return h;
  }
  // A cancelled request or ping goes without completing its handler; true when it was here.
  bool abandon(const coap::token& t) noexcept {
    const auto all = list_.items();
    for (std::size_t i = 0; i < all.size(); ++i)
      if (all[i].token == t) {
        (void)take(i);
        return true;
      }
    return false;
  }
  std::optional<clock::time_point> next_deadline() const noexcept {
    if (list_.empty()) return std::nullopt;
    return std::ranges::min_element(list_.items(), {}, &pending::deadline)->deadline;
  }
  // Those past their deadline go to expire(handler), in order.
  template <class Expire>
  void expire(clock::time_point now, Expire expire) {
    for (std::size_t i = 0; i < list_.size();) {
      if (list_.items()[i].deadline <= now) expire(take(i));
      else ++i;
    }
  }
  // The connection ends: every waiting handler goes to fail(handler), the table empty first.
  template <class Fail>
  void fail_all(Fail fail) {
    auto* v = list_.get();
    if (!v) return;
    auto all = std::move(*v);
    v->clear();
    for (auto& p : all) fail(p.handler.take());
  }

 private:
  // Made with the first request (a server connection never sends one), then kept.
  lazy_vector<pending, Allocator> list_;
};

}  // namespace coap::detail
