// RFC 8613 section 3.2: deriving the Sender Key, Recipient Key and Common IV with HKDF
// SHA-256 (RFC 5869), and the mutable parts of the context (sections 3.2.2, 7.2.1, B.1.1).
#include <coap/security/oscore/context.hpp>

#include <botan/exceptn.h>
#include <botan/hkdf.h>
#include <botan/mac.h>
#include <botan/mem_ops.h>

#include <algorithm>
#include <system_error>

namespace coap::oscore_core {
namespace {

// HKDF(salt, IKM, info, L) of section 3.2.1. An empty salt is HMAC's all-zero key (RFC 5869
// section 2.2), which Botan's extract step applies itself.
std::vector<std::uint8_t> hkdf(const context_params& p, std::span<const std::uint8_t> info, std::size_t length) {
  Botan::HKDF kdf(Botan::MessageAuthenticationCode::create_or_throw("HMAC(SHA-256)").release());
  std::vector<std::uint8_t> out(length);
  kdf.kdf(out.data(), out.size(), p.master_secret.data(), p.master_secret.size(), p.master_salt.data(),
          p.master_salt.size(), info.data(), info.size());
  return out;
}

std::optional<std::span<const std::uint8_t>> id_context_of(const context_params& p) {
  if (!p.id_context) return std::nullopt;
  return std::span<const std::uint8_t>(*p.id_context);
}

std::error_code check(const context_params& p) {
  const auto params = parameters_of(p.algorithm);
  if (!params) return oscore_error::unsupported_algorithm;
  const std::size_t max_id = params->nonce_length - 6;
  if (p.sender_id.size() > max_id || p.recipient_id.size() > max_id) return oscore_error::invalid_context_parameters;
  // Section 3.3: the two IDs name two different Sender Contexts.
  if (p.sender_id == p.recipient_id) return oscore_error::invalid_context_parameters;
  if (p.master_secret.empty()) return oscore_error::invalid_context_parameters;
  if (p.replay_window_size == 0 || p.replay_window_size > replay_window::max_size)
    return oscore_error::invalid_context_parameters;
  // The 'kid context' length is one byte (section 6.1).
  if (p.send_kid_context && (!p.id_context || p.id_context->size() > 255))
    return oscore_error::invalid_context_parameters;
  const auto& ps = p.persistence;
  if (ps.interval != 0 && !ps.store) return oscore_error::invalid_context_parameters;
  if (ps.last_stored && ps.interval == 0) return oscore_error::invalid_context_parameters;
  return {};
}

}  // namespace

std::error_code derive_keys(const context_params& p, derived_keys& out) {
  if (auto ec = check(p)) return ec;
  const auto params = *parameters_of(p.algorithm);
  try {
    const auto idc = id_context_of(p);
    out.sender_key = hkdf(p, kdf_info(p.sender_id, idc, p.algorithm, "Key", params.key_length), params.key_length);
    out.recipient_key =
        hkdf(p, kdf_info(p.recipient_id, idc, p.algorithm, "Key", params.key_length), params.key_length);
    out.common_iv = hkdf(p, kdf_info({}, idc, p.algorithm, "IV", params.nonce_length), params.nonce_length);
  } catch (const Botan::Exception&) {
    return oscore_error::unsupported_algorithm;
  }
  return {};
}

context::context(const context_params& params) {
  if (auto ec = init(params)) throw std::system_error(ec);
}

std::optional<context> context::make(const context_params& params, std::error_code& ec) {
  context c;
  ec = c.init(params);
  if (ec) return std::nullopt;
  return std::optional<context>(std::move(c));
}

std::error_code context::init(const context_params& p) {
  derived_keys keys;
  if (auto ec = derive_keys(p, keys)) return ec;
  algorithm_ = p.algorithm;
  sender_id_.assign(p.sender_id);
  recipient_id_.assign(p.recipient_id);
  id_context_ = p.id_context;
  send_kid_context_ = p.send_kid_context;
  sender_key_ = std::move(keys.sender_key);
  recipient_key_ = std::move(keys.recipient_key);
  if (auto ec = detail::make_aead_state(algorithm_, sender_key_, recipient_key_, aead_)) return ec;
  common_iv_.assign(keys.common_iv);
  Botan::secure_scrub_memory(keys.common_iv.data(), keys.common_iv.size());
  persistence_ = p.persistence;
  // Appendix B.1.1: SSN2 = SSN1 + K + F.
  if (persistence_.last_stored) {
    const std::uint64_t start = *persistence_.last_stored + persistence_.interval + persistence_.margin;
    if (start < *persistence_.last_stored) return oscore_error::sequence_number_exhausted;
    sequence_number_ = start;
  } else {
    sequence_number_ = p.initial_sequence_number;
  }
  replay_ = replay_window(p.replay_window_size);
  return {};
}

context::context(context&& other) noexcept
    : algorithm_(other.algorithm_), sender_id_(other.sender_id_), recipient_id_(other.recipient_id_),
      id_context_(std::move(other.id_context_)), send_kid_context_(other.send_kid_context_),
      wrap_kid_context_(other.wrap_kid_context_),
      sender_key_(std::move(other.sender_key_)), recipient_key_(std::move(other.recipient_key_)),
      common_iv_(other.common_iv_), sequence_number_(other.sequence_number_),
      persistence_(std::move(other.persistence_)), replay_(other.replay_), aead_(std::move(other.aead_)),
      scratch_(std::move(other.scratch_)) {
  // The moved-from context must not go on numbering messages from the same state.
  other.sequence_number_ = max_sequence_number + 1;
  other.wipe();
}

context& context::operator=(context&& other) noexcept {
  if (this == &other) return *this;
  wipe();
  algorithm_ = other.algorithm_;
  sender_id_ = other.sender_id_;
  recipient_id_ = other.recipient_id_;
  id_context_ = std::move(other.id_context_);
  send_kid_context_ = other.send_kid_context_;
  wrap_kid_context_ = other.wrap_kid_context_;
  sender_key_ = std::move(other.sender_key_);
  recipient_key_ = std::move(other.recipient_key_);
  common_iv_ = other.common_iv_;
  sequence_number_ = other.sequence_number_;
  persistence_ = std::move(other.persistence_);
  replay_ = other.replay_;
  aead_ = std::move(other.aead_);
  scratch_ = std::move(other.scratch_);
  other.sequence_number_ = max_sequence_number + 1;
  other.wipe();
  return *this;
}

context::~context() { wipe(); }

void context::wipe() noexcept {
  if (!sender_key_.empty()) Botan::secure_scrub_memory(sender_key_.data(), sender_key_.size());
  if (!recipient_key_.empty()) Botan::secure_scrub_memory(recipient_key_.data(), recipient_key_.size());
  sender_key_.clear();
  recipient_key_.clear();
  aead_.reset();  // Botan's key schedules are secure_vectors: scrubbed when freed
  // The last message's plaintext.
  auto& p = scratch_.plaintext;
  if (!p.empty()) Botan::secure_scrub_memory(p.data(), p.size());
  p.clear();
  common_iv_ = nonce();
}

std::error_code context::next_sequence_number(std::uint64_t& out) {
  if (sequence_number_ > max_sequence_number || sender_key_.empty()) return oscore_error::sequence_number_exhausted;
  const auto& ps = persistence_;
  if (ps.interval != 0 && sequence_number_ % ps.interval == 0) {
    if (!ps.store(sequence_number_)) return oscore_error::sequence_number_not_stored;
  }
  out = sequence_number_++;
  return {};
}

bool context::matches(const option_fields& f) const noexcept {
  if (!f.has_kid || !std::ranges::equal(f.kid, recipient_id())) return false;
  if (!f.has_kid_context) return true;
  return id_context_ && std::ranges::equal(f.kid_context, *id_context_);
}

}  // namespace coap::oscore_core
