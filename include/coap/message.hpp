// RFC 7252 section 3 and 5: an owning CoAP message (header fields, token, ordered options,
// payload) whose storage comes from an Allocator. Reused messages keep their capacity, so
// steady-state traffic makes no allocation.
#pragma once

#include <coap/code.hpp>
#include <coap/content_format.hpp>
#include <coap/message_type.hpp>
#include <coap/message_view.hpp>
#include <coap/option.hpp>
#include <coap/option_view.hpp>
#include <coap/token.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace coap {

template <class Allocator = std::allocator<std::uint8_t>>
class basic_message {
  struct option_record {
    std::uint16_t number;
    std::uint32_t offset;  // into option_data_
    std::uint32_t length;
  };
  template <class T>
  using rebind = typename std::allocator_traits<Allocator>::template rebind_alloc<T>;

 public:
  using allocator_type = Allocator;

  class options_range;

  basic_message() = default;
  explicit basic_message(const Allocator& alloc)
      : options_(rebind<option_record>(alloc)), option_data_(rebind<std::uint8_t>(alloc)),
        payload_(rebind<std::uint8_t>(alloc)) {}
  // A request: `basic_message(method::get)`. A response code is a different type.
  explicit basic_message(method m, message_type t = message_type::confirmable,
                         const Allocator& alloc = Allocator())
      : basic_message(alloc) {
    type_ = t;
    code_ = m;
  }
  // A response or signal: `basic_message(response_code::content)`.
  explicit basic_message(coap::code c, message_type t = message_type::confirmable,
                         const Allocator& alloc = Allocator())
      : basic_message(alloc) {
    type_ = t;
    code_ = c;
  }
  explicit basic_message(const message_view& v, const Allocator& alloc = Allocator())
      : basic_message(alloc) {
    assign(v);
  }

  allocator_type get_allocator() const { return allocator_type(payload_.get_allocator()); }

  // ---- header ----
  message_type type() const noexcept { return type_; }
  void set_type(message_type t) noexcept { type_ = t; }
  coap::code code() const noexcept { return code_; }
  void set_code(coap::code c) noexcept { code_ = c; }
  std::uint16_t message_id() const noexcept { return message_id_; }
  void set_message_id(std::uint16_t id) noexcept { message_id_ = id; }

  std::span<const std::uint8_t> token() const noexcept { return token_.bytes(); }
  const coap::token& token_value() const noexcept { return token_; }
  void set_token(const coap::token& t) noexcept { token_ = t; }
  // False (token left empty) when longer than 8 bytes.
  bool set_token(std::span<const std::uint8_t> bytes) noexcept { return token_.assign(bytes); }

  // ---- options, kept in ascending order; equal numbers keep their insertion order ----
  void add_option(std::uint16_t number, std::span<const std::uint8_t> value) {
    const auto offset = static_cast<std::uint32_t>(option_data_.size());
    option_data_.insert(option_data_.end(), value.begin(), value.end());
    const option_record record{number, offset, static_cast<std::uint32_t>(value.size())};
    // Options are usually added in order: append without searching.
    if (options_.empty() || options_.back().number <= number) {
      options_.push_back(record);
      return;
    }
    auto pos = std::upper_bound(options_.begin(), options_.end(), number,
                                [](std::uint16_t n, const option_record& r) { return n < r.number; });
    options_.insert(pos, record);
  }
  void add_option(option_number n, std::span<const std::uint8_t> value) {
    add_option(static_cast<std::uint16_t>(n), value);
  }
  void add_string_option(std::uint16_t number, std::string_view value) {
    add_option(number, {reinterpret_cast<const std::uint8_t*>(value.data()), value.size()});
  }
  // Section 3.2: the shortest big-endian form; 0 is the empty value.
  void add_uint_option(std::uint16_t number, std::uint32_t value) {
    std::uint8_t bytes[4];
    std::size_t n = 0;
    for (int shift = 24; shift >= 0; shift -= 8) {
      const auto b = static_cast<std::uint8_t>(value >> shift);
      if (n || b) bytes[n++] = b;
    }
    add_option(number, {bytes, n});
  }
  void add_empty_option(std::uint16_t number) { add_option(number, {}); }

  // Typed options: the value type must match the option's registered format.
  template <class Tag>
    requires options::string_option<Tag>
  void add(Tag, std::string_view value) {
    add_string_option(Tag::number, value);
  }
  // The literal 0 would otherwise become a null `const char*` and then a string_view.
  template <class Tag>
    requires options::string_option<Tag>
  void add(Tag, std::nullptr_t) = delete;
  template <class Tag>
    requires options::uint_option<Tag>
  void add(Tag, std::uint32_t value) {
    add_uint_option(Tag::number, value);
  }
  template <class Tag>
    requires options::opaque_option<Tag>
  void add(Tag, std::span<const std::uint8_t> value) {
    add_option(Tag::number, value);
  }
  template <class Tag>
    requires options::empty_option<Tag>
  void add(Tag) {
    add_empty_option(Tag::number);
  }
  template <class Tag>
    requires options::uint_option<Tag>
  std::optional<std::uint32_t> get(Tag) const noexcept {
    if (auto o = find(Tag::number)) return o->as_uint();
    return std::nullopt;
  }
  template <class Tag>
    requires options::string_option<Tag>
  std::optional<std::string_view> get(Tag) const noexcept {
    if (auto o = find(Tag::number)) return o->as_string();
    return std::nullopt;
  }

  void set_content_format(content_format f) {
    remove_option(static_cast<std::uint16_t>(option_number::content_format));
    add_uint_option(static_cast<std::uint16_t>(option_number::content_format),
                    static_cast<std::uint16_t>(f));
  }

  // Removes every option with this number; the value bytes are compacted.
  void remove_option(std::uint16_t number) {
    auto first = std::remove_if(options_.begin(), options_.end(),
                                [&](const option_record& r) { return r.number == number; });
    if (first == options_.end()) return;
    options_.erase(first, options_.end());
    compact();
  }

  std::optional<option_view> find(std::uint16_t number) const noexcept {
    auto it = std::lower_bound(options_.begin(), options_.end(), number,
                               [](const option_record& r, std::uint16_t n) { return r.number < n; });
    if (it == options_.end() || it->number != number) return std::nullopt;
    return view_of(*it);
  }
  std::optional<option_view> find(option_number n) const noexcept {
    return find(static_cast<std::uint16_t>(n));
  }
  std::size_t count(std::uint16_t number) const noexcept {
    auto [lo, hi] = std::equal_range(options_.begin(), options_.end(), option_record{number, 0, 0},
                                     [](const option_record& a, const option_record& b) {
                                       return a.number < b.number;
                                     });
    return static_cast<std::size_t>(hi - lo);
  }
  options_range options() const noexcept { return options_range(this); }
  std::size_t option_count() const noexcept { return options_.size(); }

  // ---- payload ----
  std::span<const std::uint8_t> payload() const noexcept { return payload_; }
  std::string_view payload_string() const noexcept {
    return {reinterpret_cast<const char*>(payload_.data()), payload_.size()};
  }
  void set_payload(std::span<const std::uint8_t> bytes) { payload_.assign(bytes.begin(), bytes.end()); }
  // Appends to the payload (a body reassembled from its blocks, RFC 7959).
  void append_payload(std::span<const std::uint8_t> bytes) { payload_.insert(payload_.end(), bytes.begin(), bytes.end()); }
  void set_payload(std::string_view text) {
    payload_.assign(reinterpret_cast<const std::uint8_t*>(text.data()),
                    reinterpret_cast<const std::uint8_t*>(text.data()) + text.size());
  }

  // Keeps only payload bytes [offset, offset + length) (a block of the body, RFC 7959), in
  // place: no allocation.
  void keep_payload_range(std::size_t offset, std::size_t length) noexcept {
    offset = std::min(offset, payload_.size());
    length = std::min(length, payload_.size() - offset);
    if (offset) std::memmove(payload_.data(), payload_.data() + offset, length);
    payload_.resize(length);
  }
  // A copy of another message of this type into this one's storage (its capacity is reused).
  void assign_message(const basic_message& other) {
    type_ = other.type_;
    code_ = other.code_;
    message_id_ = other.message_id_;
    token_ = other.token_;
    options_.assign(other.options_.begin(), other.options_.end());
    option_data_.assign(other.option_data_.begin(), other.option_data_.end());
    payload_.assign(other.payload_.begin(), other.payload_.end());
  }
  // Drops every option and the payload, keeping the header, token and capacity.
  void clear_options_and_payload() noexcept {
    options_.clear();
    option_data_.clear();
    payload_.clear();
  }

  // Empties the message but keeps its capacity.
  void clear() noexcept {
    type_ = message_type::confirmable;
    code_ = coap::code();
    message_id_ = 0;
    token_ = coap::token();
    options_.clear();
    option_data_.clear();
    payload_.clear();
  }

  // Copies a parsed message (reusing capacity).
  void assign(const message_view& v) {
    clear();
    type_ = v.type();
    code_ = v.code();
    message_id_ = v.message_id();
    token_.assign(v.token());
    for (option_view o : v.options()) {
      const auto offset = static_cast<std::uint32_t>(option_data_.size());
      option_data_.insert(option_data_.end(), o.value().begin(), o.value().end());
      options_.push_back({o.number(), offset, static_cast<std::uint32_t>(o.value().size())});
    }
    payload_.assign(v.payload().begin(), v.payload().end());
  }

  class options_range {
   public:
    class iterator {
     public:
      using value_type = option_view;
      using difference_type = std::ptrdiff_t;
      using iterator_category = std::forward_iterator_tag;
      iterator() = default;
      iterator(const basic_message* m, std::size_t i) : m_(m), i_(i) {}
      option_view operator*() const noexcept { return m_->view_of(m_->options_[i_]); }
      iterator& operator++() noexcept {
        ++i_;
        return *this;
      }
      iterator operator++(int) noexcept {
        auto c = *this;
        ++i_;
        return c;
      }
      friend bool operator==(const iterator& a, const iterator& b) noexcept { return a.i_ == b.i_; }

     private:
      const basic_message* m_ = nullptr;
      std::size_t i_ = 0;
    };
    explicit options_range(const basic_message* m) : m_(m) {}
    iterator begin() const noexcept { return {m_, 0}; }
    iterator end() const noexcept { return {m_, m_->options_.size()}; }
    bool empty() const noexcept { return m_->options_.empty(); }

   private:
    const basic_message* m_;
  };

 private:
  option_view view_of(const option_record& r) const noexcept {
    return option_view(r.number, std::span<const std::uint8_t>(option_data_.data() + r.offset, r.length));
  }
  void compact() {
    std::uint32_t write = 0;
    // Records are sorted by number, not by offset: rebuild in record order.
    std::vector<std::uint8_t, rebind<std::uint8_t>> data(option_data_.get_allocator());
    data.reserve(option_data_.size());
    for (auto& r : options_) {
      data.insert(data.end(), option_data_.begin() + r.offset, option_data_.begin() + r.offset + r.length);
      r.offset = write;
      write += r.length;
    }
    option_data_.swap(data);
  }

  message_type type_ = message_type::confirmable;
  coap::code code_;
  std::uint16_t message_id_ = 0;
  coap::token token_;
  std::vector<option_record, rebind<option_record>> options_;
  std::vector<std::uint8_t, rebind<std::uint8_t>> option_data_;
  std::vector<std::uint8_t, rebind<std::uint8_t>> payload_;
};

using message = basic_message<>;

}  // namespace coap
