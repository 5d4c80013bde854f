// coap_session(3): "If the Server session is not used for 5 minutes, then it will get
// completely freed off." The idle-pool rules every endpoint applies to its sessions: which
// session is the oldest idle one (evicted first at the session cap), which have been idle past
// the timeout, and how often to look. `get(element)` gives the session of a container element.
#pragma once

#include <algorithm>
#include <chrono>
#include <iterator>

namespace coap::detail {

// The idle session with the oldest last activity, or end.
template <class Range, class Get>
auto find_oldest_idle(Range& sessions, Get get) {
  auto victim = std::end(sessions);
  for (auto it = std::begin(sessions); it != std::end(sessions); ++it)
    if (get(*it).idle() &&
        (victim == std::end(sessions) || get(*it).last_activity() < get(*victim).last_activity()))
      victim = it;
  return victim;
}

// Calls free_session(it) for every session idle for at least `timeout`.
template <class Range, class Get, class Free>
void free_expired(Range& sessions, Get get, std::chrono::steady_clock::duration timeout, Free free_session) {
  const auto now = std::chrono::steady_clock::now();
  for (auto it = std::begin(sessions); it != std::end(sessions);) {
    auto next = std::next(it);
    if (get(*it).idle() && now - get(*it).last_activity() >= timeout) free_session(it);
    it = next;
  }
}

// A quarter of the timeout, between 10 ms and 5 s: a session outlives its timeout by at most
// that much.
inline std::chrono::steady_clock::duration sweep_period(std::chrono::steady_clock::duration timeout) {
  return std::clamp<std::chrono::steady_clock::duration>(timeout / 4, std::chrono::milliseconds(10),
                                                         std::chrono::seconds(5));
}

}  // namespace coap::detail
