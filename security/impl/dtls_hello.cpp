// RFC 6347 section 4.2.1 (HelloVerifyRequest), 4.1 (record layer) and 4.2.2 (handshake header).
#include <coap/security/detail/dtls_hello.hpp>
#include <coap/security/detail/dtls_record.hpp>
#include <coap/security/detail/tls_channel.hpp>

#include <botan/tls_messages.h>

#include <exception>

namespace coap::security::detail {
namespace {

constexpr std::size_t record_header = dtls_record_header;
constexpr std::size_t handshake_header = 12;  // type, length (3), message_seq, offset (3), fragment length (3)
constexpr std::uint8_t content_handshake = 22;
constexpr std::uint8_t client_hello = 1;
constexpr std::uint8_t hello_verify_request = 3;

std::size_t be16(const std::uint8_t* p) { return std::size_t{p[0]} << 8 | p[1]; }
std::size_t be24(const std::uint8_t* p) { return std::size_t{p[0]} << 16 | std::size_t{p[1]} << 8 | p[2]; }
void put16(std::vector<std::uint8_t>& v, std::size_t x) {
  v.push_back(static_cast<std::uint8_t>(x >> 8));
  v.push_back(static_cast<std::uint8_t>(x));
}
void put24(std::vector<std::uint8_t>& v, std::size_t x) {
  v.push_back(static_cast<std::uint8_t>(x >> 16));
  put16(v, x);
}

// A record carrying one handshake message in one fragment.
std::vector<std::uint8_t> handshake_record(const std::uint8_t* version, const std::uint8_t* sequence,
                                           std::uint8_t type, std::size_t message_seq,
                                           const std::vector<std::uint8_t>& body) {
  std::vector<std::uint8_t> r;
  r.reserve(record_header + handshake_header + body.size());
  r.push_back(content_handshake);
  r.insert(r.end(), version, version + 2);
  r.push_back(0);  // epoch 0
  r.push_back(0);
  r.insert(r.end(), sequence, sequence + 6);
  put16(r, handshake_header + body.size());
  r.push_back(type);
  put24(r, body.size());
  put16(r, message_seq);
  put24(r, 0);
  put24(r, body.size());
  r.insert(r.end(), body.begin(), body.end());
  return r;
}

}  // namespace

Botan::SymmetricKey make_cookie_secret() { return Botan::SymmetricKey(tls_rng(), 32); }

client_hello_result check_client_hello(std::span<const std::uint8_t> d, const std::string& peer_identity,
                                       const Botan::SymmetricKey& secret) {
  client_hello_result out;
  if (d.size() < record_header + handshake_header || d[0] != content_handshake || d[3] != 0 || d[4] != 0) return out;
  const std::size_t record_length = be16(&d[11]);
  if (record_length < handshake_header || record_length > d.size() - record_header) return out;
  const std::uint8_t* h = &d[record_header];
  const std::size_t length = be24(h + 1), offset = be24(h + 6), fragment = be24(h + 9);
  if (h[0] != client_hello || offset != 0 || fragment != length || handshake_header + length > record_length)
    return out;
  const std::vector<std::uint8_t> body(h + handshake_header, h + handshake_header + length);
  try {
    const Botan::TLS::Client_Hello hello(body);
    if (!hello.version().is_datagram_protocol()) return out;
    const Botan::TLS::Hello_Verify_Request expected(hello.cookie_input_data(), peer_identity, secret);
    if (hello.cookie() != expected.cookie()) {
      out.check = client_hello_check::cookie_missing;
      // Section 4.2.1: the HelloVerifyRequest takes the ClientHello's record sequence number.
      out.reply = handshake_record(&d[1], &d[5], hello_verify_request, 0, expected.serialize());
      return out;
    }
    // The same hello without the cookie: client_version (2), random (32), session_id, cookie.
    const std::size_t session_id_at = 34;
    if (body.size() <= session_id_at) return out;
    const std::size_t cookie_at = session_id_at + 1 + body[session_id_at];
    if (cookie_at >= body.size() || cookie_at + 1 + body[cookie_at] > body.size()) return out;
    std::vector<std::uint8_t> stripped(body.begin(), body.begin() + static_cast<std::ptrdiff_t>(cookie_at));
    stripped.push_back(0);
    stripped.insert(stripped.end(), body.begin() + static_cast<std::ptrdiff_t>(cookie_at + 1 + body[cookie_at]),
                    body.end());
    // Its record sequence number is one below this hello's: Botan's replay window must let the
    // real hello through after it. (Clients send the second hello with sequence 1 or more; a
    // retransmission has a higher one still.)
    const std::uint64_t seq = dtls_sequence(d.data());
    if (seq == 0) return out;
    out.primer = handshake_record(&d[1], &d[5], client_hello, 0, stripped);
    set_dtls_sequence(out.primer.data(), seq - 1);
    out.check = client_hello_check::cookie_valid;
  } catch (const std::exception&) {
    out.check = client_hello_check::not_a_client_hello;
  }
  return out;
}

}  // namespace coap::security::detail
