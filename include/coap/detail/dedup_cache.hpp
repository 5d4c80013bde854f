// RFC 7252 section 4.5: message deduplication. For EXCHANGE_LIFETIME after a CON (or
// NON_LIFETIME after a NON) arrives, a duplicate must get the same answer without the request
// being processed again; the rule "MAY be relaxed" for idempotent requests (sections 4.5 and
// 5.1). One store serves every session of a server endpoint (keys: the session's owner number
// and the message ID), so that its size follows the endpoint's request rate x
// EXCHANGE_LIFETIME and not the number of peers; a client session has a store of its own.
//
// Bounded, in two rings:
// - droppable: idempotent requests (GET, PUT, DELETE, FETCH, iPATCH) and received separate
//   responses. When full, the oldest entry is dropped: a later duplicate of it is processed
//   again, which section 4.5 allows for idempotent requests (a duplicate response is matched
//   again or rejected with RST);
// - kept: POST, PATCH and methods we do not know. Never dropped before their lifetime; when
//   full, insert() refuses and the caller answers 5.03 Service Unavailable with Max-Age
//   retry_after() (section 5.9.3.4) without processing the request.
// Each ring keeps its entries in arrival order, their answer buffers keeping their capacity,
// and an open-addressing index: no allocation per message once warm.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace coap::detail {

enum class dedup_state : std::uint8_t {
  in_progress,  // the handler has not answered yet
  answered,     // `answer` holds the bytes to send again (may be empty: nothing to send)
};

// One ring: at most `capacity` keys, the oldest forgotten first; a key is found only before
// its expiry.
template <class Allocator>
class dedup_ring {
  template <class T>
  using rebind = typename std::allocator_traits<Allocator>::template rebind_alloc<T>;
  using clock = std::chrono::steady_clock;

 public:
  using state = dedup_state;
  struct entry {
    std::uint64_t key = 0;
    clock::time_point expires{};
    state status = state::in_progress;
    bool indexed = false;  // false: forgotten, or an expired one whose key came again
    std::vector<std::uint8_t, rebind<std::uint8_t>> answer;
    explicit entry(const Allocator& a) : answer(rebind<std::uint8_t>(a)) {}
  };

  explicit dedup_ring(std::size_t capacity, const Allocator& alloc = Allocator())
      : capacity_(capacity ? capacity : 1), entries_(rebind<entry>(alloc)), index_(rebind<std::int32_t>(alloc)),
        alloc_(alloc) {}

  // The live entry for this key, or nullptr.
  entry* find(std::uint64_t key, clock::time_point now) noexcept {
    expire(now);
    if (index_.empty()) return nullptr;
    for (std::size_t i = slot_of(key);; i = (i + 1) & mask()) {
      const std::int32_t e = index_[i];
      if (e < 0) return nullptr;
      entry& found = entries_[static_cast<std::size_t>(e)];
      // Behind an older entry, a shorter-lived one may have expired already (section 4.5:
      // a message ID may be reused after its lifetime).
      if (found.key == key) return found.expires > now ? &found : nullptr;
    }
  }

  bool full() const noexcept { return size_ == capacity_; }
  // When the oldest entry expires (the ring is not empty).
  clock::time_point oldest_expiry() const noexcept { return entries_[oldest_].expires; }

  // Records a new key (the caller checked find() first; an expired entry of the same key is
  // replaced). Evicts the oldest at capacity.
  entry& insert(std::uint64_t key, clock::time_point expires) {
    // The index grows with the entries (kept at most half full), so that a store that has
    // seen a few messages holds a few slots, not the index for its whole capacity.
    if (index_.empty() || (size_ + 1) * 2 > index_.size()) grow_index();
    // Grown lazily: until the ring first fills, live entries end at entries_.size().
    if (entries_.size() < capacity_) entries_.emplace_back(alloc_);
    unindex_key(key);  // an expired entry with this key, if any, stays in the ring unindexed
    std::size_t slot;
    if (size_ == capacity_) {
      slot = oldest_;
      unindex_slot(slot);
      oldest_ = (oldest_ + 1) % capacity_;
      --size_;
    } else {
      slot = (oldest_ + size_) % capacity_;
    }
    entry& e = entries_[slot];
    e.key = key;
    e.indexed = true;
    e.status = state::in_progress;
    e.expires = expires;
    e.answer.clear();
    ++size_;
    for (std::size_t i = slot_of(key);; i = (i + 1) & mask()) {
      if (index_[i] < 0) {
        index_[i] = static_cast<std::int32_t>(slot);
        break;
      }
    }
    return e;
  }

  // Forgets entries whose lifetime has passed (in arrival order: from the front).
  void expire(clock::time_point now) noexcept {
    while (size_ && entries_[oldest_].expires <= now) {
      unindex_slot(oldest_);
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
      if (!entries_[slot].indexed) continue;
      for (std::size_t i = slot_of(entries_[slot].key);; i = (i + 1) & mask()) {
        if (index_[i] < 0) {
          index_[i] = static_cast<std::int32_t>(slot);
          break;
        }
      }
    }
  }
  std::size_t mask() const noexcept { return index_.size() - 1; }
  std::size_t slot_of(std::uint64_t key) const noexcept {
    return static_cast<std::size_t>((key * 0x9e3779b97f4a7c15ull) >> 32) & mask();
  }
  // Takes the index entry of `key`, or of ring slot `slot`, out (nothing when there is none).
  void unindex_key(std::uint64_t key) noexcept {
    for (std::size_t i = slot_of(key); index_[i] >= 0; i = (i + 1) & mask())
      if (auto& e = entries_[static_cast<std::size_t>(index_[i])]; e.key == key) {
        e.indexed = false;
        return remove_at(i);
      }
  }
  void unindex_slot(std::size_t slot) noexcept {
    if (!entries_[slot].indexed) return;
    entries_[slot].indexed = false;
    for (std::size_t i = slot_of(entries_[slot].key); index_[i] >= 0; i = (i + 1) & mask())
      if (static_cast<std::size_t>(index_[i]) == slot) return remove_at(i);
  }
  // Linear probing with backward-shift deletion (Knuth 6.4, algorithm R): no tombstones.
  void remove_at(std::size_t i) noexcept {
    for (std::size_t j = (i + 1) & mask();; j = (j + 1) & mask()) {
      if (index_[j] < 0) break;
      const std::size_t home = slot_of(entries_[static_cast<std::size_t>(index_[j])].key);
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

// The store of an endpoint (or of a client session): both rings, and the owner numbers that
// keep one session's message IDs apart from another's (never reused, so a new session at a
// freed one's address does not see its entries).
template <class Allocator>
class dedup_cache {
  using clock = std::chrono::steady_clock;

 public:
  using state = dedup_state;
  using entry = typename dedup_ring<Allocator>::entry;
  enum class kind : std::uint8_t { droppable, kept };

  dedup_cache(std::size_t droppable_capacity, std::size_t kept_capacity, const Allocator& alloc = Allocator())
      : droppable_(droppable_capacity, alloc), kept_(kept_capacity, alloc) {}

  // A number for a new session (its keys' high bits).
  std::uint64_t new_owner() noexcept { return ++owners_; }

  entry* find(std::uint64_t owner, std::uint16_t mid, clock::time_point now) noexcept {
    const auto k = key(owner, mid);
    if (entry* e = kept_.find(k, now)) return e;
    return droppable_.find(k, now);
  }

  // Records a new message ID (the caller checked find() first). A droppable entry always gets
  // in (the oldest goes at capacity); a kept one gets nullptr when its ring is full of live
  // entries. Entry pointers stay valid until the next insert.
  entry* insert(std::uint64_t owner, std::uint16_t mid, clock::time_point expires, kind k, clock::time_point now) {
    ++inserts_;
    if (k == kind::droppable) return &droppable_.insert(key(owner, mid), expires);
    kept_.expire(now);
    if (kept_.full()) return nullptr;
    return &kept_.insert(key(owner, mid), expires);
  }
  // Inserts so far: an entry pointer taken when this was n is still valid while it is n.
  std::uint64_t inserts() const noexcept { return inserts_; }

  // Section 5.9.3.4: seconds until the kept ring has room again (Max-Age of the refusal).
  std::uint32_t retry_after(clock::time_point now) const noexcept {
    if (!kept_.size()) return 1;
    const auto s = std::chrono::ceil<std::chrono::seconds>(kept_.oldest_expiry() - now).count();
    return static_cast<std::uint32_t>(std::max<decltype(s)>(s, 1));
  }

  std::size_t size() const noexcept { return droppable_.size() + kept_.size(); }
  const dedup_ring<Allocator>& droppable() const noexcept { return droppable_; }
  const dedup_ring<Allocator>& kept() const noexcept { return kept_; }

 private:
  static std::uint64_t key(std::uint64_t owner, std::uint16_t mid) noexcept { return owner << 16 | mid; }

  dedup_ring<Allocator> droppable_;
  dedup_ring<Allocator> kept_;
  std::uint64_t owners_ = 0;
  std::uint64_t inserts_ = 0;
};

// Sections 4.5 and 5.1: a duplicate of which requests may be processed again. POST and PATCH
// may not (RFC 8132 section 3: iPATCH and FETCH may), nor methods we do not know.
constexpr bool idempotent_method(std::uint8_t code) noexcept {
  // 0.01 GET, 0.02 POST, 0.03 PUT, 0.04 DELETE, 0.05 FETCH, 0.06 PATCH, 0.07 iPATCH.
  return code == 1 || code == 3 || code == 4 || code == 5 || code == 7;
}

}  // namespace coap::detail
