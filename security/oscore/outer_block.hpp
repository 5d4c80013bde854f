// RFC 8613 section 4.1.3.4.2: Outer Block options. An intermediary (a proxy going from
// coap+tcp to coap over UDP, say) may cut an OSCORE message that is too large for the next hop
// into RFC 7959 blocks of its ciphertext. The endpoint reassembles them before it verifies
// anything: the AEAD tag covers the whole message. Reassembly stops at MAX_UNFRAGMENTED_SIZE,
// beyond which the message is discarded and answered 4.13 (with Size1, RFC 7959 section 2.9.3).
//
// The receiving side, for a request in Outer Block1 blocks (a server) or a response in Outer
// Block2 blocks (a client, which asks for each next block with the same protected request):
// blocks of one message in order, the OSCORE option the same in each (it is the same message),
// and for a response the same Token; a block out of order or of another message is refused
// (a request's with 4.08 Request Entity Incomplete, RFC 7959 section 2.9.2). One reassembly
// per session and direction at a time: a peer sends one request's blocks after another (RFC
// 7959 section 2.5 lets a server keep just one), and a new block 0 starts over.
#pragma once

#include <coap/block.hpp>
#include <coap/message.hpp>
#include <coap/option.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace coap::oscore_core {

template <class Allocator>
class outer_block_assembly {
  template <class T>
  using rebind = typename std::allocator_traits<Allocator>::template rebind_alloc<T>;

 public:
  enum class step {
    stored,      // a block with M=1 (a request's is answered 2.31 Continue with block())
    complete,    // the last block: message() is the whole OSCORE message, its block in block()
    incomplete,  // out of order, or of a message that was not started (a request's: 4.08)
    too_large,   // past max_size: 4.13 with Size1, the partial message dropped
    malformed,   // a Block1 value RFC 7959 does not allow: 4.02
  };

  // `which`: Block1 (requests) or Block2 (responses).
  outer_block_assembly(option_number which, const Allocator& a)
      : which_(which), key_(rebind<std::uint8_t>(a)), whole_(a) {}

  // Takes one received block (a message with an OSCORE option and an Outer Block option).
  template <class Message>
  step add(const Message& m, std::size_t max_size) {
    const auto raw = m.find(which_);
    const auto oscore = m.find(option_number::oscore);
    if (!raw || !oscore || decode_block(raw->value(), block_) || (block_.more && m.payload().size() != block_.size()))
      return drop(step::malformed);
    const auto key = oscore->value();
    if (block_.num == 0) {
      whole_.assign(m);
      whole_.remove_option(static_cast<std::uint16_t>(which_));
      whole_.remove_option(static_cast<std::uint16_t>(which_ == option_number::block1 ? option_number::size1
                                                                                       : option_number::size2));
      key_.assign(key.begin(), key.end());
      active_ = true;
    } else if (!active_ || !std::ranges::equal(key, key_) || block_.offset() != whole_.payload().size() ||
               (which_ == option_number::block2 && !std::ranges::equal(m.token(), whole_.token()))) {
      return drop(step::incomplete);
    } else {
      // The header is the latest block's (its Message ID and Token answer this exchange).
      whole_.set_type(m.type());
      whole_.set_message_id(m.message_id());
      (void)whole_.set_token(m.token());
    }
    if (block_.offset() + m.payload().size() > max_size) return drop(step::too_large);
    if (block_.num != 0) whole_.append_payload(m.payload());
    if (block_.more) return step::stored;
    active_ = false;
    return step::complete;
  }

  // Blocks of a message are being collected.
  bool active() const noexcept { return active_; }
  // The block value of the latest block (for 2.31 and for the final response).
  block_value block() const noexcept { return block_; }
  // After step::complete: the reassembled OSCORE message, without its Outer Block and Size
  // options.
  const basic_message<Allocator>& message() const noexcept { return whole_; }

 private:
  step drop(step s) noexcept {
    active_ = false;
    whole_.clear();
    key_.clear();
    return s;
  }

  option_number which_;
  std::vector<std::uint8_t, rebind<std::uint8_t>> key_;  // the OSCORE option of the message
  basic_message<Allocator> whole_;
  block_value block_;
  bool active_ = false;
};

}  // namespace coap::oscore_core
