// RFC 8613 sections 3 and 8.2: the store of a context's OSCORE security contexts.
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

std::unique_ptr<store::entry> make_entry(const context_params& p, std::error_code& ec) {
  auto made = context::make(p, ec);
  if (!made) return nullptr;
  auto e = std::unique_ptr<store::entry>(new store::entry{std::move(*made), "oscore:", fingerprint_of(p)});
  e->sender = e.get();
  e->sender_fingerprint = fingerprint_of(p, false);
  append_hex(e->peer, p.recipient_id);
  if (p.replay_window_recovery) {
    e->window_verified = false;
    Botan::AutoSeeded_RNG().randomize(e->echo.data(), e->echo.size());
  }
  if (p.id_context) {
    e->peer.push_back('/');
    append_hex(e->peer, *p.id_context);
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
  auto e = make_entry(params, ec);
  if (!e) return nullptr;
  const std::lock_guard lock(mutex_);
  for (const auto& existing : entries_)  // made meanwhile by another thread
    if (existing->fingerprint == fp) return existing.get();
  share_sender(*e);
  entries_.push_back(std::move(e));
  return entries_.back().get();
}

store::entry* store::find(const option_fields& request) noexcept {
  for (const auto& e : entries_)
    if (e->security_context.matches(request)) return e.get();
  return nullptr;
}

}  // namespace coap::oscore_core
