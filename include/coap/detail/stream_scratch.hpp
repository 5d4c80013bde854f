// RFC 8323 section 3.2 for all of a context's plain TCP connections at once: the buffer each
// connection reads into and the buffer its answers are framed in, one of each per context
// rather than per connection. A connection holds bytes of its own only while they must wait:
// a frame cut in two by a read (the rest comes later) or output the socket did not take. An
// idle connection then holds no buffer at all (issue 16's idle-session size; libcoap reads
// into one buffer per context too). The context's executor runs one handler at a time, so
// one connection uses each buffer at a time; a connection that finds one taken (a handler
// that writes to a second connection while the first is answering) uses its own buffers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace coap::detail {

template <class Allocator>
class stream_scratch {
  using bytes = std::vector<std::uint8_t, typename std::allocator_traits<Allocator>::template rebind_alloc<std::uint8_t>>;

 public:
  // One read's worth: a busy connection reads many pipelined requests at once.
  static constexpr std::size_t read_size = 16384;

  explicit stream_scratch(const Allocator& a) : in_(a), out_(a) {}

  // The read buffer, made on the first read (std::bad_alloc when the allocator refuses), or
  // empty when a connection is cutting frames out of it already.
  std::span<std::uint8_t> take_input() {
    if (reading_) return {};
    if (in_.empty()) in_.resize(read_size);
    reading_ = true;
    return in_;
  }
  void give_back_input() noexcept { reading_ = false; }

  // Room the output buffer always keeps (for a CSM or a 5.03 when the allocator refuses
  // more); std::bad_alloc when the allocator refuses it.
  void reserve_output(std::size_t n) {
    if (out_.capacity() < n) out_.reserve(n);
  }
  // The output buffer for `owner`: free (and then taken by it) or already its own; null when
  // another connection has it.
  bytes* output_for(const void* owner) noexcept {
    bytes* b = output_free_for(owner);
    if (b) out_owner_ = owner;
    return b;
  }
  // The same without taking it.
  bytes* output_free_for(const void* owner) noexcept {
    return out_owner_ && out_owner_ != owner ? nullptr : &out_;
  }
  bool owns_output(const void* owner) const noexcept { return out_owner_ == owner; }
  // The owner has written what it framed (or kept the rest itself): the buffer is free again,
  // its capacity kept.
  void give_back_output(const void* owner) noexcept {
    if (out_owner_ != owner) return;
    out_.clear();
    out_owner_ = nullptr;
  }

 private:
  bytes in_;
  bytes out_;
  const void* out_owner_ = nullptr;
  bool reading_ = false;
};

}  // namespace coap::detail
