// RFC 8323 section 3.2 on the sending side: CoAP messages become frames in a buffer, and the
// buffer goes to a byte stream. Two buffers of the connection's own, one filled while the
// other is written, so that a session answers while a slow peer reads, made only when bytes
// must wait (a plain connection otherwise frames into its context's buffer,
// stream_scratch.hpp); output is bounded (a peer that does not read is dropped rather than
// buffered for). Also the refusal a listener sends without a session
// (section 5.6: a CSM and an Abort, from the stack). Knows no socket type: write() takes any
// Asio stream with write_some and async_write.
#pragma once

#include <coap/detail/lazy.hpp>
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
  // Room a TLS connection's buffers start with, for a CSM or a 5.03: saying that there is no
  // memory must not need any. (A plain connection frames into its context's buffer,
  // stream_scratch.hpp, which keeps that much.)
  static constexpr std::size_t initial_size = 128;

  explicit stream_writer(const Allocator& a) : own_(a) {}

  // The connection's own buffers, made now (TLS connections make them when they start).
  void reserve() {
    auto& b = own_.ensure();
    b.frames.reserve(initial_size);
    b.writing.reserve(initial_size);
  }
  // The frames of ours not yet handed to the stream (or to TLS), made on first use.
  bytes& frames() { return own_.ensure().frames; }
  bool writing() const noexcept { return busy_; }
  // Bytes of ours wait (a write is under way, or frames wait for one): new frames go after them.
  bool waiting() const noexcept { return busy_ || (own_.get() && !own_.get()->frames.empty()); }

  // Room for m's frame in `into`, so that append(into, m) does not allocate (beyond `limit`,
  // append fails).
  template <class M>
  static void reserve_for(bytes& into, const M& m, std::size_t limit) {
    std::size_t size = 0;
    if (tcp_codec::encoded_size(m, size)) return;
    if (into.size() + size <= limit) reserve_more(into, size);
  }
  enum class appended : std::uint8_t { ok, not_encodable, over_limit };
  // Frames m after what is waiting in `into`; never more than `limit` bytes wait.
  template <class M>
  static appended append(bytes& into, const M& m, std::size_t limit) {
    std::size_t size = 0;
    if (tcp_codec::encoded_size(m, size)) return appended::not_encodable;
    if (into.size() + size > limit) return appended::over_limit;
    const std::size_t at = into.size();
    into.resize(at + size);
    std::size_t written = 0;
    (void)tcp_codec::encode(m, std::span<std::uint8_t>(into.data() + at, size), written);
    return appended::ok;
  }

  // Writes `wire` (our frames, the TLS records they became, or frames in the context's shared
  // buffer) unless a write is under way. Most writes fit the socket buffer: written at once on
  // the non-blocking stream, only what did not fit is left to one asynchronous write from our
  // own buffer, completed by make_done()'s handler (saving a completion per response), which
  // calls written(). `wire` is empty after. Returns the immediate write's error, or no_memory
  // when the rest of a shared buffer found no room here (the connection must end: part of a
  // frame went out).
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
    const auto rest = wire.begin() + static_cast<std::ptrdiff_t>(sent);
    auto* own = own_.get();
    if (own && &wire == &own->frames) {
      wire.erase(wire.begin(), rest);
      own->writing.swap(wire);
    } else {
      try {
        own = &own_.ensure();
        own->writing.assign(rest, wire.end());
      } catch (const std::bad_alloc&) {
        wire.clear();
        return boost::asio::error::no_memory;
      }
      wire.clear();
    }
    busy_ = true;
    boost::asio::async_write(stream, boost::asio::buffer(own->writing), make_done());
    return {};
  }
  void written() noexcept {
    busy_ = false;
    if (auto* own = own_.get()) own->writing.clear();
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
  struct buffers {
    explicit buffers(const Allocator& a) : frames(rebind<std::uint8_t>(a)), writing(rebind<std::uint8_t>(a)) {}
    bytes frames;
    bytes writing;  // what the asynchronous write has
  };
  // Made when bytes of ours must wait (or when a TLS connection starts), then kept.
  lazy<buffers, Allocator> own_;
  bool busy_ = false;
};

}  // namespace coap::detail
