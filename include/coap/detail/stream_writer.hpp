// RFC 8323 section 3.2 on the sending side: CoAP messages become frames in a buffer, and the
// buffer goes to a byte stream. Two buffers, one filled while the other is written, so that a
// session answers while a slow peer reads; output is bounded (a peer that does not read is
// dropped rather than buffered for). Also the refusal a listener sends without a session
// (section 5.6: a CSM and an Abort, from the stack). Knows no socket type: write() takes any
// Asio stream with write_some and async_write.
#pragma once

#include <coap/detail/session_common.hpp>
#include <coap/detail/stateless_response.hpp>
#include <coap/tcp_codec.hpp>

#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/write.hpp>

#include <cstdint>
#include <memory>
#include <new>
#include <span>
#include <string_view>
#include <vector>

namespace coap::detail {

template <class Allocator>
class stream_writer {
  template <class T>
  using rebind = typename std::allocator_traits<Allocator>::template rebind_alloc<T>;

 public:
  using bytes = std::vector<std::uint8_t, rebind<std::uint8_t>>;
  // Both buffers start with room for a CSM or a 5.03: saying that there is no memory must
  // not need any.
  static constexpr std::size_t initial_size = 128;

  explicit stream_writer(const Allocator& a) : frames_(rebind<std::uint8_t>(a)), writing_(rebind<std::uint8_t>(a)) {}

  void reserve() {
    frames_.reserve(initial_size);
    writing_.reserve(initial_size);
  }
  // The frames not yet handed to the stream (or to TLS).
  bytes& frames() noexcept { return frames_; }
  bool writing() const noexcept { return busy_; }

  // Room for m's frame, so that append(m) does not allocate (beyond `limit`, append fails).
  template <class M>
  void reserve_for(const M& m, std::size_t limit) {
    std::size_t size = 0;
    if (tcp_codec::encoded_size(m, size)) return;
    if (frames_.size() + size <= limit) reserve_more(frames_, size);
  }
  enum class appended : std::uint8_t { ok, not_encodable, over_limit };
  // Frames m after what is waiting; never more than `limit` bytes wait.
  template <class M>
  appended append(const M& m, std::size_t limit) {
    std::size_t size = 0;
    if (tcp_codec::encoded_size(m, size)) return appended::not_encodable;
    if (frames_.size() + size > limit) return appended::over_limit;
    const std::size_t at = frames_.size();
    frames_.resize(at + size);
    std::size_t written = 0;
    (void)tcp_codec::encode(m, std::span<std::uint8_t>(frames_.data() + at, size), written);
    return appended::ok;
  }

  // Writes `wire` (frames(), or the TLS records they became) unless a write is under way. Most
  // writes fit the socket buffer: written at once on the non-blocking stream, only what did
  // not fit is left to one asynchronous write, completed by make_done()'s handler (saving a
  // completion per response), which calls written(). Returns the immediate write's error.
  template <class Stream, class MakeDone>
  boost::system::error_code write(Stream& stream, bytes& wire, MakeDone make_done) {
    if (busy_ || wire.empty()) return {};
    boost::system::error_code ec;
    const std::size_t sent = stream.write_some(boost::asio::buffer(wire), ec);
    if (ec && ec != boost::asio::error::would_block) return ec;
    if (sent == wire.size()) {
      wire.clear();
      return {};
    }
    wire.erase(wire.begin(), wire.begin() + static_cast<std::ptrdiff_t>(sent));
    busy_ = true;
    writing_.swap(wire);
    boost::asio::async_write(stream, boost::asio::buffer(writing_), make_done());
    return {};
  }
  void written() noexcept {
    busy_ = false;
    writing_.clear();
  }

  // Section 5.6: the frames that refuse a peer we cannot serve (a CSM without options, then an
  // Abort with the diagnostic, cut to fit), encoded into `out`; returns their size.
  static std::size_t encode_refusal(std::span<std::uint8_t, 64> out, std::string_view diagnostic) {
    diagnostic = diagnostic.substr(0, out.size() - 8);
    std::size_t n = 0;
    try {
      with_stack_message([&](stack_message& m) {
        m.set_code(signal_code::csm);
        std::size_t csm = 0, abort = 0;
        (void)tcp_codec::encode(m, out, csm);
        m.set_code(signal_code::abort);
        m.set_payload(diagnostic);
        if (!tcp_codec::encode(m, out.subspan(csm), abort)) n = csm + abort;
      });
    } catch (const std::bad_alloc&) {
      return 0;  // cannot happen: the messages fit the stack buffer
    }
    return n;
  }
  // Sends them at once on `socket` (made non-blocking); what does not fit is lost.
  template <class Socket>
  static void send_refusal(Socket& socket, std::string_view diagnostic) {
    std::uint8_t frames[64];
    const std::size_t n = encode_refusal(frames, diagnostic);
    if (n == 0) return;
    boost::system::error_code ec;
    socket.non_blocking(true, ec);
    socket.send(boost::asio::buffer(frames, n), 0, ec);
  }

 private:
  bytes frames_;
  bytes writing_;  // what the asynchronous write has
  bool busy_ = false;
};

}  // namespace coap::detail
