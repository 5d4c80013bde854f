// RFC 7252 sections 4.2 and 4.7 (and RFC 7641 section 4.5 for notifications): the messages a
// UDP session sent and still waits on, how they are matched (message ID, token), how many
// count against NSTART, and when each is sent again or given up. Transport-free (sans-I/O): the
// time and random numbers come in; a retransmission or an expiry goes out through a callback,
// so the schedule is testable without a socket (tests/udp_codec_test.cpp).
#pragma once

#include <coap/detail/handler_slot.hpp>
#include <coap/detail/lazy.hpp>
#include <coap/detail/session_common.hpp>
#include <coap/session_config.hpp>
#include <coap/token.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <utility>
#include <vector>

namespace coap::detail {

template <class Allocator, class Signature>
class udp_exchanges {
  template <class T>
  using rebind = typename std::allocator_traits<Allocator>::template rebind_alloc<T>;

 public:
  using clock = std::chrono::steady_clock;
  enum class kind : std::uint8_t { request, ping, separate_response, notification };

  // One message we sent and whose outcome we wait for.
  struct exchange {
    kind what = kind::request;
    std::uint16_t message_id = 0;
    coap::token token;
    bool confirmable = true;
    bool acknowledged = false;  // an empty ACK came: the response follows separately
    unsigned retransmissions = 0;
    clock::duration interval{};
    clock::time_point deadline{};
    std::vector<std::uint8_t, rebind<std::uint8_t>> wire;
    handler_slot<Signature> handler;
    explicit exchange(const Allocator& a) : wire(rebind<std::uint8_t>(a)) {}
  };

  // The table is made with the first exchange and then kept (detail/lazy.hpp): a server
  // session that only answers never has one.
  explicit udp_exchanges(const Allocator& a) : table_(a) {}

  bool empty() const noexcept { return size() == 0; }
  std::size_t size() const noexcept { return table_.size(); }
  exchange& operator[](std::size_t i) noexcept { return table_.items()[i]; }

  // Section 4.7: requests and pings outstanding (NSTART counts them, not our responses).
  std::size_t active_requests() const noexcept {
    return static_cast<std::size_t>(std::ranges::count_if(
        table_.items(), [](const exchange& x) { return x.what == kind::request || x.what == kind::ping; }));
  }
  std::optional<std::size_t> find_by_message_id(std::uint16_t mid) const noexcept {
    const auto l = table_.items();
    for (std::size_t i = 0; i < l.size(); ++i)
      if (l[i].message_id == mid) return i;
    return std::nullopt;
  }
  std::optional<std::size_t> find_request_by_token(std::span<const std::uint8_t> t) const noexcept {
    const auto l = table_.items();
    for (std::size_t i = 0; i < l.size(); ++i)
      if (l[i].what == kind::request && std::ranges::equal(l[i].token.bytes(), t)) return i;
    return std::nullopt;
  }
  // RFC 7641 section 4.5: the CON notification in flight to the observer with token `t`, and
  // whether one to another observer of the peer is.
  exchange* find_notification(const coap::token& t) noexcept {
    for (auto& x : table_.items())
      if (x.what == kind::notification && x.token == t) return &x;
    return nullptr;
  }
  bool other_notification_in_flight(const coap::token& t) const noexcept {
    return std::ranges::any_of(table_.items(), [&](const exchange& x) { return x.what == kind::notification && !(x.token == t); });
  }

  // Room for one more exchange, made before any state changes (bad_alloc leaves all as it was).
  void reserve_one() { reserve_more(table_.ensure(), 1); }

  // Section 4.2: a CON's first timeout is random between ACK_TIMEOUT and ACK_TIMEOUT *
  // ACK_RANDOM_FACTOR (`random()` is asked only then); a NON waits response_timeout.
  template <class Random>
  static void schedule_first(exchange& x, clock::time_point now, const session_config& c, Random random) {
    if (x.confirmable) {
      const double factor =
          1.0 + (c.ack_random_factor - 1.0) * (static_cast<double>(random() >> 11) / 9007199254740992.0);
      x.interval = std::chrono::duration_cast<clock::duration>(c.ack_timeout * factor);
      x.deadline = now + x.interval;
    } else {
      x.deadline = now + c.response_timeout;
    }
  }
  // Section 4.5: how long a message ID from the peer is remembered: EXCHANGE_LIFETIME for a
  // CON, NON_LIFETIME (4.8.2: MAX_TRANSMIT_SPAN + MAX_LATENCY of 100 s) for a NON.
  static clock::duration dedup_lifetime(const session_config& c, bool confirmable) noexcept {
    if (confirmable) return c.exchange_lifetime;
    return std::chrono::duration_cast<std::chrono::seconds>(c.max_transmit_span()) + std::chrono::seconds(100);
  }
  // Enters a scheduled exchange; reserve_one() made its room, so nothing allocates.
  void add(exchange x) noexcept { table_.get()->push_back(std::move(x)); }

  std::optional<clock::time_point> next_deadline() const noexcept {
    const auto l = table_.items();
    if (l.empty()) return std::nullopt;
    return std::ranges::min_element(l, {}, &exchange::deadline)->deadline;
  }

  // Section 4.2: an unacknowledged CON past its deadline is sent again (retransmit(wire)) with
  // a doubled timeout, max_retransmit times; anything else past its deadline (a CON out of
  // retransmissions, a NON, a CON answered by an empty ACK) is given up: expire(i) must take
  // exchange i out (take(i)), and may add others.
  template <class Retransmit, class Expire>
  void on_deadline(clock::time_point now, unsigned max_retransmit, Retransmit retransmit, Expire expire) {
    for (std::size_t i = 0; i < size();) {  // expire() may add: the table is read anew each time
      exchange& x = (*this)[i];
      if (x.deadline > now) {
        ++i;
        continue;
      }
      if (x.confirmable && !x.acknowledged && x.retransmissions < max_retransmit) {
        ++x.retransmissions;
        x.interval *= 2;
        x.deadline = now + x.interval;
        retransmit(std::span<const std::uint8_t>(x.wire));
        ++i;
        continue;
      }
      expire(i);
    }
  }

  exchange take(std::size_t i) {
    auto& v = *table_.get();
    exchange x = std::move(v[i]);
    v.erase(v.begin() + static_cast<std::ptrdiff_t>(i));
    return x;
  }
  // A cancelled request or ping (by its key) goes without completing its handler; true when it
  // was here.
  bool abandon(const coap::token& t) {
    auto* table = table_.get();
    if (!table) return false;
    auto& v = *table;
    for (std::size_t i = 0; i < v.size(); ++i)
      if ((v[i].what == kind::request || v[i].what == kind::ping) && v[i].token == t) {
        v.erase(v.begin() + static_cast<std::ptrdiff_t>(i));
        return true;
      }
    return false;
  }
  // The session ends: every waiting handler goes to fail(handler), the table empty first.
  template <class Fail>
  void fail_all(Fail fail) {
    auto* table = table_.get();
    if (!table) return;
    auto all = std::move(*table);
    table->clear();
    for (auto& x : all)
      if (x.handler) fail(x.handler.take());
  }

 private:
  lazy_vector<exchange, Allocator> table_;
};

}  // namespace coap::detail
