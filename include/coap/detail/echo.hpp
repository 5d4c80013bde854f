// RFC 9175 section 2: the Echo values a server session issues and checks: freshness of a
// request (section 2.3) and verification of a UDP peer's address before it may be sent answers
// much larger than its requests (section 2.4, amplification mitigation).
//
// A server session is one peer already (its address is the endpoint's key), so the "per-peer
// store" is this one value per session: 8 bytes from the context's CSPRNG, unguessable by a
// peer that did not receive it, valid for session_config::echo_freshness after it was issued.
// Nothing grows: sessions are capped by context_config::max_sessions.
#pragma once

#include <coap/option.hpp>
#include <coap/session_config.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <span>

namespace coap::detail {

// Section 2.2.1: an Echo value is 1 to 40 bytes; a longer one is treated like an unrecognized
// elective option (RFC 7252 section 5.4.3): ignored.
inline constexpr std::size_t max_echo_length = 40;

// The Echo value of a message when it has a valid one (1..40 bytes), else an empty span.
template <class Message>
std::span<const std::uint8_t> echo_value(const Message& m) noexcept {
  const auto o = m.find(option_number::echo);
  if (!o || o->value().empty() || o->value().size() > max_echo_length) return {};
  return o->value();
}

class echo_state {
 public:
  using clock = std::chrono::steady_clock;

  // What a request's Echo option proves; called once per request, before its handler.
  // Fresh: it carries the value issued at most `freshness` ago (section 2.3). Any request
  // carrying the current value, however old, proves the peer receives at its address.
  template <class Message>
  bool check(const Message& request, clock::time_point now, std::chrono::milliseconds freshness) noexcept {
    const auto v = echo_value(request);
    if (!issued_ || v.size() != value_.size() || !std::equal(v.begin(), v.end(), value_.begin())) return false;
    address_verified_ = true;
    return now - issued_at_ <= freshness;
  }

  // The value for a 4.01 Unauthorized with Echo: the current one while it is younger than half
  // its validity (so that two requests challenged together both succeed on their retry), else a
  // new one from `random`.
  template <class Random>
  std::span<const std::uint8_t> issue(clock::time_point now, std::chrono::milliseconds freshness, Random&& random) {
    if (!issued_ || now - issued_at_ > freshness / 2) {
      const std::uint64_t r = random();
      std::memcpy(value_.data(), &r, value_.size());
      issued_at_ = now;
      issued_ = true;
    }
    return value_;
  }

  // Section 2.4: the peer echoed a value of ours (its address is its own).
  bool address_verified() const noexcept { return address_verified_; }

 private:
  std::array<std::uint8_t, 8> value_{};
  clock::time_point issued_at_{};
  bool issued_ = false;
  bool address_verified_ = false;
};

// Section 2.4: an answer of `response_size` bytes to a request of `request_size` bytes from an
// unverified address is too large when it exceeds `factor` times the request (0: no limit).
constexpr bool amplifies(std::size_t response_size, std::size_t request_size, unsigned factor) noexcept {
  return factor != 0 && response_size > std::size_t{factor} * request_size;
}

}  // namespace coap::detail
