// RFC 6690 section 2 and 4.1: writing, parsing and filtering the CoRE Link Format.
#include <coap/link_format.hpp>

#define BOOST_TEST_MODULE link_format
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace coap {
// Boost.Test prints the operands of a failed assertion.
inline std::ostream& boost_test_print_type(std::ostream& os, error e) { return os << make_error_code(e).message(); }
}  // namespace coap

namespace {

std::vector<coap::link> parse_ok(std::string_view text) {
  std::vector<coap::link> links;
  const auto ec = coap::parse_link_format(text, links);
  BOOST_TEST_REQUIRE(!ec, text << ": " << ec.message());
  return links;
}

std::error_code parse_error(std::string_view text) {
  std::vector<coap::link> links;
  return coap::parse_link_format(text, links);
}

}  // namespace

BOOST_AUTO_TEST_CASE(writing) {
  const std::vector<coap::link> links = {
      {"/sensors/temp", {{"rt", "temperature-c"}, {"if", "sensor"}, {"ct", "0"}, {"obs", std::nullopt}}},
      {"/x", {}},
  };
  BOOST_TEST(coap::write_link_format(links) == R"(</sensors/temp>;rt="temperature-c";if="sensor";ct=0;obs,</x>)");
  BOOST_TEST(coap::write_link_format({}) == "");
  // Not a ptoken: quoted and escaped.
  const std::vector<coap::link> odd = {{"/a", {{"ct", "40 41"}, {"x", ""}, {"q", "a\"b\\c,d;e"}, {"t", "\x01"}}}};
  BOOST_TEST(coap::write_link_format(odd) == "</a>;ct=\"40 41\";x=\"\";q=\"a\\\"b\\\\c,d;e\";t=\"\\\x01\"");
}

BOOST_AUTO_TEST_CASE(streaming_writer) {
  std::string out;
  coap::link_format_writer w(out);
  w.target("/.well-known/core").attribute("ct", 40);
  w.target("/time").attribute("rt", "ticks").attribute("title", "Clock").attribute("sz", std::uint32_t{4294967295u});
  w.target("/obs").attribute("obs");
  BOOST_TEST(out == R"(</.well-known/core>;ct=40,</time>;rt="ticks";title="Clock";sz=4294967295,</obs>;obs)");
  // A second writer continues the list.
  coap::link_format_writer(out).target("/more");
  BOOST_TEST(out.ends_with(";obs,</more>"));
}

// RFC 6690 section 5's examples (line breaks removed, as on the wire).
BOOST_AUTO_TEST_CASE(rfc6690_examples) {
  auto links = parse_ok(R"(</sensors/temp>;if="sensor",</sensors/light>;if="sensor")");
  BOOST_TEST_REQUIRE(links.size() == 2u);
  BOOST_TEST(links[0].target == "/sensors/temp");
  BOOST_TEST(links[1].target == "/sensors/light");
  BOOST_TEST(*links[1].find("if")->value == "sensor");

  links = parse_ok(R"(</sensors>;ct=40;title="Sensor Index",</sensors/temp>;rt="temperature-c";if="sensor",)"
                   R"(</sensors/light>;rt="light-lux";if="sensor",)"
                   R"(<http://www.example.com/sensors/t123>;anchor="/sensors/temp";rel="describedby",)"
                   R"(</t>;anchor="/sensors/temp";rel="alternate")");
  BOOST_TEST_REQUIRE(links.size() == 5u);
  BOOST_TEST(*links[0].find("title")->value == "Sensor Index");
  BOOST_TEST(*links[0].find("ct")->value == "40");
  BOOST_TEST(links[3].target == "http://www.example.com/sensors/t123");
  BOOST_TEST(*links[3].find("anchor")->value == "/sensors/temp");
  BOOST_TEST(*links[4].find("REL")->value == "alternate");

  links = parse_ok(R"(<coap://[2001:db8:3::123]:61616/>;anchor="/sensors/temp";rel="describedby")");
  BOOST_TEST(links[0].target == "coap://[2001:db8:3::123]:61616/");

  // title* is an ext-value (RFC 5987), unquoted.
  links = parse_ok(R"(</a>;title*=UTF-8'de'n%c3%a4chstes)");
  BOOST_TEST(links[0].attributes[0].name == "title*");
  BOOST_TEST(*links[0].attributes[0].value == "UTF-8'de'n%c3%a4chstes");
}

// What libcoap writes for its example server.
BOOST_AUTO_TEST_CASE(libcoap_output) {
  const auto links =
      parse_ok(R"(</>;title="General Info";ct=0,</time>;if="clock";rt="ticks";title="Internal Clock";ct=0;obs,)"
               R"(</async>;ct=0,</example_data>;title="Example Data";ct=0;obs)");
  BOOST_TEST_REQUIRE(links.size() == 4u);
  BOOST_TEST(links[1].attributes.size() == 5u);
  BOOST_TEST((links[1].attributes.back() == coap::link_attribute{"obs", std::nullopt}));
  BOOST_TEST((links[3].attributes.back() == coap::link_attribute{"obs", std::nullopt}));
}

// One character after a scheme (Boost.URL 1.81 asserts on some of these).
BOOST_AUTO_TEST_CASE(short_targets) {
  BOOST_TEST(parse_ok("<co:#>,<co:?>,<co:x>,<co:/>,<>,<#>,<?>")[0].target == "co:#");
  BOOST_TEST(parse_error("<co:[>") == coap::error::invalid_link_format);
  BOOST_TEST(parse_error("<co:%>") == coap::error::invalid_link_format);
}

BOOST_AUTO_TEST_CASE(quoted_strings) {
  auto links = parse_ok(R"(</a>;t="x\"y\\z\,";e="";u="caf)"
                        "\xC3\xA9"
                        R"(";h="a	b")");
  BOOST_TEST(*links[0].attributes[0].value == "x\"y\\z,");
  BOOST_TEST(*links[0].attributes[1].value == "");
  BOOST_TEST(*links[0].attributes[2].value == "caf\xC3\xA9");
  BOOST_TEST(*links[0].attributes[3].value == "a\tb");
  // ptoken characters: everything visible but '"', ',', ';' and '\'.
  links = parse_ok(R"(</a>;p=!#$%&'()*+-./09:<=>?@AZ[]^_`az{|}~)");
  BOOST_TEST(*links[0].attributes[0].value == "!#$%&'()*+-./09:<=>?@AZ[]^_`az{|}~");
}

BOOST_AUTO_TEST_CASE(round_trip) {
  const std::vector<coap::link> links = {
      {"/sensors/temp", {{"rt", "temperature-c"}, {"if", "sensor"}, {"ct", "0"}, {"obs", std::nullopt}}},
      {"coap://[::1]/x?y=1", {{"title", "A \"quoted\" \\ title, with; separators"}, {"sz", "1234"}}},
      {"", {{"anchor", "/"}, {"rel", "a b"}, {"empty", ""}, {"ctl", "\r\n\x7f"}}},
      {"/%20", {}},
  };
  const auto text = coap::write_link_format(links);
  BOOST_TEST((parse_ok(text) == links));
  BOOST_TEST(coap::write_link_format(parse_ok(text)) == text);
}

BOOST_AUTO_TEST_CASE(empty_and_appending) {
  BOOST_TEST(parse_ok("").empty());
  std::vector<coap::link> links(1);
  BOOST_TEST(!coap::parse_link_format("</a>", links));
  BOOST_TEST(links.size() == 2u);  // appended
}

BOOST_AUTO_TEST_CASE(malformed) {
  for (std::string_view text : {
           "<",                       // unterminated <
           "</a",                     // unterminated <
           "/a",                      // no <
           "</a>,",                   // trailing comma
           ",</a>",                   // leading comma
           "</a>,,</b>",              // empty link-value
           "</a>;",                   // empty param
           "</a>;=x",                 // empty param name
           "</a>;a=",                 // empty ptoken
           "</a>;a=\"x",              // unterminated quote
           "</a>;a=\"x\\",            // escape at the end
           "</a>;a=\"x\"y",           // junk after the quoted string
           "</a>;a=x\"",              // quote inside a ptoken
           "</a>;a b",                // space
           "</a> ;a",                 // whitespace is not in the grammar
           "</a>, </b>",
           "</a>;a*",                 // ext-name-star needs a value
           "</a>;a*=\"x\"",           // and an ext-value is not quoted
           "</a>;a=\"\x01\"",         // control character in qdtext
           "</a>;a=\"\\\xC3\xA9\"",   // quoted-pair is ASCII only
           "</a b>",                  // not a URI-reference
           "</%zz>",
           "<#a#b>",
           "<//h:80x>",               // a port followed by junk
           "</a>x",
           "</a>;a=b;c=d,x",
       }) {
    BOOST_TEST(parse_error(text) == coap::error::invalid_link_format, text);
  }
}

BOOST_AUTO_TEST_CASE(query_filter) {
  const auto links = parse_ok(R"(</sensors/temp>;rt="temperature-c sensor";if="sensor";ct=0;obs,</sensors/light>;rt="light-lux",</x>)");
  const auto matching = [&](std::string_view query) {
    std::string names;
    for (const auto& l : links)
      if (coap::link_matches(l, query)) names += l.target + " ";
    return names;
  };
  BOOST_TEST(matching("rt=temperature-c") == "/sensors/temp ");
  BOOST_TEST(matching("rt=sensor") == "/sensors/temp ");  // one of the space-separated values
  BOOST_TEST(matching("rt=temperature-c sensor") == "/sensors/temp ");
  BOOST_TEST(matching("rt=temp") == "");
  BOOST_TEST(matching("rt=temp*") == "/sensors/temp ");
  BOOST_TEST(matching("rt=l*") == "/sensors/light ");
  BOOST_TEST(matching("rt=*") == "/sensors/temp /sensors/light ");
  BOOST_TEST(matching("RT=light-lux") == "/sensors/light ");
  BOOST_TEST(matching("href=/sensors/light") == "/sensors/light ");
  BOOST_TEST(matching("href=/sensors*") == "/sensors/temp /sensors/light ");
  BOOST_TEST(matching("href=*") == "/sensors/temp /sensors/light /x ");
  BOOST_TEST(matching("href=/sensors") == "");
  BOOST_TEST(matching("ct=0") == "/sensors/temp ");
  BOOST_TEST(matching("ct=") == "");
  BOOST_TEST(matching("obs") == "/sensors/temp ");
  BOOST_TEST(matching("obs=") == "/sensors/temp ");  // a valueless attribute has the value ""
  BOOST_TEST(matching("obs=*") == "/sensors/temp ");
  BOOST_TEST(matching("if=sensor") == "/sensors/temp ");
  BOOST_TEST(matching("title=x") == "");
  BOOST_TEST(matching("") == "");
}

// Whatever parses, writes back to text that parses the same; nothing crashes (sanitizers).
BOOST_AUTO_TEST_CASE(generated_inputs) {
  static constexpr std::string_view pieces[] = {
      "<", ">", "</a>", "</b/c?d>", ";", ",", "=", "\"", "\\", "rt", "ct", "obs", "title*", "x",
      "0", " ", "%", "%41", "#", "'", "*", "\x01", "\xC3\xA9", "<coap://[::1]/>", "\"q\\\"\"",
  };
  std::uint32_t state = 777;
  const auto next = [&] {
    state = state * 1103515245u + 12345u;
    return state >> 8;
  };
  std::size_t parsed = 0;
  for (int i = 0; i < 50000; ++i) {
    std::string text;
    const auto length = next() % 12;
    for (std::uint32_t j = 0; j < length; ++j) text += pieces[next() % std::size(pieces)];
    std::vector<coap::link> links;
    if (coap::parse_link_format(text, links)) continue;
    ++parsed;
    const auto written = coap::write_link_format(links);
    std::vector<coap::link> again;
    BOOST_TEST_REQUIRE(!coap::parse_link_format(written, again), text << " -> " << written);
    BOOST_TEST_REQUIRE((again == links), text << " -> " << written);
    for (const auto& l : links) {
      (void)coap::link_matches(l, text);
      for (const auto& a : l.attributes) (void)coap::link_matches(l, a.name + "=" + a.value.value_or("") + "*");
    }
  }
  BOOST_TEST(parsed > 500u);
}
