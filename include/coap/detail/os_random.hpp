// RFC 7252 section 5.3.1 (tokens "generated in a non-trivial, randomized way", so that an
// off-path attacker cannot guess them and forge responses) and section 4.4 (a randomized
// initial message ID): random numbers from the operating system's CSPRNG (getrandom(2)),
// drawn 256 bytes at a time into a buffer inside the object, so that a token costs no system
// call and no allocation most of the time. Needs no TLS library: NoSec builds use it too.
#pragma once

#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>

#include <sys/random.h>

namespace coap::detail {

class os_random {
 public:
  os_random() = default;
  os_random(const os_random&) = delete;
  os_random& operator=(const os_random&) = delete;

  std::uint64_t next() noexcept {
    if (used_ + sizeof(std::uint64_t) > pool_.size()) refill();
    std::uint64_t v;
    std::memcpy(&v, pool_.data() + used_, sizeof v);
    // Drawn bytes are not kept: a later memory disclosure does not reveal past tokens.
    std::memset(pool_.data() + used_, 0, sizeof v);
    used_ += sizeof v;
    return v;
  }

 private:
  void refill() noexcept {
    std::size_t filled = 0;
    while (filled < pool_.size()) {
      const ssize_t n = ::getrandom(pool_.data() + filled, pool_.size() - filled, 0);
      if (n > 0) {
        filled += static_cast<std::size_t>(n);
      } else if (n < 0 && errno != EINTR) {
        // getrandom fails only without kernel support (Linux < 3.17) or under a seccomp filter
        // that forbids it: std::random_device (the same pool, through /dev/urandom) instead.
        std::random_device device;
        for (; filled < pool_.size(); ++filled) pool_[filled] = static_cast<std::uint8_t>(device());
      }
    }
    used_ = 0;
  }

  std::array<std::uint8_t, 256> pool_{};
  std::size_t used_ = 256;  // empty: the first next() fills it
};

}  // namespace coap::detail
