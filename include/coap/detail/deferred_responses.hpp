// RFC 7252 section 5.2.2 (separate responses; RFC 8323 keeps them over TCP): the requests of one
// session whose handler deferred its answer (basic_response::defer), by the exchange ID that a
// later deferred_response::send names. The request whose handler runs is the caller's (on its
// stack) until the handler deferred: a session whose answers all go at once keeps no entry,
// nor room for one, nor an empty table (issue 16's idle-session size; detail/lazy.hpp).
#pragma once

#include <coap/detail/lazy.hpp>
#include <coap/detail/no_response.hpp>
#include <coap/message_view.hpp>
#include <coap/resource.hpp>
#include <coap/token.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

namespace coap::detail {

inline coap::token token_of(const message_view& m) noexcept {
  coap::token t;
  t.assign(m.token());
  return t;
}

template <class Allocator>
class deferred_responses {
 public:
  struct entry {
    std::uint64_t id;
    coap::token request_token;
    bool confirmable;  // UDP: the separate response goes CON (else NON); unused over TCP
    std::uint16_t request_message_id = 0;
    // UDP (session_config::deferred_ack_delay): the request's empty ACK is still to go, then;
    // the answer sent before goes piggybacked in the ACK instead.
    std::optional<std::chrono::steady_clock::time_point> ack_due{};
    std::uint8_t no_response = 0;  // RFC 7967: the request's No-Response value
  };

  explicit deferred_responses(const Allocator& a) : table_(a) {}

  bool empty() const noexcept { return size() == 0; }
  std::size_t size() const noexcept { return table_.size() + (current_ != nullptr); }
  void clear() noexcept {
    if (auto* t = table_.get()) t->clear();
    current_ = nullptr;
  }

  // Before a request's handler runs: `res` is bound to `current` (the caller's, alive until
  // keep_if or roll_back), so that a response sent from inside the handler finds it.
  template <class Response>
  void open(Response& res, std::weak_ptr<deferred_response::sink> sink, const message_view& request,
            bool confirmable, entry& current) noexcept {
    response_access::bind(res, std::move(sink), ++last_id_);
    current = entry{last_id_, token_of(request), confirmable, request.message_id(), std::nullopt,
                    no_response_bits(request)};
    current_ = &current;
  }
  // After the handler: the request joins the table when its answer is still to come. Throws
  // bad_alloc when the allocator refuses it room: the request then counts as refused (the
  // caller's roll_back), and a later send of its answer finds nothing.
  void keep_if(bool deferred) {
    if (deferred && current_) table_.ensure().push_back(*current_);
    current_ = nullptr;
  }
  // A request whose handling the allocator refused: what it registered since mark() goes.
  std::uint64_t mark() const noexcept { return last_id_; }
  void roll_back(std::uint64_t mark) noexcept {
    if (current_ && current_->id > mark) current_ = nullptr;
    erase_first([&](const entry& e) { return e.id > mark; });
  }

  // The request still waiting for the answer `id`, or null (answered already, or closed).
  const entry* find(std::uint64_t id) const noexcept { return const_cast<deferred_responses*>(this)->find(id); }
  entry* find(std::uint64_t id) noexcept {
    if (current_ && current_->id == id) return current_;
    const auto entries = table_.items();
    auto it = std::find_if(entries.begin(), entries.end(), [&](const entry& e) { return e.id == id; });
    return it == entries.end() ? nullptr : &*it;
  }
  // The earliest empty ACK still to go (UDP).
  std::optional<std::chrono::steady_clock::time_point> next_ack_due() const noexcept {
    std::optional<std::chrono::steady_clock::time_point> next;
    for (const auto& e : table_.items())
      if (e.ack_due && (!next || *e.ack_due < *next)) next = e.ack_due;
    return next;
  }
  // Calls ack(request_message_id) for every empty ACK due by `now`, and marks it sent.
  template <class Ack>
  void send_due_acks(std::chrono::steady_clock::time_point now, Ack ack) {
    for (auto& e : table_.items())
      if (e.ack_due && *e.ack_due <= now) {
        e.ack_due.reset();
        ack(e.request_message_id);
      }
  }
  void erase(std::uint64_t id) noexcept {
    if (current_ && current_->id == id) current_ = nullptr;
    else erase_first([&](const entry& e) { return e.id == id; });
  }

 private:
  template <class Predicate>
  void erase_first(Predicate p) noexcept {
    auto* t = table_.get();
    if (!t) return;
    auto it = std::find_if(t->begin(), t->end(), p);
    if (it != t->end()) t->erase(it);
  }

  lazy_vector<entry, Allocator> table_;
  entry* current_ = nullptr;  // the request whose handler runs, until it deferred or answered
  std::uint64_t last_id_ = 0;
};

}  // namespace coap::detail
