// RFC 8516: 4.29 Too Many Requests, with Max-Age saying when the peer may try again. A server
// session (one peer) admits requests through a token bucket (session_config::
// max_request_rate per second, up to max_request_burst at once) and while fewer than
// max_pending_responses of its answers are deferred; a refused request is answered 4.29
// without its handler running. Constant size per session: a flood of any length grows nothing.
#pragma once

#include <coap/session_config.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>

namespace coap::detail {

class request_rate_limit {
 public:
  using clock = std::chrono::steady_clock;

  // True: the request may be served. False: refused; `retry_after` is the Max-Age of the
  // 4.29 (whole seconds until a request would be admitted, at least 1).
  bool admit(const session_config& config, clock::time_point now, std::size_t pending_responses,
             std::uint32_t& retry_after) noexcept {
    if (config.max_pending_responses && pending_responses >= config.max_pending_responses) {
      retry_after = 1;  // a deferred answer or two will have gone by then
      return false;
    }
    if (config.max_request_rate <= 0) return true;
    const double burst = std::max(1.0, static_cast<double>(config.max_request_burst));
    if (last_ == clock::time_point{}) {  // the first request: a full bucket
      tokens_ = burst;
      last_ = now;
    }
    const double elapsed = std::chrono::duration<double>(now - last_).count();
    tokens_ = std::min(burst, tokens_ + elapsed * config.max_request_rate);
    last_ = now;
    if (tokens_ >= 1.0) {
      tokens_ -= 1.0;
      return true;
    }
    const double wait = (1.0 - tokens_) / config.max_request_rate;
    retry_after = static_cast<std::uint32_t>(std::clamp(std::ceil(wait), 1.0, 4294967295.0));
    return false;
  }

 private:
  double tokens_ = 0;
  clock::time_point last_{};  // of the latest request; the epoch before the first
};

}  // namespace coap::detail
