// RFC 7252 section 5.6: a proxy's response cache: freshness by Max-Age (5.6.1), validation
// with ETag (5.6.2), bounded in entries and bytes, least recently used out first. No I/O and
// no clock of its own: the caller passes `now`, so tests drive time.
#pragma once

#include <coap/code.hpp>
#include <coap/message.hpp>
#include <coap/option.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <list>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

namespace coap {

// What the cache may hold (proxy_config::cache).
struct proxy_cache_config {
  bool enabled = true;
  std::size_t max_entries = 256;
  std::size_t max_bytes = std::size_t{1} << 20;  // payloads, options and keys together
  // Section 5.10.5: a response without Max-Age is fresh for 60 s.
  std::chrono::seconds default_max_age{60};
  // A representation larger than one block is kept this long for the later blocks of its
  // transfer, even when it may not be reused for new requests (RFC 7959 section 2.4).
  std::chrono::seconds block_transfer_window{60};
};

namespace detail {

class proxy_cache {
 public:
  using clock = std::chrono::steady_clock;
  struct entry {
    std::string key;
    coap::message response;           // without Max-Age, Block2, Size2, Observe
    clock::time_point fresh_until;    // reusable for new requests until then (section 5.6.1)
    clock::time_point kept_until;     // after that the entry goes (stale ones wait for validation)
    bool validatable = false;         // has an ETag (section 5.6.2)
    std::size_t bytes = 0;
  };

  explicit proxy_cache(const proxy_cache_config& c) : config_(c) {}

  const proxy_cache_config& config() const noexcept { return config_; }
  std::size_t size() const noexcept { return entries_.size(); }
  std::size_t bytes() const noexcept { return bytes_; }

  // The entry for `key`, fresh or not (the caller decides); made most recently used. Entries
  // past kept_until are dropped here.
  entry* find(const std::string& key, clock::time_point now) {
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
  std::chrono::seconds freshness_of(const coap::message& response) const noexcept {
    if (auto max_age = response.find(option_number::max_age)) return std::chrono::seconds(max_age->as_uint());
    return config_.default_max_age;
  }

  // Stores (or replaces) the representation for `key`: fresh for `fresh_for`; kept for
  // validation while it has an ETag, and for `keep_for` at least (later blocks). Nothing is
  // stored when it alone exceeds the byte bound.
  void store(const std::string& key, const coap::message& response, clock::time_point now,
             std::chrono::seconds fresh_for, std::chrono::seconds keep_for = std::chrono::seconds(0)) {
    if (!config_.enabled) return;
    if (auto it = index_.find(key); it != index_.end()) erase(it->second);
    entry e;
    e.key = key;
    e.response.set_code(response.code());
    for (option_view o : response.options()) {
      const auto n = static_cast<option_number>(o.number());
      if (n == option_number::max_age || n == option_number::block2 || n == option_number::size2 ||
          n == option_number::observe)
        continue;
      e.response.add_option(o.number(), o.value());
    }
    e.response.set_payload(response.payload());
    e.validatable = response.find(option_number::etag).has_value();
    e.fresh_until = now + fresh_for;
    // A stale entry with an ETag is worth keeping for a while: a 2.03 revalidates it.
    const auto validation_window = e.validatable ? std::max(fresh_for, config_.default_max_age) : std::chrono::seconds(0);
    e.kept_until = now + std::max({fresh_for + validation_window, keep_for});
    if (e.kept_until <= now) return;
    e.bytes = key.size() + response.payload().size() + 16;
    for (option_view o : e.response.options()) e.bytes += o.value().size() + 4;
    if (e.bytes > config_.max_bytes) return;
    while (!entries_.empty() && (entries_.size() >= config_.max_entries || bytes_ + e.bytes > config_.max_bytes))
      erase(std::prev(entries_.end()));
    if (config_.max_entries == 0) return;
    bytes_ += e.bytes;
    entries_.push_front(std::move(e));
    index_.emplace(entries_.front().key, entries_.begin());
  }

  // Section 5.6.2: a 2.03 Valid for the stored entry makes it fresh again for `fresh_for`.
  void refresh(entry& e, clock::time_point now, std::chrono::seconds fresh_for) {
    e.fresh_until = now + fresh_for;
    e.kept_until = std::max(e.kept_until, now + fresh_for + std::max(fresh_for, config_.default_max_age));
  }

  void erase(const std::string& key) {
    if (auto it = index_.find(key); it != index_.end()) erase(it->second);
  }
  void clear() noexcept {
    index_.clear();
    entries_.clear();
    bytes_ = 0;
  }

 private:
  using list_type = std::list<entry>;
  void erase(list_type::iterator it) {
    bytes_ -= it->bytes;
    index_.erase(it->key);
    entries_.erase(it);
  }

  proxy_cache_config config_;
  list_type entries_;  // most recently used first
  std::unordered_map<std::string, list_type::iterator> index_;
  std::size_t bytes_ = 0;
};

// Section 5.6.1 and 5.10.5: the Max-Age of an answer from the cache: the freshness left,
// rounded down (never more than the origin granted).
inline std::uint32_t remaining_max_age(proxy_cache::clock::time_point fresh_until,
                                       proxy_cache::clock::time_point now) noexcept {
  if (fresh_until <= now) return 0;
  return static_cast<std::uint32_t>(std::chrono::duration_cast<std::chrono::seconds>(fresh_until - now).count());
}

}  // namespace detail
}  // namespace coap
