// RFC 7252 section 4.5: message deduplication. For EXCHANGE_LIFETIME after a CON (or
// NON_LIFETIME after a NON) arrives, a duplicate must get the same answer without the request
// being processed again. Bounded: at most `capacity` message IDs per session, the oldest
// forgotten first. Storage is a ring of entries whose answer buffers keep their capacity, and
// an open-addressing index by message ID: no allocation per message once warm.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace coap::detail {

template <class Allocator>
class dedup_cache {
  template <class T>
  using rebind = typename std::allocator_traits<Allocator>::template rebind_alloc<T>;
  using clock = std::chrono::steady_clock;

 public:
  enum class state : std::uint8_t {
    in_progress,  // the handler has not answered yet
    answered,     // `answer` holds the bytes to send again (may be empty: nothing to send)
  };
  struct entry {
    std::uint16_t message_id = 0;
    state status = state::in_progress;
    clock::time_point expires{};
    std::vector<std::uint8_t, rebind<std::uint8_t>> answer;
    explicit entry(const Allocator& a) : answer(rebind<std::uint8_t>(a)) {}
  };

  explicit dedup_cache(std::size_t capacity, const Allocator& alloc = Allocator())
      : capacity_(capacity ? capacity : 1), entries_(rebind<entry>(alloc)),
        index_(rebind<std::int32_t>(alloc)), alloc_(alloc) {}

  // The live entry for this message ID, or nullptr.
  entry* find(std::uint16_t mid, clock::time_point now) noexcept {
    expire(now);
    if (index_.empty()) return nullptr;
    for (std::size_t i = slot_of(mid);; i = (i + 1) & mask()) {
      const std::int32_t e = index_[i];
      if (e < 0) return nullptr;
      if (entries_[static_cast<std::size_t>(e)].message_id == mid) return &entries_[static_cast<std::size_t>(e)];
    }
  }

  // Records a new message ID (the caller checked find() first). Evicts the oldest at capacity.
  entry& insert(std::uint16_t mid, clock::time_point expires) {
    // The index grows with the entries (kept at most half full), so that a session that has
    // seen a few messages holds a few slots, not the index for its whole capacity.
    if (index_.empty() || (size_ + 1) * 2 > index_.size()) grow_index();
    std::size_t slot;
    if (size_ == capacity_) {
      slot = oldest_;
      unindex(entries_[slot].message_id);
      oldest_ = (oldest_ + 1) % capacity_;
      --size_;
    } else if (entries_.size() < capacity_) {
      // Grow lazily: an idle session keeps only what it has used.
      entries_.emplace_back(alloc_);
      slot = entries_.size() - 1;
    } else {
      slot = (oldest_ + size_) % capacity_;
    }
    entry& e = entries_[slot];
    e.message_id = mid;
    e.status = state::in_progress;
    e.expires = expires;
    e.answer.clear();
    ++size_;
    for (std::size_t i = slot_of(mid);; i = (i + 1) & mask()) {
      if (index_[i] < 0) {
        index_[i] = static_cast<std::int32_t>(slot);
        break;
      }
    }
    return e;
  }

  // Forgets entries whose lifetime has passed (they are in arrival order, so only the front).
  void expire(clock::time_point now) noexcept {
    while (size_ && entries_[oldest_].expires <= now) {
      unindex(entries_[oldest_].message_id);
      oldest_ = (oldest_ + 1) % capacity_;
      --size_;
    }
  }

  std::size_t size() const noexcept { return size_; }
  std::size_t capacity() const noexcept { return capacity_; }

 private:
  std::size_t table_size() const noexcept {
    std::size_t n = 8;
    while (n < capacity_ * 2) n <<= 1;
    return n;
  }
  // Doubles the index (8 slots at first, table_size() at most) and re-indexes the live entries.
  void grow_index() {
    const std::size_t target = index_.empty() ? 8 : std::min(index_.size() * 2, table_size());
    if (target <= index_.size()) return;
    index_.assign(target, -1);
    for (std::size_t k = 0; k < size_; ++k) {
      const std::size_t slot = (oldest_ + k) % capacity_;
      for (std::size_t i = slot_of(entries_[slot].message_id);; i = (i + 1) & mask()) {
        if (index_[i] < 0) {
          index_[i] = static_cast<std::int32_t>(slot);
          break;
        }
      }
    }
  }
  std::size_t mask() const noexcept { return index_.size() - 1; }
  std::size_t slot_of(std::uint16_t mid) const noexcept {
    return (std::size_t{mid} * 0x9e3779b1u) & mask();
  }
  // Linear probing with backward-shift deletion (Knuth 6.4, algorithm R): no tombstones.
  void unindex(std::uint16_t mid) noexcept {
    std::size_t i = slot_of(mid);
    while (entries_[static_cast<std::size_t>(index_[i])].message_id != mid) i = (i + 1) & mask();
    for (std::size_t j = (i + 1) & mask();; j = (j + 1) & mask()) {
      if (index_[j] < 0) break;
      const std::size_t home = slot_of(entries_[static_cast<std::size_t>(index_[j])].message_id);
      // Move j back to i when its home slot is not cyclically within (i, j].
      const bool between = i <= j ? (i < home && home <= j) : (i < home || home <= j);
      if (!between) {
        index_[i] = index_[j];
        i = j;
      }
    }
    index_[i] = -1;
  }

  std::size_t capacity_;
  std::vector<entry, rebind<entry>> entries_;
  std::vector<std::int32_t, rebind<std::int32_t>> index_;
  std::size_t oldest_ = 0;
  std::size_t size_ = 0;
  Allocator alloc_;
};

}  // namespace coap::detail
