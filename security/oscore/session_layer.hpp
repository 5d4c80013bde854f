// RFC 8613 sections 8.1-8.4 inside a session: the per-session part of the `oscore` security
// policy (security/oscore/policy.hpp). The session calls it around its codec (docs/policies.md,
// "Message-layer security"): every request or response it encodes goes through outgoing(),
// every request or response it parsed through incoming_request() / incoming_response().
// Empty messages, pings and RFC 8323 signals are never protected (section 4.1, RFC 8613
// section 2).
//
// What it keeps per session: for the Token of each recent request, whether that request was
// protected, its 'kid' and Partial IV (section 8, oscore_core::request_binding) and its
// context. A server's response and its notifications are protected under the binding of the
// request they answer, and a response to an unprotected request goes unprotected; a client
// verifies a response under the binding of its request. The table is bounded
// (binding_capacity) and holds what is in flight and the observations: an answered exchange's
// entry goes at the next request; when full, the oldest goes, an Observe entry only when
// nothing else can. A response whose entry went is not sent (never unprotected in its place),
// a received one is refused. A request cut into Outer Block1 blocks on its way (section
// 4.1.3.4.2) is put together before it is verified (outer_block.hpp), bounded by
// session_config::oscore_max_unfragmented_size.
//
// Appendix B.2 (contexts made with renew_id_context): a server answers a request under a new
// ID1 with a protected 4.01 whose 'kid context' is its R2 and takes the R2||R3 request that
// follows as the context in use (store.hpp); a client verifies that 4.01 under R2||ID1 and
// sends the request again under R2||R3 through the session's ask-again path (asks_next_block),
// once per request, so that its application sees only the final answer.
#pragma once

#include <coap/context.hpp>
#include <coap/detail/lazy.hpp>
#include <coap/detail/option_codec.hpp>
#include <coap/error.hpp>
#include <coap/message.hpp>
#include <coap/message_view.hpp>
#include <coap/option.hpp>
#include <coap/security/oscore/error.hpp>
#include <coap/security/oscore/outer_block.hpp>
#include <coap/security/oscore/protect.hpp>
#include <coap/security/oscore/store.hpp>
#include <coap/session_event.hpp>
#include <coap/token.hpp>
#include <coap/udp_codec.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string_view>
#include <system_error>
#include <vector>

namespace coap::security {

// What an OSCORE session shares with its context: the store of security contexts and, for a
// client, the one it protects its requests with.
struct oscore_session_state {
  std::shared_ptr<oscore_core::store> store;
  oscore_core::store::entry* client = nullptr;
};

// Counted refusals (operators, tests): each also reaches the peer as section 8.2's reply or
// the waiting request as its error code.
struct oscore_counters {
  std::uint64_t protected_requests = 0;   // verified requests (server) or protected ones (client)
  std::uint64_t protected_responses = 0;  // verified responses (client) or protected ones (server)
  std::uint64_t refused = 0;              // received messages that failed verification
  std::uint64_t outer_blocks = 0;         // Outer Block1/Block2 blocks taken in (section 4.1.3.4.2)
  std::uint64_t id_context_renewals = 0;  // Appendix B.2 renewals done: R2||R3 verified (server),
                                          // a request sent again under it (client)
  std::error_code last_error;             // why the latest refusal happened
};

namespace detail {

// The Allocator of a session type udp_session_impl<Security, Allocator, ...> or
// tcp_session_impl<Security, Allocator>, read off its template arguments: the session is
// still incomplete where its members are declared.
template <class Session>
struct session_allocator;
template <template <class...> class Session, class Security, class Allocator, class... Rest>
struct session_allocator<Session<Security, Allocator, Rest...>> {
  using type = Allocator;
};

// Finds the context's OSCORE store for a server session (set_oscore); defined with the policy.
template <class Context>
std::shared_ptr<oscore_core::store> oscore_server_store(Context& ctx);

}  // namespace detail

template <class Session>
class oscore_layer {
  using allocator_type = typename detail::session_allocator<Session>::type;
  template <class T>
  using rebind = typename std::allocator_traits<allocator_type>::template rebind_alloc<T>;
  using entry = oscore_core::store::entry;
  struct binding;  // one request's protection state (below)
  using assembly = oscore_core::outer_block_assembly<allocator_type>;
  using step = typename assembly::step;

 public:
  // Bindings kept per session: recent requests, and every Observe registration up to the
  // session's caps.
  static constexpr std::size_t binding_capacity = 64;

  explicit oscore_layer(Session& s)
      : session_(s), bindings_(rebind<binding>(s.context().get_allocator())),
        plain_(allocator_type(s.context().get_allocator())), wire_(allocator_type(s.context().get_allocator())),
        body_(rebind<std::uint8_t>(s.context().get_allocator())), outer_(option_number::block1, allocator_type(s.context().get_allocator())),
        outer2_(option_number::block2, allocator_type(s.context().get_allocator())),
        kept_(rebind<kept_request>(s.context().get_allocator())), again_(allocator_type(s.context().get_allocator())),
        renewal_(allocator_type(s.context().get_allocator())) {}

  // A client session: the context it protects with (policy::client_state).
  void start_client(const std::shared_ptr<const oscore_session_state>& state) {
    store_ = state->store;
    client_ = state->client;
  }

  // The OSCORE sender of the latest request (server): "oscore:<Recipient ID in hex>", empty
  // when that request was not protected.
  std::string_view authenticated_peer() const noexcept { return current_peer_; }
  const oscore_counters& counters() const noexcept { return counters_; }

  // ---- sending: encode(m) for what is not protected, encode(protected m) otherwise ----
  template <class Message, class Encode>
  std::error_code outgoing(const Message& m, Encode&& encode) {
    const coap::code c = m.code();
    if (c.is_request()) {
      if (!client_) return encode(m);  // a server session sends no requests of its own
      oscore_core::request_binding b;
      bool renewing = false;
      {
        const std::lock_guard lock(store_->mutex());
        if (auto ec = oscore_core::protect_request(client_->sender->security_context, m, wire_, b)) return ec;
        renewing = client_->renewal && client_->renewal->state == renewal_step::waiting_for_r2;
      }
      remember(m.token(), true, b, client_);
      // Appendix B.2: the server will answer this one with its R2; kept to go again under R2||R3.
      if (renewing) {
        renewal_work& w = renewal();
        if (!udp_codec::encode(m, w.original)) (void)w.token.assign(m.token());
      }
      ++counters_.protected_requests;
      if (keep_requests_) keep_request(m.token());
      return encode(wire_);
    }
    if (!c.is_response()) return encode(m);
    binding* found = find(m.token());
    if (!found) return oscore_error::security_context_not_found;  // see the top: never sent plain
    mark_answered(*found);
    if (!found->is_protected) return encode(m);
    // Section 8.3 step 3: a notification, the first one (the registration's answer) too,
    // carries a Partial IV of its own, which orders the notifications (section 4.1.3.5.2).
    const auto nonce = m.find(option_number::observe) ? oscore_core::response_nonce::new_partial_iv
                                                      : oscore_core::response_nonce::from_request;
    {
      const std::lock_guard lock(store_->mutex());
      // Appendix B.2's 4.01 names R2 in its 'kid context'; no other response has one.
      if (auto ec = oscore_core::protect_response(found->context->sender->security_context, found->b, m, wire_, nonce,
                                                  found->context->response_kid_context.bytes()))
        return ec;
    }
    // RFC 7959 section 2.3: the answer to the last Outer Block1 block names it (M = 0).
    if (found->outer_block1) wire_.add_uint_option(static_cast<std::uint16_t>(option_number::block1), *found->outer_block1);
    ++counters_.protected_responses;
    return encode(wire_);
  }

  // ---- receiving ----
  // A request (server). `view` is what the resources see: the decrypted request, or `m`
  // itself when it carries no OSCORE option. An error is section 8.2's: the session answers
  // with reply_for(ec).
  std::error_code incoming_request(const message_view& m, message_view& view) {
    current_peer_ = {};
    if (!m.find(option_number::oscore)) {
      remember(m.token(), false, {}, nullptr, is_registration(m));
      view = m;
      return {};
    }
    // Section 4.1.3.4.2: a Block1 option outside the ciphertext is an Outer one; the blocks are
    // put together first, and the whole message verified.
    if (m.find(option_number::block1)) return incoming_outer_block(m, view);
    return verify_request(m, m, view, std::nullopt);
  }

 private:
  std::error_code incoming_outer_block(const message_view& m, message_view& view) {
    return take_outer_block(outer_, m, [&] { return verify_request(outer_.message(), m, view, encode(outer_.block())); });
  }

  // Section 4.1.3.4.2: one block into `a`; outer_block_continue until the last, which
  // complete() verifies; refusals counted (4.08, 4.13, 4.02 for a request).
  template <class Complete>
  std::error_code take_outer_block(assembly& a, const message_view& m, Complete&& complete) {
    ++counters_.outer_blocks;
    switch (a.add(m, max_unfragmented_size())) {
      case step::stored: return oscore_error::outer_block_continue;
      case step::complete: return complete();
      case step::incomplete: return refuse(oscore_error::outer_block_incomplete);
      case step::too_large: return refuse(oscore_error::outer_block_too_large);
      case step::malformed: break;
    }
    return refuse(oscore_error::malformed_message);
  }
  std::size_t max_unfragmented_size() const noexcept {
    return session_.context().config().session.oscore_max_unfragmented_size;
  }

  // Section 8.2 on `protected_message` (the received one, or the one its Outer Block1 blocks
  // made), whose header is `header`'s.
  template <class Message>
  std::error_code verify_request(const Message& protected_message, const message_view& header, message_view& view,
                                 std::optional<std::uint32_t> outer_block1) {
    const message_view& m = header;
    if (!store_) store_ = detail::oscore_server_store(session_.context());
    entry* used = nullptr;
    oscore_core::request_binding b;
    std::error_code ec;
    bool renewal_answer = false;
    if (!store_) {
      ec = oscore_error::security_context_not_found;
    } else {
      const std::lock_guard lock(store_->mutex());
      oscore_core::store::renewal_lookup* lookup = nullptr;
      // Section 8.2 step 2, then Appendix B.2 when no context has the request's 'kid context'.
      ec = oscore_core::unprotect_request(
          [&](const oscore_core::option_fields& f) -> oscore_core::context* {
            if ((used = store_->find(f))) return &used->security_context;
            if (!f.has_kid_context) return nullptr;
            lookup = &renewal().lookup;
            return store_->server_renewal_lookup(f, *lookup);
          },
          protected_message, plain_, b);
      if (lookup && ec == oscore_error::security_context_not_found && lookup->error) ec = lookup->error;
      if (lookup && !ec && !used) {
        used = store_->renewal_verified(*lookup, renewal_answer, ec);
        if (used && !renewal_answer && !lookup->existing) ++counters_.id_context_renewals;
      }
    }
    if (ec) return refuse(ec);
    if (auto e = make_view(m, view)) return refuse(e);
    remember(m.token(), true, b, used, b.observe, outer_block1);
    if (renewal_answer) return refuse(oscore_error::id_context_renewal);
    if (auto e = check_freshness(*used, b)) return refuse(e);
    current_peer_ = used->peer;
    ++counters_.protected_requests;
    return {};
  }

 public:

  // A response (client). `view` is what the exchange sees. Refused: a protected response to
  // nothing protected of ours, one that does not verify, and an unprotected one to a
  // protected request unless it is an error (section 8.2's replies are unprotected 4.xx/5.xx).
  std::error_code incoming_response(const message_view& m, message_view& view) {
    binding* found = find(m.token());
    const bool has_oscore = m.find(option_number::oscore).has_value();
    if (!found || !found->is_protected) {
      if (has_oscore) return refuse(oscore_error::security_context_not_found);
      if (client_ && !is_error(m.code())) return refuse(oscore_error::not_protected);
      view = m;
      return {};
    }
    if (!has_oscore) {
      if (!is_error(m.code())) return refuse(oscore_error::not_protected);
      // RFC 9175 section 2.4 at an intermediary: the one that serves Outer Block2 blocks
      // asks for an Echo before it sends a block much larger than the request for it. The
      // request goes again with that Echo as an outer option (the intermediary reads it), at
      // most twice for one message.
      if (const auto echo = m.find(option_number::echo);
          echo && outer2_.active() && std::ranges::equal(outer2_.message().token(), m.token()) &&
          m.code() == coap::code(response_code::unauthorized) &&
          echo->value().size() <= outer_echo_.size() && outer_echo_repeats_ < 2) {
        ++outer_echo_repeats_;
        outer_echo_size_ = echo->value().size();
        std::ranges::copy(echo->value(), outer_echo_.begin());
        return oscore_error::outer_block_continue;
      }
      mark_answered(*found);
      view = m;
      return {};
    }
    // Section 4.1.3.4.2: an intermediary cut the protected response into Outer Block2 blocks.
    // Each but the last is kept, and outer_block_continue asks the session for the next
    // (ask_next_block_in) with the same protected request; the whole is verified.
    if (m.find(option_number::block2)) {
      if (!outer2_.active()) outer_echo_size_ = outer_echo_repeats_ = 0;
      return take_outer_block(outer2_, m, [&] { return verify_response(*found, outer2_.message(), m, view); });
    }
    return verify_response(*found, m, m, view);
  }

  // True for incoming_response's outer_block_continue and id_context_renewed: not failures,
  // the session sends the request again (ask_next_block_in).
  static bool asks_next_block(std::error_code ec) noexcept {
    return ec == oscore_error::outer_block_continue || ec == oscore_error::id_context_renewed;
  }
  // After outer_block_continue: `again`, a copy of the protected request, made the request
  // for the next Outer Block2 block, with the Echo an intermediary asked for (both outer).
  // After id_context_renewed: the original request protected anew under R2||R3.
  template <class Message>
  void ask_next_block_in(Message& again) {
    if (renewal_resend(again.token())) {
      if (!protect_renewed_request()) again.assign(renewal_.get()->view);
      return;
    }
    const block_value b = outer2_.block();
    again.remove_option(static_cast<std::uint16_t>(option_number::block2));
    again.add_uint_option(static_cast<std::uint16_t>(option_number::block2), encode(block_value{b.num + 1, false, b.szx}));
    again.remove_option(static_cast<std::uint16_t>(option_number::echo));
    if (outer_echo_size_)
      again.add_option(static_cast<std::uint16_t>(option_number::echo), std::span(outer_echo_.data(), outer_echo_size_));
  }

  // A session that keeps no copy of what it sent (coap+tcp: no retransmissions) has the layer
  // keep each protected request, for the Outer Block2 requests that may follow (in slots
  // whose storage is reused: no allocation per request once they are made).
  void keep_protected_requests() noexcept { keep_requests_ = true; }
  // After outer_block_continue (with keep_protected_requests): the protected request of
  // `token` again, with the next Outer Block2 and the intermediary's Echo, given to
  // `send(message)` to go out as it is. invalid_message when it is no longer kept.
  template <class Send>
  std::error_code send_next_block_request(std::span<const std::uint8_t> token, Send&& send) {
    if (renewal_resend(token)) {
      if (auto ec = protect_renewed_request()) return ec;
      send(wire_);
      return {};
    }
    for (auto& k : kept_) {
      if (!k.used || !std::ranges::equal(k.token.bytes(), token)) continue;
      message_view sent;
      if (udp_codec::parse(k.wire, sent)) return coap::error::invalid_message;
      again_.assign(sent);
      ask_next_block_in(again_);
      send(again_);
      return {};
    }
    return coap::error::invalid_message;
  }

 private:
  template <class Message>
  std::error_code verify_response(binding& found, const Message& protected_message, const message_view& m,
                                  message_view& view) {
    oscore_core::option_fields fields;
    if (auto ec = oscore_core::detail::read_oscore_option(protected_message, fields)) return refuse(ec);
    if (fields.has_kid_context) return renew_context(found, protected_message, fields);
    {
      const std::lock_guard lock(store_->mutex());
      if (auto ec = oscore_core::unprotect_response(found.context->security_context, found.b, protected_message,
                                                    fields, plain_))
        return refuse(ec);
      // Appendix B.2: the first response under R2||R3 ends the renewal; 'kid context' goes plain.
      if (auto* r = found.context->renewal.get(); r && found.renewed && r->state == renewal_step::confirming) {
        r->state = renewal_step::done;
        found.context->security_context.wrap_kid_context(false);
      }
    }
    mark_answered(found);
    if (auto ec = make_view(m, view)) return refuse(ec);
    ++counters_.protected_responses;
    return {};
  }

 public:

  // Section 8.2: the unprotected reply to a request that failed verification, with an Outer
  // Max-Age of 0 (section 4.1.3.1); 4.00 for what has no reply of its own. True when the
  // reply is to be protected like a response (Appendix B.1.2's 4.01 with Echo, to a request
  // that verified): the session then sends it through outgoing().
  template <class Message>
  bool reply_for(std::error_code ec, Message& reply) const {
    if (ec == oscore_error::freshness_required) {
      reply.set_code(response_code::unauthorized);
      reply.add_option(static_cast<std::uint16_t>(option_number::echo), echo_);
      return true;
    }
    // Appendix B.2: a bare 4.01, protected under R2||ID1 ('kid context' R2, outgoing()).
    if (ec == oscore_error::id_context_renewal) {
      reply.set_code(response_code::unauthorized);
      return true;
    }
    if (ec == oscore_error::outer_block_continue) {
      reply.set_code(response_code::continue_);
      reply.add_uint_option(static_cast<std::uint16_t>(option_number::block1), encode(outer_.block()));
      return false;
    }
    const auto r = error_reply(ec);
    reply.set_code(r ? r->code : coap::code(response_code::bad_request));
    reply.add_uint_option(static_cast<std::uint16_t>(option_number::max_age), 0);
    if (ec == oscore_error::outer_block_too_large)
      reply.add_uint_option(static_cast<std::uint16_t>(option_number::size1), static_cast<std::uint32_t>(max_unfragmented_size()));
    reply.set_payload(r ? r->diagnostic : std::string_view("Decryption failed"));
    return false;
  }

 private:
  struct binding {
    coap::token token;
    bool is_protected = false;
    bool observe = false;
    bool answered = false;    // a response went (server) or came (client): dropped next time
    std::uint64_t stamp = 0;  // when it was made: the oldest goes first when the table is full
    oscore_core::request_binding b;
    entry* context = nullptr;
    std::optional<std::uint32_t> outer_block1;  // the request came in Outer Block1 blocks
    bool renewed = false;  // sent again under a renewed ID Context (Appendix B.2)
  };
  using renewal_step = oscore_core::store::renewal_state::step;

  static bool is_error(coap::code c) noexcept { return c.is_response() && c.code_class() >= 4; }
  static bool is_registration(const message_view& m) noexcept {
    const auto o = m.find(option_number::observe);
    return o && o->as_uint() == 0;
  }

  // Appendix B.2, client: a response whose 'kid context' carries the server's R2. It must
  // verify under R2||ID1 and be a 4.01 to the request kept while waiting for it; the context
  // then becomes R2||R3 and id_context_renewed has the session send the request again. A
  // second one for the same request, or one when no renewal waits, is refused (no loops).
  template <class Message>
  std::error_code renew_context(binding& found, const Message& protected_message,
                                const oscore_core::option_fields& fields) {
    entry& e = *found.context;
    // Decided under the store's lock, refused (which tells the context's handlers) after it.
    const std::error_code ec = [&]() -> std::error_code {
      const std::lock_guard lock(store_->mutex());
      if (!e.renewal || e.renewal->state != renewal_step::waiting_for_r2 || found.renewed || !renewal_kept(found.token))
        return oscore_error::unexpected_kid_context;
      std::span<const std::uint8_t> r2;
      if (oscore_core::unwrap_kid_context(fields.kid_context, r2) || r2.empty()) return oscore_error::invalid_kid_context;
      std::optional<oscore_core::context> candidate;
      if (auto ec = store_->client_renewal_candidate(e, r2, candidate)) return ec;
      if (auto ec = oscore_core::unprotect_response(*candidate, found.b, protected_message, fields, plain_)) return ec;
      if (plain_.code() != coap::code(response_code::unauthorized)) return oscore_error::unexpected_kid_context;
      return store_->client_renewal_verified(e, r2);
    }();
    if (ec) return refuse(ec);
    renewal_.get()->resend = true;
    ++counters_.id_context_renewals;
    return oscore_error::id_context_renewed;
  }
  bool renewal_kept(const coap::token& t) const noexcept {
    const renewal_work* w = renewal_.get();
    return w && !w->original.empty() && w->token == t;
  }
  bool renewal_resend(std::span<const std::uint8_t> token) const noexcept {
    const renewal_work* w = renewal_.get();
    return w && w->resend && std::ranges::equal(w->token.bytes(), token);
  }

  // The kept request protected under the renewed context into wire_ (and the work's view), its
  // binding marked: a second renewal for it is refused.
  std::error_code protect_renewed_request() {
    renewal_work& w = *renewal_.get();
    w.resend = false;
    message_view original;
    if (udp_codec::parse(w.original, original)) return coap::error::invalid_message;
    oscore_core::request_binding b;
    {
      const std::lock_guard lock(store_->mutex());
      if (auto ec = oscore_core::protect_request(client_->security_context, original, wire_, b)) return ec;
    }
    remember(original.token(), true, b, client_);
    if (binding* f = find(original.token())) f->renewed = true;
    if (keep_requests_) keep_request(original.token());
    if (udp_codec::encode(wire_, w.wire) || udp_codec::parse(w.wire, w.view)) return coap::error::invalid_message;
    w.original.clear();
    return {};
  }

  // Appendix B.1.2: until a request echoes the context's Echo value, verified requests are
  // refused with it; the first that echoes it starts the replay window at its Partial IV.
  std::error_code check_freshness(entry& e, const oscore_core::request_binding& b) {
    const std::lock_guard lock(store_->mutex());
    if (e.window_verified) return {};
    const auto echoed = plain_.find(option_number::echo);
    if (echoed && std::ranges::equal(echoed->value(), e.echo)) {
      e.window_verified = true;
      e.security_context.recipient_replay_window().reset(oscore_core::decode_partial_iv(b.request_piv.bytes()));
      e.security_context.recipient_replay_window().accept(oscore_core::decode_partial_iv(b.request_piv.bytes()));
      return {};
    }
    echo_ = e.echo;
    return oscore_error::freshness_required;
  }

  // The protected request just made (wire_), kept under its token: in its token's slot, a
  // free one, a new one while there are fewer than binding_capacity, else the oldest.
  void keep_request(std::span<const std::uint8_t> token) {
    kept_request* slot = nullptr;
    for (auto& k : kept_)
      if (k.used && std::ranges::equal(k.token.bytes(), token)) slot = &k;
    if (!slot)
      for (auto& k : kept_)
        if (!k.used) slot = &k;
    if (!slot && kept_.size() < binding_capacity)
      slot = &kept_.emplace_back(rebind<std::uint8_t>(session_.context().get_allocator()));
    if (!slot) slot = &*std::ranges::min_element(kept_, {}, &kept_request::stamp);
    (void)slot->token.assign(token);
    slot->used = true;
    slot->stamp = stamp_;
    if (udp_codec::encode(wire_, slot->wire)) slot->used = false;
  }
  // An answered exchange's entry goes at the next request (remember), and its kept request
  // now: only an Observe entry is never answered.
  void mark_answered(binding& b) noexcept {
    if (b.observe) return;
    b.answered = true;
    if (keep_requests_)
      for (auto& k : kept_)
        if (k.used && k.token == b.token) k.used = false;
  }

  // Counted, and told to the context's event handlers (session_event::security_refused).
  std::error_code refuse(std::error_code ec) {
    ++counters_.refused;
    counters_.last_error = ec;
    coap::detail::context_access::emit(session_.context(), session_event::security_refused, session_, ec);
    return ec;
  }

  binding* find(std::span<const std::uint8_t> token) noexcept {
    for (auto& e : bindings_)
      if (std::ranges::equal(e.token.bytes(), token)) return &e;
    return nullptr;
  }

  // The Token's entry, replaced: a Token names one request at a time (RFC 7252 section 5.3.1).
  // Entries whose (non-Observe) exchange is answered go first, so that the table holds what
  // is in flight and the observations: a response is protected or verified once, and the only
  // second one (a 5.00 in place of an answer too large to send) is made before the next
  // request. When the table is full all the same, the oldest entry goes, an Observe one last.
  void remember(std::span<const std::uint8_t> token, bool is_protected, const oscore_core::request_binding& b,
                entry* context, bool observe = false, std::optional<std::uint32_t> outer_block1 = std::nullopt) {
    std::erase_if(bindings_, [](const binding& e) { return e.answered; });
    binding* slot = find(token);
    if (!slot && bindings_.size() < binding_capacity) slot = &bindings_.emplace_back();
    if (!slot) {
      auto older = [](const binding& x, const binding& y) {
        return x.observe != y.observe ? !x.observe : x.stamp < y.stamp;
      };
      slot = &*std::ranges::min_element(bindings_, older);
    }
    *slot = binding{};
    (void)slot->token.assign(token);
    slot->is_protected = is_protected;
    slot->observe = is_protected ? b.observe : observe;
    slot->b = b;
    slot->context = context;
    slot->outer_block1 = outer_block1;
    slot->stamp = ++stamp_;
  }

  // The decrypted message as a view: its options and payload encoded once into body_, the
  // header from the message that carried it.
  std::error_code make_view(const message_view& outer, message_view& view) {
    std::size_t size = 0;
    if (auto ec = coap::detail::encoded_body_size(plain_, size)) return ec;
    body_.resize(size);
    coap::detail::write_body(plain_, body_.data());
    std::span<const std::uint8_t> options, payload;
    std::uint64_t present = 0;
    if (auto ec = coap::detail::split_body(body_, options, payload, present)) return ec;
    view = message_view(
        message_view::parts{outer.type(), plain_.code(), outer.message_id(), outer.token(), options, payload, present});
    return {};
  }

  Session& session_;
  std::shared_ptr<oscore_core::store> store_;
  entry* client_ = nullptr;
  std::vector<binding, rebind<binding>> bindings_;
  std::uint64_t stamp_ = 0;
  basic_message<allocator_type> plain_;  // the latest decrypted message
  basic_message<allocator_type> wire_;   // the latest protected message
  std::vector<std::uint8_t, rebind<std::uint8_t>> body_;
  std::string_view current_peer_;
  std::array<std::uint8_t, 8> echo_{};  // the Echo value of the latest freshness_required
  assembly outer_;   // a request's Outer Block1 blocks (server)
  assembly outer2_;  // a response's Outer Block2 blocks (client)
  struct kept_request {
    explicit kept_request(const rebind<std::uint8_t>& a) : wire(a) {}
    coap::token token;
    bool used = false;
    std::uint64_t stamp = 0;
    std::vector<std::uint8_t, rebind<std::uint8_t>> wire;  // the protected request, UDP-encoded
  };
  std::vector<kept_request, rebind<kept_request>> kept_;  // keep_protected_requests()
  basic_message<allocator_type> again_;                   // the latest of them sent again
  bool keep_requests_ = false;
  std::array<std::uint8_t, 40> outer_echo_{};  // RFC 9175 section 2.2.1: at most 40 bytes
  std::size_t outer_echo_size_ = 0;
  unsigned outer_echo_repeats_ = 0;
  // Appendix B.2's working state. Server: what the latest request no context matched led to.
  // Client: the request that waits for the server's R2 (UDP-encoded, unprotected), whether
  // it is to go again under R2||R3, and that request as sent. Over 500 bytes (a derived
  // context among them), so made at its first use (lazy.hpp): a session that never renews
  // carries a pointer.
  struct renewal_work {
    explicit renewal_work(const allocator_type& a) : original(a), wire(a) {}
    oscore_core::store::renewal_lookup lookup;
    std::vector<std::uint8_t, rebind<std::uint8_t>> original;
    coap::token token;
    bool resend = false;
    std::vector<std::uint8_t, rebind<std::uint8_t>> wire;
    message_view view;
  };
  renewal_work& renewal() { return renewal_.ensure(); }
  coap::detail::lazy<renewal_work, allocator_type> renewal_;
  oscore_counters counters_;
};

}  // namespace coap::security
