// RFC 8613 sections 3.2.2 and 7.4: the server's replay window, the anti-replay sliding window
// of RFC 6347 section 4.1.2.6 (default 32 Partial IVs wide, at most 64 here).
#pragma once

#include <cstddef>
#include <cstdint>

namespace coap::oscore_core {

class replay_window {
 public:
  static constexpr std::size_t default_size = 32;
  static constexpr std::size_t max_size = 64;

  // `size` is clamped to [1, max_size].
  explicit replay_window(std::size_t size = default_size) noexcept
      : size_(size == 0 ? 1 : size > max_size ? max_size : size) {}

  std::size_t size() const noexcept { return size_; }

  // True when `sequence_number` was not accepted before and is not older than the window.
  // Checking and accepting are separate because a number is accepted only once its message
  // verified (section 8.2 step 6); the caller serializes the two (section 7.4: atomic).
  bool is_fresh(std::uint64_t sequence_number) const noexcept {
    if (!any_ || sequence_number > highest_) return true;
    const std::uint64_t age = highest_ - sequence_number;
    if (age >= size_) return false;
    return ((seen_ >> age) & 1u) == 0;
  }

  // Records a verified sequence number; the window slides when it is the highest yet.
  void accept(std::uint64_t sequence_number) noexcept {
    if (!any_) {
      any_ = true;
      highest_ = sequence_number;
      seen_ = 1;
    } else if (sequence_number > highest_) {
      const std::uint64_t shift = sequence_number - highest_;
      seen_ = shift >= 64 ? 0 : seen_ << shift;
      seen_ |= 1;
      highest_ = sequence_number;
    } else if (const std::uint64_t age = highest_ - sequence_number; age < size_) {
      seen_ |= std::uint64_t{1} << age;
    }
  }

  // Appendix B.1.2: after losing the window, the lowest number to accept from now on.
  void reset(std::uint64_t lowest_acceptable) noexcept {
    any_ = lowest_acceptable != 0;
    // Everything below the limit is "seen": the limit itself becomes the next fresh number.
    highest_ = lowest_acceptable - (any_ ? 1 : 0);
    seen_ = ~std::uint64_t{0};
  }

 private:
  std::size_t size_;
  bool any_ = false;
  std::uint64_t highest_ = 0;
  std::uint64_t seen_ = 0;  // bit i: highest_ - i was accepted
};

}  // namespace coap::oscore_core
