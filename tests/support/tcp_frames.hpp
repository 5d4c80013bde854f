// A scripted CoAP-over-TCP peer's framing (RFC 8323 section 3.2): messages encoded into frames,
// and bytes read from a non-blocking socket cut into whole frames.
#pragma once

#include <coap/message.hpp>
#include <coap/message_view.hpp>
#include <coap/tcp_codec.hpp>

#include <boost/asio.hpp>
#include <boost/test/unit_test.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <system_error>
#include <vector>

namespace coap::test {

// `m` as one frame.
inline std::vector<std::uint8_t> tcp_frame(const coap::message& m) {
  std::vector<std::uint8_t> out;
  BOOST_TEST_REQUIRE(!coap::tcp_codec::encode(m, out));
  return out;
}

// What a non-blocking socket delivered, not yet taken as whole frames.
struct tcp_frame_reader {
  std::vector<std::uint8_t> in;
  bool eof = false;  // the other side closed the connection

  // One step of waiting for a frame: when `in` holds a whole frame, calls
  // on_frame(parse error, message_view), drops the frame and returns true; otherwise reads
  // what `socket` has (noting eof) and returns false.
  template <class OnFrame>
  bool step(boost::asio::ip::tcp::socket& socket, OnFrame&& on_frame) {
    std::uint64_t size = 0;
    if (!coap::tcp_codec::frame_size(in, size) && size && size <= in.size()) {
      coap::message_view v;
      const std::error_code ec = coap::tcp_codec::parse(std::span(in).first(size), v);
      on_frame(ec, v);
      in.erase(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(size));
      return true;
    }
    std::uint8_t buf[8192];
    boost::system::error_code ec;
    const auto n = socket.read_some(boost::asio::buffer(buf), ec);
    if (ec == boost::asio::error::eof) eof = true;
    if (!ec) in.insert(in.end(), buf, buf + n);
    return false;
  }
};

}  // namespace coap::test
