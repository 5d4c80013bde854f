// RFC 7641 sections 4.1-4.5 (and RFC 8323 section 7), the server's side: who observes what
// on one session, and when a notification must be confirmable. Sans-I/O; the session sends.
//
// An observer is (session, token) registered on a resource (section 4.1). Its registration
// request is kept, encoded, so that each notification runs the resource's GET/FETCH handler on
// the same request (the same Uri-Query, Accept, ...), as libcoap does. Memory: the session's
// allocator; counted against context_config::max_observers and max_observers_per_resource.
#pragma once

#include <coap/detail/lazy.hpp>
#include <coap/message.hpp>
#include <coap/message_view.hpp>
#include <coap/session_config.hpp>
#include <coap/token.hpp>
#include <coap/udp_codec.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

namespace coap::detail {

// Section 4.4: sequence numbers are 24 bits and wrap.
inline constexpr std::uint32_t observe_sequence_mask = 0xFFFFFF;

template <class Allocator>
class observer_list {
  template <class T>
  using rebind = typename std::allocator_traits<Allocator>::template rebind_alloc<T>;
  using clock = std::chrono::steady_clock;
  using bytes = std::vector<std::uint8_t, rebind<std::uint8_t>>;

 public:
  struct observer {
    std::uint64_t resource_id = 0;
    coap::token token;
    bytes request;                       // the registration, as udp_codec encodes it
    std::uint16_t last_message_id = 0;   // UDP: of the latest notification (an RST names it)
    bool sent_any = false;
    unsigned since_confirmable = 0;      // notifications since the last CON
    clock::time_point last_confirmable{};
    bool pending = false;                // registered by a deferred answer not sent yet (section 4.1)
    explicit observer(const Allocator& a) : request(rebind<std::uint8_t>(a)) {}
  };

  explicit observer_list(const Allocator& a) : list_(a) {}

  std::size_t size() const noexcept { return list_.size(); }
  bool empty() const noexcept { return list_.empty(); }
  observer& operator[](std::size_t i) noexcept { return list_.items()[i]; }

  // Section 4.1: the observer with this token (on any resource: tokens are per session).
  std::optional<std::size_t> find(std::span<const std::uint8_t> token) const noexcept {
    const auto l = list_.items();
    for (std::size_t i = 0; i < l.size(); ++i)
      if (std::ranges::equal(l[i].token.bytes(), token)) return i;
    return std::nullopt;
  }
  // The observer whose latest notification had this message ID (an RST or a CON timeout).
  std::optional<std::size_t> find_by_message_id(std::uint16_t mid) const noexcept {
    const auto l = list_.items();
    for (std::size_t i = 0; i < l.size(); ++i)
      if (l[i].sent_any && l[i].last_message_id == mid) return i;
    return std::nullopt;
  }

  // Adds an observer of `resource_id` for the request `m` (or refreshes the one with its token:
  // a re-registration, section 4.1). The request is copied encoded. Throws std::bad_alloc,
  // leaving the list as it was.
  // Returns true when a new observer was added (the caller counts it).
  bool add(std::uint64_t resource_id, const message_view& m) {
    coap::token t;
    t.assign(m.token());
    const Allocator& alloc = list_.get_allocator();
    basic_message<Allocator> copy{alloc};
    copy.assign(m);
    copy.set_type(message_type::confirmable);
    bytes encoded{rebind<std::uint8_t>(alloc)};
    if (udp_codec::encode(copy, encoded)) return false;
    if (auto i = find(m.token())) {
      // Same token: the same observation, perhaps of another resource now.
      (*this)[*i].resource_id = resource_id;
      (*this)[*i].request = std::move(encoded);
      return false;
    }
    auto& observers = list_.ensure();
    observers.reserve(observers.size() + 1);
    observer o(alloc);
    o.resource_id = resource_id;
    o.token = t;
    o.request = std::move(encoded);
    o.last_confirmable = clock::now();
    observers.push_back(std::move(o));
    return true;
  }

  // Removes observer i; returns its resource id. The last one takes the vector with it.
  std::uint64_t remove(std::size_t i) noexcept {
    auto& observers = *list_.get();
    const auto id = observers[i].resource_id;
    observers.erase(observers.begin() + static_cast<std::ptrdiff_t>(i));
    if (observers.empty()) list_.reset();
    return id;
  }
  void clear() noexcept { list_.reset(); }

  // Section 4.5: NON by default; CON when the handler asks, every Nth time, and at least
  // once per interval, so that a vanished observer is noticed. Updates the counters.
  static bool next_is_confirmable(observer& o, bool handler_asked, unsigned every,
                                  std::chrono::seconds interval, clock::time_point now) noexcept {
    const bool con = handler_asked || (every && o.since_confirmable + 1 >= every) ||
                     now - o.last_confirmable >= interval;
    if (con) {
      o.since_confirmable = 0;
      o.last_confirmable = now;
    } else {
      ++o.since_confirmable;
    }
    return con;
  }

 private:
  lazy_vector<observer, Allocator> list_;  // freed with the last observer
};

}  // namespace coap::detail
