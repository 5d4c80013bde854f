// The server side of a session, whatever its transport: RFC 7252 section 5.7 (a request through
// the resources), 5.2.2 (separate responses), 5.9.3.4 (5.03 when memory runs out), RFC 7641
// section 4 (this session's observers) and RFC 7959 (block-wise state). A CRTP base: the
// transport adds only its message layer. Derived (a friend) provides
//   send_deferred_as(id, fill)        sends a separate response that fill(owned_message&) writes
//   blocks()                          the block_context (max PDU size, BERT)
//   notify(observer&, handler_asked)  sends notification() to one observer; true when it went
//   notify_gone(observer&)            sends notification() (a final 4.04) to one observer
// and session_common's ctx_, config_ and closed_.
#pragma once

#include <coap/detail/deferred_responses.hpp>
#include <coap/detail/server_exchange.hpp>
#include <coap/detail/server_options.hpp>
#include <coap/detail/stateless_response.hpp>
#include <coap/message.hpp>
#include <coap/resource.hpp>

#include <cstdint>
#include <new>
#include <optional>
#include <string_view>

namespace coap::detail {

template <class Derived, class Allocator>
class server_side : public deferred_response::sink {
 public:
  using observer = typename observer_list<Allocator>::observer;

  // ---- deferred_response::sink ----
  bool send_deferred(std::uint64_t id, const coap::message& response) final {
    if (suppress_deferred(id, response.code())) return true;
    return send_answer(id, [&](basic_message<Allocator>& out) {
      out.set_code(response.code());
      for (auto o : response.options()) out.add_option(o.number(), o.value());
      out.set_payload(response.payload());
    });
  }
  bool send_deferred(std::uint64_t id, response_code c, std::string_view payload,
                     std::optional<coap::content_format> cf) final {
    if (suppress_deferred(id, c)) return true;
    return send_answer(id, [&](basic_message<Allocator>& out) {
      out.set_code(c);
      if (cf) out.set_content_format(*cf);
      out.set_payload(payload);
    });
  }

  // ---- RFC 7641 section 4: notifications to this session's observers ----
  std::size_t notify_observers(std::uint64_t resource_id) {
    Derived& d = derived();
    if (server_.observers.empty()) return 0;
    return notify_session_observers(d.ctx_, server_, resource_id, notification(), session_text::of(d),
                                    d.security_channel().authenticated_peer(), *d.config_, d.blocks(), d.closed_,
                                    [&](observer& o, bool handler_asked) { return d.notify(o, handler_asked); });
  }
  // Section 4.2: the resource is gone; its observers hear 4.04 and are removed.
  void resource_removed(std::uint64_t resource_id) {
    Derived& d = derived();
    if (server_.observers.empty()) return;
    end_observers_of(d.ctx_, server_, resource_id, notification(), d.closed_, [&](observer& o) { d.notify_gone(o); });
  }
  // Counters of block-wise refusals (tests, operators).
  const coap::detail::block_counters& block_counters() const noexcept { return server_.counters; }
  std::size_t observer_count() const noexcept { return server_.observers.size(); }

 protected:
  explicit server_side(const Allocator& a) : server_(a), deferred_(a) {}

  // The notification being sent (its buffers are made when the first notification goes: a
  // session has observers by then). Throws bad_alloc when the allocator refuses.
  basic_message<Allocator>& notification() { return server_.notifications.ensure().message; }

  struct served {
    dispatch_outcome outcome;
    bool deferred;    // the answer comes later (send_deferred); else it is in `response`
    bool suppressed;  // RFC 7967: the request's No-Response names the answer's class: not sent
  };
  // One request through the resources, the handler's answer in `response` (cleared: a
  // message the transport borrowed from its context, answer_messages()). Throws bad_alloc
  // when the allocator refuses (see guard). Around the handler (detail/server_options.hpp):
  // RFC 8516's 4.29 for a peer over its rate or its deferred answers, RFC 9175's Echo
  // (freshness; 4.01 in place of an answer too large for an unverified UDP address), RFC
  // 7967's No-Response.
  served serve(const message_view& request, bool confirmable, basic_message<Allocator>& response) {
    Derived& d = derived();
    // When the request arrived: the transport set it as it read the message (one clock read
    // per datagram or read, not one per use).
    const auto now = d.last_activity();
    if (std::uint32_t retry_after = 0; !guards_.rate.admit(*d.config_, now, deferred_.size(), retry_after)) {
      make_too_many_requests(response, retry_after);
      return {dispatch_outcome::respond, false, response_suppressed(request, response.code())};
    }
    basic_response<Allocator> res(response);
    // Until keep_if: guard()'s roll_back forgets it when the handler throws.
    typename deferred_responses<Allocator>::entry current{};
    deferred_.open(res, d.weak_from_this(), request, confirmable, current);
    response_access::set_request_fresh(res, guards_.echo.check(request, now, d.config_->echo_freshness));
    // Before serving: the last block frees the kept answer.
    const bool continuing = Derived::address_spoofable && continues_kept_answer(request, now, d.blocks().bert);
    const auto outcome = serve_request(d.ctx_, server_, request, res, session_text::of(d),
                                       d.security_channel().authenticated_peer(), *d.config_, d.blocks(), now);
    deferred_.keep_if(res.deferred() && outcome != dispatch_outcome::drop);
    if (outcome == dispatch_outcome::drop || res.deferred()) return {outcome, res.deferred(), false};
    bool challenge = res.echo_requested();
    if constexpr (Derived::address_spoofable) {
      // RFC 9175 section 2.4: no more than amplification_factor times the request to an
      // address not shown to be the peer's; an Observe registration made meanwhile goes.
      // A later block of a representation this session is sending (kept: its block 0 went to
      // this address, after the limit or as a group answer) is no new amplification. A request
      // that verified under OSCORE came from the key's holder, fresh (RFC 8613 section 7.4):
      // its address is as good as a DTLS peer's.
      if (!challenge && !guards_.echo.address_verified() && !d.answering_group_request() &&
          d.security_channel().authenticated_peer().empty() &&
          !continuing &&
          amplifies(datagram_size(response, request.token().size()), datagram_size(request),
                    d.config_->amplification_factor)) {
        remove_observer(token_of(request));
        challenge = true;
      }
    }
    if (challenge) make_echo_challenge(response, guards_, *d.config_, now, [&] { return d.ctx_.random(); });
    return {outcome, false, response_suppressed(request, response.code())};
  }
  // Runs handle(); when the allocator refuses, what it registered goes and out_of_memory(busy)
  // gets a 5.03 for `request` (Max-Age, diagnostic), built on the stack (section 5.9.3.4).
  template <class Handle, class OutOfMemory>
  void guard(const message_view& request, Handle handle, OutOfMemory out_of_memory) {
    const auto mark = deferred_.mark();
    try {
      handle();
    } catch (const std::bad_alloc&) {
      deferred_.roll_back(mark);
      with_stack_message([&](stack_message& busy) {
        make_service_unavailable(busy, request, "out of memory");
        out_of_memory(busy);
      });
    }
  }
  // The handler's answer cannot be sent as it is: a 5.00 saying so, rather than silence.
  void replace_with_internal_error(const message_view& request, std::string_view why,
                                   basic_message<Allocator>& response) {
    response.clear();
    response.set_code(response_code::internal_server_error);
    response.set_token(request.token());
    response.set_payload(why);
  }

  void remove_observer(const coap::token& t) noexcept {
    if (auto i = server_.observers.find(t.bytes()))
      context_access::observer_left(derived().ctx_, server_.observers.remove(*i));
  }
  void forget_observers() noexcept {
    while (!server_.observers.empty())
      context_access::observer_left(derived().ctx_, server_.observers.remove(server_.observers.size() - 1));
  }

  server_extensions<Allocator> server_;
  deferred_responses<Allocator> deferred_;
  request_guards guards_;

 private:
  Derived& derived() noexcept { return static_cast<Derived&>(*this); }

  // A separate response; to a pending observer's registration it decides the registration
  // (RFC 7641 section 4.1, confirm_registration).
  template <class Fill>
  bool send_answer(std::uint64_t id, Fill fill) {
    Derived& d = derived();
    const auto* entry = deferred_.find(id);
    if (!entry || server_.observers.empty()) return d.send_deferred_as(id, fill);
    const coap::token t = entry->request_token;
    bool registered = false;
    const bool sent = d.send_deferred_as(id, [&](basic_message<Allocator>& out) {
      fill(out);
      registered = confirm_registration(d.ctx_, server_, t, out);
    });
    if (sent) observer_answered(d.ctx_, server_, t, registered);
    return sent;
  }
  // RFC 7959 section 2.4: `request` asks for a later block of the answer kept for its blocks.
  bool continues_kept_answer(const message_view& request, std::chrono::steady_clock::time_point now,
                             bool bert) const noexcept {
    const auto* kept = server_.kept.get();
    if (!kept || kept->expires < now || kept->key != block1_body_key(request)) return false;
    const auto b2 = request.find(option_number::block2);
    if (!b2) return false;
    const auto asked = read_block(b2->value(), bert);
    return asked && asked->num > 0;
  }
  // RFC 7967: a separate answer the request's No-Response names is not sent (the exchange
  // ends). Not while a CON's empty ACK is still due (session_config::deferred_ack_delay): the
  // answer then goes, piggybacked, rather than no acknowledgement at all.
  bool suppress_deferred(std::uint64_t id, code c) noexcept {
    const auto* e = deferred_.find(id);
    if (!e || e->ack_due || !suppresses(e->no_response, c)) return false;
    deferred_.erase(id);
    return true;
  }
};

}  // namespace coap::detail
