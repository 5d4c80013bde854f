// RFC 7959 sections 2.3-2.5 (and RFC 8323 section 6, BERT), the server's side: a request
// body that arrives in Block1 blocks is put together before a handler sees it, and a response
// body larger than a block is sent as the Block2 block the client asks for. Sans-I/O: the
// session feeds requests and responses in and sends what comes out.
//
// Block2 is stateless: the handler produces the whole representation for every block request
// and the block asked for is cut from it; an ETag (the handler's, or a hash of the body) lets
// the client notice a representation that changed between blocks (section 2.4).
#pragma once

#include <coap/block.hpp>
#include <coap/code.hpp>
#include <coap/message.hpp>
#include <coap/message_view.hpp>
#include <coap/option.hpp>
#include <coap/session_config.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace coap::detail {

// A Block1/Block2 option's value as this transport accepts it: SZX 7 only where BERT was
// offered (RFC 8323 section 6), never over UDP. Nullopt for a malformed one (section 2.2:
// longer than 3 bytes, reserved SZX).
inline std::optional<block_value> read_block(std::span<const std::uint8_t> value, bool bert) noexcept {
  if (value.size() > 3) return std::nullopt;
  std::uint32_t raw = 0;
  for (std::uint8_t b : value) raw = (raw << 8) | b;
  if (bert && (raw & 0x7u) == 7u) return block_value{raw >> 4, (raw & 0x8u) != 0, 7};
  block_value out;
  if (decode_block(raw, out)) return std::nullopt;
  return out;
}

// The options a Block1 body's blocks must share (section 2.5: the same request, block after
// block), as a 64-bit FNV-1a hash: everything but Block1/Block2, Size1/Size2 and Observe.
// Request-Tag (RFC 9175 section 3) takes part, so that tagged bodies to one resource stay
// apart.
inline std::uint64_t block1_body_key(const message_view& m) noexcept {
  std::uint64_t h = 14695981039346656037ull;
  auto mix = [&](std::uint8_t b) {
    h ^= b;
    h *= 1099511628211ull;
  };
  mix(static_cast<std::uint8_t>(m.code().raw()));
  for (option_view o : m.options()) {
    const auto n = static_cast<option_number>(o.number());
    if (n == option_number::block1 || n == option_number::block2 || n == option_number::size1 ||
        n == option_number::size2 || n == option_number::observe)
      continue;
    mix(static_cast<std::uint8_t>(o.number() >> 8));
    mix(static_cast<std::uint8_t>(o.number()));
    mix(static_cast<std::uint8_t>(o.value().size()));
    for (std::uint8_t b : o.value()) mix(b);
  }
  return h;
}

// An ETag for a body whose handler gave none: 8 bytes of a 64-bit hash, word by word (a
// megabyte hashes in a fraction of a millisecond; it tells representations apart, it does not
// defend against anyone).
inline std::array<std::uint8_t, 8> body_etag(std::span<const std::uint8_t> body) noexcept {
  auto mix = [](std::uint64_t x) noexcept {  // MurmurHash3's finalizer
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
  };
  std::uint64_t h = 0x9e3779b97f4a7c15ull ^ body.size();
  std::size_t i = 0;
  for (; i + 8 <= body.size(); i += 8) {
    std::uint64_t w;
    std::memcpy(&w, body.data() + i, 8);
    h = (h ^ mix(w)) * 0x9e3779b97f4a7c15ull;
    h = (h << 27) | (h >> 37);
  }
  std::uint64_t tail = 0;
  for (std::size_t k = 0; i < body.size(); ++i, ++k) tail |= std::uint64_t{body[i]} << (8 * k);
  h = mix(h ^ mix(tail));
  std::array<std::uint8_t, 8> out{};
  for (std::size_t k = 0; k < 8; ++k) out[k] = static_cast<std::uint8_t>(h >> (56 - 8 * k));
  return out;
}

// What the server does with a request's Block1 option.
enum class block1_step : std::uint8_t {
  none,      // no Block1: dispatch the request as it came
  continue_, // a block that is not the last was kept: answered with 2.31 Continue (in `answer`)
  complete,  // the last block arrived: dispatch `body()` with the request's options
  refused,   // answered with an error (4.08, 4.13, 4.02, 5.03) in `answer`
};

// Statistics a test or an operator reads: every refusal is counted.
struct block_counters {
  std::uint32_t bodies_completed = 0;
  std::uint32_t incomplete = 0;       // 4.08: a block missing, out of order, or of another size
  std::uint32_t too_large = 0;        // 4.13
  std::uint32_t bad_option = 0;       // 4.02: malformed Block1/Block2
  std::uint32_t busy = 0;             // 5.03: more partial bodies than allowed
  std::uint32_t expired = 0;          // partial bodies dropped after block_transfer_timeout
};

// The partial request bodies of one session, from its allocator, bounded by
// session_config::max_partial_uploads and max_body_size.
template <class Allocator>
class block1_assembler {
  template <class T>
  using rebind = typename std::allocator_traits<Allocator>::template rebind_alloc<T>;
  using clock = std::chrono::steady_clock;
  using bytes = std::vector<std::uint8_t, rebind<std::uint8_t>>;

 public:
  explicit block1_assembler(const Allocator& a) : bodies_(rebind<partial>(a)), alloc_(a) {}

  // Section 2.5. `answer` receives the code and options of a reply that the session sends
  // without dispatching (continue_ and refused); the caller adds type, ID and token.
  // Throws std::bad_alloc when the allocator refuses (the caller answers 5.03).
  template <class Message>
  block1_step on_request(const message_view& m, Message& answer, const session_config& config, bool bert,
                         block_counters& counters, clock::time_point now) {
    auto option = m.find(option_number::block1);
    if (!option) return block1_step::none;
    expire(config, now, counters);
    const auto block = read_block(option->value(), bert);
    if (!block) {
      ++counters.bad_option;
      return refuse(answer, response_code::bad_option, "malformed Block1");
    }
    const std::uint64_t key = block1_body_key(m);
    const std::size_t size = block->size();
    const auto payload = m.payload();
    // BERT (szx 7) carries any multiple of 1024 bytes; other blocks exactly their size,
    // but for the last.
    const bool full = block->szx == 7 ? payload.size() % 1024 == 0 && !payload.empty() : payload.size() == size;
    if (block->more && !full) {
      ++counters.incomplete;
      drop(key);
      return refuse(answer, response_code::request_entity_incomplete, "block of the wrong size");
    }
    const std::size_t offset = static_cast<std::size_t>(block->num) * size;
    std::size_t declared = 0;
    if (auto s1 = m.find(option_number::size1)) declared = s1->as_uint();
    if (declared > config.max_body_size || offset + payload.size() > config.max_body_size) {
      ++counters.too_large;
      drop(key);
      refuse(answer, response_code::request_entity_too_large, "body too large");
      answer.add_uint_option(static_cast<std::uint16_t>(option_number::size1),
                             static_cast<std::uint32_t>(config.max_body_size));
      return block1_step::refused;
    }

    partial* body = find(key);
    if (block->num == 0) {
      if (!block->more) {
        // A whole body in one block: nothing to keep.
        drop(key);
        completed_.reset();
        single_ = payload;
        ++counters.bodies_completed;
        echo(answer, *block);
        return block1_step::complete;
      }
      if (!body) {
        if (bodies_.size() >= std::max<std::size_t>(config.max_partial_uploads, 1)) {
          ++counters.busy;
          answer.set_code(response_code::service_unavailable);
          answer.add_uint_option(static_cast<std::uint16_t>(option_number::max_age), 5);
          answer.set_payload(std::string_view("too many partial bodies"));
          return block1_step::refused;
        }
        bodies_.reserve(bodies_.size() + 1);
        bodies_.push_back(partial(alloc_));
        body = &bodies_.back();
        body->key = key;
      }
      body->data.clear();
      body->szx = block->szx;
    } else if (!body || offset != body->data.size() || block->szx != body->szx) {
      // A repeated last block (its 2.31 got lost and the client asked anew) is answered again.
      if (body && block->szx == body->szx && block->more && offset + size == body->data.size()) {
        body->last_seen = now;
        echo(answer, *block);
        answer.set_code(response_code::continue_);
        return block1_step::continue_;
      }
      ++counters.incomplete;
      drop(key);
      return refuse(answer, response_code::request_entity_incomplete, "block missing or out of order");
    }
    body->data.insert(body->data.end(), payload.begin(), payload.end());
    body->last_seen = now;
    echo(answer, *block);
    if (block->more) {
      answer.set_code(response_code::continue_);
      return block1_step::continue_;
    }
    ++counters.bodies_completed;
    // Kept until the next request: body() points into it while the handler runs.
    const auto at = static_cast<std::size_t>(body - bodies_.data());
    completed_.emplace(std::move(body->data));
    bodies_.erase(bodies_.begin() + static_cast<std::ptrdiff_t>(at));
    single_ = {};
    return block1_step::complete;
  }

  // After block1_step::complete: the whole body.
  std::span<const std::uint8_t> body() const noexcept {
    return completed_ ? std::span<const std::uint8_t>(*completed_) : single_;
  }
  // The Block1 option that the final response echoes (section 2.3), set by on_request.
  std::optional<block_value> echoed() const noexcept { return echoed_; }
  void release_completed() noexcept {
    completed_.reset();
    single_ = {};
    echoed_.reset();
  }
  std::size_t partial_bodies() const noexcept { return bodies_.size(); }
  std::size_t buffered_bytes() const noexcept {
    std::size_t n = 0;
    for (const auto& b : bodies_) n += b.data.capacity();
    return n;
  }

  // Frees partial bodies with no block for config.block_transfer_timeout.
  void expire(const session_config& config, clock::time_point now, block_counters& counters) noexcept {
    for (std::size_t i = 0; i < bodies_.size();) {
      if (now - bodies_[i].last_seen > config.block_transfer_timeout) {
        bodies_.erase(bodies_.begin() + static_cast<std::ptrdiff_t>(i));
        ++counters.expired;
      } else {
        ++i;
      }
    }
  }

 private:
  struct partial {
    std::uint64_t key = 0;
    std::uint8_t szx = 0;
    clock::time_point last_seen{};
    bytes data;
    explicit partial(const Allocator& a) : data(rebind<std::uint8_t>(a)) {}
  };

  template <class Message>
  block1_step refuse(Message& answer, response_code c, std::string_view why) {
    answer.set_code(c);
    answer.set_payload(why);
    echoed_.reset();
    return block1_step::refused;
  }
  template <class Message>
  void echo(Message& answer, block_value b) {
    echoed_ = b;
    answer.add_uint_option(static_cast<std::uint16_t>(option_number::block1), encode(b));
  }
  partial* find(std::uint64_t key) noexcept {
    for (auto& b : bodies_)
      if (b.key == key) return &b;
    return nullptr;
  }
  void drop(std::uint64_t key) noexcept {
    for (std::size_t i = 0; i < bodies_.size(); ++i)
      if (bodies_[i].key == key) {
        bodies_.erase(bodies_.begin() + static_cast<std::ptrdiff_t>(i));
        return;
      }
  }

  std::vector<partial, rebind<partial>> bodies_;
  std::optional<bytes> completed_;
  std::span<const std::uint8_t> single_;
  std::optional<block_value> echoed_;
  Allocator alloc_;
};

// Which Block2 block of a body of `total` bytes answers `request` (section 2.2 and 2.4):
// the block its Block2 option asks for, or block 0 when the body is larger than `room` (the
// payload bytes a message of this session can carry after its header and options).
enum class block2_plan_kind : std::uint8_t { whole, block, malformed, past_the_end };
struct block2_plan {
  block2_plan_kind kind = block2_plan_kind::whole;
  std::size_t offset = 0, length = 0;
  block_value value{};
};
inline block2_plan plan_block2(const message_view& request, std::size_t total, std::size_t room,
                               std::uint8_t preferred_szx, bool bert) noexcept {
  block2_plan plan;
  std::optional<block_value> asked;
  if (auto o = request.find(option_number::block2)) {
    asked = read_block(o->value(), bert);
    if (!asked) {
      plan.kind = block2_plan_kind::malformed;
      return plan;
    }
  }
  if (!asked && total <= room) return plan;
  // The block size: the client's (section 2.4: a server MUST use it or a smaller one), ours,
  // and what fits in a message.
  std::uint8_t szx = std::min<std::uint8_t>(preferred_szx, bert ? 7 : max_szx);
  if (asked) szx = std::min(szx, asked->szx);
  // RFC 8323 section 6: a client that asks for BERT where both sides offered it gets it.
  if (asked && asked->szx == 7 && bert) szx = 7;
  if (szx == 7 && room < 1024) szx = max_szx;
  while (szx > 0 && szx != 7 && (std::size_t{16} << szx) > room) --szx;
  const std::size_t unit = szx == 7 ? 1024 : (std::size_t{16} << szx);
  // A block asked for in a larger size starts at the same offset in ours (section 2.4).
  const std::size_t offset = asked ? static_cast<std::size_t>(asked->num) * asked->size() : 0;
  if (offset > 0 && offset >= total) {
    plan.kind = block2_plan_kind::past_the_end;
    return plan;
  }
  // BERT: as many 1024-byte units as the room takes.
  const std::size_t chunk = szx == 7 ? std::max<std::size_t>(1, room / 1024) * 1024 : unit;
  plan.kind = block2_plan_kind::block;
  plan.offset = offset;
  plan.length = std::min(chunk, total - offset);
  plan.value = block_value{static_cast<std::uint32_t>(offset / unit), offset + plan.length < total, szx};
  return plan;
}

// The options a block of a kept representation carries besides its own: all but those that
// describe one message of the transfer.
inline bool describes_one_block(std::uint16_t number) noexcept {
  const auto n = static_cast<option_number>(number);
  return n == option_number::block2 || n == option_number::size2 || n == option_number::observe;
}

// Replaces `response` by 4.02 Bad Option for a Block2 request it cannot answer.
template <class Message>
void refuse_block2(Message& response, block2_plan_kind why, block_counters& counters) {
  ++counters.bad_option;
  response.clear_options_and_payload();
  response.set_code(response_code::bad_option);
  response.set_payload(std::string_view(why == block2_plan_kind::malformed ? "malformed Block2" : "block past the end"));
}

// Adds the options of a block: Size2 on block 0 or when the request asked (section 4 of RFC
// 7959), and Block2.
template <class Message>
void add_block2_options(const message_view& request, Message& response, const block2_plan& plan, std::size_t total) {
  if (plan.offset == 0 || request.find(option_number::size2))
    response.add_uint_option(static_cast<std::uint16_t>(option_number::size2), static_cast<std::uint32_t>(total));
  response.add_uint_option(static_cast<std::uint16_t>(option_number::block2), encode(plan.value));
}

// Cuts the block the request asks for out of `response`'s payload, in place, adding Block2,
// Size2 and an ETag when the handler set none. Only 2.xx responses are split (an error
// response is not transferred block-wise, section 2.2). Returns false when the request's
// Block2 is malformed or lies past the end: the response is then 4.02 Bad Option.
template <class Message>
bool cut_block2(const message_view& request, Message& response, std::size_t room, std::uint8_t preferred_szx,
                bool bert, block_counters& counters) {
  if (response.code().code_class() != 2) return true;
  const std::size_t total = response.payload().size();
  const auto plan = plan_block2(request, total, room, preferred_szx, bert);
  switch (plan.kind) {
    case block2_plan_kind::whole: return true;
    case block2_plan_kind::malformed:
    case block2_plan_kind::past_the_end: refuse_block2(response, plan.kind, counters); return false;
    case block2_plan_kind::block: break;
  }
  if (!response.find(option_number::etag)) response.add_option(option_number::etag, body_etag(response.payload()));
  add_block2_options(request, response, plan, total);
  response.keep_payload_range(plan.offset, plan.length);
  return true;
}

}  // namespace coap::detail
