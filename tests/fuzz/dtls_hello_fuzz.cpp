// RFC 6347 section 4.2.1: fuzzes the stateless ClientHello check that a DTLS endpoint runs on
// every datagram from a peer without a session (security/detail/dtls_hello.hpp), the first
// code that unauthenticated bytes reach. Beyond "no crash, no sanitizer report", every
// violated property traps:
//   - what is not a ClientHello gets neither a reply nor a session;
//   - a hello without a valid cookie gets one HelloVerifyRequest record, in the hello's record
//     sequence number, carrying a cookie;
//   - the same hello sent again with that cookie (as a client's second hello: message_seq 1,
//     next record number) is accepted, but not from another address;
//   - the primer made for it (the hello without its cookie) is answered with the same cookie,
//     so the Botan server primed with it expects exactly the hello the client sent.
#include <coap/security/detail/dtls_hello.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace {

namespace sec = coap::security::detail;
using bytes = std::vector<std::uint8_t>;

constexpr std::size_t record_header = 13;
constexpr std::size_t handshake_header = 12;
constexpr std::size_t hvr_cookie_at = record_header + handshake_header + 2;  // after server_version

void check(bool condition) {
  if (!condition) __builtin_trap();
}

const std::string peer = "192.0.2.1:5684";
const std::string other_peer = "192.0.2.2:5684";
const Botan::SymmetricKey& secret() {
  static const Botan::SymmetricKey key(bytes(32, 0x5a));
  return key;
}

std::size_t be16(const std::uint8_t* p) { return std::size_t{p[0]} << 8 | p[1]; }
std::size_t be24(const std::uint8_t* p) { return std::size_t{p[0]} << 16 | std::size_t{p[1]} << 8 | p[2]; }
void put(bytes& v, std::size_t x, int n) {
  for (int i = n - 1; i >= 0; --i) v.push_back(static_cast<std::uint8_t>(x >> (8 * i)));
}

// The cookie a HelloVerifyRequest record carries, after checking the record's shape.
bytes cookie_of(const bytes& reply) {
  check(reply.size() > hvr_cookie_at);
  check(reply[0] == 22 && reply[3] == 0 && reply[4] == 0);              // handshake, epoch 0
  check(be16(&reply[11]) == reply.size() - record_header);               // one record
  check(reply[13] == 3);                                                 // hello_verify_request
  check(be24(&reply[14]) == reply.size() - record_header - handshake_header);
  check(reply[hvr_cookie_at] + hvr_cookie_at + 1 == reply.size());
  check(reply[hvr_cookie_at] > 0);
  return bytes(reply.begin() + hvr_cookie_at + 1, reply.end());
}

// `hello` (a datagram accepted as a ClientHello) with its cookie replaced by `cookie`, in the
// next record number, message_seq 1. nullopt when it cannot be made (record number at its end).
std::optional<bytes> with_cookie(std::span<const std::uint8_t> hello, const bytes& cookie) {
  const std::uint8_t* h = hello.data() + record_header;
  const std::span<const std::uint8_t> body(h + handshake_header, be24(h + 1));
  const std::size_t session_id_at = 34;
  check(body.size() > session_id_at);  // Botan parsed version, random and session_id
  const std::size_t cookie_at = session_id_at + 1 + body[session_id_at];
  check(cookie_at < body.size() && cookie_at + 1 + body[cookie_at] <= body.size());
  bytes new_body(body.begin(), body.begin() + static_cast<std::ptrdiff_t>(cookie_at));
  new_body.push_back(static_cast<std::uint8_t>(cookie.size()));
  new_body.insert(new_body.end(), cookie.begin(), cookie.end());
  new_body.insert(new_body.end(), body.begin() + static_cast<std::ptrdiff_t>(cookie_at + 1 + body[cookie_at]),
                  body.end());
  if (handshake_header + new_body.size() > 0xffff) return std::nullopt;

  std::uint64_t seq = 0;
  for (std::size_t i = 0; i < 6; ++i) seq = seq << 8 | hello[5 + i];
  if (++seq >> 48) return std::nullopt;
  bytes out(hello.begin(), hello.begin() + 5);  // type, version, epoch
  put(out, seq, 6);
  put(out, handshake_header + new_body.size(), 2);
  out.push_back(1);  // client_hello
  put(out, new_body.size(), 3);
  put(out, 1, 2);    // message_seq
  put(out, 0, 3);    // fragment offset
  put(out, new_body.size(), 3);
  out.insert(out.end(), new_body.begin(), new_body.end());
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> datagram(data, size);
  const auto first = sec::check_client_hello(datagram, peer, secret());
  switch (first.check) {
    case sec::client_hello_check::not_a_client_hello:
      check(first.reply.empty() && first.primer.empty());
      return 0;
    case sec::client_hello_check::cookie_valid:
      // Only a hello carrying this peer's cookie gets here; random input does not.
      check(first.reply.empty() && !first.primer.empty());
      check(sec::check_client_hello(first.primer, peer, secret()).check == sec::client_hello_check::cookie_missing);
      return 0;
    case sec::client_hello_check::cookie_missing:
      break;
  }
  check(first.primer.empty());
  const bytes cookie = cookie_of(first.reply);
  check(std::memcmp(&first.reply[1], &datagram[1], 2) == 0);  // the hello's version
  check(std::memcmp(&first.reply[5], &datagram[5], 6) == 0);  // and record sequence number

  const auto again = with_cookie(datagram, cookie);
  if (!again) return 0;
  const auto second = sec::check_client_hello(*again, peer, secret());
  check(second.check == sec::client_hello_check::cookie_valid);
  check(second.reply.empty());
  check(sec::check_client_hello(*again, other_peer, secret()).check == sec::client_hello_check::cookie_missing);

  // The primer: the hello without a cookie, message_seq 0, one record number below.
  const auto primed = sec::check_client_hello(second.primer, peer, secret());
  check(primed.check == sec::client_hello_check::cookie_missing);
  check(cookie_of(primed.reply) == cookie);
  check(std::memcmp(&second.primer[5], &datagram[5], 6) == 0);
  check(second.primer[17] == 0 && second.primer[18] == 0);  // message_seq 0
  return 0;
}
