// libcoap's coap_session_str: a session's "local <-> remote PROTOCOL" text, written when asked
// into a small buffer returned by value. A session no longer keeps it (issue 16: 40 bytes and
// a heap block per idle server session); the text is made from the addresses it holds anyway.
#pragma once

#include <coap/detail/endpoint_text.hpp>

#include <array>
#include <cstdint>
#include <iosfwd>
#include <span>
#include <string>
#include <string_view>

namespace coap {

// Holds the text itself: keep the object, not a string_view of it, past the expression that
// asked for it (`std::string_view d = s.description();` dangles; `auto d = ...` does not).
class session_description {
 public:
  // Empty: the description of an empty handle or of a session that is gone.
  session_description() noexcept = default;
  template <class Endpoint>
  session_description(const Endpoint& local, const Endpoint& remote, std::string_view protocol) noexcept {
    using detail::append_text;
    std::span<char> out(text_);
    std::size_t n = detail::write_endpoint_text(out, local);
    n = append_text(out, n, " <-> ");
    n += detail::write_endpoint_text(out.subspan(n), remote);
    n = append_text(out, n, " ");
    size_ = static_cast<std::uint16_t>(append_text(out, n, protocol));
  }

  std::string_view view() const noexcept { return {text_.data(), size_}; }
  operator std::string_view() const noexcept { return view(); }
  std::string str() const { return std::string(view()); }
  const char* data() const noexcept { return text_.data(); }
  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }

  friend bool operator==(const session_description& a, const session_description& b) noexcept {
    return a.view() == b.view();
  }
  friend bool operator==(const session_description& a, std::string_view b) noexcept { return a.view() == b; }
  template <class CharT, class Traits>
  friend std::basic_ostream<CharT, Traits>& operator<<(std::basic_ostream<CharT, Traits>& os,
                                                       const session_description& d) {
    return os << d.view();
  }

 private:
  // Two addresses at their longest, " <-> ", a space and the protocol's name ("DTLS").
  std::array<char, 2 * detail::max_endpoint_text + 16> text_{};
  std::uint16_t size_ = 0;
};

}  // namespace coap
