// RFC 6347 (DTLS 1.2) and RFC 5246 (TLS 1.2) between a CoAP session and its socket, on Botan 2:
// ciphertext from the socket goes in (received), CoAP bytes go out (send); Botan's callbacks
// hand records to the session (tls_plaintext) and bytes to the socket (tls_wire). Botan 2.19
// has no Asio stream, so this is the glue. A failed handshake reaches the session once, as the
// TLS alert that ended it (sent or received), error::handshake_timeout, or another error.
//
// Session requirements (all called on the session's executor):
//   void tls_wire(std::span<const std::uint8_t>)       bytes for the socket
//   void tls_plaintext(std::span<const std::uint8_t>)  one decrypted record
//   void tls_established()                              the handshake completed
//   void tls_failed(std::error_code)                    the channel is unusable
//   std::string tls_peer_identity() const               the peer's address (DTLS cookies)
//   context(), shared_from_this(), config().handshake_timeout
// State requirements: credentials(), policy(), is_server(), sni(); optionally verify(...) and
// on_established(...) (certificates).
#pragma once

#include <coap/error.hpp>
#include <coap/tls_alert.hpp>
#include <coap/security/detail/dtls_record.hpp>
#include <coap/security/tls_policy.hpp>

#include <boost/asio/steady_timer.hpp>

#include <botan/credentials_manager.h>
#include <botan/rng.h>
#include <botan/tls_callbacks.h>
#include <botan/tls_client.h>
#include <botan/tls_exceptn.h>
#include <botan/tls_server.h>
#include <botan/tls_session_manager.h>
#include <botan/x509cert.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <new>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <variant>
#include <vector>

namespace coap::security::detail {

// Botan's system RNG (thread-safe) and a session cache that keeps nothing (no resumption).
Botan::RandomNumberGenerator& tls_rng();
Botan::TLS::Session_Manager& tls_no_session_cache();
// The error a Botan exception stands for: the alert of a TLS_Exception, bad_record_mac for a
// failed authentication tag, decode_error for malformed input.
std::error_code tls_error_of(const std::exception& e) noexcept;
// Bytes of record header, explicit nonce and tag a record of this suite adds.
std::size_t tls_record_overhead(const Botan::TLS::Ciphersuite& suite, Botan::TLS::Protocol_Version v);

// The credentials Botan uses for one channel: the shared state's, plus what Botan 2 does not
// keep in its TLS::Session: the PSK identity a client used (written to `identity`).
class channel_credentials final : public Botan::Credentials_Manager {
 public:
  channel_credentials(Botan::Credentials_Manager& shared, std::string& identity) noexcept
      : shared_(&shared), identity_(&identity) {}

  std::vector<Botan::Certificate_Store*> trusted_certificate_authorities(const std::string& type,
                                                                         const std::string& context) override {
    return shared_->trusted_certificate_authorities(type, context);
  }
  std::vector<Botan::X509_Certificate> find_cert_chain(const std::vector<std::string>& key_types,
                                                       const std::vector<Botan::X509_DN>& acceptable_cas,
                                                       const std::string& type, const std::string& context) override {
    return shared_->find_cert_chain(key_types, acceptable_cas, type, context);
  }
  std::vector<Botan::X509_Certificate> cert_chain(const std::vector<std::string>& key_types, const std::string& type,
                                                  const std::string& context) override {
    return shared_->cert_chain(key_types, type, context);
  }
  Botan::Private_Key* private_key_for(const Botan::X509_Certificate& cert, const std::string& type,
                                      const std::string& context) override {
    return shared_->private_key_for(cert, type, context);
  }
  std::string psk_identity_hint(const std::string& type, const std::string& context) override {
    return shared_->psk_identity_hint(type, context);
  }
  std::string psk_identity(const std::string& type, const std::string& context, const std::string& hint) override {
    return shared_->psk_identity(type, context, hint);
  }
  Botan::SymmetricKey psk(const std::string& type, const std::string& context, const std::string& identity) override {
    // The ClientKeyExchange's lookup (Botan's cookie and ticket key lookups name no identity).
    if (type == "tls-server" && !identity.empty()) *identity_ = identity;
    return shared_->psk(type, context, identity);
  }

 private:
  Botan::Credentials_Manager* shared_;
  std::string* identity_;
};

template <class Session, class State>
class tls_channel final : public Botan::TLS::Callbacks {
  using clock = std::chrono::steady_clock;

 public:
  explicit tls_channel(Session& session) : session_(session), timer_(session.context().get_executor()) {}
  tls_channel(const tls_channel&) = delete;
  tls_channel& operator=(const tls_channel&) = delete;
  ~tls_channel() override = default;

  // The client's first flight goes out from here (ClientHello). TLS offers ALPN "coap"
  // (RFC 8323 section 4.1).
  void start_client(std::shared_ptr<const State> state, bool datagram) {
    start(std::move(state), datagram);
    run([&] {
      const std::vector<std::string> alpn = datagram ? std::vector<std::string>{} : std::vector<std::string>{"coap"};
      const auto version = datagram ? Botan::TLS::Protocol_Version::latest_dtls_version()
                                    : Botan::TLS::Protocol_Version::latest_tls_version();
      auto& c = engine_.template emplace<Botan::TLS::Client>(
          *this, tls_no_session_cache(), credentials(), state_->policy(), tls_rng(),
          Botan::TLS::Server_Information(state_->sni()), version, alpn, io_buffer_size());
      channel_ = &c;
    });
  }

  // A server; `primer`, when given, is a ClientHello without its cookie that this DTLS server
  // answers (silently) with a HelloVerifyRequest, so that the ClientHello with the cookie,
  // which the endpoint checked statelessly, continues the handshake (tls_endpoint_hello).
  void start_server(std::shared_ptr<const State> state, bool datagram, std::span<const std::uint8_t> primer = {}) {
    server_ = true;
    start(std::move(state), datagram);
    run([&] {
      auto& s = engine_.template emplace<Botan::TLS::Server>(*this, tls_no_session_cache(), credentials(),
                                                             state_->policy(), tls_rng(), datagram,
                                                             io_buffer_size());
      channel_ = &s;
    });
    if (!primer.empty() && channel_) {
      // RFC 6347 section 4.2.1: the first ServerHello takes the record sequence number of the
      // ClientHello with the cookie. Botan numbers it 1 (its HelloVerifyRequest to the primer
      // took 0) and the primer carries that hello's number less one: so every epoch-0 record
      // goes out with the primer's number added. Without it, a HelloVerifyRequest the client
      // got for a later retransmitted hello (number n) shares its number with this session's
      // n-th record, which the client's replay window then drops: the handshake stalls.
      if (primer.size() >= dtls_record_header) epoch0_offset_ = dtls_sequence(primer.data());
      muted_ = true;
      received(primer);
      muted_ = false;
    }
  }

  // Ciphertext from the peer.
  void received(std::span<const std::uint8_t> d) {
    if (!channel_ || failed_) return;
    if (datagram_ && server_ && !muted_ && repeat_flight_for(d)) return;
    run([&] { channel_->received_data(d.data(), d.size()); });
    if (!muted_ && server_) hello_seen_ = true;
  }
  // Plaintext for the peer (only once established()).
  void send(std::span<const std::uint8_t> d) {
    if (!channel_ || failed_ || !established_) return;
    run([&] { channel_->send(d.data(), d.size()); });
  }
  // close_notify, and no more callbacks to the session.
  void close() {
    timer_.cancel();
    if (channel_ && !failed_ && established_) run([&] { channel_->close(); });
    // Called from inside a call that is collecting a flight (the session closed from its
    // established handler): what was collected goes out now, before the socket closes.
    if (coalescing_) flush_flight();
    failed_ = true;
  }

  bool established() const noexcept { return established_; }
  bool handshaking() const noexcept { return channel_ && !established_ && !failed_; }
  // Record header, explicit nonce and authentication tag; before the handshake, the largest
  // of the offered suites (AES-GCM over DTLS: 13 + 8 + 16).
  std::size_t record_overhead() const noexcept { return overhead_; }
  // The negotiated suite's name ("PSK_WITH_AES_128_CCM_8"), empty before.
  const std::string& cipher_suite() const noexcept { return suite_; }
  // Who the handshake proved the peer to be, once established: the PSK identity a client
  // used (on a server; a PSK client learns no identity of its server), or the CommonName of
  // the peer's certificate when it chained to a trust anchor. Empty before; for a peer without
  // a certificate; with verify_peer_cert off; for a self-signed certificate taken by
  // allow_self_signed without being trusted.
  std::string_view authenticated_peer() const noexcept {
    return established_ ? std::string_view(authenticated_peer_) : std::string_view();
  }
  const State* state() const noexcept { return state_.get(); }

  // ---- Botan::TLS::Callbacks ----
  void tls_emit_data(const std::uint8_t data[], std::size_t size) override {
    if (muted_) return;
    if (coalescing_) {
      const auto at = out_.size();
      out_.insert(out_.end(), data, data + size);  // bad_alloc: caught by run()
      try {
        out_records_.push_back(size);
      } catch (...) {
        out_.resize(at);
        throw;
      }
      if (epoch0_offset_ != 0) renumber_epoch0({out_.data() + at, size});
      return;
    }
    session_.tls_wire({data, size});
  }
  void tls_record_received(std::uint64_t, const std::uint8_t data[], std::size_t size) override {
    if (!failed_) session_.tls_plaintext({data, size});
  }
  void tls_alert(Botan::TLS::Alert alert) override {
    if (alert.type() == Botan::TLS::Alert::CLOSE_NOTIFY) pending_ = make_error_code(error::session_closed);
    else if (alert.is_fatal()) pending_ = make_error_code(static_cast<coap::tls_alert>(alert.type()));
  }
  bool tls_session_established(const Botan::TLS::Session& s) override {
    if constexpr (requires { state_->on_established(s); }) state_->on_established(s);
    suite_ = s.ciphersuite().to_string();
    if (!s.peer_certs().empty()) {
      // Only a certificate that chains to a trust anchor names anybody.
      const auto cn = s.peer_certs().front().subject_info("X520.CommonName");
      authenticated_peer_ = peer_anchored_ && !cn.empty() ? cn.front() : std::string();
    } else if (!server_) {
      authenticated_peer_.clear();
    }
    overhead_ = tls_record_overhead(s.ciphersuite(), s.version());
    return false;  // nothing to cache
  }
  void tls_session_activated() override {
    if (established_ || failed_) return;
    established_ = true;
    timer_.cancel();
    session_.tls_established();
  }
  void tls_verify_cert_chain(const std::vector<Botan::X509_Certificate>& chain,
                             const std::vector<std::shared_ptr<const Botan::OCSP::Response>>&,
                             const std::vector<Botan::Certificate_Store*>&, Botan::Usage_Type usage,
                             const std::string& hostname, const Botan::TLS::Policy&) override {
    if constexpr (requires { state_->verify(chain, usage, hostname); }) {
      peer_anchored_ = state_->verify(chain, usage, hostname);
    } else {
      throw Botan::TLS::TLS_Exception(Botan::TLS::Alert::UNSUPPORTED_CERTIFICATE, "no certificates in PSK mode");
    }
  }
  std::string tls_server_choose_app_protocol(const std::vector<std::string>& offered) override {
    for (const auto& p : offered)
      if (p == "coap") return p;
    return {};
  }
  std::string tls_peer_network_identity() override { return session_.tls_peer_identity(); }

 private:
  void start(std::shared_ptr<const State> state, bool datagram) {
    state_ = std::move(state);
    datagram_ = datagram;
    overhead_ = datagram ? 13 + 8 + 16 : 5 + 8 + 16;
    deadline_ = clock::now() + session_.config().handshake_timeout;
    arm_timer();
  }
  std::size_t io_buffer_size() const noexcept { return datagram_ ? 2048 : 4096; }

  // Adds epoch0_offset_ to the sequence number of each epoch-0 record in `records` (those
  // are not authenticated, so their numbers may be changed; see start_server).
  void renumber_epoch0(std::span<std::uint8_t> records) const noexcept {
    for_each_dtls_record(records, [this](std::span<std::uint8_t> r) {
      const std::uint64_t seq = dtls_sequence(r.data()) + epoch0_offset_;
      if (dtls_epoch(r.data()) == 0 && (seq >> 48) == 0) set_dtls_sequence(r.data(), seq);
    });
  }

  // RFC 6347 section 4.1.1: the records of a handshake flight (Botan emits one at a time) go
  // out packed into as few datagrams as the session's MTU and Botan's DTLS MTU allow. A
  // server keeps the flight's handshake records as its last flight (see repeat_flight_for).
  void flush_flight() noexcept {
    if (out_records_.empty()) return;
    const std::size_t limit = std::min<std::size_t>(session_.config().mtu, state_->policy().dtls_default_mtu());
    bool keep = server_;
    if (keep) {
      flight_.clear();
      flight_sizes_.clear();
      repeats_ = 0;
    }
    std::size_t start = 0, length = 0;
    const auto emit = [&] {
      if (keep) keep = keep_handshake_records({out_.data() + start, length});
      session_.tls_wire({out_.data() + start, length});
      start += length;
      length = 0;
    };
    for (const auto n : out_records_) {
      if (length > 0 && length + n > limit) emit();
      length += n;
    }
    if (length > 0) emit();
    out_.clear();
    out_records_.clear();
  }
  // Appends the records of `datagram` other than application data to flight_ as one datagram;
  // false when memory ran out (the flight is then not kept: a lost one is not repeated).
  bool keep_handshake_records(std::span<const std::uint8_t> datagram) noexcept {
    try {
      std::size_t kept = 0;
      for_each_dtls_record(datagram, [&](std::span<const std::uint8_t> r) {
        if (r[0] == 23) return;
        flight_.insert(flight_.end(), r.begin(), r.end());
        kept += r.size();
      });
      if (kept > 0) flight_sizes_.push_back(kept);
      return true;
    } catch (const std::bad_alloc&) {
      flight_.clear();
      flight_sizes_.clear();
      return false;
    }
  }

  // RFC 6347 section 4.2.4: a DTLS server whose flight was lost sees the client's previous
  // flight again and must send its own again. Botan 2.19 does neither for a repeated
  // ClientHello (it fails with protocol_version) nor for a repeated final client flight after
  // the handshake (it ignores it), so the server's last flight is kept here and repeated.
  bool repeat_flight_for(std::span<const std::uint8_t> d) {
    if (d.size() < 14 || flight_sizes_.empty()) return false;
    const std::uint8_t type = d[0];
    const bool epoch0 = d[3] == 0 && d[4] == 0;
    // Before the handshake completes: the ClientHello (with its cookie) again. After it: any
    // handshake or ChangeCipherSpec record is the client's final flight again (renegotiation
    // is refused by the policy).
    const bool repeated_hello = !established_ && hello_seen_ && type == 22 && epoch0 && d[13] == 1;
    const bool repeated_final = established_ && (type == 22 || type == 20);
    if (!repeated_hello && !repeated_final) return false;
    if (++repeats_ > max_repeats) return true;  // each flight is repeated 8 times at most
    std::size_t at = 0;
    for (auto n : flight_sizes_) {
      session_.tls_wire({flight_.data() + at, n});
      at += n;
    }
    return true;
  }
  static constexpr unsigned max_repeats = 8;
  // Botan takes the credentials by non-const reference; the shared ones are only read, but
  // for pki_state's cache of SNI keys (the context's executor is the only thread using it).
  Botan::Credentials_Manager& credentials() {
    credentials_.emplace(const_cast<Botan::Credentials_Manager&>(state_->credentials()), authenticated_peer_);
    return *credentials_;
  }

  // Calls into Botan. While a DTLS handshake is under way what Botan emits is collected and
  // sent packed (flush_flight) when the outermost call returns; failures are reported after
  // that, so that an alert goes out first. Calls nest when the session sends queued requests
  // from tls_established: those join the flight being collected, and their failures wait for
  // the outermost call too.
  template <class F>
  void run(F&& f) {
    if (depth_ == 0) coalescing_ = datagram_ && !established_;
    ++depth_;
    try {
      f();
    } catch (const std::bad_alloc&) {
      note_failure(make_error_code(error::no_memory));
    } catch (const std::exception& e) {
      note_failure(pending_ ? *pending_ : tls_error_of(e));
    }
    if (--depth_ > 0) return;
    if (coalescing_) {
      coalescing_ = false;
      flush_flight();
    }
    if (failure_) fail(*std::exchange(failure_, std::nullopt));
    if (pending_) fail(*std::exchange(pending_, std::nullopt));
  }
  void note_failure(std::error_code ec) {
    if (!failure_) failure_ = ec;
  }

  void fail(std::error_code ec) {
    if (failed_) return;
    failed_ = true;
    timer_.cancel();
    session_.tls_failed(ec);
  }

  // Until the handshake completes: DTLS retransmissions (Botan's timeout_check) and the
  // handshake timeout.
  void arm_timer() {
    const auto now = clock::now();
    auto next = deadline_;
    if (datagram_) {
      const auto tick = std::clamp(std::chrono::duration_cast<clock::duration>(state_->policy().dtls_initial / 4),
                                   clock::duration(std::chrono::milliseconds(10)),
                                   clock::duration(std::chrono::milliseconds(100)));
      next = std::min(deadline_, now + tick);
    }
    timer_.expires_at(next);
    timer_.async_wait([self = session_.shared_from_this(), this](const boost::system::error_code& ec) {
      if (ec || failed_ || established_) return;
      if (clock::now() >= deadline_) return fail(make_error_code(error::handshake_timeout));
      if (datagram_ && channel_) run([&] { channel_->timeout_check(); });
      if (!failed_ && !established_) arm_timer();
    });
  }

  Session& session_;
  std::shared_ptr<const State> state_;
  std::optional<channel_credentials> credentials_;  // before engine_, which refers to it
  std::variant<std::monostate, Botan::TLS::Client, Botan::TLS::Server> engine_;
  Botan::TLS::Channel* channel_ = nullptr;
  boost::asio::steady_timer timer_;
  clock::time_point deadline_{};
  std::optional<std::error_code> pending_;
  std::string suite_;
  std::string authenticated_peer_;
  std::optional<std::error_code> failure_;  // noted by a nested call (see run)
  unsigned depth_ = 0;                      // nesting of run()
  bool peer_anchored_ = false;              // the peer's chain reached a trust anchor
  std::size_t overhead_ = 0;
  std::uint64_t epoch0_offset_ = 0;  // DTLS server: added to epoch-0 record numbers
  bool datagram_ = false;
  bool server_ = false;
  bool hello_seen_ = false;  // the server has taken a ClientHello (after the primer)
  bool coalescing_ = false;  // emitted records go to out_ (see run)
  unsigned repeats_ = 0;
  std::vector<std::uint8_t> out_;          // DTLS handshake: records emitted by the current call
  std::vector<std::size_t> out_records_;
  std::vector<std::uint8_t> flight_;       // DTLS server: the last flight, datagram by datagram
  std::vector<std::size_t> flight_sizes_;
  bool established_ = false;
  bool failed_ = false;
  bool muted_ = false;
};

}  // namespace coap::security::detail
