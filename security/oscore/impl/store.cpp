// RFC 8613 sections 3 and 8.2: the store of a context's OSCORE security contexts, and
// Appendix B.2's re-derivation of them with new ID Contexts.
#include <coap/security/oscore/store.hpp>

#include <botan/auto_rng.h>
#include <botan/hash.h>

#include <algorithm>
#include <new>

namespace coap::oscore_core {
namespace {

void append_hex(std::string& out, std::span<const std::uint8_t> bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  for (const auto b : bytes) {
    out.push_back(digits[b >> 4]);
    out.push_back(digits[b & 0xf]);
  }
}

// Length-prefixed, so that no two parameter sets hash the same input. Without the Recipient
// ID: what makes the Sender Key and Common IV (section 3.2.1).
std::array<std::uint8_t, 32> fingerprint_of(const context_params& p, bool with_recipient = true) {
  auto hash = Botan::HashFunction::create_or_throw("SHA-256");
  auto field = [&](std::span<const std::uint8_t> b) {
    const std::uint8_t length[4] = {static_cast<std::uint8_t>(b.size() >> 24), static_cast<std::uint8_t>(b.size() >> 16),
                                    static_cast<std::uint8_t>(b.size() >> 8), static_cast<std::uint8_t>(b.size())};
    hash->update(length, sizeof length);
    hash->update(b.data(), b.size());
  };
  field(p.master_secret);
  field(p.master_salt);
  field(p.sender_id);
  if (with_recipient) field(p.recipient_id);
  const std::uint8_t has_id_context = p.id_context ? 1 : 0;
  hash->update(&has_id_context, 1);
  if (p.id_context) field(*p.id_context);
  const auto alg = static_cast<std::int32_t>(p.algorithm);
  hash->update(reinterpret_cast<const std::uint8_t*>(&alg), sizeof alg);
  std::array<std::uint8_t, 32> out{};
  hash->final(out.data());
  return out;
}

void random_bytes(std::span<std::uint8_t> out) { Botan::AutoSeeded_RNG().randomize(out.data(), out.size()); }

// "oscore:" and the Recipient ID in hex, "/" and the ID Context in hex when there is one.
void set_peer(store::entry& e) {
  e.peer = "oscore:";
  append_hex(e.peer, e.security_context.recipient_id());
  if (const auto idc = e.security_context.id_context()) {
    e.peer.push_back('/');
    append_hex(e.peer, *idc);
  }
}

std::unique_ptr<store::entry> new_entry(context&& c) {
  auto e = std::unique_ptr<store::entry>(new store::entry{std::move(c), std::string()});
  e->sender = e.get();
  set_peer(*e);
  return e;
}

// `client`: the entry is a client's, whose Appendix B.2 renewal starts from a random ID1 in
// place of the configured ID Context (as libcoap 4.3.5's coap_oscore_initiate does).
std::unique_ptr<store::entry> make_entry(const context_params& p, std::error_code& ec, bool client = false) {
  const bool renews = p.renew_id_context;
  std::array<std::uint8_t, store::renewal_nonce_length> id1{};
  context_params with_id1;
  if (renews && client) {
    random_bytes(id1);
    with_id1 = p;
    with_id1.id_context.emplace(id1.begin(), id1.end());
    with_id1.send_kid_context = true;
  }
  auto made = context::make(renews && client ? with_id1 : p, ec);
  if (!made) return nullptr;
  auto e = new_entry(std::move(*made));
  e->fingerprint = fingerprint_of(p);
  e->sender_fingerprint = fingerprint_of(p, false);
  if (p.replay_window_recovery && !client) {
    e->window_verified = false;
    random_bytes(e->echo);
  }
  if (renews) {
    e->renewal = std::make_unique<store::renewal_state>();
    e->renewal->params = p;
    e->renewal->client = client;
    e->renewal->id1 = id1;
    if (client) e->security_context.wrap_kid_context(true);
  }
  return e;
}

bool same_recipient(const context& c, const context_params& p) {
  if (!std::ranges::equal(c.recipient_id(), p.recipient_id)) return false;
  const auto idc = c.id_context();
  if (idc.has_value() != p.id_context.has_value()) return false;
  return !idc || std::ranges::equal(*idc, *p.id_context);
}

}  // namespace

void store::share_sender(entry& e) noexcept {
  for (const auto& existing : entries_) {
    if (existing->sender_fingerprint == e.sender_fingerprint) {
      e.sender = existing->sender;
      return;
    }
  }
}

std::error_code store::add(const context_params& params) {
  std::error_code ec;
  auto e = make_entry(params, ec);
  if (!e) return ec;
  const std::lock_guard lock(mutex_);
  for (const auto& existing : entries_)
    if (same_recipient(existing->security_context, params)) return oscore_error::invalid_context_parameters;
  share_sender(*e);
  entries_.push_back(std::move(e));
  return {};
}

store::entry* store::find_or_add(const context_params& params, std::error_code& ec) {
  const auto fp = fingerprint_of(params);
  {
    const std::lock_guard lock(mutex_);
    for (const auto& existing : entries_)
      if (existing->fingerprint == fp) return existing.get();
  }
  auto e = make_entry(params, ec, true);
  if (!e) return nullptr;
  const std::lock_guard lock(mutex_);
  for (const auto& existing : entries_)  // made meanwhile by another thread
    if (existing->fingerprint == fp) return existing.get();
  // A renewing client's keys come from its own random ID1: its sender is its own.
  if (!e->renewal) share_sender(*e);
  entries_.push_back(std::move(e));
  return entries_.back().get();
}

store::entry* store::find(const option_fields& request) noexcept {
  for (const auto& e : entries_)
    if (e->security_context.matches(request)) return e.get();
  return nullptr;
}

// ---- Appendix B.2 ----

// The configured parameters with another ID Context: a context that starts afresh (sequence
// number 0, no persistence, no Echo round trip): its keys are new, made from nonces the other
// side cannot have known before.
std::error_code store::derive(const context_params& base, std::span<const std::uint8_t> id_context,
                              std::optional<context>& out) const {
  if (id_context.size() > max_wrapped_id_context_length) return oscore_error::invalid_kid_context;
  context_params q = base;
  q.id_context.emplace(id_context.begin(), id_context.end());
  q.send_kid_context = false;
  q.persistence = {};
  q.initial_sequence_number = 0;
  q.replay_window_recovery = false;
  q.renew_id_context = false;
  std::error_code ec;
  out = context::make(q, ec);
  return ec;
}

context* store::server_renewal_lookup(const option_fields& f, renewal_lookup& l) {
  l.base = l.existing = nullptr;
  l.pending = max_pending_renewals;
  l.id_context.clear();
  l.candidate.reset();
  l.error = {};
  if (!f.has_kid || !f.has_kid_context) return nullptr;
  for (const auto& e : entries_)
    if (e->renewal && !e->renewal->client && std::ranges::equal(e->security_context.recipient_id(), f.kid)) {
      l.base = e.get();
      break;
    }
  if (!l.base) return nullptr;
  std::span<const std::uint8_t> id_context;
  if (auto ec = unwrap_kid_context(f.kid_context, id_context); ec || id_context.empty()) {
    l.error = oscore_error::invalid_kid_context;
    return nullptr;
  }
  l.id_context.assign(id_context.begin(), id_context.end());
  // A client still confirming R2||R3 wraps it: the context in use, not a new renewal.
  if (entry* r = l.base->renewal->renewed) {
    const auto own = r->security_context.id_context();
    if (own && std::ranges::equal(*own, id_context)) {
      l.existing = r;
      return &r->security_context;
    }
  }
  // Step 4: R2||R3 with an R2 of ours still pending for this context.
  for (std::size_t i = 0; i < pending_.size(); ++i) {
    const auto& p = pending_[i];
    if (p.used && p.base == l.base && id_context.size() > p.r2.size() &&
        std::ranges::equal(id_context.first(p.r2.size()), p.r2))
      l.pending = i;
  }
  if (auto ec = derive(l.base->renewal->params, id_context, l.candidate)) {
    l.error = ec;
    return nullptr;
  }
  return &*l.candidate;
}

store::entry* store::renewal_verified(renewal_lookup& l, bool& answer_4_01, std::error_code& ec) {
  answer_4_01 = false;
  if (l.existing) return l.existing;
  if (!l.base || !l.candidate) {
    ec = oscore_error::security_context_not_found;
    return nullptr;
  }
  if (l.pending < pending_.size()) {
    // Step 4: R2||R3 verified; it is the context in use for this Recipient ID from now on.
    pending_[l.pending].used = false;
    entry*& r = l.base->renewal->renewed;
    if (!r) {
      entries_.push_back(new_entry(std::move(*l.candidate)));
      r = entries_.back().get();
    } else {
      r->security_context = std::move(*l.candidate);
      set_peer(*r);
    }
    l.candidate.reset();
    return r;
  }
  // Step 2: ID1 verified; the answer is protected under R2||ID1 with a fresh R2.
  std::array<std::uint8_t, renewal_nonce_length + max_wrapped_id_context_length> id_context{};
  if (l.id_context.size() > max_wrapped_id_context_length - renewal_nonce_length) {
    ec = oscore_error::invalid_kid_context;
    return nullptr;
  }
  std::array<std::uint8_t, renewal_nonce_length> r2{};
  random_bytes(r2);
  std::ranges::copy(r2, id_context.begin());
  std::ranges::copy(l.id_context, id_context.begin() + r2.size());
  std::optional<context> c;
  if ((ec = derive(l.base->renewal->params, std::span(id_context.data(), r2.size() + l.id_context.size()), c)))
    return nullptr;
  pending_slot* slot = nullptr;
  for (auto& p : pending_)
    if (!p.used) slot = &p;
  if (!slot && pending_.size() < max_pending_renewals) slot = &pending_.emplace_back();
  if (!slot) slot = &*std::ranges::min_element(pending_, {}, &pending_slot::stamp);
  if (!slot->e) {
    slot->e = new_entry(std::move(*c));
  } else {
    slot->e->security_context = std::move(*c);
    set_peer(*slot->e);
  }
  (void)wrap_kid_context(r2, slot->e->response_kid_context);
  slot->base = l.base;
  slot->r2 = r2;
  slot->used = true;
  slot->stamp = ++pending_stamp_;
  answer_4_01 = true;
  return slot->e.get();
}

std::size_t store::pending_renewals() const noexcept {
  return static_cast<std::size_t>(std::ranges::count(pending_, true, &pending_slot::used));
}

std::error_code store::client_renewal_candidate(const entry& e, std::span<const std::uint8_t> r2,
                                                std::optional<context>& out) {
  if (!e.renewal || r2.empty() || r2.size() > max_wrapped_id_context_length - renewal_nonce_length)
    return oscore_error::invalid_kid_context;
  std::vector<std::uint8_t> id_context(r2.begin(), r2.end());
  id_context.insert(id_context.end(), e.renewal->id1.begin(), e.renewal->id1.end());
  return derive(e.renewal->params, id_context, out);
}

std::error_code store::client_renewal_verified(entry& e, std::span<const std::uint8_t> r2) {
  std::array<std::uint8_t, renewal_nonce_length> r3{};
  random_bytes(r3);
  context_params q = e.renewal->params;
  q.id_context.emplace(r2.begin(), r2.end());
  q.id_context->insert(q.id_context->end(), r3.begin(), r3.end());
  q.send_kid_context = true;
  // The Sender Sequence Number goes on from where it is, so that a seq_file's bound still holds.
  q.initial_sequence_number = e.security_context.sender_sequence_number();
  q.persistence.last_stored.reset();
  q.renew_id_context = false;
  std::error_code ec;
  auto c = context::make(q, ec);
  if (!c) return ec;
  c->wrap_kid_context(true);  // until a response verifies under R2||R3
  e.security_context = std::move(*c);
  set_peer(e);
  e.renewal->state = renewal_state::step::confirming;
  return {};
}

}  // namespace coap::oscore_core
