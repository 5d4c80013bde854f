// RFC 7252 section 5.6: a proxy's response cache: freshness by Max-Age (5.6.1), validation
// with ETag (5.6.2), bounded in entries and bytes, least recently used out first. Its memory
// comes from the proxy context's Allocator (entries, keys, representations, index), and the
// byte bound counts what that allocator hands out for them. No I/O and no clock of its own:
// the caller passes `now`, so tests drive time.
#pragma once

#include <coap/code.hpp>
#include <coap/message.hpp>
#include <coap/option.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <iterator>
#include <list>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace coap {

// What the cache may hold (proxy_config::cache).
struct proxy_cache_config {
  bool enabled = true;
  std::size_t max_entries = 256;
  // The bytes the cache's entries take from the Allocator: representations, options, keys,
  // list and index nodes (the index's bucket array aside, a pointer per entry).
  std::size_t max_bytes = std::size_t{1} << 20;
  // Section 5.10.5: a response without Max-Age is fresh for 60 s.
  std::chrono::seconds default_max_age{60};
  // A representation larger than one block is kept this long for the later blocks of its
  // transfer, even when it may not be reused for new requests (RFC 7959 section 2.4).
  std::chrono::seconds block_transfer_window{60};
};

namespace detail {

template <class Allocator = std::allocator<std::uint8_t>>
class basic_proxy_cache {
  template <class T>
  using rebind = typename std::allocator_traits<Allocator>::template rebind_alloc<T>;

 public:
  using clock = std::chrono::steady_clock;
  using message_type = basic_message<Allocator>;
  using key_type = std::basic_string<char, std::char_traits<char>, rebind<char>>;
  struct entry {
    explicit entry(const Allocator& a) : key(rebind<char>(a)), response(a) {}
    key_type key;
    message_type response;            // without Max-Age, Block2, Size2, Observe
    clock::time_point fresh_until;    // reusable for new requests until then (section 5.6.1)
    clock::time_point kept_until;     // after that the entry goes (stale ones wait for validation)
    bool validatable = false;         // has an ETag (section 5.6.2)
    std::size_t bytes = 0;            // what it took from the allocator
  };

  explicit basic_proxy_cache(const proxy_cache_config& c, const Allocator& a = Allocator())
      : config_(c), alloc_(a), entries_(rebind<entry>(a)), index_(0, std::hash<std::string_view>(),
                                                                  std::equal_to<std::string_view>(), index_allocator(a)) {}

  const proxy_cache_config& config() const noexcept { return config_; }
  std::size_t size() const noexcept { return entries_.size(); }
  std::size_t bytes() const noexcept { return bytes_; }

  // The entry for `key`, fresh or not (the caller decides); made most recently used. Entries
  // past kept_until are dropped here.
  entry* find(std::string_view key, clock::time_point now) {
    auto it = index_.find(key);
    if (it == index_.end()) return nullptr;
    if (it->second->kept_until <= now) {
      erase(it->second);
      return nullptr;
    }
    entries_.splice(entries_.begin(), entries_, it->second);
    return &*it->second;
  }

  // Section 5.6.1: the seconds of freshness a response carries: its Max-Age, or the default.
  template <class Message>
  std::chrono::seconds freshness_of(const Message& response) const noexcept {
    if (auto max_age = response.find(option_number::max_age)) return std::chrono::seconds(max_age->as_uint());
    return config_.default_max_age;
  }

  // Stores (or replaces) the representation for `key`: fresh for `fresh_for`; kept for
  // validation while it has an ETag, and for `keep_for` at least (later blocks). Nothing is
  // stored when it alone exceeds the byte bound, or when the allocator refuses.
  template <class Message>
  void store(std::string_view key, const Message& response, clock::time_point now, std::chrono::seconds fresh_for,
             std::chrono::seconds keep_for = std::chrono::seconds(0)) {
    if (!config_.enabled || config_.max_entries == 0) return;
    erase(key);
    const bool validatable = response.find(option_number::etag).has_value();
    // A stale entry with an ETag is worth keeping for a while: a 2.03 revalidates it.
    const auto validation_window = validatable ? std::max(fresh_for, config_.default_max_age) : std::chrono::seconds(0);
    const auto kept_until = now + std::max({fresh_for + validation_window, keep_for});
    if (kept_until <= now) return;
    std::size_t option_count = 0, option_bytes = 0;
    for (option_view o : response.options())
      if (kept_option(o.number())) {
        ++option_count;
        option_bytes += o.value().size();
      }
    const std::size_t bytes = entry_overhead + (key.size() > small_string ? std::max(key.size(), 2 * small_string) + 1 : 0) +
                              option_count * option_record_size + option_bytes + response.payload().size();
    if (bytes > config_.max_bytes) return;
    while (!entries_.empty() && (entries_.size() >= config_.max_entries || bytes_ + bytes > config_.max_bytes))
      erase(std::prev(entries_.end()));
    try {
      // Built apart, then copied: the entry's vectors get exactly their sizes.
      message_type kept(alloc_);
      kept.set_code(response.code());
      for (option_view o : response.options())
        if (kept_option(o.number())) kept.add_option(o.number(), o.value());
      kept.set_payload(response.payload());
      entries_.emplace_front(alloc_);
      auto& e = entries_.front();
      try {
        e.key.assign(key);
        e.response.assign_message(kept);
        e.validatable = validatable;
        e.fresh_until = now + fresh_for;
        e.kept_until = kept_until;
        e.bytes = bytes;
        index_.emplace(std::string_view(e.key), entries_.begin());
      } catch (const std::bad_alloc&) {
        entries_.pop_front();
        return;
      }
      bytes_ += bytes;
    } catch (const std::bad_alloc&) {
      // Not cached: the answer still goes to the client.
    }
  }

  // Section 5.6.2: a 2.03 Valid for the stored entry makes it fresh again for `fresh_for`.
  void refresh(entry& e, clock::time_point now, std::chrono::seconds fresh_for) {
    e.fresh_until = now + fresh_for;
    e.kept_until = std::max(e.kept_until, now + fresh_for + std::max(fresh_for, config_.default_max_age));
  }

  void erase(std::string_view key) {
    if (auto it = index_.find(key); it != index_.end()) erase(it->second);
  }
  void clear() noexcept {
    index_.clear();
    entries_.clear();
    bytes_ = 0;
  }

 private:
  using list_type = std::list<entry, rebind<entry>>;
  using index_value = std::pair<const std::string_view, typename list_type::iterator>;
  using index_allocator = rebind<index_value>;
  using index_type = std::unordered_map<std::string_view, typename list_type::iterator, std::hash<std::string_view>,
                                        std::equal_to<std::string_view>, index_allocator>;

  // What one entry takes besides its bytes: the list node, the index node (with its cached
  // hash) and a bucket pointer; a key beyond the small-string buffer is allocated with its NUL.
  static constexpr std::size_t entry_overhead =
      sizeof(entry) + 2 * sizeof(void*) + sizeof(index_value) + 2 * sizeof(void*) + sizeof(std::size_t);
  static constexpr std::size_t small_string = 15;
  static constexpr std::size_t option_record_size = 12;

  static bool kept_option(std::uint16_t number) noexcept {
    const auto n = static_cast<option_number>(number);
    return n != option_number::max_age && n != option_number::block2 && n != option_number::size2 &&
           n != option_number::observe;
  }

  void erase(typename list_type::iterator it) {
    bytes_ -= it->bytes;
    index_.erase(std::string_view(it->key));
    entries_.erase(it);
  }

  proxy_cache_config config_;
  Allocator alloc_;
  list_type entries_;  // most recently used first
  index_type index_;
  std::size_t bytes_ = 0;
};

using proxy_cache = basic_proxy_cache<>;

// Section 5.6.1 and 5.10.5: the Max-Age of an answer from the cache: the freshness left,
// rounded down (never more than the origin granted).
inline std::uint32_t remaining_max_age(std::chrono::steady_clock::time_point fresh_until,
                                       std::chrono::steady_clock::time_point now) noexcept {
  if (fresh_until <= now) return 0;
  return static_cast<std::uint32_t>(std::chrono::duration_cast<std::chrono::seconds>(fresh_until - now).count());
}

}  // namespace detail
}  // namespace coap
