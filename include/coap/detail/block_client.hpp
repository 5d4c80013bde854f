// RFC 7959 sections 2.3 to 2.5 and 3 (block-wise transfer, client side) and RFC 8323 section 6
// (BERT): one request as the user sees it, driven as many exchanges as its body and its
// response's body need. Transport-agnostic: a template on the session implementation, which
// provides context(), config(), max_pdu_size(), start_request(message, handler) and, when it
// can, peer_block_wise() (BERT) and abandon(token) (cancellation frees the exchange).
// With RFC 9175 (a body's blocks carry a Request-Tag of their own, section 3.3; a 4.01 with
// Echo is answered by repeating the request with it, once, section 2.4) and RFC 8516 (after a
// 4.29 the session holds requests to that server until its Max-Age passed).
#pragma once

#include <coap/block.hpp>
#include <coap/detail/echo.hpp>
#include <coap/detail/session_common.hpp>
#include <coap/error.hpp>
#include <coap/message.hpp>
#include <coap/option.hpp>

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/post.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <optional>
#include <system_error>
#include <utility>
#include <vector>

namespace coap::detail {

// Block1/Block2 as they travel, SZX 7 included: it is BERT (RFC 8323 section 6) over a
// reliable transport and invalid elsewhere, which the caller decides.
struct wire_block {
  std::uint32_t num = 0;
  bool more = false;
  std::uint8_t szx = 0;
  bool bert() const noexcept { return szx == 7; }
  std::size_t size() const noexcept { return std::size_t{16} << std::min<std::uint8_t>(szx, 6); }
};
inline std::optional<wire_block> find_block(const option_view& o) noexcept {
  if (o.value().size() > 3) return std::nullopt;
  const std::uint32_t raw = o.as_uint();
  return wire_block{raw >> 4, (raw & 0x8u) != 0, static_cast<std::uint8_t>(raw & 0x7u)};
}
template <class Message>
std::optional<wire_block> find_block(const Message& m, option_number n) noexcept {
  if (auto o = m.find(n)) return find_block(*o);
  return std::nullopt;
}

template <class Impl>
class block_transfer : public std::enable_shared_from_this<block_transfer<Impl>> {
 public:
  using message = typename Impl::owned_message;
  using message_allocator = typename message::allocator_type;
  using response_handler = typename Impl::response_handler;

  // Sends `request` (block-wise when its payload needs it) and fetches every block of the
  // response; `done` gets the final response, its body whole. Errors: those of the exchanges,
  // message_too_large (no room for even 16 bytes of payload, or a body over max_body_size),
  // etag_mismatch, invalid_message (a 2.31 without Block1, a block out of place), no_memory.
  static void start(const std::shared_ptr<Impl>& impl, message request, response_handler done) {
    if (auto self = make(impl, std::move(request), done)) self->begin();
  }
  // The rest of a body whose first block is already here (a notification's): the blocks
  // after it are fetched with `request` (Observe removed).
  static void resume(const std::shared_ptr<Impl>& impl, message request, message first, response_handler done) {
    if (auto self = make(impl, std::move(request), done)) {
      try {
        self->on_download(std::move(first));
      } catch (const std::bad_alloc&) {
        self->finish(error::no_memory);
      }
    }
  }

  block_transfer(const std::shared_ptr<Impl>& impl, message request, response_handler done)
      : impl_(impl), io_(impl->context().get_executor()), request_(std::move(request)),
        first_(message_allocator(impl->context().get_allocator())), body_(message_allocator(impl->context().get_allocator())),
        done_(std::move(done)) {}

 private:
  using clock = std::chrono::steady_clock;
  template <class T>
  using rebind = typename std::allocator_traits<message_allocator>::template rebind_alloc<T>;

  // The exchange's completion: back into this operation. Its type-erased storage comes from
  // the session's allocator.
  struct step {
    std::shared_ptr<block_transfer> self;
    using allocator_type = typename block_transfer::message_allocator;
    allocator_type get_allocator() const noexcept { return self->first_.get_allocator(); }
    void operator()(std::error_code ec, message m) { self->on_response(ec, std::move(m)); }
  };

  static std::shared_ptr<block_transfer> make(const std::shared_ptr<Impl>& impl, message request,
                                              response_handler& done) {
    try {
      auto self = std::allocate_shared<block_transfer>(rebind<block_transfer>(impl->context().get_allocator()), impl,
                                                       std::move(request), std::move(done));
      self->watch_cancellation();
      return self;
    } catch (const std::bad_alloc&) {
      // allocate_shared allocates before it moves: `done` is still ours.
      complete_later(impl->context().get_executor(), std::move(done), make_error_code(error::no_memory),
                     message(message_allocator(impl->context().get_allocator())));
      return nullptr;
    }
  }

  // Per-operation cancellation (any type): the exchange is abandoned, a late answer dropped.
  void watch_cancellation() {
    slot_ = done_.get_cancellation_slot();
    if (!slot_.is_connected()) return;
    std::weak_ptr<block_transfer> weak = this->shared_from_this();
    slot_.assign([weak, io = io_](boost::asio::cancellation_type type) {
      if (type == boost::asio::cancellation_type::none) return;
      // The signal may come from another thread: the operation lives on the session's executor.
      boost::asio::post(io, [weak] {
        if (auto self = weak.lock()) self->cancel();
      });
    });
  }

  void cancel() {
    if (finished_) return;
    if constexpr (requires(Impl& i, const coap::token& t) { i.abandon(t); }) {
      if (!current_.empty()) impl_->abandon(current_);
    }
    finish(operation_aborted());
  }

  // ---- room ----
  // The size of `m` as UDP frames it (header, token, options, payload marker and payload),
  // with an 8-byte token when it has none yet. A TCP frame of the same message is no larger
  // than max_pdu_size() counts it (RFC 8323 section 3.2), so one measure serves both.
  static std::size_t ext(std::size_t v) noexcept { return v < 13 ? 0 : v < 269 ? 1 : 2; }
  static std::size_t encoded_size(const message& m, bool with_payload) noexcept {
    std::size_t size = 4 + (m.token().empty() ? coap::token::max_size : m.token().size());
    std::uint16_t previous = 0;
    for (option_view o : m.options()) {
      size += 1 + ext(static_cast<std::size_t>(o.number() - previous)) + ext(o.value().size()) + o.value().size();
      previous = o.number();
    }
    if (with_payload && !m.payload().empty()) size += 1 + m.payload().size();
    return size;
  }
  // What is left for the payload of a block: the request's options plus at most a Block1 or
  // Block2 (deltas below 269, 3-byte values) and Size1 (4 bytes) that we add.
  std::size_t payload_room() const noexcept {
    const std::size_t overhead = encoded_size(request_, false) + 2 * (1 + 1 + 3) + (1 + 1 + 4) + 1;
    const std::size_t pdu = impl_->max_pdu_size();
    return pdu > overhead ? pdu - overhead : 0;
  }
  bool bert_possible() const noexcept {
    if constexpr (requires(const Impl& i) { i.peer_block_wise(); }) return impl_->peer_block_wise();
    else return false;
  }
  // The SZX for a body of ours: the user's (a Block1 in the request), else the configured one,
  // lowered to what fits; 7 (BERT) only when the peer offered it and k * 1024 bytes fit.
  std::optional<std::uint8_t> choose_szx(std::optional<wire_block> forced, std::size_t room) const noexcept {
    std::uint8_t szx = forced ? forced->szx : impl_->config().block_szx;
    if (szx == 7 && (!bert_possible() || room < 1024)) szx = 6;
    if (szx > 7) szx = 6;
    if (szx < 7) szx = std::min(szx, szx_for_size(room));
    if (room < 16) return std::nullopt;
    return szx;
  }
  // Bytes per message for `szx`: BERT sends as many 1024-byte blocks as fit.
  std::size_t chunk(std::uint8_t szx, std::size_t room) const noexcept {
    if (szx == 7) return std::max<std::size_t>(1, room / 1024) * 1024;
    return std::size_t{16} << szx;
  }

  // ---- the exchanges ----
  void begin() {
    if constexpr (requires(const Impl& i) { i.requests_held(clock::now()); }) {
      if (impl_->requests_held(clock::now())) return finish(error::too_many_requests);
    }
    try {
      begin_exchanges();
    } catch (const std::bad_alloc&) {
      finish(error::no_memory);
    }
  }
  void begin_exchanges() {
    const auto forced = find_block(request_, option_number::block1);
    std::size_t room = payload_room();
    const auto size = request_.payload().size();
    if (forced || encoded_size(request_, true) > impl_->max_pdu_size()) {
      if (size > impl_->config().max_body_size) return finish(error::message_too_large);
      add_request_tag();
      room = payload_room();
      const auto szx = choose_szx(forced, room);
      if (!szx) return finish(error::message_too_large);
      upload_szx_ = *szx;
      if (forced || size > chunk(upload_szx_, room)) {
        uploading_ = body_in_blocks_ = true;
        return send_block1();
      }
    }
    // Section 2.4: a Block2 in the request (early negotiation of the block size) goes as it is.
    send(copy_request(true, false));
  }

  // RFC 9175 section 3.3: the blocks of this body carry a Request-Tag no other body of this
  // session carries at the same time (4 random bytes), so that a server keeps concurrent
  // uploads to one resource apart. A tag of the user's own stays.
  void add_request_tag() {
    if (request_.find(option_number::request_tag)) return;
    const std::uint64_t r = impl_->context().random();
    const std::uint8_t tag[4] = {static_cast<std::uint8_t>(r), static_cast<std::uint8_t>(r >> 8),
                                 static_cast<std::uint8_t>(r >> 16), static_cast<std::uint8_t>(r >> 24)};
    request_.add_option(static_cast<std::uint16_t>(option_number::request_tag), tag);
  }

  // RFC 9175 sections 2.3 and 2.4: a 4.01 Unauthorized with an Echo value asks for the request
  // again carrying it. Once per operation, from its beginning (a body's blocks too: the server
  // judges the whole request). An Echo longer than 40 bytes is ignored (RFC 7252 section
  // 5.4.3): the 4.01 is then the answer.
  bool retry_with_echo(const message& m) {
    if (echoed_ || m.code() != code(response_code::unauthorized)) return false;
    const auto value = echo_value(m);
    if (value.empty()) return false;
    echoed_ = true;
    request_.remove_option(static_cast<std::uint16_t>(option_number::echo));
    request_.add_option(static_cast<std::uint16_t>(option_number::echo), value);
    upload_offset_ = 0;
    sent_ = 0;
    uploading_ = last_block_ = downloading_ = body_in_blocks_ = false;
    body_.clear();
    begin_exchanges();
    return true;
  }

  // RFC 8132 section 2 with RFC 7959 section 3.3: a FETCH's later Block2 requests repeat its
  // body, which selects the representation; a body that went block-wise is not repeated (the
  // server keeps the answer under the request's options and Request-Tag, and a message could
  // not carry it).
  bool follow_up_keeps_body() const noexcept { return request_.code() == code(method::fetch) && !body_in_blocks_; }

  // A copy of the request's options (and token, type, code) for the next exchange.
  message copy_request(bool keep_payload, bool follow_up) {
    message m(request_.code(), request_.type(), first_.get_allocator());
    if (!follow_up) m.set_token(request_.token_value());
    for (option_view o : request_.options()) {
      const auto n = static_cast<option_number>(o.number());
      if (n == option_number::block1 || n == option_number::size1) continue;
      if (follow_up && (n == option_number::block2 || n == option_number::observe || n == option_number::size2)) continue;
      m.add_option(o.number(), o.value());
    }
    if (keep_payload) m.set_payload(request_.payload());
    return m;
  }

  void send(message m) {
    // Our own token (the session would pick one alike), so that cancel() can name the exchange.
    if (m.token_value().empty() && impl_->config().token_length)
      m.set_token(coap::token::from_uint(impl_->context().random(), impl_->config().token_length));
    current_ = m.token_value();
    std::optional<response_handler> h;
    try {
      h.emplace(step{this->shared_from_this()});
    } catch (const std::bad_alloc&) {
      return finish(error::no_memory);
    }
    impl_->start_request(std::move(m), std::move(*h));
  }

  // Section 2.5: block `upload_offset_` of the request body.
  void send_block1() {
    const auto body = request_.payload();
    const std::size_t room = payload_room();
    const std::size_t n = std::min(chunk(upload_szx_, room), body.size() - upload_offset_);
    const bool more = upload_offset_ + n < body.size();
    const auto unit = upload_szx_ == 7 ? std::size_t{1024} : std::size_t{16} << upload_szx_;
    const auto num = static_cast<std::uint32_t>(upload_offset_ / unit);
    if (num > max_block_num) return finish(error::message_too_large);
    message m = copy_request(false, upload_offset_ != 0);
    if (upload_offset_ != 0) m.remove_option(static_cast<std::uint16_t>(option_number::block2));
    if (more) m.remove_option(static_cast<std::uint16_t>(option_number::observe));
    m.add_uint_option(static_cast<std::uint16_t>(option_number::block1), (num << 4) | (more ? 8u : 0u) | upload_szx_);
    if (upload_offset_ == 0) m.add_uint_option(static_cast<std::uint16_t>(option_number::size1), static_cast<std::uint32_t>(body.size()));
    m.set_payload(body.subspan(upload_offset_, n));
    sent_ = n;
    last_block_ = !more;
    send(std::move(m));
  }

  void on_response(std::error_code ec, message m) {
    if (finished_) return;  // cancelled: a late answer is dropped
    current_ = coap::token();
    if (ec) return finish(ec);
    try {
      if (retry_with_echo(m)) return;
      if (uploading_ && !last_block_) return on_continue(std::move(m));
      uploading_ = false;
      on_download(std::move(m));
    } catch (const std::bad_alloc&) {
      finish(error::no_memory);
    }
  }

  // Section 2.5: 2.31 Continue echoes Block1 and asks for the next block, maybe smaller.
  void on_continue(message m) {
    if (m.code() != code(response_code::continue_)) return finish({}, &m);  // 4.08, 4.13, ...: data
    auto b1 = find_block(m, option_number::block1);
    if (!b1 || (b1->bert() && upload_szx_ != 7)) return finish(error::invalid_message);
    upload_offset_ += sent_;
    if (b1->szx < upload_szx_) upload_szx_ = b1->szx;  // adopt the server's smaller size
    const auto unit = upload_szx_ == 7 ? std::size_t{1024} : std::size_t{16} << upload_szx_;
    if (upload_offset_ % unit) return finish(error::invalid_message);
    send_block1();
  }

  // Section 2.4 (and 3.1): a response with Block2 M=1 is fetched to its end.
  void on_download(message m) {
    auto b2 = find_block(m, option_number::block2);
    const bool success = m.code().code_class() == 2;
    if (!downloading_) {
      if (!b2 || !success || b2->num != 0 || !b2->more) return finish({}, &m);  // whole already
      if (b2->bert() && !bert_possible()) return finish(error::invalid_message);
      first_ = std::move(m);
      etag_ = first_.find(option_number::etag);
      body_.clear();
      downloading_ = true;
      if (auto s2 = first_.find(option_number::size2); s2 && s2->as_uint() <= impl_->config().max_body_size)
        body_.reserve(s2->as_uint());
      return append(*b2, first_.payload());
    }
    if (!success || !b2) return finish({}, &m);  // 4.08, 5.03, ...: data
    const auto tag = m.find(option_number::etag);
    const bool same = tag.has_value() == etag_.has_value() && (!tag || std::ranges::equal(tag->value(), etag_->value()));
    if (!same) {
      // Section 2.4: the representation changed under us; start over once.
      if (restarted_) return finish(error::etag_mismatch);
      restarted_ = true;
      downloading_ = false;
      message again = copy_request(follow_up_keeps_body(), true);
      again.add_uint_option(static_cast<std::uint16_t>(option_number::block2), std::min<std::uint8_t>(b2->szx, 6));
      return send(std::move(again));
    }
    append(*b2, m.payload());
  }

  void append(wire_block b, std::span<const std::uint8_t> data) {
    const std::size_t unit = b.bert() ? 1024 : b.size();
    if (static_cast<std::size_t>(b.num) * unit != body_.size()) return finish(error::invalid_message);
    if (body_.size() + data.size() > impl_->config().max_body_size) return finish(error::message_too_large);
    body_.insert(body_.end(), data.begin(), data.end());
    if (!b.more) return deliver();
    // Non-final blocks are whole blocks: the next one starts where this one ended.
    if (data.empty() || body_.size() % unit) return finish(error::invalid_message);
    const auto num = body_.size() / unit;
    if (num > max_block_num) return finish(error::message_too_large);
    message next = copy_request(follow_up_keeps_body(), true);
    next.add_uint_option(static_cast<std::uint16_t>(option_number::block2),
                         static_cast<std::uint32_t>(num << 4) | b.szx);
    send(std::move(next));
  }

  // The first block's options minus Block2 and Size2, with the whole body.
  void deliver() {
    first_.remove_option(static_cast<std::uint16_t>(option_number::block2));
    first_.remove_option(static_cast<std::uint16_t>(option_number::size2));
    first_.set_payload(body_);
    body_ = decltype(body_)(body_.get_allocator());
    finish({}, &first_);
  }

  void finish(std::error_code ec, message* response = nullptr) {
    if (finished_) return;
    finished_ = true;
    if (slot_.is_connected()) slot_.clear();
    if (response && response->code() == code(response_code::too_many_requests)) hold_requests(*response);
    message out = response ? std::move(*response) : message(first_.get_allocator());
    complete_later(io_, std::move(done_), ec, std::move(out));
  }
  void finish(error e) { finish(make_error_code(e)); }

  // RFC 8516 section 3: Max-Age (RFC 7252's default 60 s when absent) before the next request.
  void hold_requests(const message& response) {
    if constexpr (requires(Impl& i) { i.hold_requests_until(clock::now()); }) {
      const auto max_age = response.find(option_number::max_age);
      impl_->hold_requests_until(clock::now() + std::chrono::seconds(max_age ? max_age->as_uint() : 60));
    }
  }

  std::shared_ptr<Impl> impl_;
  typename Impl::context_type::executor_type io_;
  message request_;  // as the user gave it: its options for every exchange, its payload the upload
  message first_;    // the first block of the response being downloaded
  std::vector<std::uint8_t, rebind<std::uint8_t>> body_;
  std::optional<option_view> etag_;  // into first_
  response_handler done_;
  boost::asio::cancellation_slot slot_;
  coap::token current_;
  std::size_t upload_offset_ = 0;
  std::size_t sent_ = 0;
  std::uint8_t upload_szx_ = 6;
  bool uploading_ = false;
  bool last_block_ = false;
  bool downloading_ = false;
  bool restarted_ = false;
  bool echoed_ = false;
  bool body_in_blocks_ = false;
  bool finished_ = false;
};

}  // namespace coap::detail
