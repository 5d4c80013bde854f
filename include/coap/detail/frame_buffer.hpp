// RFC 8323 section 3.2 on the receiving side: bytes of a stream in, whole frames out. A frame
// larger than the largest we accept (section 5.3.1, Max-Message-Size) is refused before it is
// buffered; a partial frame stays at the front until the rest arrives. Transport-free
// (sans-I/O): testable without a socket (tests/tcp_codec_test.cpp).
#pragma once

#include <coap/message_view.hpp>
#include <coap/tcp_codec.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <system_error>
#include <vector>

namespace coap::detail {

template <class Allocator>
class frame_buffer {
  template <class T>
  using rebind = typename std::allocator_traits<Allocator>::template rebind_alloc<T>;

 public:
  // A TLS connection's plaintext (and a plain one's partial frame) starts with this much; a
  // read that fills the room doubles it for the next one, so a busy connection soon reads in
  // larger pieces.
  static constexpr std::size_t initial_size = 512;
  static constexpr std::size_t min_room = 256;

  explicit frame_buffer(const Allocator& a) : in_(rebind<std::uint8_t>(a)) {}

  void reserve() { in_.resize(initial_size); }
  // Room for the next read: at least min_room bytes, grown geometrically (also after a read
  // that filled the room) but never past `max_frame`; empty when a frame in progress would
  // need more (the peer's is too large).
  std::span<std::uint8_t> read_space(std::size_t max_frame) {
    if (in_.size() - used_ < min_room || filled_) {
      const std::size_t want = std::min(std::max<std::size_t>(in_.size() * 2, initial_size), max_frame);
      if (want > in_.size()) in_.resize(want);
      else if (in_.size() - used_ < min_room) return {};
      filled_ = false;
    }
    return {in_.data() + used_, in_.size() - used_};
  }
  void commit(std::size_t n) noexcept {
    used_ += n;
    filled_ = used_ == in_.size();
  }
  // Bytes from elsewhere (TLS plaintext): each adds at most one read's worth, and cut()
  // refuses frames beyond the largest.
  void append(std::span<const std::uint8_t> d) {
    if (in_.size() - used_ < d.size()) in_.resize(std::max(used_ + d.size(), in_.size() * 2));
    std::memcpy(in_.data() + used_, d.data(), d.size());
    used_ += d.size();
  }
  bool partial() const noexcept { return used_ != 0; }

  enum class problem : std::uint8_t { none, malformed_header, too_large, malformed_frame };
  struct result {
    problem what = problem::none;
    std::error_code parse_error;  // malformed_frame: the codec's reason
  };
  // Hands each whole frame to on_frame(message_view) while it returns true; what remains is
  // a partial frame, moved to the front. On a problem, nothing more is cut.
  template <class OnFrame>
  result cut(std::size_t max_frame, OnFrame on_frame) {
    std::size_t consumed = 0;
    const result r = cut_frames({in_.data(), used_}, max_frame, on_frame, consumed);
    if (consumed) {
      std::memmove(in_.data(), in_.data() + consumed, used_ - consumed);
      used_ -= consumed;
    }
    return r;
  }
  // The same over bytes read elsewhere (a buffer the connection shares, stream_scratch.hpp):
  // `consumed` is where the whole frames end; the rest is the start of a frame.
  template <class OnFrame>
  static result cut_frames(std::span<const std::uint8_t> data, std::size_t max_frame, OnFrame& on_frame,
                           std::size_t& consumed) {
    for (bool go_on = true; go_on;) {
      const auto rest = data.subspan(consumed);
      std::uint64_t size = 0;
      if (tcp_codec::frame_size(rest, size)) return {problem::malformed_header, {}};
      if (size > max_frame) return {problem::too_large, {}};
      if (size == 0 || size > rest.size()) break;
      message_view m;
      if (auto ec = tcp_codec::parse(rest.first(static_cast<std::size_t>(size)), m))
        return {problem::malformed_frame, ec};
      consumed += static_cast<std::size_t>(size);
      go_on = on_frame(m);
    }
    return {};
  }

 private:
  std::vector<std::uint8_t, rebind<std::uint8_t>> in_;
  std::size_t used_ = 0;
  bool filled_ = false;  // the last read filled the room
};

}  // namespace coap::detail
