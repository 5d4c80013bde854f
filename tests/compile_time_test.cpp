// Misuse that must not compile, proven with requires-expressions evaluated to false: a value
// of the wrong format for a typed option, a response code where a method is expected,
// RFC 8323 signalling state on a UDP session, a security policy no transport carries, and a
// session of something that is not a transport. (A requires-expression is only a test inside a template, so each check is a
// concept over the type under test.) The static_asserts are the test; the runtime case
// only makes this a test binary.
#include <coap/session.hpp>

#define BOOST_TEST_MODULE compile_time
#include <boost/test/unit_test.hpp>

#include <coap/message.hpp>
#include <coap/resource.hpp>
#include <coap/transports/tcp.hpp>
#include <coap/transports/udp.hpp>

#include <concepts>
#include <cstdint>
#include <span>
#include <string_view>

namespace {

// ---- Typed options take a value of their registered format (RFC 7252 section 3.2) ----

template <class M>
concept string_for_uint_option = requires(M& m) { m.add(coap::options::content_format{}, "x"); };
template <class M>
concept uint_for_string_option = requires(M& m) { m.add(coap::options::uri_path{}, 42u); };
// The literal 0 is a null pointer constant, which std::string_view would take (and crash on).
template <class M>
concept zero_for_string_option = requires(M& m) { m.add(coap::options::uri_path{}, 0); };
template <class M>
concept value_for_empty_option = requires(M& m) { m.add(coap::options::if_none_match{}, 1u); };
template <class M>
concept well_typed_options = requires(M& m) {
  m.add(coap::options::content_format{}, 0u);
  m.add(coap::options::uri_path{}, "x");
  m.add(coap::options::if_none_match{});
};

static_assert(well_typed_options<coap::message>);
static_assert(!string_for_uint_option<coap::message>);
static_assert(!uint_for_string_option<coap::message>);
static_assert(!zero_for_string_option<coap::message>);
static_assert(!value_for_empty_option<coap::message>);

// ---- Methods and response codes are different types (RFC 7252 section 5.8, 5.9) ----

static_assert(!std::is_convertible_v<coap::response_code, coap::method>);
static_assert(!std::is_convertible_v<coap::method, coap::response_code>);
// basic_message(method) makes a request; basic_message(code) a response or signal.
static_assert(std::constructible_from<coap::message, coap::method>);
static_assert(std::constructible_from<coap::message, coap::response_code>);

template <class Context>
concept handler_on_response_code = requires(Context& ctx, typename Context::resource::handler h) {
  ctx.add_resource("x").on(coap::response_code::content, h);
};
template <class Context>
concept handler_on_method = requires(Context& ctx, typename Context::resource::handler h) {
  ctx.add_resource("x").on(coap::method::get, h);
};
template <class Context>
concept handler_on_raw_number = requires(Context& ctx, typename Context::resource::handler h) {
  ctx.add_resource("x").on(1, h);
};
static_assert(handler_on_method<coap::context>);
static_assert(!handler_on_response_code<coap::context>);
static_assert(!handler_on_raw_number<coap::context>);

// A response's code is a response code: a handler cannot answer with a method.
template <class Response>
concept response_with_method = requires(Response& r) { r.set_code(coap::method::get); };
static_assert(!response_with_method<coap::basic_response<>>);

// ---- RFC 8323 signalling state exists on reliable transports only ----

template <class Session>
concept has_csm_state = requires(const Session& s) {
  { s.peer_csm_received() } -> std::same_as<bool>;
};
static_assert(has_csm_state<coap::session<coap::tcp>>);
static_assert(!has_csm_state<coap::session<coap::udp>>);

// ---- Security: policies are checked ----

struct not_a_security_policy {};
// Models security_policy and says it secures, but has no channel (no client or server
// set-up, no record layer): no transport carries it.
struct uncarried_security {
  static constexpr bool secure = true;
  static constexpr std::string_view name = "uncarried";
  static constexpr std::string_view datagram_protocol = "X";
  static constexpr std::string_view stream_protocol = "Y";
  using state_ptr = std::nullptr_t;
};

template <class Transport, class Security>
concept session_exists = requires { typename coap::session<Transport, Security>; };

static_assert(session_exists<coap::udp, coap::no_sec>);
static_assert(session_exists<coap::tcp, coap::no_sec>);
static_assert(!coap::security_policy<not_a_security_policy>);
static_assert(!session_exists<coap::udp, not_a_security_policy>);
static_assert(coap::security_policy<uncarried_security>);
static_assert(!session_exists<coap::udp, uncarried_security>);
static_assert(!session_exists<coap::tcp, uncarried_security>);
static_assert(!coap::channel_security<uncarried_security>);

// ---- What basic_udp<Socket> needs of a socket ----
static_assert(coap::datagram_socket<boost::asio::ip::udp::socket>);
static_assert(!coap::datagram_socket<boost::asio::ip::tcp::socket>);
static_assert(!coap::datagram_socket<int>);

// Credentials (PSK, PKI) and their misuse: tests/security_compile_test.cpp, which links the
// secure policies.

// ---- Only transport policies make sessions ----

template <class Transport>
concept session_of = requires { typename coap::session<Transport>; };
static_assert(session_of<coap::udp>);
static_assert(session_of<coap::tcp>);
static_assert(!coap::transport_policy<int>);
static_assert(!session_of<int>);
static_assert(!session_of<coap::no_sec>);
static_assert(!session_exists<int, coap::no_sec>);

}  // namespace

BOOST_AUTO_TEST_CASE(checks_are_compile_time) {
  // The checks above ran when this file compiled; this confirms the well-formed forms work.
  coap::message m(coap::method::get);
  m.add(coap::options::uri_path{}, "x");
  m.add(coap::options::content_format{}, 0u);
  BOOST_TEST(m.code().is_request());
  BOOST_TEST(m.option_count() == 2u);
}
