// RFC 7252 section 3 / RFC 8323 section 3.2: a parsed message that borrows the bytes it was
// parsed from. Parsing validates everything once; iterating the options afterwards cannot fail.
#pragma once

#include <coap/code.hpp>
#include <coap/detail/option_codec.hpp>
#include <coap/message_type.hpp>
#include <coap/option_view.hpp>

#include <cstdint>
#include <iterator>
#include <optional>
#include <span>
#include <string_view>

namespace coap {

// Iterates encoded options that a parser has already validated.
class option_iterator {
 public:
  using value_type = option_view;
  using difference_type = std::ptrdiff_t;
  using iterator_category = std::forward_iterator_tag;

  option_iterator() noexcept = default;
  option_iterator(const std::uint8_t* p, const std::uint8_t* end) noexcept : p_(p), end_(end) {
    advance();
  }

  option_view operator*() const noexcept { return current_; }
  option_iterator& operator++() noexcept {
    advance();
    return *this;
  }
  option_iterator operator++(int) noexcept {
    auto copy = *this;
    advance();
    return copy;
  }
  friend bool operator==(const option_iterator& a, const option_iterator& b) noexcept {
    return a.at_end_ == b.at_end_ && (a.at_end_ || a.next_ == b.next_);
  }

 private:
  void advance() noexcept {
    if (p_ == end_ || *p_ == detail::payload_marker) {
      at_end_ = true;
      return;
    }
    at_end_ = false;
    next_ = p_;
    std::span<const std::uint8_t> value;
    bool at_payload = false;
    // Validated by the parser: cannot fail here.
    (void)detail::decode_option(p_, end_, number_, value, at_payload);
    current_ = option_view(static_cast<std::uint16_t>(number_), value);
  }

  const std::uint8_t* p_ = nullptr;
  const std::uint8_t* end_ = nullptr;
  const std::uint8_t* next_ = nullptr;
  std::uint32_t number_ = 0;
  option_view current_;
  bool at_end_ = true;
};

class option_range {
 public:
  option_range() noexcept = default;
  explicit option_range(std::span<const std::uint8_t> encoded) noexcept : encoded_(encoded) {}
  option_iterator begin() const noexcept {
    return {encoded_.data(), encoded_.data() + encoded_.size()};
  }
  option_iterator end() const noexcept { return {}; }
  bool empty() const noexcept { return encoded_.empty(); }

 private:
  std::span<const std::uint8_t> encoded_;
};

class message_view {
 public:
  message_view() noexcept = default;

  message_type type() const noexcept { return type_; }
  coap::code code() const noexcept { return code_; }
  std::uint16_t message_id() const noexcept { return message_id_; }
  std::span<const std::uint8_t> token() const noexcept { return token_; }
  option_range options() const noexcept { return option_range(options_); }
  // The options as encoded (section 3.1), without the payload marker.
  std::span<const std::uint8_t> encoded_options() const noexcept { return options_; }
  std::span<const std::uint8_t> payload() const noexcept { return payload_; }
  std::string_view payload_string() const noexcept {
    return {reinterpret_cast<const char*>(payload_.data()), payload_.size()};
  }

  // The first option with this number, if any.
  std::optional<option_view> find(std::uint16_t number) const noexcept {
    if (!may_have(number)) return std::nullopt;
    for (option_view o : options()) {
      if (o.number() == number) return o;
      if (o.number() > number) break;
    }
    return std::nullopt;
  }
  std::optional<option_view> find(option_number n) const noexcept {
    return find(static_cast<std::uint16_t>(n));
  }
  std::size_t count(std::uint16_t number) const noexcept {
    if (!may_have(number)) return 0;
    std::size_t n = 0;
    for (option_view o : options()) n += o.number() == number;
    return n;
  }

  // For the codecs, which fill a view in place.
  struct parts {
    message_type type;
    coap::code code;
    std::uint16_t message_id;
    std::span<const std::uint8_t> token, options, payload;
    // Which option numbers occur (option_mask()); by default any may.
    std::uint64_t present = ~std::uint64_t{0};
  };
  explicit message_view(const parts& p) noexcept
      : type_(p.type), code_(p.code), message_id_(p.message_id), token_(p.token),
        options_(p.options), payload_(p.payload), present_(p.present) {}

  // Bit n (n < 63) set when option n may occur, bit 63 when any option from 63 up may: made
  // while parsing validates the options (detail::split_body), so that asking for an option
  // the message does not have (a server asks for a dozen per request) scans nothing.
  std::uint64_t option_mask() const noexcept { return present_; }
  static constexpr std::uint64_t mask_bit(std::uint32_t number) noexcept {
    return std::uint64_t{1} << (number < 63 ? number : 63);
  }
  bool may_have(std::uint32_t number) const noexcept { return (present_ & mask_bit(number)) != 0; }

 private:
  message_type type_ = message_type::confirmable;
  coap::code code_;
  std::uint16_t message_id_ = 0;
  std::span<const std::uint8_t> token_;
  std::span<const std::uint8_t> options_;  // encoded options, without the payload marker
  std::span<const std::uint8_t> payload_;
  std::uint64_t present_ = ~std::uint64_t{0};
};

namespace detail {
// Validates the options region starting at p; splits it into options and payload, and
// sets `present` to the options' message_view::option_mask().
inline std::error_code split_body(std::span<const std::uint8_t> body,
                                  std::span<const std::uint8_t>& options,
                                  std::span<const std::uint8_t>& payload, std::uint64_t& present) noexcept {
  const std::uint8_t* p = body.data();
  const std::uint8_t* const end = p + body.size();
  std::uint32_t number = 0;
  std::uint64_t mask = 0;
  while (p != end) {
    const std::uint8_t* start = p;
    std::span<const std::uint8_t> value;
    bool at_payload = false;
    if (auto ec = decode_option(p, end, number, value, at_payload)) return ec;
    if (at_payload) {
      options = {body.data(), start};
      payload = {p, end};
      present = mask;
      return {};
    }
    mask |= message_view::mask_bit(number);
  }
  options = body;
  payload = {};
  present = mask;
  return {};
}
inline std::error_code split_body(std::span<const std::uint8_t> body,
                                  std::span<const std::uint8_t>& options,
                                  std::span<const std::uint8_t>& payload) noexcept {
  std::uint64_t present = 0;
  return split_body(body, options, payload, present);
}
}  // namespace detail

}  // namespace coap
