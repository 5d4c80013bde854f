// RFC 7252 section 5.7 with RFC 7959 (block-wise) and RFC 7641 (Observe): how a server
// session turns one request into its response, and one observer into its notification,
// whatever the transport. The session adds the message layer (type, ID, deduplication or
// framing) and sends; everything between the request and the response bytes is here.
#pragma once

#include <coap/context.hpp>
#include <coap/detail/block_server.hpp>
#include <coap/detail/lazy.hpp>
#include <coap/detail/observe_server.hpp>
#include <coap/detail/server_dispatch.hpp>
#include <coap/resource.hpp>
#include <coap/udp_codec.hpp>

#include <chrono>
#include <cstdint>
#include <new>
#include <string_view>

namespace coap::detail {

// The payload bytes a message of `max_pdu` bytes can carry next to `response`'s header,
// token and options, with room for the Block2, Size2 and ETag options block-wise adds.
template <class Message>
std::size_t payload_room(const Message& response, std::size_t max_pdu) noexcept {
  std::size_t overhead = 6 + response.token().size() + 1 /* payload marker */ + 24 /* Block2, Size2, ETag */;
  for (option_view o : response.options()) overhead += o.value().size() + 5;
  return max_pdu > overhead + 16 ? max_pdu - overhead : 16;
}

// Where the transport stands on block-wise transfer.
struct block_context {
  std::size_t max_pdu;   // the session's max_pdu_size()
  bool bert;             // RFC 8323 section 6: both CSMs offered Block-Wise-Transfer
};

// RFC 7959 sections 2.4 and 2.7: a representation sent in blocks is kept, whole, for the
// blocks that follow (as libcoap's COAP_BLOCK_USE_LIBCOAP does): its handler runs once per
// transfer, the client gets one consistent snapshot under one ETag, and the answer to a POST
// (whose handler must not run again, section 2.7) can be continued at all. One per session,
// from its allocator, freed after its last block, on expiry (block_transfer_timeout, or the
// answer's Max-Age when sooner) or when a newer one replaces it. A safe method whose kept
// answer is gone is answered afresh (stateless); an unsafe one 4.08.
template <class Allocator>
struct kept_answer {
  explicit kept_answer(const Allocator& a) : answer(a) {}
  std::uint64_t key = 0;  // block1_body_key of the request
  std::chrono::steady_clock::time_point expires{};
  basic_message<Allocator> answer;
};

// The buffers a session notifies its observers with: apart from the response a handler is
// filling (a handler may notify while it answers), made when the first observer registers.
template <class Allocator>
struct notification_buffers {
  using bytes = std::vector<std::uint8_t, typename std::allocator_traits<Allocator>::template rebind_alloc<std::uint8_t>>;
  explicit notification_buffers(const Allocator& a) : message(a), wire(typename bytes::allocator_type(a)) {}
  basic_message<Allocator> message;
  bytes wire;  // a NON notification's encoding (UDP)
};

// What a server session keeps beyond its message layer: observers and refusal counters
// inline; partial request bodies, the latest representation sent in blocks and the
// notification buffers made on first use (detail/lazy.hpp), so that a session that never
// sees them pays three pointers.
template <class Allocator>
struct server_extensions {
  explicit server_extensions(const Allocator& a) : block1(a), kept(a), notifications(a), observers(a) {}
  lazy<block1_assembler<Allocator>, Allocator> block1;
  lazy<kept_answer<Allocator>, Allocator> kept;
  lazy<notification_buffers<Allocator>, Allocator> notifications;
  observer_list<Allocator> observers;
  block_counters counters;
};

inline bool is_safe(method m) noexcept { return m == method::get || m == method::fetch; }

// Keeps `response` (2.xx, larger than a block, its ETag set) for the blocks that follow.
// Throws std::bad_alloc when the allocator refuses.
template <class Allocator, class Message>
void keep_answer(kept_answer<Allocator>& kept, const message_view& request, const Message& response,
                 const session_config& config, std::chrono::steady_clock::time_point now) {
  kept.answer.assign_message(response);
  kept.key = block1_body_key(request);
  std::chrono::steady_clock::duration life = config.block_transfer_timeout;
  if (auto max_age = response.find(option_number::max_age))
    life = std::min<std::chrono::steady_clock::duration>(life, std::chrono::seconds(max_age->as_uint()));
  kept.expires = now + life;
}

// A later block from the kept answer, into `response`; false when no kept answer fits.
template <class Allocator, class Message>
bool serve_kept(lazy<kept_answer<Allocator>, Allocator>& slot, const message_view& request, Message& response,
                block_context blocks, const session_config& config, block_counters& counters,
                std::chrono::steady_clock::time_point now) {
  auto* kept = slot.get();
  if (!kept) return false;
  if (kept->expires < now) {
    slot.reset();
    return false;
  }
  if (kept->key != block1_body_key(request)) return false;
  const auto& whole = kept->answer;
  const auto total = whole.payload().size();
  const auto plan = plan_block2(request, total, payload_room(whole, blocks.max_pdu), config.block_szx, blocks.bert);
  if (plan.kind == block2_plan_kind::malformed || plan.kind == block2_plan_kind::past_the_end) {
    refuse_block2(response, plan.kind, counters);
    return true;
  }
  if (plan.kind != block2_plan_kind::block) return false;
  response.set_code(whole.code());
  for (option_view o : whole.options())
    if (!describes_one_block(o.number())) response.add_option(o.number(), o.value());
  add_block2_options(request, response, plan, total);
  response.set_payload(whole.payload().subspan(plan.offset, plan.length));
  if (!plan.value.more) slot.reset();  // the last block: its memory goes back
  return true;
}

// Cuts a 2.xx representation larger than a block into the block asked for, keeping the whole
// for the blocks that follow (see kept_answer). `unsafe`: the handler must not run again for
// them, so a refusal to keep is the allocator's problem to report (bad_alloc is rethrown).
template <class Allocator, class Message>
void answer_in_blocks(server_extensions<Allocator>& ext, const message_view& request, Message& response,
                      block_context blocks, const session_config& config, bool unsafe,
                      std::chrono::steady_clock::time_point now) {
  const auto room = payload_room(response, blocks.max_pdu);
  if (response.code().code_class() == 2 && response.payload().size() > room) {
    if (!response.find(option_number::etag)) response.add_option(option_number::etag, body_etag(response.payload()));
    try {
      keep_answer(ext.kept.ensure(), request, response, config, now);
    } catch (const std::bad_alloc&) {
      ext.kept.reset();
      if (unsafe) throw;  // a safe method's later blocks are made afresh instead
    }
  }
  cut_block2(request, response, room, config.block_szx, blocks.bert, ext.counters);
}

// Section 4.1 of RFC 7641: registers or deregisters the requester of a GET/FETCH with
// Observe, after the handler answered `res` (or deferred: the observer is then pending until
// the answer goes, see confirm_registration). Past the caps the request is answered as a
// plain GET (no Observe in the response: not registered). The resource is the one the
// handler named (observe_as), else the one the path names (none for a proxy request).
template <class Allocator>
void observe_request(basic_context<Allocator>& ctx, server_extensions<Allocator>& ext, const request& req,
                     basic_response<Allocator>& res) {
  const message_view& m = req.message();
  const auto observe = m.find(option_number::observe);
  if (!observe || (req.method() != method::get && req.method() != method::fetch)) return;
  auto& response = res.message();
  const auto existing = ext.observers.find(m.token());
  const bool success = res.deferred() || response.code().code_class() == 2;
  if (observe->as_uint() != 0 || !success) {
    // Observe=1 (section 3.6), or an error answer to a (re-)registration (section 4.1).
    if (existing) coap::detail::context_access::observer_left(ctx, ext.observers.remove(*existing));
    return;
  }
  std::shared_ptr<basic_resource<Allocator>> by_path;
  basic_resource<Allocator>* resource = nullptr;
  if (res.observed_resource()) {
    resource = ctx.resources().find_by_id(res.observed_resource());
  } else if (!m.find(option_number::proxy_uri) && !m.find(option_number::proxy_scheme)) {
    by_path = ctx.resources().find(req);
    resource = by_path.get();
  }
  if (!resource || !resource->is_observable) {
    if (existing) coap::detail::context_access::observer_left(ctx, ext.observers.remove(*existing));
    return;
  }
  if (existing && ext.observers[*existing].resource_id != resource->id) {
    coap::detail::context_access::observer_left(ctx, ext.observers.remove(*existing));
    return observe_request(ctx, ext, req, res);
  }
  if (!existing) {
    if (ext.observers.size() >= ctx.config().max_observers_per_session || !coap::detail::context_access::observer_admit(ctx, *resource)) return;
    try {
      // False here: the request could not be kept (the codec refuses to encode it again).
      if (!ext.observers.add(resource->id, m)) {
        coap::detail::context_access::observer_left(ctx, resource->id);
        return;  // answered without Observe: not registered
      }
    } catch (const std::bad_alloc&) {
      coap::detail::context_access::observer_left(ctx, resource->id);
      return;  // answered without Observe: not registered
    }
  } else {
    ext.observers.add(resource->id, m);  // re-registration: the new request replaces the old
  }
  if (res.deferred()) {
    if (auto i = ext.observers.find(m.token())) ext.observers[*i].pending = true;
    return;
  }
  response.add_uint_option(static_cast<std::uint16_t>(option_number::observe), resource->observe_sequence);
}

// Section 4.1 for a deferred answer: sent to a pending observer (token `t`), a 2.xx while its
// resource is still observable registers it (Observe set to the resource's sequence number);
// anything else removes it (and an Observe option the answer carries goes: not registered).
// Returns whether the observer stays, to be told to after the answer went (observer_sent).
template <class Allocator, class Message>
bool confirm_registration(basic_context<Allocator>& ctx, server_extensions<Allocator>& ext, const coap::token& t,
                          Message& answer) {
  const auto observe = static_cast<std::uint16_t>(option_number::observe);
  const auto i = ext.observers.find(t.bytes());
  if (!i || !ext.observers[*i].pending) {
    answer.remove_option(observe);
    return false;
  }
  auto* resource = ctx.resources().find_by_id(ext.observers[*i].resource_id);
  answer.remove_option(observe);
  if (answer.code().code_class() != 2 || !resource || !resource->is_observable) return false;
  answer.add_uint_option(observe, resource->observe_sequence);
  return true;
}
// After the deferred answer to a pending observer went (or could not): it is registered or
// it goes.
template <class Allocator>
void observer_answered(basic_context<Allocator>& ctx, server_extensions<Allocator>& ext, const coap::token& t,
                       bool registered) {
  const auto i = ext.observers.find(t.bytes());
  if (!i || !ext.observers[*i].pending) return;
  if (registered) {
    ext.observers[*i].pending = false;
    return;
  }
  coap::detail::context_access::observer_left(ctx, ext.observers.remove(*i));
}

// Serves one request into `res` (whose message the session reuses): Block1 reassembly
// (RFC 7959 section 2.5), the resource's handler, Observe registration, the Block2 block
// asked for. Throws std::bad_alloc when the allocator refuses (the session answers 5.03).
template <class Allocator>
dispatch_outcome serve_request(basic_context<Allocator>& ctx, server_extensions<Allocator>& ext,
                               const message_view& m, basic_response<Allocator>& res,
                               session_text description, std::string_view authenticated_peer,
                               const session_config& config, block_context blocks,
                               std::chrono::steady_clock::time_point now) {
  auto& response = res.message();
  const auto verb = static_cast<method>(m.code().raw());
  // A later block of a representation sent in blocks comes from the kept answer (RFC 7959
  // sections 2.4, 2.7); without one, a safe method's handler makes it afresh, an unsafe
  // method's answer is 4.08 unless a forward proxy has it (it cuts and keeps its answers:
  // an OSCORE POST's, RFC 8613 section 4.1.3.4.2).
  if (!m.find(option_number::block1) && !unrecognized_critical_option(m)) {
    if (auto b2 = m.find(option_number::block2)) {
      const auto asked = read_block(b2->value(), blocks.bert);
      if (asked && asked->num > 0) {
        if (serve_kept(ext.kept, m, response, blocks, config, ext.counters, now)) return dispatch_outcome::respond;
        if (!is_safe(verb) && !is_proxy_request(m)) {
          response.set_code(response_code::request_entity_incomplete);
          response.set_payload(std::string_view("no answer kept for this block"));
          ++ext.counters.incomplete;
          return dispatch_outcome::respond;
        }
      }
    }
  }
  message_view view = m;
  // RFC 7252 section 5.4.1: a request with an unrecognized critical option is not processed
  // (dispatch_request answers 4.02, or drops a NON): its blocks are not collected first.
  const auto step = unrecognized_critical_option(m) || !m.find(option_number::block1)
                        ? block1_step::none
                        : ext.block1.ensure().on_request(m, response, config, blocks.bert, ext.counters, now);
  switch (step) {
    case block1_step::none: break;
    case block1_step::continue_:
    case block1_step::refused: return dispatch_outcome::respond;
    case block1_step::complete:
      // The handler sees the last block's options and the whole body.
      view = message_view(message_view::parts{m.type(), m.code(), m.message_id(), m.token(), m.encoded_options(),
                                              ext.block1.get()->body(), m.option_mask()});
      break;
  }
  const request req(view, description, authenticated_peer, response_access::request_fresh(res), blocks.max_pdu);
  const auto outcome = dispatch_request(ctx.resources(), req, res);
  if (auto* b = ext.block1.get()) {
    b->release_completed();
    if (b->partial_bodies() == 0) ext.block1.reset();  // nothing partial left: its memory goes back
  }
  if (outcome == dispatch_outcome::drop) return outcome;
  observe_request(ctx, ext, req, res);
  if (res.deferred()) return outcome;
  answer_in_blocks(ext, view, response, blocks, config, !is_safe(verb), now);
  return dispatch_outcome::respond;
}

// What became of one observer's notification.
enum class notification : std::uint8_t {
  send,        // `res` holds a 2.xx notification with Observe (and block 0 when large)
  send_final,  // `res` holds an error answer (section 4.2): send it, then the observer goes
  skip,        // the handler deferred or dropped: nothing to send this time
};

// RFC 7641 section 4.2/4.4: runs the resource's handler on observer `o`'s registration and
// leaves the notification in `res` (token and Observe set; the session sets type and ID).
template <class Allocator>
notification build_notification(basic_context<Allocator>& ctx, server_extensions<Allocator>& ext,
                                typename observer_list<Allocator>::observer& o, basic_response<Allocator>& res,
                                std::uint32_t sequence, session_text description,
                                std::string_view authenticated_peer, const session_config& config,
                                block_context blocks) {
  message_view view;
  if (udp_codec::parse(o.request, view)) return notification::send_final;
  auto& response = res.message();
  const request req(view, description, authenticated_peer, false, blocks.max_pdu);
  const auto outcome = dispatch_request(ctx.resources(), req, res);
  if (outcome == dispatch_outcome::drop || res.deferred()) return notification::skip;
  response.set_token(o.token);
  if (response.code().code_class() != 2) return notification::send_final;
  response.add_uint_option(static_cast<std::uint16_t>(option_number::observe), sequence & observe_sequence_mask);
  // A large state: block 0 with Observe; the client fetches the rest (RFC 7959 section 2.6)
  // from the same snapshot.
  answer_in_blocks(ext, view, response, blocks, config, false, std::chrono::steady_clock::now());
  return notification::send;
}

// RFC 7641 section 4: one session's notifications for a resource, whatever the transport.
// Each observer of resource_id gets its handler's answer built into `scratch` and handed to
// send(observer, handler_asked_for_con), which sets the message layer, sends, and says
// whether it went out; an error answer ends the observer after it is sent (section 4.2).
// `closed` is read after every send (a send may end the session). Returns the count sent.
template <class Allocator, class Send>
std::size_t notify_session_observers(basic_context<Allocator>& ctx, server_extensions<Allocator>& ext,
                                     std::uint64_t resource_id, basic_message<Allocator>& scratch,
                                     session_text description, std::string_view authenticated_peer,
                                     const session_config& config, block_context blocks, const bool& closed,
                                     Send send) {
  if (closed || ext.observers.empty()) return 0;
  auto* resource = ctx.resources().find_by_id(resource_id);
  if (!resource) return 0;
  const auto sequence = resource->observe_sequence;
  std::size_t sent = 0;
  for (std::size_t i = 0; i < ext.observers.size() && !closed;) {
    auto& o = ext.observers[i];
    if (o.resource_id != resource_id || o.pending) {
      ++i;
      continue;
    }
    scratch.clear();
    basic_response<Allocator> res(scratch);
    response_access::bind(res, std::weak_ptr<deferred_response::sink>(), 0);
    notification what;
    try {
      what = build_notification(ctx, ext, o, res, sequence, description, authenticated_peer, config, blocks);
      if (what != notification::skip && send(o, res.confirmable_requested())) ++sent;
    } catch (const std::bad_alloc&) {
      what = notification::skip;  // no memory now: this state is not sent
    }
    if (what == notification::send_final) {
      coap::detail::context_access::observer_left(ctx, ext.observers.remove(i));
      continue;
    }
    ++i;
  }
  return sent;
}

// Section 4.2: the last word to observers of a resource that is gone: 4.04 Not Found.
template <class Message>
void build_gone(Message& response, const coap::token& t) {
  response.clear();
  response.set_token(t);
  response.set_code(response_code::not_found);
  response.set_payload(name(response_code::not_found));
}

// The resource is gone: each of this session's observers of it hears 4.04 through
// send(observer) (unless the session is closed) and is removed.
template <class Allocator, class Send>
void end_observers_of(basic_context<Allocator>& ctx, server_extensions<Allocator>& ext, std::uint64_t resource_id,
                      basic_message<Allocator>& scratch, const bool& closed, Send send) {
  for (std::size_t i = 0; i < ext.observers.size();) {
    auto& o = ext.observers[i];
    if (o.resource_id != resource_id) {
      ++i;
      continue;
    }
    if (!closed) {
      build_gone(scratch, o.token);
      try {
        send(o);
      } catch (const std::bad_alloc&) {
      }
    }
    coap::detail::context_access::observer_left(ctx, ext.observers.remove(i));
  }
}

}  // namespace coap::detail
