// libcoap's coap_session_str: a session's "local <-> remote PROTOCOL" text, written when asked
// into a small buffer returned by value. A session no longer keeps it (issue 16: 40 bytes and
// a heap block per idle server session); the text is made from the addresses it holds anyway.
#pragma once

#include <coap/detail/endpoint_text.hpp>

#include <array>
#include <cstdint>
#include <iosfwd>
#include <optional>
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

namespace detail {
// A request's session text (request::session()): the text itself, or the session that writes
// it when a handler asks. Writing it costs a few hundred nanoseconds (inet_ntop twice), a tenth
// of what a server spends on a request, and most handlers never read it.
class session_text {
 public:
  session_text() noexcept = default;
  session_text(std::string_view text) noexcept : text_(text) {}
  session_text(const char* text) noexcept : text_(text) {}
  template <class Session>
  static session_text of(const Session& s) noexcept {
    session_text t;
    t.session_ = &s;
    t.write_ = [](const void* p) noexcept { return static_cast<const Session*>(p)->description(); };
    return t;
  }
  // The text, written into `written` the first time when it comes from the session.
  std::string_view get(std::optional<session_description>& written) const noexcept {
    if (!write_) return text_;
    if (!written) written.emplace(write_(session_));
    return written->view();
  }

 private:
  std::string_view text_;
  const void* session_ = nullptr;
  session_description (*write_)(const void*) noexcept = nullptr;
};
}  // namespace detail

}  // namespace coap
