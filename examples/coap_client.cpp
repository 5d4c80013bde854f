// coap-client: one CoAP request, or an observation (RFC 7641, -s), from the command line, with
// libcoap's coap-client flags where the two overlap (RFC 7252 section 6.4 turns the URI into
// Uri-* options; -b is RFC 7959's block size). Output follows libcoap 4.3.1: 2.xx payloads go
// to stdout or the -o file, a 4.xx/5.xx code and its diagnostic payload to stderr. See
// examples/README.md.
#include <coap/block.hpp>
#include <coap/content_format.hpp>
#include <coap/message.hpp>
#include <coap/multicast.hpp>
#include <coap/security/pki.hpp>
#include <coap/security/psk.hpp>
#include <coap/session.hpp>
#include <coap/transports/tcp.hpp>
#include <coap/transports/udp.hpp>
#include <coap/uri.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/program_options.hpp>

#include "oscore_files.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <exception>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace {

namespace asio = boost::asio;
namespace po = boost::program_options;

// libcoap's coap-client: -v 7 and above show the PDUs exchanged.
constexpr int debug_level = 7;
constexpr int default_wait_seconds = 90;  // libcoap's -B default

// -b [num,]size: the block size, and the block the download starts at (libcoap's meaning:
// a NUM above 0 asks for that one block only).
struct block_spec {
  std::uint32_t num = 0;
  std::uint8_t szx = coap::max_szx;
};

// What the command line asks for.
struct request_spec {
  coap::method method = coap::method::get;
  coap::message_type type = coap::message_type::confirmable;
  std::optional<std::string> payload;
  std::optional<coap::content_format> format;
  std::optional<coap::token> token;
  std::chrono::seconds wait{default_wait_seconds};
  std::optional<std::chrono::seconds> observe;  // -s
  std::optional<block_spec> block;              // -b
  std::optional<std::string> output;            // -o
  bool newline_each = false;                    // -w
  int verbosity = 3;
  // -P: the request goes to this proxy with Proxy-Uri = the URI (RFC 7252 section 5.7.2).
  std::optional<std::string> proxy_uri;
  // -O num,text: options added as given (No-Response, Echo, any number).
  std::vector<std::pair<std::uint16_t, std::vector<std::uint8_t>>> extra_options;
};

// libcoap's security flags: -u/-k (PSK), -c/-j/-C/-R/-n (certificates), -E (OSCORE).
struct security_spec {
  std::optional<std::string> identity, key;
  std::optional<std::string> oscore;  // -E conf_file[,seq_file]
  std::optional<std::string> cert, private_key, ca, roots;
  bool no_verify = false;
  bool psk() const { return identity || key; }
};

// The outcome for main: the process exit status.
enum exit_status : int { success = 0, failure = 1 };

std::optional<coap::method> method_from_name(std::string_view s) {
  static constexpr std::pair<std::string_view, coap::method> table[] = {
      {"get", coap::method::get},       {"post", coap::method::post},
      {"put", coap::method::put},       {"delete", coap::method::delete_},
      {"fetch", coap::method::fetch},   {"patch", coap::method::patch},
      {"ipatch", coap::method::ipatch},
  };
  for (const auto& [name, m] : table)
    if (name == s) return m;
  return std::nullopt;
}

// -t: a registered number, or one of the short names libcoap accepts.
std::optional<coap::content_format> parse_content_format(std::string_view s) {
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec == std::errc() && end == s.data() + s.size() && value <= 0xffff)
    return static_cast<coap::content_format>(value);
  return coap::content_format_from_name(s);
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// -e: libcoap decodes %XX so that any byte can be given on the command line.
std::string percent_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex_digit(s[i + 1]) >= 0 && hex_digit(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_digit(s[i + 1]) * 16 + hex_digit(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// -T: libcoap takes the text's bytes as the token; "0x" followed by hex digits gives binary
// bytes instead (libcoap's -O convention).
std::optional<coap::token> parse_token(std::string_view s) {
  std::vector<std::uint8_t> bytes;
  if (s.size() > 2 && s.substr(0, 2) == "0x") {
    s.remove_prefix(2);
    if (s.size() % 2) return std::nullopt;
    for (std::size_t i = 0; i < s.size(); i += 2) {
      const int hi = hex_digit(s[i]), lo = hex_digit(s[i + 1]);
      if (hi < 0 || lo < 0) return std::nullopt;
      bytes.push_back(static_cast<std::uint8_t>(hi * 16 + lo));
    }
  } else {
    bytes.assign(s.begin(), s.end());
  }
  coap::token t;
  if (!t.assign(bytes)) return std::nullopt;
  return t;
}

// -O num,text as libcoap's: the option number, then the value's bytes as text, or "0x" and hex
// digits for binary bytes ("-O 258,0x1a": No-Response, RFC 7967).
std::optional<std::pair<std::uint16_t, std::vector<std::uint8_t>>> parse_option(std::string_view s) {
  const auto comma = s.find(',');
  if (comma == std::string_view::npos) return std::nullopt;
  unsigned number = 0;
  const auto digits = s.substr(0, comma);
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), number);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() || number > 0xffff) return std::nullopt;
  s.remove_prefix(comma + 1);
  std::vector<std::uint8_t> value;
  if (s.size() >= 2 && s.substr(0, 2) == "0x") {
    s.remove_prefix(2);
    if (s.size() % 2) return std::nullopt;
    for (std::size_t i = 0; i < s.size(); i += 2) {
      const int hi = hex_digit(s[i]), lo = hex_digit(s[i + 1]);
      if (hi < 0 || lo < 0) return std::nullopt;
      value.push_back(static_cast<std::uint8_t>(hi * 16 + lo));
    }
  } else {
    value.assign(s.begin(), s.end());
  }
  return std::pair{static_cast<std::uint16_t>(number), std::move(value)};
}

// -b [num,]size: size a power of two from 16 to 1024, num below 2^20 (RFC 7959 section 2.2).
std::optional<block_spec> parse_block(std::string_view s) {
  auto number = [](std::string_view digits, std::uint32_t& out) {
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), out);
    return !digits.empty() && ec == std::errc() && end == digits.data() + digits.size();
  };
  block_spec b;
  if (const auto comma = s.find(','); comma != std::string_view::npos) {
    if (!number(s.substr(0, comma), b.num) || b.num > coap::max_block_num) return std::nullopt;
    s.remove_prefix(comma + 1);
  }
  std::uint32_t size = 0;
  if (!number(s, size) || size < 16 || size > 1024 || (size & (size - 1)) != 0) return std::nullopt;
  b.szx = coap::szx_for_size(size);
  return b;
}

bool read_file(const std::string& path, std::string& out) {
  if (path == "-") {
    out.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    return !std::cin.bad();
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  out.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return !in.bad();
}

// A one-line summary in the manner of libcoap's coap_show_pdu:
// "v:1 t:CON c:GET i:1234 {0a1b} [ Uri-Path:time ] :: 'payload'".
std::string summary(const coap::message& m, bool with_message_id) {
  static constexpr std::string_view types[] = {"CON", "NON", "ACK", "RST"};
  std::ostringstream out;
  out << "v:1 t:" << types[static_cast<unsigned>(m.type()) & 3u] << " c:";
  if (m.code().is_request())
    out << coap::name(m.code());
  else
    out << coap::to_string(m.code()).substr(0, 4);
  if (with_message_id) {
    char id[8];
    std::snprintf(id, sizeof id, "%04x", m.message_id());
    out << " i:" << id;
  }
  auto hex = [&](std::span<const std::uint8_t> bytes) {
    for (auto b : bytes) {
      char two[3];
      std::snprintf(two, sizeof two, "%02x", b);
      out << two;
    }
  };
  out << " {";
  hex(m.token());
  out << "} [";
  bool first = true;
  for (coap::option_view o : m.options()) {
    out << (first ? " " : ", ");
    first = false;
    const coap::option_definition* def = coap::find_option(o.number());
    if (def)
      out << def->name << ':';
    else
      out << o.number() << ':';
    // Block1/Block2 as libcoap shows them: NUM/M/size ("2/M/64", "3/_/64").
    if (o.number() == static_cast<std::uint16_t>(coap::option_number::block1) ||
        o.number() == static_cast<std::uint16_t>(coap::option_number::block2)) {
      coap::block_value b;
      if (!coap::decode_block(o.value(), b)) {
        out << b.num << '/' << (b.more ? 'M' : '_') << '/' << b.size();
        continue;
      }
    }
    if (o.number() == static_cast<std::uint16_t>(coap::option_number::content_format)) {
      const auto media = coap::media_type(static_cast<coap::content_format>(o.as_uint()));
      if (!media.empty()) {
        out << media;
        continue;
      }
    }
    if (!def || def->format == coap::option_format::opaque) {
      out << "0x";
      hex(o.value());
    } else if (def->format == coap::option_format::uint) {
      out << o.as_uint();
    } else {
      out << o.as_string();
    }
  }
  out << " ]";
  if (!m.payload().empty()) {
    const auto p = m.payload_string();
    const bool printable = std::all_of(p.begin(), p.end(), [](char c) {
      return std::isprint(static_cast<unsigned char>(c)) || c == '\n' || c == '\r' || c == '\t';
    });
    out << " :: ";
    if (printable) {
      out << '\'' << p << '\'';
    } else {
      out << "binary data length " << p.size() << " <<";
      hex(m.payload());
      out << ">>";
    }
  }
  return out.str();
}

// Where 2.xx payloads go, as libcoap 4.3.1's coap-client writes them: to stdout, or to the -o
// file ('-': stdout), opened at the first byte so that an empty answer leaves no file; -w
// appends a newline to each payload. Without -o, one newline ends the output once something
// was written.
class body_output {
 public:
  body_output(std::optional<std::string> path, bool newline_each)
      : path_(std::move(path)), newline_each_(newline_each) {}
  body_output(const body_output&) = delete;
  body_output& operator=(const body_output&) = delete;
  ~body_output() {
    if (file_ && file_ != stdout) std::fclose(file_);
  }

  // False (with a message on stderr) when the file cannot be opened or written.
  bool write(std::span<const std::uint8_t> payload) {
    if (payload.empty()) return true;
    if (!file_ && !open()) return false;
    bool ok = std::fwrite(payload.data(), 1, payload.size(), file_) == payload.size();
    if (newline_each_) ok = ok && std::fputc('\n', file_) != EOF;
    return flush(ok);
  }
  bool close() {
    if (!file_) return true;
    bool ok = true;
    if (!path_) ok = std::fputc('\n', file_) != EOF;
    ok = flush(ok);
    if (file_ != stdout && std::fclose(file_) != 0) ok = report();
    file_ = nullptr;
    return ok;
  }

 private:
  bool open() {
    if (!path_ || *path_ == "-") {
      file_ = stdout;
      return true;
    }
    file_ = std::fopen(path_->c_str(), "wb");
    return file_ || report();
  }
  bool flush(bool ok) { return (std::fflush(file_) == 0 && ok) || report(); }
  bool report() {
    std::perror(("coap-client: " + path_.value_or("stdout")).c_str());
    return false;
  }

  std::optional<std::string> path_;
  bool newline_each_;
  std::FILE* file_ = nullptr;
};

// libcoap 4.3.1's coap-client output of one response: a 2.xx payload to `out`; "c.dd" and the
// diagnostic payload, unprintable bytes as '.', on stderr for 4.xx and 5.xx. Both count as
// success: the exchange completed.
exit_status print_response(const coap::message& response, body_output& out) {
  const coap::code c = response.code();
  if (c.code_class() == 2) {
    if (!out.write(response.payload())) return failure;
  } else if (c.code_class() >= 4) {
    char number[5] = {};
    coap::format_number(c, number);
    std::string line(number);
    if (!response.payload().empty()) {
      line += ' ';
      for (char ch : response.payload_string())
        line += std::isprint(static_cast<unsigned char>(ch)) ? ch : '.';
    }
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  return success;
}

template <class Session>
void trace_received(const request_spec& spec, Session& session, const coap::message& m) {
  if (spec.verbosity < debug_level) return;
  std::cerr << session.description() << ": received\n" << summary(m, true) << '\n';
}

template <class Session>
void trace_cipher_suite(const request_spec& spec, Session& session) {
  if constexpr (Session::security_type::secure)
    if (spec.verbosity >= debug_level)
      std::cerr << session.description() << ": cipher suite "
                << session.cipher_suite() << '\n';
}

// The -B deadline: closing the session fails what waits on it, and says why. The handler
// shares its flag: it may run after this object is gone (expired, but not run yet, when the
// answer came).
class deadline {
 public:
  template <class Session>
  deadline(asio::io_context& io, std::chrono::seconds wait, Session& session)
      : timer_(io, wait), wait_(wait), expired_(std::make_shared<bool>(false)) {
    timer_.async_wait([expired = expired_, &session](const boost::system::error_code& e) {
      if (e || !session) return;
      *expired = true;
      session.close();
    });
  }
  void cancel() { timer_.cancel(); }
  // The message for a failed wait.
  std::string explain(std::error_code e) const {
    if (*expired_) return "no response within " + std::to_string(wait_.count()) + " s";
    return e.message();
  }

 private:
  asio::steady_timer timer_;
  std::chrono::seconds wait_;
  std::shared_ptr<bool> expired_;
};

// One request: its response (the whole body, block-wise when it needs blocks) within -B.
template <class Session>
asio::awaitable<exit_status> request_once(asio::io_context& io, Session& session, coap::message request,
                                          const request_spec& spec, body_output& out) {
  deadline limit(io, spec.wait, session);
  auto [e, response] = co_await session.async_request(std::move(request), asio::as_tuple(asio::use_awaitable));
  limit.cancel();
  if (e) {
    std::cerr << "coap-client: " << limit.explain(e) << '\n';
    co_return failure;
  }
  trace_cipher_suite(spec, session);
  trace_received(spec, session, response);
  co_return print_response(response, out);
}

// -s: registers (the answer within -B), prints each notification for the duration, then
// deregisters (RFC 7641 section 3.6). An observation the server ends (a 4.xx, an answer
// without Observe) ends the run early, with success: the exchange completed.
template <class Session>
asio::awaitable<exit_status> observe_for(asio::io_context& io, Session& session, coap::message request,
                                         const request_spec& spec, body_output& out) {
  deadline limit(io, spec.wait, session);
  auto [e, obs] = co_await session.async_observe(std::move(request), asio::as_tuple(asio::use_awaitable));
  limit.cancel();
  if (e) {
    std::cerr << "coap-client: " << limit.explain(e) << '\n';
    co_return failure;
  }
  trace_cipher_suite(spec, session);
  // The handler keeps its own handle and flag: it may run after this frame is gone.
  auto done = std::make_shared<bool>(false);
  asio::steady_timer duration(io, *spec.observe);
  duration.async_wait([done, handle = obs](const boost::system::error_code& expired) mutable {
    if (expired) return;
    *done = true;
    handle.cancel();  // the pending async_next completes with operation_aborted
  });
  exit_status status = success;
  for (;;) {
    auto [next_error, m] = co_await obs.async_next(asio::as_tuple(asio::use_awaitable));
    if (next_error) {
      if (!*done && next_error != coap::error::not_observable) {
        std::cerr << "coap-client: observation ended: " << next_error.message() << '\n';
        status = failure;
      }
      break;
    }
    trace_received(spec, session, m);
    if (print_response(m, out) != success) {
      status = failure;
      break;
    }
  }
  duration.cancel();
  obs.cancel();  // no-op when it already ended
  co_return status;
}

// The request of -m, -e/-f, -t, -T, -b and the URI (or -P's Proxy-Uri).
coap::message make_request(const request_spec& spec, const coap::uri& u, std::uint64_t random) {
  coap::message request(spec.method, spec.type);
  // Section 5.3.1: the library picks a random token; ours is chosen here so that -v shows it.
  request.set_token(spec.token ? *spec.token : coap::token::from_uint(random, 8));
  // Section 6.4 step 5: a Uri-Host only for a name; the port is the destination's own.
  // With -P, the whole URI goes as Proxy-Uri and `u` is the proxy (section 5.10.2).
  if (spec.proxy_uri) request.add(coap::options::proxy_uri{}, *spec.proxy_uri);
  else coap::add_uri_options(request, u, u.host_kind == coap::host_kind::name);
  if (spec.format) request.set_content_format(*spec.format);
  // RFC 7959 section 2.4: as libcoap, a GET or FETCH says the block size it wants (NUM 0: the
  // whole body in such blocks) or the one block it wants (NUM above 0).
  if (spec.block && (spec.method == coap::method::get || spec.method == coap::method::fetch))
    request.add_uint_option(static_cast<std::uint16_t>(coap::option_number::block2),
                            coap::encode(coap::block_value{spec.block->num, false, spec.block->szx}));
  if (spec.payload) request.set_payload(std::string_view(*spec.payload));
  for (const auto& [number, value] : spec.extra_options) request.add_option(number, value);
  return request;
}

// Runs the request (or the observation) over Session (one transport and security).
// Everything transport-specific is the Session type.
template <class Session, class... SecurityConfig>
exit_status exchange(const request_spec& spec, const coap::uri& u, const security_spec& sec,
                     const SecurityConfig&... security) {
  using protocol = typename Session::transport_type::protocol_type;
  asio::io_context io;
  coap::context ctx(io.get_executor());
  if constexpr (std::is_same_v<typename Session::security_type, coap::pki>) {
    if (sec.roots)
      if (auto e = coap::security::set_pki_root_cas(ctx, *sec.roots)) {
        std::cerr << "coap-client: certificates: " << coap::security::pki_last_error(ctx) << '\n';
        return failure;
      }
  } else {
    (void)sec;
  }

  typename protocol::resolver resolver(io);
  boost::system::error_code bec;
  auto flags = protocol::resolver::numeric_service;
  if (u.host_kind != coap::host_kind::name) flags |= protocol::resolver::numeric_host;
  const auto results = resolver.resolve(u.host, std::to_string(u.port), flags, bec);
  if (bec || results.empty()) {
    std::cerr << "coap-client: cannot resolve " << u.host << ": "
              << (bec ? bec.message() : std::string("no address")) << '\n';
    return failure;
  }

  // -b: the block size of uploads (Block1) here, of downloads (Block2) in the request below.
  coap::session_config config = ctx.config().session;
  if (spec.block) config.block_szx = spec.block->szx;
  std::error_code ec;
  Session session = Session::create_client(ctx, results.begin()->endpoint(), config, security..., ec);
  if (ec) {
    if constexpr (std::is_same_v<typename Session::security_type, coap::pki>)
      if (ec == coap::error::invalid_credentials) {  // names the file and the reason
        std::cerr << "coap-client: certificates: " << coap::security::pki_last_error(ctx) << '\n';
        return failure;
      }
    std::cerr << "coap-client: cannot create a session to " << results.begin()->endpoint() << ": "
              << ec.message() << '\n';
    return failure;
  }

  coap::message request = make_request(spec, u, ctx.random());

  if (spec.verbosity >= debug_level)
    std::cerr << session.description() << ": sending\n" << summary(request, false) << '\n';

  body_output out(spec.output, spec.newline_each);
  exit_status status = failure;
  auto run = [&]() -> asio::awaitable<exit_status> {
    exit_status s;
    if (spec.observe)
      s = co_await observe_for(io, session, std::move(request), spec, out);
    else
      s = co_await request_once(io, session, std::move(request), spec, out);
    session.release();  // a deregistration (-s) already queued still goes out
    co_return s;
  };
  asio::co_spawn(io, run(), [&](std::exception_ptr e, exit_status s) {
    if (e) std::rethrow_exception(e);
    status = s;
  });
  io.run();
  if (!out.close()) status = failure;
  return status;
}

// RFC 7252 section 8.1, RFC 7390: a coap:// URI whose host is a multicast address. The request
// goes NON to the group (coap::async_group_request); every answer within -B is printed as it
// comes, after a line naming its source ("127.0.0.2:5683 2.05 Content"), the payload as for
// one server. An answer that is block 0 of a larger body is followed up unicast, as libcoap's
// client does: the whole body is fetched from that server with an ordinary session
// (section 8.2), then printed. No answer at all is a failure.
exit_status group_exchange(const request_spec& spec, const coap::uri& u) {
  asio::io_context io;
  coap::context ctx(io.get_executor());
  boost::system::error_code bec;
  const auto address = asio::ip::make_address(u.host, bec);
  if (bec) {
    std::cerr << "coap-client: " << u.host << ": " << bec.message() << '\n';
    return failure;
  }
  coap::message request = make_request(spec, u, ctx.random());
  if (spec.verbosity >= debug_level)
    std::cerr << "group " << u.host << ":" << u.port << ": sending\n" << summary(request, false) << '\n';
  body_output out(spec.output, spec.newline_each);
  exit_status status = success;
  std::size_t answers = 0;
  std::vector<std::shared_ptr<coap::session<coap::udp>>> follow_ups;
  auto print = [&](const asio::ip::udp::endpoint& from, const coap::message& m) {
    std::string source = from.address().is_v6() ? "[" + from.address().to_string() + "]" : from.address().to_string();
    std::printf("%s:%u %s\n", source.c_str(), static_cast<unsigned>(from.port()), coap::to_string(m.code()).c_str());
    std::fflush(stdout);
    if (print_response(m, out) != success) status = failure;
  };
  const bool safe = spec.method == coap::method::get || spec.method == coap::method::fetch;
  coap::async_group_request(
      io.get_executor(), {address, u.port}, request, std::chrono::duration_cast<std::chrono::milliseconds>(spec.wait),
      [&](const coap::group_answer& a) {
        ++answers;
        if (spec.verbosity >= debug_level) std::cerr << a.from << ": received\n" << summary(a.response, true) << '\n';
        coap::block_value b2;
        const auto block2 = a.response.find(coap::option_number::block2);
        if (!safe || !block2 || coap::decode_block(block2->value(), b2) || !b2.more) return print(a.from, a.response);
        // The rest unicast: the same request (block 0 again, then the others) to this server.
        std::error_code ec;
        auto s = std::make_shared<coap::session<coap::udp>>(coap::session<coap::udp>::create_client(ctx, a.from, ec));
        if (ec) {
          std::cerr << "coap-client: cannot follow up with " << a.from << ": " << ec.message() << '\n';
          status = failure;
          return;
        }
        coap::message again = make_request(spec, u, ctx.random());
        again.set_type(coap::message_type::confirmable);
        follow_ups.push_back(s);
        s->async_request(std::move(again), [&, from = a.from, s](std::error_code e, coap::message m) {
          if (e) {
            std::cerr << "coap-client: follow-up to " << from << ": " << e.message() << '\n';
            status = failure;
          } else {
            print(from, m);
          }
          s->close();
        });
      },
      [&](std::error_code ec, std::size_t) {
        if (ec) {
          std::cerr << "coap-client: group request to " << u.host << ": " << ec.message() << '\n';
          status = failure;
        } else if (answers == 0) {
          std::cerr << "coap-client: no answer within " << spec.wait.count() << " s\n";
          status = failure;
        }
      });
  io.run();
  if (!out.close()) status = failure;
  return status;
}

coap::security::psk_client_config psk_config(const security_spec& sec, const coap::uri& u) {
  coap::security::psk_client_config c;
  c.identity = sec.identity.value_or("");
  const std::string key = sec.key.value_or("");
  c.key.assign(key.begin(), key.end());
  if (u.host_kind == coap::host_kind::name) c.sni = u.host;  // RFC 6066: names only
  return c;
}

// libcoap's coap-client: the server is verified against -C (its CA) or -R (trusted roots;
// a self-signed server is accepted too), not at all without them or with -n. When verified,
// its certificate must also name the URI's host (RFC 7252 section 9.1.3.3).
coap::security::pki_config pki_config(const security_spec& sec, const coap::uri& u) {
  coap::security::pki_config c;
  c.key = coap::security::pki_key::from_files(sec.ca.value_or(""), sec.cert.value_or(""),
                                              sec.private_key.value_or(""));
  c.verify_peer_cert = (sec.ca || sec.roots) && !sec.no_verify;
  c.allow_self_signed = sec.roots.has_value();
  if (u.host_kind == coap::host_kind::name) c.client_sni = u.host;
  if (u.host_kind != coap::host_kind::ipv6) c.verify_host = u.host;  // see pki_config
  return c;
}

bool is_group(const coap::uri& u) {
  boost::system::error_code bec;
  const auto a = boost::asio::ip::make_address(u.host, bec);
  return !bec && a.is_multicast();
}

// The one place that maps a scheme and the security flags to a transport and security policy.
exit_status dispatch(const request_spec& spec, const coap::uri& u, const security_spec& sec) {
  using namespace coap;
  std::optional<oscore_client_config> oscore_config;
  if (sec.oscore) {
    std::vector<coap::oscore::context_params> contexts;
    std::string error;
    if (!coap_examples::load_oscore(*sec.oscore, false, contexts, error)) {
      std::cerr << "coap-client: -E: " << error << '\n';
      return failure;
    }
    oscore_config = oscore_client_config{std::move(contexts.front())};
  }
  switch (u.scheme) {
    case scheme::coap:
      if (oscore_config) return exchange<session<udp, oscore>>(spec, u, sec, *oscore_config);
      if (is_group(u) && !spec.proxy_uri) return group_exchange(spec, u);
      return exchange<session<udp>>(spec, u, sec);
    case scheme::coap_tcp:
      if (oscore_config) return exchange<session<tcp, oscore>>(spec, u, sec, *oscore_config);
      return exchange<session<tcp>>(spec, u, sec);
    case scheme::coaps:
      if (sec.psk()) return exchange<session<udp, psk>>(spec, u, sec, psk_config(sec, u));
      return exchange<session<udp, pki>>(spec, u, sec, pki_config(sec, u));
    case scheme::coaps_tcp:
      if (sec.psk()) return exchange<session<tcp, psk>>(spec, u, sec, psk_config(sec, u));
      return exchange<session<tcp, pki>>(spec, u, sec, pki_config(sec, u));
  }
  return failure;
}

void usage(std::ostream& out, const po::options_description& visible) {
  out << "Usage: coap-client [-m method] [-e text | -f file] [-t type] [-N] [-T token] [-O num,text]\n"
         "                   [-b [num,]size] [-s duration] [-o file] [-w]\n"
         "                   [-u identity -k key] [-c cert -j key] [-C ca] [-R roots] [-n]\n"
         "                   [-B seconds] [-v num] [-P scheme://address[:port]] URI\n"
         "  URI is coap://, coap+tcp://, coaps:// (DTLS) or coaps+tcp:// (TLS) host[:port]/path?query\n"
         "  (IPv6 literals in brackets). coaps with -u/-k uses PSK, otherwise certificates.\n\n"
      << visible;
}

}  // namespace

int main(int argc, char** argv) {
  po::options_description visible("Options");
  visible.add_options()
      ("help", "show this help")
      (",m", po::value<std::string>()->default_value("get"),
       "request method: get|put|post|delete|fetch|patch|ipatch")
      (",e", po::value<std::string>(), "payload text (%XX-encoded bytes allowed)")
      (",f", po::value<std::string>(), "payload from file ('-' for stdin)")
      (",t", po::value<std::string>(), "content-format: a number or a name (text, json, cbor ...)")
      (",N", po::bool_switch(), "send a non-confirmable request")
      (",O", po::value<std::vector<std::string>>(), "num,text: add option num with the text's bytes, or "
       "0x and hex digits for binary (-O 258,0x1a: No-Response to everything); repeatable")
      (",T", po::value<std::string>(), "token: text (its bytes) or 0x followed by hex, up to 8 bytes")
      (",b", po::value<std::string>(), "[num,]size: block size 16..1024 (a power of two) for block-wise "
       "transfers; num > 0 asks a get/fetch for that one block only")
      (",s", po::value<int>(), "observe the URI for this many seconds, printing each notification")
      (",o", po::value<std::string>(), "write the received body to this file ('-' for stdout)")
      (",w", po::bool_switch(), "append a newline to each received body")
      (",B", po::value<int>()->default_value(default_wait_seconds),
       "wait at most this many seconds in all (with -s: for the registration's answer)")
      (",v", po::value<int>()->default_value(3), "verbosity; 7 and above show the messages on stderr")
      (",u", po::value<std::string>(), "PSK identity (coaps, coaps+tcp)")
      (",k", po::value<std::string>(), "pre-shared key")
      (",c", po::value<std::string>(), "own certificate (PEM)")
      (",j", po::value<std::string>(), "private key of the certificate (PEM or DER: PKCS #8, SEC 1 or PKCS #1)")
      (",C", po::value<std::string>(), "CA (PEM) the server's certificate must chain to; it must also name the URI's host")
      (",R", po::value<std::string>(), "trusted root CAs (PEM); a self-signed server is accepted")
      (",n", po::bool_switch(), "do not verify the server's certificate")
      (",E", po::value<std::string>(), "conf_file[,seq_file]: protect the request with OSCORE (RFC 8613; coap:// "
       "and coap+tcp://), the security context from a coap-oscore-conf(5) file, the sequence number kept in seq_file")
      (",P", po::value<std::string>(), "scheme://address[:port]: send the request through this CoAP proxy "
       "(the URI goes as Proxy-Uri; security flags then apply to the proxy)");
  po::options_description all;
  all.add(visible).add_options()("uri", po::value<std::string>());
  po::positional_options_description positional;
  positional.add("uri", 1);

  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(all).positional(positional).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "coap-client: " << e.what() << '\n';
    usage(std::cerr, visible);
    return failure;
  }
  if (vm.count("help")) {
    usage(std::cout, visible);
    return success;
  }
  if (!vm.count("uri")) {
    usage(std::cerr, visible);
    return failure;
  }

  request_spec spec;
  if (auto m = method_from_name(vm["-m"].as<std::string>())) {
    spec.method = *m;
  } else {
    std::cerr << "coap-client: unknown method '" << vm["-m"].as<std::string>() << "'\n";
    return failure;
  }
  if (vm.count("-e") && vm.count("-f")) {
    std::cerr << "coap-client: -e and -f both give the payload; use one\n";
    return failure;
  }
  if (vm.count("-e")) spec.payload = percent_decode(vm["-e"].as<std::string>());
  if (vm.count("-f")) {
    std::string data;
    if (!read_file(vm["-f"].as<std::string>(), data)) {
      std::cerr << "coap-client: cannot read " << vm["-f"].as<std::string>() << '\n';
      return failure;
    }
    spec.payload = std::move(data);
  }
  if (vm.count("-t")) {
    spec.format = parse_content_format(vm["-t"].as<std::string>());
    if (!spec.format) {
      std::cerr << "coap-client: unknown content-format '" << vm["-t"].as<std::string>() << "'\n";
      return failure;
    }
  }
  if (vm["-N"].as<bool>()) spec.type = coap::message_type::non_confirmable;
  if (vm.count("-O")) {
    for (const auto& o : vm["-O"].as<std::vector<std::string>>()) {
      auto parsed = parse_option(o);
      if (!parsed) {
        std::cerr << "coap-client: -O wants num,text or num,0xHEX (got '" << o << "')\n";
        return failure;
      }
      spec.extra_options.push_back(std::move(*parsed));
    }
  }
  if (vm.count("-T")) {
    spec.token = parse_token(vm["-T"].as<std::string>());
    if (!spec.token) {
      std::cerr << "coap-client: a token is at most 8 bytes (text, or 0x and hex digits)\n";
      return failure;
    }
  }
  if (vm["-B"].as<int>() <= 0) {
    std::cerr << "coap-client: -B needs a positive number of seconds\n";
    return failure;
  }
  spec.wait = std::chrono::seconds(vm["-B"].as<int>());
  if (vm.count("-b")) {
    spec.block = parse_block(vm["-b"].as<std::string>());
    if (!spec.block) {
      std::cerr << "coap-client: -b wants [num,]size: size a power of two from 16 to 1024, num below 1048576 (got '"
                << vm["-b"].as<std::string>() << "')\n";
      return failure;
    }
    if (spec.block->num != 0 && spec.method != coap::method::get && spec.method != coap::method::fetch) {
      std::cerr << "coap-client: -b num,size asks for one block of a get or fetch\n";
      return failure;
    }
  }
  if (vm.count("-s")) {
    if (vm["-s"].as<int>() <= 0) {
      std::cerr << "coap-client: -s needs a positive number of seconds\n";
      return failure;
    }
    if (spec.method != coap::method::get && spec.method != coap::method::fetch) {
      std::cerr << "coap-client: -s observes with get or fetch only (RFC 7641, RFC 8132)\n";
      return failure;
    }
    spec.observe = std::chrono::seconds(vm["-s"].as<int>());
  }
  if (vm.count("-o")) spec.output = vm["-o"].as<std::string>();
  spec.newline_each = vm["-w"].as<bool>();
  spec.verbosity = vm["-v"].as<int>();

  coap::uri u;
  const auto& text = vm["uri"].as<std::string>();
  if (auto ec = coap::parse_uri(text, u)) {
    std::cerr << "coap-client: invalid CoAP URI '" << text << "': " << ec.message() << '\n';
    return failure;
  }
  if (vm.count("-P")) {
    // libcoap's -P: connect to the proxy, name the target in Proxy-Uri.
    const auto& proxy_text = vm["-P"].as<std::string>();
    coap::uri proxy;
    if (auto ec = coap::parse_uri(proxy_text, proxy)) {
      std::cerr << "coap-client: invalid proxy URI '" << proxy_text << "': " << ec.message() << '\n';
      return failure;
    }
    spec.proxy_uri = text;
    u = std::move(proxy);
  }
  security_spec sec;
  auto text_of = [&](const char* flag) -> std::optional<std::string> {
    if (!vm.count(flag)) return std::nullopt;
    return vm[flag].as<std::string>();
  };
  sec.identity = text_of("-u");
  sec.key = text_of("-k");
  sec.cert = text_of("-c");
  sec.private_key = text_of("-j");
  sec.ca = text_of("-C");
  sec.roots = text_of("-R");
  sec.no_verify = vm["-n"].as<bool>();
  sec.oscore = text_of("-E");
  if (sec.psk() && (!sec.identity || !sec.key || sec.identity->empty() || sec.key->empty())) {
    std::cerr << "coap-client: PSK needs both -u identity and -k key\n";
    return failure;
  }
  if (sec.cert.has_value() != sec.private_key.has_value()) {
    std::cerr << "coap-client: -c and -j go together\n";
    return failure;
  }
  const bool secure_scheme = u.scheme == coap::scheme::coaps || u.scheme == coap::scheme::coaps_tcp;
  if (!secure_scheme && (sec.psk() || sec.cert || sec.ca || sec.roots)) {
    std::cerr << "coap-client: security flags need a coaps:// or coaps+tcp:// URI\n";
    return failure;
  }
  if (sec.oscore && secure_scheme) {
    std::cerr << "coap-client: -E (OSCORE) needs a coap:// or coap+tcp:// URI\n";
    return failure;
  }
  return dispatch(spec, u, sec);
}
