// RFC 7252 section 6 and RFC 8323 section 8: parsing, writing, and converting CoAP URIs
// to and from Uri-* options.
#include <coap/uri.hpp>

#define BOOST_TEST_MODULE uri
#include <boost/test/unit_test.hpp>

#include <coap/message.hpp>

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace coap {
// Boost.Test prints the operands of a failed assertion.
inline std::ostream& boost_test_print_type(std::ostream& os, error e) { return os << make_error_code(e).message(); }
inline std::ostream& boost_test_print_type(std::ostream& os, scheme s) { return os << scheme_name(s); }
inline std::ostream& boost_test_print_type(std::ostream& os, host_kind k) { return os << static_cast<int>(k); }
inline std::ostream& boost_test_print_type(std::ostream& os, const uri& u) { return os << to_string(u); }
}  // namespace coap

namespace {

// A minimal model of what the option templates need from a message: add_option,
// add_string_option, add_uint_option and options() with number(), value(), as_string(),
// as_uint().
class fake_option {
 public:
  fake_option(std::uint16_t number, std::span<const std::uint8_t> value) : number_(number), value_(value) {}
  std::uint16_t number() const { return number_; }
  std::span<const std::uint8_t> value() const { return value_; }
  std::string_view as_string() const { return {reinterpret_cast<const char*>(value_.data()), value_.size()}; }
  std::uint32_t as_uint() const {
    std::uint32_t v = 0;
    for (auto b : value_) v = (v << 8) | b;
    return v;
  }

 private:
  std::uint16_t number_;
  std::span<const std::uint8_t> value_;
};

struct fake_message {
  std::vector<std::pair<std::uint16_t, std::vector<std::uint8_t>>> stored;

  void add_option(std::uint16_t number, std::span<const std::uint8_t> value) {
    auto pos = std::upper_bound(stored.begin(), stored.end(), number,
                                [](std::uint16_t n, const auto& o) { return n < o.first; });
    stored.insert(pos, {number, std::vector<std::uint8_t>(value.begin(), value.end())});
  }
  void add_string_option(std::uint16_t number, std::string_view value) {
    add_option(number, {reinterpret_cast<const std::uint8_t*>(value.data()), value.size()});
  }
  void add_uint_option(std::uint16_t number, std::uint32_t value) {
    std::vector<std::uint8_t> bytes;
    for (int shift = 24; shift >= 0; shift -= 8)
      if (!bytes.empty() || (value >> shift) & 0xffu) bytes.push_back(static_cast<std::uint8_t>(value >> shift));
    add_option(number, bytes);
  }
  std::vector<fake_option> options() const {
    std::vector<fake_option> out;
    for (const auto& [n, v] : stored) out.emplace_back(n, v);
    return out;
  }
};

constexpr std::uint16_t uri_host = 3, uri_port = 7, uri_path = 11, uri_query = 15;

coap::uri parse_ok(std::string_view text) {
  coap::uri u;
  const auto ec = coap::parse_uri(text, u);
  BOOST_TEST_REQUIRE(!ec, text << ": " << ec.message());
  return u;
}

std::error_code parse_error(std::string_view text) {
  coap::uri u;
  return coap::parse_uri(text, u);
}

std::vector<std::string> strings(std::initializer_list<const char*> list) { return {list.begin(), list.end()}; }

template <class Message>
std::vector<std::pair<std::uint16_t, std::string>> dump(const Message& m) {
  std::vector<std::pair<std::uint16_t, std::string>> out;
  for (auto&& o : m.options()) out.emplace_back(o.number(), std::string(o.as_string()));
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(schemes) {
  using coap::scheme;
  BOOST_TEST(coap::default_port(scheme::coap) == 5683);
  BOOST_TEST(coap::default_port(scheme::coaps) == 5684);
  BOOST_TEST(coap::default_port(scheme::coap_tcp) == 5683);
  BOOST_TEST(coap::default_port(scheme::coaps_tcp) == 5684);
  BOOST_TEST(!coap::is_secure(scheme::coap));
  BOOST_TEST(coap::is_secure(scheme::coaps));
  BOOST_TEST(!coap::is_secure(scheme::coap_tcp));
  BOOST_TEST(coap::is_secure(scheme::coaps_tcp));
  BOOST_TEST(!coap::is_reliable(scheme::coap));
  BOOST_TEST(!coap::is_reliable(scheme::coaps));
  BOOST_TEST(coap::is_reliable(scheme::coap_tcp));
  BOOST_TEST(coap::is_reliable(scheme::coaps_tcp));
  BOOST_TEST(coap::scheme_name(scheme::coaps_tcp) == "coaps+tcp");
  BOOST_TEST((coap::scheme_from_name("CoAP+TCP") == scheme::coap_tcp));
  BOOST_TEST(!coap::scheme_from_name("http"));
  BOOST_TEST(!coap::scheme_from_name("coap+"));
}

BOOST_AUTO_TEST_CASE(default_port_per_scheme) {
  BOOST_TEST(parse_ok("coap://h/").port == 5683);
  BOOST_TEST(parse_ok("coaps://h/").port == 5684);
  BOOST_TEST(parse_ok("coap+tcp://h/").port == 5683);
  BOOST_TEST(parse_ok("coaps+tcp://h/").port == 5684);
  BOOST_TEST(parse_ok("COAPS+TCP://h/").scheme == coap::scheme::coaps_tcp);
  // An empty port is the default one; an explicit default port is the same URI.
  BOOST_TEST(parse_ok("coaps://h:/").port == 5684);
  BOOST_TEST(parse_ok("coap://h:5683/") == parse_ok("coap://h/"));
  BOOST_TEST(to_string(parse_ok("coap://h:5683/x")) == "coap://h/x");
  BOOST_TEST(to_string(parse_ok("coaps://h:5683/x")) == "coaps://h:5683/x");
  BOOST_TEST(to_string(parse_ok("coap+tcp://h:5684")) == "coap+tcp://h:5684/");
  BOOST_TEST(to_string(parse_ok("coaps+tcp://h:5684")) == "coaps+tcp://h/");
}

// Section 6.3: these three URIs are equivalent.
BOOST_AUTO_TEST_CASE(rfc7252_section_6_3_equivalence) {
  const auto a = parse_ok("coap://example.com:5683/~sensors/temp.xml");
  const auto b = parse_ok("coap://EXAMPLE.com/%7Esensors/temp.xml");
  const auto c = parse_ok("coap://EXAMPLE.com:/%7esensors/temp.xml");
  BOOST_TEST((a == b));
  BOOST_TEST((a == c));
  BOOST_TEST(a.host == "example.com");
  BOOST_TEST((a.host_kind == coap::host_kind::name));
  BOOST_TEST(a.port == 5683);
  BOOST_TEST(a.path == strings({"~sensors", "temp.xml"}), boost::test_tools::per_element());
  BOOST_TEST(a.query.empty());
  BOOST_TEST(to_string(a) == "coap://example.com/~sensors/temp.xml");
  // Not equivalent: another scheme, port or path.
  BOOST_TEST(!(a == parse_ok("coaps://example.com/~sensors/temp.xml")));
  BOOST_TEST(!(a == parse_ok("coap://example.com:5684/~sensors/temp.xml")));
  BOOST_TEST(!(a == parse_ok("coap://example.com/~sensors/temp.xml/")));
}

BOOST_AUTO_TEST_CASE(ipv6_literals) {
  auto u = parse_ok("coap://[::1]:5683/x");
  BOOST_TEST((u.host_kind == coap::host_kind::ipv6));
  BOOST_TEST(u.host == "::1");
  BOOST_TEST(u.port == 5683);
  BOOST_TEST(u.path == strings({"x"}), boost::test_tools::per_element());
  BOOST_TEST(to_string(u) == "coap://[::1]/x");

  u = parse_ok("coap://[2001:db8::1]/");
  BOOST_TEST(u.host == "2001:db8::1");
  BOOST_TEST(u.path.empty());
  BOOST_TEST(to_string(u) == "coap://[2001:db8::1]/");

  // RFC 5952 form: lowercase, zeros compressed.
  u = parse_ok("coaps://[2001:DB8:0:0:0:0:0:1]:61616/a?b");
  BOOST_TEST(u.host == "2001:db8::1");
  BOOST_TEST(to_string(u) == "coaps://[2001:db8::1]:61616/a?b");

  BOOST_TEST(parse_error("coap://[::1/") == coap::error::invalid_uri);
  BOOST_TEST(parse_error("coap://[::g]/") == coap::error::invalid_uri);
  BOOST_TEST(parse_error("coap://[v1.x]/") == coap::error::invalid_uri);  // IPvFuture
}

BOOST_AUTO_TEST_CASE(ipv4_and_names) {
  auto u = parse_ok("coap://192.0.2.1:61616/a");
  BOOST_TEST((u.host_kind == coap::host_kind::ipv4));
  BOOST_TEST(u.host == "192.0.2.1");
  BOOST_TEST(to_string(u) == "coap://192.0.2.1:61616/a");
  // Not a dec-octet: a name.
  BOOST_TEST((parse_ok("coap://192.0.2.300/").host_kind == coap::host_kind::name));
  // Percent-encoded, it is still an address once normalized.
  BOOST_TEST((parse_ok("coap://%31%39%32.0.2.1/") == parse_ok("coap://192.0.2.1/")));
  // Names: decoded, lowercased; written back encoded.
  u = parse_ok("coap://Ex%41mple%20Host.NET/");
  BOOST_TEST(u.host == "example host.net");
  BOOST_TEST(to_string(u) == "coap://example%20host.net/");
  u = parse_ok("coap://%C3%A9x.example/");
  BOOST_TEST(u.host == "\xC3\xA9x.example");
  BOOST_TEST(to_string(u) == "coap://%C3%A9x.example/");
}

BOOST_AUTO_TEST_CASE(paths) {
  BOOST_TEST(parse_ok("coap://h").path.empty());
  BOOST_TEST(parse_ok("coap://h/").path.empty());
  BOOST_TEST(parse_ok("coap://h/a/").path == strings({"a", ""}), boost::test_tools::per_element());
  BOOST_TEST(parse_ok("coap://h//a").path == strings({"", "a"}), boost::test_tools::per_element());
  BOOST_TEST(parse_ok("coap://h/.well-known/core").path == strings({".well-known", "core"}),
             boost::test_tools::per_element());
  // Step 2 resolves the reference: literal dot segments go, encoded dots stay.
  BOOST_TEST(parse_ok("coap://h/a/./b/../c").path == strings({"a", "c"}), boost::test_tools::per_element());
  BOOST_TEST(parse_ok("coap://h/a/b/..").path == strings({"a", ""}), boost::test_tools::per_element());
  BOOST_TEST(parse_ok("coap://h/a/..").path.empty());
  BOOST_TEST(parse_ok("coap://h/../..").path.empty());
  BOOST_TEST(parse_ok("coap://h/%2E/%2E%2E").path == strings({".", ".."}), boost::test_tools::per_element());
  BOOST_TEST(to_string(parse_ok("coap://h/%2E/%2e%2e/.a")) == "coap://h/%2E/%2E%2E/.a");
}

BOOST_AUTO_TEST_CASE(percent_encoding_round_trip) {
  const auto u = parse_ok("coap://h/a%20b/c%2Fd/%C3%A9t%C3%A9/%7E%41");
  BOOST_TEST(u.path == strings({"a b", "c/d", "\xC3\xA9t\xC3\xA9", "~A"}), boost::test_tools::per_element());
  BOOST_TEST(to_string(u) == "coap://h/a%20b/c%2Fd/%C3%A9t%C3%A9/~A");
  BOOST_TEST((parse_ok(to_string(u)) == u));

  coap::uri built;
  built.host = "example.com";
  built.path = {"with space", "slash/inside", "q?mark", "hash#", "100%", "sub!$&'()*+,;=:@", "\xE2\x82\xAC"};
  built.query = {"a=b&c", "x/y?z", "#", ""};
  const auto text = to_string(built);
  BOOST_TEST(text ==
             "coap://example.com/with%20space/slash%2Finside/q%3Fmark/hash%23/100%25/sub!$&'()*+,;=:@/%E2%82%AC"
             "?a=b%26c&x/y?z&%23&");
  BOOST_TEST((parse_ok(text) == built));
}

BOOST_AUTO_TEST_CASE(query_items) {
  auto u = parse_ok("coap://h/p?a=1&b=%26&&c+d&e%3Df");
  BOOST_TEST(u.query == strings({"a=1", "b=&", "", "c+d", "e=f"}), boost::test_tools::per_element());
  BOOST_TEST(to_string(u) == "coap://h/p?a=1&b=%26&&c+d&e=f");
  BOOST_TEST(parse_ok("coap://h?").query.empty());
  BOOST_TEST(parse_ok("coap://h/?&").query == strings({"", ""}), boost::test_tools::per_element());
  BOOST_TEST(parse_ok("coap://h/?rt=temperature").query == strings({"rt=temperature"}),
             boost::test_tools::per_element());
  BOOST_TEST(parse_ok("coap://h?a/b?c").query == strings({"a/b?c"}), boost::test_tools::per_element());
  BOOST_TEST(parse_ok("coap://h?a").path.empty());
  BOOST_TEST(to_string(parse_ok("coap://h?a")) == "coap://h/?a");
}

BOOST_AUTO_TEST_CASE(ports) {
  BOOST_TEST(parse_ok("coap://h:65535/").port == 65535);
  BOOST_TEST(parse_ok("coap://h:0/").port == 0);
  BOOST_TEST(parse_ok("coap://h:0005683/").port == 5683);
  BOOST_TEST(parse_error("coap://h:65536/") == coap::error::invalid_port);
  BOOST_TEST(parse_error("coap://h:99999999999999999999999/") == coap::error::invalid_port);
  BOOST_TEST(parse_error("coap://[::1]:100000") == coap::error::invalid_port);
  BOOST_TEST(to_string(parse_ok("coap://h:65535")) == "coap://h:65535/");
  BOOST_TEST(to_string(parse_ok("coap://h:0")) == "coap://h:0/");
  BOOST_TEST(parse_error("coap://h:-1/") == coap::error::invalid_uri);
  BOOST_TEST(parse_error("coap://h:8a/") == coap::error::invalid_uri);
  BOOST_TEST(parse_error("coap://h:1:2/") == coap::error::invalid_uri);
  BOOST_TEST(parse_error("coap://[::1]:80x") == coap::error::invalid_uri);
}

BOOST_AUTO_TEST_CASE(errors) {
  using coap::error;
  BOOST_TEST(parse_error("") == error::invalid_uri);
  BOOST_TEST(parse_error("/relative/path") == error::invalid_uri);
  BOOST_TEST(parse_error("//h/x") == error::invalid_uri);
  BOOST_TEST(parse_error("coap:x") == error::invalid_uri);       // no authority
  BOOST_TEST(parse_error("coap:/x") == error::invalid_uri);
  BOOST_TEST(parse_error("coap:///x") == error::invalid_uri);    // empty host
  BOOST_TEST(parse_error("coap://user@h/") == error::invalid_uri);
  BOOST_TEST(parse_error("coap://h/a b") == error::invalid_uri);
  BOOST_TEST(parse_error("coap://h/%zz") == error::invalid_uri);
  BOOST_TEST(parse_error("coap://h/%4") == error::invalid_uri);
  BOOST_TEST(parse_error("coap://h/\xC3\xA9") == error::invalid_uri);
  BOOST_TEST(parse_error(std::string_view("coap://h/\0", 10)) == error::invalid_uri);
  BOOST_TEST(parse_error("http://h/") == error::unsupported_scheme);
  BOOST_TEST(parse_error("coap+udp://h/") == error::unsupported_scheme);
  BOOST_TEST(parse_error("urn:x") == error::unsupported_scheme);
  BOOST_TEST(parse_error("coap://h/#f") == error::uri_has_fragment);
  BOOST_TEST(parse_error("coap://h#") == error::uri_has_fragment);
  BOOST_TEST(parse_error("coap://h:65536/") == error::invalid_port);
  // One character after the scheme (Boost.URL 1.81 asserts on some of these).
  BOOST_TEST(parse_error("coap:#") == error::uri_has_fragment);
  BOOST_TEST(parse_error("coap:?") == error::invalid_uri);
  BOOST_TEST(parse_error("coap:/") == error::invalid_uri);
  BOOST_TEST(parse_error("coap:[") == error::invalid_uri);
  BOOST_TEST(parse_error("coap:%") == error::invalid_uri);
  BOOST_TEST(parse_error("http:#") == error::unsupported_scheme);
  BOOST_TEST(parse_error("c+.-:?") == error::unsupported_scheme);
  // Section 6.4's order: scheme (step 3) before fragment (step 4) before port (step 6).
  BOOST_TEST(parse_error("http://h:70000/#f") == error::unsupported_scheme);
  BOOST_TEST(parse_error("coap://h:70000/#f") == error::uri_has_fragment);
}

BOOST_AUTO_TEST_CASE(text_round_trips) {
  for (const char* text : {
           "coap://example.com/",
           "coaps://example.com:61616/.well-known/core?rt=temperature-c",
           "coap+tcp://[fe80::1]:1/a/b/c",
           "coaps+tcp://10.0.0.1/?x&y",
           "coap://h/a%2Fb/%20/",
           "coap://h//",
           "coap://h/?%26",
       }) {
    const auto u = parse_ok(text);
    BOOST_TEST(to_string(u) == text);
    BOOST_TEST((parse_ok(to_string(u)) == u));
  }
}

// Section 6.4 then 6.5, through the test's minimal message model.
BOOST_AUTO_TEST_CASE(options_with_a_minimal_message) {
  const auto u = parse_ok("coap://example.net:61616/.well-known/core?rt=a%20b&if=c");

  fake_message m;
  coap::add_uri_options(m, u, /*include_host=*/true);
  const std::vector<std::pair<std::uint16_t, std::string>> expected = {
      {uri_host, "example.net"}, {uri_path, ".well-known"}, {uri_path, "core"},
      {uri_query, "rt=a b"},     {uri_query, "if=c"},
  };
  BOOST_TEST((dump(m) == expected));

  coap::uri back;
  BOOST_TEST_REQUIRE(!coap::uri_from_options(m, coap::scheme::coap, "192.0.2.1", 61616, back));
  BOOST_TEST((back == u));

  // Uri-Port only when asked (the destination port differs); two bytes, big-endian.
  fake_message with_port;
  coap::add_uri_options(with_port, u, false, /*include_port=*/true);
  BOOST_TEST_REQUIRE(with_port.stored.front().first == uri_port);
  BOOST_TEST((with_port.stored.front().second == std::vector<std::uint8_t>{0xf0, 0xb0}));
  BOOST_TEST_REQUIRE(!coap::uri_from_options(with_port, coap::scheme::coap, "example.net", 5683, back));
  BOOST_TEST((back == u));

  // No Uri-Host: the destination address is the host.
  fake_message bare;
  coap::add_uri_options(bare, u, false);
  BOOST_TEST_REQUIRE(!coap::uri_from_options(bare, coap::scheme::coaps, "192.0.2.1", 5684, back));
  BOOST_TEST((back.host_kind == coap::host_kind::ipv4));
  BOOST_TEST(to_string(back) == "coaps://192.0.2.1/.well-known/core?rt=a%20b&if=c");
  BOOST_TEST_REQUIRE(!coap::uri_from_options(bare, coap::scheme::coap, "FE80::1", 5683, back));
  BOOST_TEST(to_string(back) == "coap://[fe80::1]/.well-known/core?rt=a%20b&if=c");
  BOOST_TEST_REQUIRE(!coap::uri_from_options(bare, coap::scheme::coap, "[::1]", 1, back));
  BOOST_TEST(to_string(back) == "coap://[::1]:1/.well-known/core?rt=a%20b&if=c");
}

BOOST_AUTO_TEST_CASE(ipv6_uri_host_is_bracketed) {
  const auto u = parse_ok("coap://[2001:db8::1]/x");
  fake_message m;
  coap::add_uri_options(m, u, true);
  BOOST_TEST(dump(m).front().second == "[2001:db8::1]");
  coap::uri back;
  BOOST_TEST_REQUIRE(!coap::uri_from_options(m, coap::scheme::coap, "192.0.2.1", 5683, back));
  BOOST_TEST((back == u));
}

BOOST_AUTO_TEST_CASE(section_6_5_cases) {
  coap::uri out;
  // An empty resource name is "/".
  fake_message none;
  BOOST_TEST_REQUIRE(!coap::uri_from_options(none, coap::scheme::coap_tcp, "10.0.0.1", 5683, out));
  BOOST_TEST(to_string(out) == "coap+tcp://10.0.0.1/");
  // A Uri-Port equal to the default is not written.
  fake_message port;
  port.add_uint_option(uri_port, 5684);
  BOOST_TEST_REQUIRE(!coap::uri_from_options(port, coap::scheme::coaps, "h", 1, out));
  BOOST_TEST(to_string(out) == "coaps://h/");
  // A Uri-Port of 0 is the empty value.
  fake_message zero;
  zero.add_uint_option(uri_port, 0);
  BOOST_TEST_REQUIRE(!coap::uri_from_options(zero, coap::scheme::coap, "h", 1, out));
  BOOST_TEST(out.port == 0);
  // Option values are decoded text: section 6.5 percent-encodes them.
  fake_message text;
  text.add_string_option(uri_host, "Example.COM");
  text.add_string_option(uri_path, "a/b");
  text.add_string_option(uri_path, "");
  text.add_string_option(uri_query, "k=v&w");
  BOOST_TEST_REQUIRE(!coap::uri_from_options(text, coap::scheme::coap, "192.0.2.1", 5683, out));
  BOOST_TEST(to_string(out) == "coap://example.com/a%2Fb/?k=v%26w");
}

BOOST_AUTO_TEST_CASE(option_errors) {
  using coap::error;
  coap::uri out;
  const auto from = [&](const fake_message& m, std::string_view host = "192.0.2.1") {
    return coap::uri_from_options(m, coap::scheme::coap, host, 5683, out);
  };
  fake_message two_hosts;
  two_hosts.add_string_option(uri_host, "a");
  two_hosts.add_string_option(uri_host, "b");
  BOOST_TEST(from(two_hosts) == error::option_not_repeatable);
  fake_message two_ports;
  two_ports.add_uint_option(uri_port, 1);
  two_ports.add_uint_option(uri_port, 2);
  BOOST_TEST(from(two_ports) == error::option_not_repeatable);
  fake_message empty_host;
  empty_host.add_string_option(uri_host, "");
  BOOST_TEST(from(empty_host) == error::option_value_length);
  fake_message long_port;
  long_port.add_uint_option(uri_port, 65536);
  BOOST_TEST(from(long_port) == error::option_value_length);
  fake_message long_segment;
  long_segment.add_string_option(uri_path, std::string(256, 'a'));
  BOOST_TEST(from(long_segment) == error::option_value_length);
  fake_message long_query;
  long_query.add_string_option(uri_query, std::string(256, 'a'));
  BOOST_TEST(from(long_query) == error::option_value_length);
  fake_message max_segment;
  max_segment.add_string_option(uri_path, std::string(255, 'a'));
  BOOST_TEST(!from(max_segment));
  fake_message bad_literal;
  bad_literal.add_string_option(uri_host, "[::g]");
  BOOST_TEST(from(bad_literal) == error::invalid_uri);
  fake_message future;
  future.add_string_option(uri_host, "[v1.x]");
  BOOST_TEST(from(future) == error::invalid_uri);
  fake_message unclosed;
  unclosed.add_string_option(uri_host, "[::1");
  BOOST_TEST(from(unclosed) == error::invalid_uri);
  BOOST_TEST(from(fake_message{}, "") == error::invalid_uri);
  // Options other than Uri-* are ignored.
  fake_message other;
  other.add_uint_option(12, 0);
  other.add_string_option(35, "coap://elsewhere/");  // Proxy-Uri: not this function's
  BOOST_TEST(!from(other));
  BOOST_TEST(out.host == "192.0.2.1");
}

BOOST_AUTO_TEST_CASE(options_with_coap_message) {
  const auto u = parse_ok("coaps+tcp://sensor.example:7000/a%20b/c?d=%26");
  coap::message m(coap::method::get);
  coap::add_uri_options(m, u, true, true);
  BOOST_TEST(m.count(uri_path) == 2u);
  BOOST_TEST(m.find(uri_port)->as_uint() == 7000u);
  coap::uri back;
  BOOST_TEST_REQUIRE(!coap::uri_from_options(m, coap::scheme::coaps_tcp, "10.0.0.1", 5684, back));
  BOOST_TEST((back == u));
  BOOST_TEST(to_string(back) == "coaps+tcp://sensor.example:7000/a%20b/c?d=%26");
}

// Whatever parses, writes back to the same URI; nothing crashes (run under sanitizers).
BOOST_AUTO_TEST_CASE(generated_inputs) {
  static constexpr std::string_view alphabet = "coap:/[]%2F@?&#.:0159aAfx ~+-_!$'()*,;=\xC3\xA9";
  static constexpr std::string_view prefixes[] = {"", "coap://", "coaps+tcp://", "coap://[", "coap://h:"};
  std::uint32_t state = 12345;
  const auto next = [&] {
    state = state * 1103515245u + 12345u;
    return state >> 8;
  };
  std::size_t parsed = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string text(prefixes[next() % std::size(prefixes)]);
    const auto length = next() % 24;
    for (std::uint32_t j = 0; j < length; ++j) text += alphabet[next() % alphabet.size()];
    coap::uri u;
    if (coap::parse_uri(text, u)) continue;
    ++parsed;
    const auto written = to_string(u);
    coap::uri again;
    BOOST_TEST_REQUIRE(!coap::parse_uri(written, again), text << " -> " << written);
    BOOST_TEST_REQUIRE((again == u), text << " -> " << written);
    fake_message m;
    coap::add_uri_options(m, u, true, true);
    BOOST_TEST_REQUIRE(!coap::uri_from_options(m, u.scheme, "0.0.0.0", 0, again), text);
    BOOST_TEST_REQUIRE((again == u), text);
  }
  BOOST_TEST(parsed > 1000u);
}
