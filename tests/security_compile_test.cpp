// The secure policies at compile time (issue 5): every transport x security combination is its
// own type; a session takes only its own policy's set-up (a PSK configuration does not make a
// PKI session, and a NoSec session takes none); and zero overhead: a NoSec session holds no
// record layer, a secure one holds exactly its channel more, and a PSK session's shared state
// has no certificate store in it. The static_asserts are the test.
#include <coap/security/pki.hpp>
#include <coap/security/psk.hpp>

#define BOOST_TEST_MODULE security_compile
#include <boost/test/unit_test.hpp>

#include <coap/session.hpp>
#include <coap/transports/tcp.hpp>
#include <coap/transports/udp.hpp>

#include <cstddef>
#include <memory>
#include <system_error>
#include <type_traits>

namespace {

using coap::pki;
using coap::psk;
using coap::tcp;
using coap::udp;
using coap::security::pki_config;
using coap::security::psk_client_config;

template <class Transport, class Security>
concept session_exists = requires { typename coap::session<Transport, Security>; };
static_assert(session_exists<udp, psk> && session_exists<udp, pki>);
static_assert(session_exists<tcp, psk> && session_exists<tcp, pki>);
static_assert(!std::is_same_v<coap::session<udp, psk>, coap::session<udp, pki>>);

// coap_new_client_session_psk / _pki: a session takes its own policy's configuration only.
template <class Session, class Config>
concept client_takes = requires(typename Session::context_type& ctx, typename Session::endpoint_type ep,
                                const Config& config, std::error_code& ec) {
  Session::create_client(ctx, ep, config, ec);
};
static_assert(client_takes<coap::session<udp, psk>, psk_client_config>);
static_assert(client_takes<coap::session<tcp, psk>, psk_client_config>);
static_assert(client_takes<coap::session<udp, pki>, pki_config>);
static_assert(client_takes<coap::session<tcp, pki>, pki_config>);
static_assert(!client_takes<coap::session<udp, psk>, pki_config>);
static_assert(!client_takes<coap::session<udp, pki>, psk_client_config>);
static_assert(!client_takes<coap::session<udp, coap::no_sec>, psk_client_config>);
static_assert(!client_takes<coap::session<tcp, coap::no_sec>, pki_config>);

// RFC 8323 state stays on reliable transports, secure or not.
template <class Session>
concept has_csm_state = requires(const Session& s) { s.peer_csm_received(); };
static_assert(has_csm_state<coap::session<tcp, psk>>);
static_assert(!has_csm_state<coap::session<udp, psk>>);

// ---- zero overhead ----
using alloc = std::allocator<std::uint8_t>;
template <class Transport, class Security>
using impl = typename Transport::template session_impl<Security, alloc>;

// NoSec: the record layer is an empty member that takes no room.
static_assert(std::is_empty_v<coap::no_sec::channel<impl<udp, coap::no_sec>>>);
static_assert(std::is_same_v<coap::no_sec::state_ptr, std::nullptr_t>);

// Secure: the session is the NoSec one plus its channel (and, over TCP, the two TLS buffers),
// within alignment padding.
template <class Transport, class Security>
constexpr std::size_t extra = sizeof(impl<Transport, Security>) - sizeof(impl<Transport, coap::no_sec>);
using udp_psk_channel = psk::channel<impl<udp, psk>>;
static_assert(extra<udp, psk> <= sizeof(udp_psk_channel) + alignof(std::max_align_t));
static_assert(extra<udp, psk> >= sizeof(udp_psk_channel));
static_assert(extra<tcp, psk> <= sizeof(psk::channel<impl<tcp, psk>>) + 2 * sizeof(std::vector<std::uint8_t>) +
                                     alignof(std::max_align_t));

// A PSK session's channel refers to PSK state, which holds no certificate store; the reverse
// for PKI. (The channel itself is the same glue for both.)
static_assert(std::is_same_v<psk::state, coap::security::psk_state>);
static_assert(std::is_same_v<pki::state, coap::security::pki_state>);
static_assert(!std::is_base_of_v<coap::security::pki_state, coap::security::psk_state>);
static_assert(sizeof(coap::security::psk_state) < sizeof(coap::security::pki_state));
static_assert(sizeof(psk::channel<impl<udp, psk>>) == sizeof(pki::channel<impl<udp, pki>>));

}  // namespace

BOOST_AUTO_TEST_CASE(sizes) {
  // The figures behind the static_asserts, for the log (docs/benchmarks.md "Session sizes").
  BOOST_TEST_MESSAGE("udp no_sec " << sizeof(impl<udp, coap::no_sec>) << " B, udp psk "
                                   << sizeof(impl<udp, psk>) << " B, udp pki " << sizeof(impl<udp, pki>)
                                   << " B; tcp no_sec " << sizeof(impl<tcp, coap::no_sec>) << " B, tcp psk "
                                   << sizeof(impl<tcp, psk>) << " B; psk_state "
                                   << sizeof(coap::security::psk_state) << " B, pki_state "
                                   << sizeof(coap::security::pki_state) << " B");
  BOOST_TEST((extra<udp, psk> > 0u));
}
