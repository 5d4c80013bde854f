// coap-server: a small CoAP test server in the manner of libcoap's coap-server. RFC 7252
// section 5.8 (method semantics and their success codes) and RFC 6690 (/.well-known/core,
// served by the library from the resource attributes set here). See examples/README.md.
//
//   /          GET: what this server is
//   /time      GET: the current time (UTC); "?ticks" gives seconds since the epoch; FETCH
//              with the body "ticks" too (libcoap's /time, RFC 8132)
//   /echo      PUT, POST: the request's payload and content-format back, 2.04 Changed
//   /counter   GET: the count; POST: one more, then the count (2.04 Changed)
//   other      PUT creates (2.01) or replaces (2.04); GET returns it; DELETE removes it (2.02);
//              RFC 8132: FETCH returns its lines that contain the FETCH body; PATCH appends
//              the body as lines; iPATCH sets "key=value" lines (4.22 for a line without '=')
//
// -t N (docs/design.md "Multi-core"): N shards (coap/shards.hpp), each a context on its own
// thread with every endpoint bound again with SO_REUSEPORT. The resources are the same on
// each; what they store (the counter, the PUT resources) is shared under one mutex, and a
// change notifies the observers of every shard.
#include <coap/context.hpp>
#include <coap/proxy.hpp>
#include <coap/resource.hpp>
#include <coap/security/pki.hpp>
#include <coap/security/psk.hpp>
#include <coap/shards.hpp>
#include <coap/transports/tcp.hpp>
#include <coap/transports/udp.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/program_options.hpp>

#include "oscore_files.hpp"

#include <algorithm>
#include <csignal>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <iostream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace asio = boost::asio;
namespace po = boost::program_options;

constexpr int warning_level = 4;
constexpr int info_level = 6;   // listening addresses
constexpr int debug_level = 7;  // every request a handler sees
// PUT stops creating resources beyond this many, so that a peer cannot grow the server at will.
constexpr std::size_t max_dynamic_resources = 256;

const std::string text_ct = std::to_string(static_cast<unsigned>(coap::content_format::text_plain));

using response = coap::basic_response<>;

class server;
// What PUT stored at a path.
struct stored {
  std::string payload;
  std::optional<coap::content_format> format;
};
// The state every shard's resources serve (-t N), under one lock: the handlers of different
// shards run on different threads. Uncontended with one thread.
struct shared_state {
  std::mutex mutex;
  std::uint64_t count = 0;
  std::map<std::string, stored> store;
};
// Runs a function with every shard's server on that shard's thread, after the caller returns.
using everywhere = std::function<void(std::function<void(server&)>)>;

class server {
 public:
  server(coap::context& ctx, int verbosity, shared_state& shared, everywhere each)
      : ctx_(ctx), verbosity_(verbosity), clock_(ctx.get_executor()), shared_(shared), each_(std::move(each)) {}

  void add_resources() {
    ctx_.add_resource("")
        .on(coap::method::get, [this](const coap::request& r, response& res) { describe(r, res); })
        .attribute("title", "General Info")
        .attribute("ct", text_ct);
    // Observable (RFC 7641), notifying every second as libcoap's /time does.
    ctx_.add_resource("time")
        .on(coap::method::get, [this](const coap::request& r, response& res) { time(r, res); })
        .on(coap::method::fetch, [this](const coap::request& r, response& res) { time(r, res); })
        .attribute("rt", "ticks")
        .attribute("title", "Internal Clock")
        .attribute("ct", text_ct)
        .observable();
    auto echo = [this](const coap::request& r, response& res) { this->echo(r, res); };
    ctx_.add_resource("echo")
        .on(coap::method::put, echo)
        .on(coap::method::post, echo)
        .attribute("title", "Echo");
    ctx_.add_resource("counter")
        .on(coap::method::get, [this](const coap::request& r, response& res) { counter(r, res, false); })
        .on(coap::method::post, [this](const coap::request& r, response& res) { counter(r, res, true); })
        .attribute("rt", "counter")
        .attribute("title", "Request Counter")
        .attribute("ct", text_ct)
        .observable()  // notified on each POST
        .multicast(false);  // unicast only: a POST to a group would count once per member (docs/multicast.md)
    ctx_.resources().set_unknown_handler(
        [this](const coap::request& r, response& res) { unknown(r, res); });
    tick();
  }

 private:
  using lock = std::lock_guard<std::mutex>;

  void log(const coap::request& r) const {
    if (verbosity_ < debug_level) return;
    std::cerr << r.session() << ": " << coap::name(coap::code(r.method())) << " /" << r.path_string()
              << " (" << r.payload().size() << " bytes)\n";
  }

  void describe(const coap::request& r, response& res) const {
    log(r);
    res.set(coap::response_code::content,
            "This is a test server made with coap-cpp, a C++20 CoAP library on Boost.Asio.\n"
            "Resources: /time, /echo, /counter; PUT creates others. "
            "See /.well-known/core.\n",
            coap::content_format::text_plain);
  }

  // libcoap's /time: "Nov 25 08:27:46", in UTC; Max-Age 1 since it changes every second.
  void time(const coap::request& r, response& res) const {
    log(r);
    // The precise clock: time() reads a coarse one that can lag a few milliseconds behind,
    // and so name the second before the one `date` already shows.
    const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    std::string text;
    if (r.query("ticks") || (r.method() == coap::method::fetch && r.payload_string() == "ticks")) {
      text = std::to_string(static_cast<long long>(now));
    } else {
      std::tm utc{};
      gmtime_r(&now, &utc);
      char buffer[32];
      text.assign(buffer, std::strftime(buffer, sizeof buffer, "%b %d %H:%M:%S", &utc));
    }
    res.message().add(coap::options::max_age{}, 1);
    res.set(coap::response_code::content, text, coap::content_format::text_plain);
  }

  // Section 5.9.1.4: 2.04 Changed answers PUT and POST alike; 2.05 Content is for GET (and
  // FETCH) only.
  void echo(const coap::request& r, response& res) const {
    log(r);
    res.set_code(coap::response_code::changed);
    if (auto f = r.content_format()) res.set_content_format(*f);
    res.set_payload(r.payload());
  }

  void counter(const coap::request& r, response& res, bool increment) {
    log(r);
    std::uint64_t count;
    {
      lock hold(shared_.mutex);
      count = increment ? ++shared_.count : shared_.count;
    }
    if (increment) notify_later("counter");
    res.set(increment ? coap::response_code::changed : coap::response_code::content,
            std::to_string(count), coap::content_format::text_plain);
  }

  // A path with no resource: PUT creates one (section 5.8.3), anything else finds nothing.
  // libcoap answers 4.04 with the reason phrase as its diagnostic payload; so does this.
  //
  // With -t N another shard's PUT may have stored the path before its resource reached this
  // shard's registry (it is posted to every shard): then the path is served from the store.
  void unknown(const coap::request& r, response& res) {
    log(r);
    std::string path = r.path_string();
    bool existed;
    {
      lock hold(shared_.mutex);
      existed = shared_.store.count(path) != 0;
    }
    if (existed && r.method() != coap::method::put) return serve_stored(path, r, res);
    if (r.method() != coap::method::put) return not_found(res);
    for (std::string_view segment : r.path())
      if (segment.empty() || segment.find('/') != std::string_view::npos)
        return res.set(coap::response_code::bad_request, "Bad Request");
    {
      lock hold(shared_.mutex);
      if (!existed && shared_.store.size() >= max_dynamic_resources)
        return res.set(coap::response_code::service_unavailable, "Too Many Resources");
      store(path, r);
    }
    add_dynamic(path);
    // The other shards add it after this answer (with one thread: none).
    each_([this, path](server& other) {
      if (&other != this) other.add_dynamic(path);
    });
    res.set_code(existed ? coap::response_code::changed : coap::response_code::created);
    if (existed) notify_later(path);
  }

  // The PUT-created resource at `path` in this shard's registry, unless it is there already
  // or was deleted meanwhile.
  void add_dynamic(const std::string& path) {
    if (ctx_.resources().find(path)) return;
    lock hold(shared_.mutex);
    if (!shared_.store.count(path)) return;
    auto& resource = ctx_.add_resource(path);
    resource.on(coap::method::get, [this, path](const coap::request& q, response& a) { get(path, q, a); })
        .on(coap::method::put, [this, path](const coap::request& q, response& a) { put(path, q, a); })
        .on(coap::method::delete_, [this, path](const coap::request& q, response& a) { remove(path, q, a); })
        .on(coap::method::fetch, [this, path](const coap::request& q, response& a) { fetch(path, q, a); })
        .on(coap::method::patch, [this, path](const coap::request& q, response& a) { patch(path, q, a, false); })
        .on(coap::method::ipatch, [this, path](const coap::request& q, response& a) { patch(path, q, a, true); });
    describe_dynamic(resource, path);
  }

  void serve_stored(const std::string& path, const coap::request& r, response& res) {
    switch (r.method()) {
      case coap::method::get: return get(path, r, res);
      case coap::method::delete_: return remove(path, r, res);
      case coap::method::fetch: return fetch(path, r, res);
      case coap::method::patch: return patch(path, r, res, false);
      case coap::method::ipatch: return patch(path, r, res, true);
      default: return res.set(coap::response_code::method_not_allowed, "Method Not Allowed");
    }
  }

  void get(const std::string& path, const coap::request& r, response& res) const {
    log(r);
    lock hold(shared_.mutex);
    auto it = shared_.store.find(path);
    if (it == shared_.store.end()) return not_found(res);
    res.set_code(coap::response_code::content);
    if (it->second.format) res.set_content_format(*it->second.format);
    res.set_payload(std::string_view(it->second.payload));
  }

  // RFC 8132 section 2: FETCH with a body that selects: the stored lines containing it (all
  // of them for an empty body), 2.05 Content. Observable as GET is.
  void fetch(const std::string& path, const coap::request& r, response& res) const {
    log(r);
    lock hold(shared_.mutex);
    auto it = shared_.store.find(path);
    if (it == shared_.store.end()) return not_found(res);
    std::string selected;
    std::string_view rest = it->second.payload;
    while (!rest.empty()) {
      const auto end = rest.find('\n');
      const auto line = rest.substr(0, end);
      if (line.find(r.payload_string()) != std::string_view::npos) selected.append(line).append("\n");
      rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    }
    res.set(coap::response_code::content, selected, coap::content_format::text_plain);
  }

  // RFC 8132 section 3: PATCH appends the body's lines (not idempotent: twice appends twice);
  // iPATCH sets "key=value" lines, replacing a line of the same key (idempotent), and refuses
  // a body with a line that is not key=value (4.22 Unprocessable Entity).
  void patch(const std::string& path, const coap::request& r, response& res, bool idempotent) {
    log(r);
    lock hold(shared_.mutex);
    auto it = shared_.store.find(path);
    if (it == shared_.store.end()) return not_found(res);
    std::string& text = it->second.payload;
    std::string_view body = r.payload_string();
    if (!idempotent) {
      if (!text.empty() && text.back() != '\n') text += '\n';
      text.append(body);
    } else {
      std::vector<std::string_view> lines;
      for (std::string_view rest = body; !rest.empty();) {
        const auto end = rest.find('\n');
        const auto line = rest.substr(0, end);
        if (!line.empty() && line.find('=') == std::string_view::npos)
          return res.set(coap::response_code::unprocessable_entity, "key=value lines expected");
        if (!line.empty()) lines.push_back(line);
        rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
      }
      for (auto line : lines) {
        const auto key = line.substr(0, line.find('=') + 1);
        std::string updated;
        bool replaced = false;
        for (std::string_view rest = text; !rest.empty();) {
          const auto end = rest.find('\n');
          auto old = rest.substr(0, end);
          if (old.substr(0, key.size()) == key) old = line, replaced = true;
          updated.append(old).append("\n");
          rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
        }
        if (!replaced) updated.append(line).append("\n");
        text = std::move(updated);
      }
    }
    res.set_code(coap::response_code::changed);
    notify_later(path);
  }

  void put(const std::string& path, const coap::request& r, response& res) {
    log(r);
    lock hold(shared_.mutex);
    const bool existed = shared_.store.count(path) != 0;
    store(path, r);
    if (auto* resource = ctx_.resources().find(path)) describe_dynamic(*resource, path);
    res.set_code(existed ? coap::response_code::changed : coap::response_code::created);
    notify_later(path);
  }

  // The resource leaves the registry only after this handler has returned: removing it now
  // would destroy the very handler that is running. Until then its handlers answer from
  // the store, which forgets the path at once. Every shard removes it.
  void remove(const std::string& path, const coap::request& r, response& res) {
    log(r);
    {
      lock hold(shared_.mutex);
      if (shared_.store.erase(path) == 0) return not_found(res);
    }
    each_([path](server& s) {
      {
        lock hold(s.shared_.mutex);
        if (s.shared_.store.count(path)) return;  // PUT again meanwhile
      }
      s.ctx_.remove_resource(path);  // observers hear 4.04
    });
    res.set_code(coap::response_code::deleted);
  }

  // These two: with shared_.mutex held.
  void store(const std::string& path, const coap::request& r) {
    shared_.store[path] = stored{std::string(r.payload_string()), r.content_format()};
  }

  void describe_dynamic(coap::context::resource& resource, const std::string& path) const {
    resource.attributes.clear();
    resource.attribute("rt", "dynamic").attribute("title", "Created by PUT");
    const auto& s = shared_.store.at(path);
    if (s.format) resource.attribute("ct", std::to_string(static_cast<unsigned>(*s.format)));
    resource.observable();
  }

  static void not_found(response& res) { res.set(coap::response_code::not_found, "Not Found"); }

  // /time's observers hear from it every second.
  void tick() {
    clock_.expires_after(std::chrono::seconds(1));
    clock_.async_wait([this](const boost::system::error_code& e) {
      if (e) return;
      ctx_.notify_observers("time");
      tick();
    });
  }
  // After the handler's own answer has gone out: observers of `path`, on every shard, hear the
  // new state.
  void notify_later(std::string path) {
    each_([path = std::move(path)](server& s) { s.ctx_.notify_observers(path); });
  }

 public:
  void stop() { clock_.cancel(); }
  asio::any_io_executor executor() const { return ctx_.get_executor(); }

 private:
  coap::context& ctx_;
  int verbosity_;
  asio::steady_timer clock_;
  shared_state& shared_;
  everywhere each_;
};

// The addresses to listen on: -A (an address or a name), or 0.0.0.0 and :: like libcoap.
std::vector<asio::ip::address> listen_addresses(asio::io_context& io, const std::string& a,
                                                std::error_code& ec) {
  if (a.empty()) return {asio::ip::address_v4::any(), asio::ip::address_v6::any()};
  boost::system::error_code bec;
  if (auto literal = asio::ip::make_address(a, bec); !bec) return {literal};
  asio::ip::udp::resolver resolver(io);
  const auto results = resolver.resolve(a, "", asio::ip::udp::resolver::passive, bec);
  ec = bec;
  std::vector<asio::ip::address> out;
  for (const auto& r : results)
    if (std::find(out.begin(), out.end(), r.endpoint().address()) == out.end())
      out.push_back(r.endpoint().address());
  return out;
}

std::string endpoint_text(const asio::ip::address& a, std::uint16_t port) {
  return a.is_v6() ? "[" + a.to_string() + "]:" + std::to_string(port)
                   : a.to_string() + ":" + std::to_string(port);
}

// Listens with one transport and security on address:port; reports what it did.
template <class Transport, class Security>
bool listen(coap::context& ctx, const asio::ip::address& address, std::uint16_t& port, std::string& failures,
            int verbosity, std::string_view what) {
  std::uint16_t bound = 0;
  if (auto e = ctx.add_endpoint<Transport, Security>(address, port, &bound)) {
    failures += "coap-server: cannot listen on " + endpoint_text(address, port) + " " + std::string(what) + ": " +
                e.message() + '\n';
    return false;
  }
  port = bound;
  if (verbosity >= info_level)
    std::cerr << "coap-server: listening on " << endpoint_text(address, bound) << " " << what << '\n';
  return true;
}

// libcoap's coap-server: -k/-h (PSK) or -c/-j with -C/-R (certificates) make it listen for
// DTLS and TLS on port+1 as well (RFC 7252 section 9, RFC 8323 section 9).
enum class secure_mode { none, psk, pki };

// libcoap 4.3.5's -E conf_file[,seq_file]: OSCORE (RFC 8613) on the coap and coap+tcp
// endpoints, one security context per recipient_id of the file. Unprotected requests are
// still served, as libcoap's coap-server does.
bool set_up_oscore(coap::context& ctx, const po::variables_map& vm) {
  if (!vm.count("-E")) return false;
  std::vector<coap::oscore::context_params> contexts;
  std::string error;
  if (!coap_examples::load_oscore(vm["-E"].as<std::string>(), true, contexts, error))
    throw std::runtime_error("-E: " + error);
  for (const auto& p : contexts)
    if (auto e = coap::set_oscore(ctx, p)) throw std::runtime_error("-E: " + e.message());
  return true;
}

secure_mode set_up_security(coap::context& ctx, const po::variables_map& vm) {
  const bool psk = vm.count("-k"), pki = vm.count("-c");
  if (psk && pki) throw std::runtime_error("give -k (PSK) or -c (certificates), not both");
  if (psk) {
    coap::security::psk_server_config config;
    const auto& key = vm["-k"].as<std::string>();
    config.key.assign(key.begin(), key.end());
    if (vm.count("-h")) config.hint = vm["-h"].as<std::string>();
    if (auto e = coap::security::set_psk(ctx, config)) throw std::runtime_error("PSK: " + e.message());
    return secure_mode::psk;
  }
  if (pki) {
    if (!vm.count("-j")) throw std::runtime_error("-c needs -j (the private key)");
    coap::security::pki_config config;
    const std::string ca = vm.count("-C") ? vm["-C"].as<std::string>() : std::string();
    config.key = coap::security::pki_key::from_files(ca, vm["-c"].as<std::string>(), vm["-j"].as<std::string>());
    // Like libcoap: clients must present a certificate when a CA (-C) or trust store (-R) is
    // given, unless -n.
    config.verify_peer_cert = (vm.count("-C") || vm.count("-R")) && !vm["-n"].as<bool>();
    config.require_peer_cert = config.verify_peer_cert;
    config.allow_self_signed = vm.count("-R") > 0;
    if (vm.count("-R"))
      if (auto e = coap::security::set_pki_root_cas(ctx, vm["-R"].as<std::string>()))
        throw std::runtime_error("certificates: " + coap::security::pki_last_error(ctx));
    if (auto e = coap::security::set_pki(ctx, config))
      throw std::runtime_error("certificates: " + coap::security::pki_last_error(ctx));  // names file and reason
    return secure_mode::pki;
  }
  return secure_mode::none;
}

}  // namespace

// -P (docs/proxy.md): "scheme://address[:port],name1,name2" as libcoap's: the next-hop proxy
// (empty before the first comma: forward to the Proxy-Uri's own target), then the names this
// server is known by. A bare -P is "," (forward directly, no names).
using cli_proxy = coap::proxy<coap::session<coap::udp>, coap::session<coap::tcp>>;
bool set_up_proxy(cli_proxy& proxy, const std::string& spec, std::string& error) {
  const auto comma = spec.find(',');
  const std::string next_hop = spec.substr(0, comma);
  if (!next_hop.empty())
    if (auto ec = proxy.set_next_hop(next_hop)) {
      error = "-P: next hop '" + next_hop + "': " + ec.message() + " (coap:// or coap+tcp://)";
      return false;
    }
  for (std::size_t start = comma; start != std::string::npos && start < spec.size();) {
    const auto end = spec.find(',', start + 1);
    const auto name = spec.substr(start + 1, end == std::string::npos ? std::string::npos : end - start - 1);
    if (!name.empty()) proxy.add_name(name);
    start = end;
  }
  return true;
}

// Below main: one context's configuration, resources, security and endpoints.
int set_up(coap::context& ctx, server& app, const po::variables_map& vm, asio::io_context& io,
           std::vector<asio::ip::address>& addresses, std::uint16_t& port, int verbosity);

int main(int argc, char** argv) {
  // libcoap's -P takes a value; ours may stand alone (forward to the Proxy-Uri's target).
  std::vector<char*> args(argv, argv + argc);
  static char direct[] = ",";
  for (std::size_t i = 1; i < args.size(); ++i)
    if (std::string_view(args[i]) == "-P" && (i + 1 == args.size() || args[i + 1][0] == '-'))
      args.insert(args.begin() + static_cast<std::ptrdiff_t>(i) + 1, direct);
  argc = static_cast<int>(args.size());
  argv = args.data();
  po::options_description visible("Options");
  visible.add_options()
      ("help", "show this help")
      (",A", po::value<std::string>()->default_value(""),
       "address to listen on (default: 0.0.0.0 and ::)")
      (",p", po::value<unsigned>()->default_value(5683), "port for UDP and TCP (0 picks a free one); DTLS and TLS use port+1")
      (",k", po::value<std::string>(), "pre-shared key for DTLS/TLS (PSK mode)")
      (",h", po::value<std::string>(), "PSK identity hint (default: CoAP)")
      (",c", po::value<std::string>(), "certificate (PEM) for DTLS/TLS (certificate mode)")
      (",j", po::value<std::string>(), "private key of the certificate (PEM or DER: PKCS #8, SEC 1 or PKCS #1)")
      (",C", po::value<std::string>(), "CA (PEM) that client certificates must chain to")
      (",R", po::value<std::string>(), "trusted root CAs (PEM); self-signed clients are accepted")
      (",n", po::bool_switch(), "do not verify client certificates")
      (",b", po::value<unsigned>(), "largest block size for block-wise transfers (16..1024, a power of two)")
      (",v", po::value<int>()->default_value(3), "verbosity; 6 shows the listening addresses, 7 the requests")
      (",t", po::value<unsigned>()->default_value(1), "threads: this many contexts, each on its own thread, share "
       "the ports (SO_REUSEPORT: a peer always reaches the same one); not with -E, -g or -P (not a libcoap flag)")
      (",P", po::value<std::string>(), "[scheme://address[:port]],[name1[,name2..]]: act as a forward proxy "
       "(RFC 7252 section 5.7.2) for coap and coap+tcp targets: through the next-hop proxy when one is given, "
       "else directly to the Proxy-Uri's target; requests naming one of the names are served here. "
       "Alone: forward directly. Any target unless -H restricts them")
      (",H", po::value<std::string>(), "host[,host..]: the only target hosts -P forwards to (others: 4.03)")
      (",E", po::value<std::string>(), "conf_file[,seq_file]: OSCORE (RFC 8613) on coap and coap+tcp, the "
       "security contexts from a coap-oscore-conf(5) file, the sequence number kept in seq_file")
      (",g", po::value<std::vector<std::string>>(), "join this multicast group (224.0.1.187, ff02::fd, ff05::fd, ...; "
       "may be repeated): requests to it are answered after a random leisure of up to 5 s, errors not at all "
       "(RFC 7252 section 8, docs/multicast.md)")
      (",G", po::value<std::string>(), "the interface to join -g groups on (default: the system's choice)")
      ("rate", po::value<double>(), "requests per second one peer may make, in bursts of as many; beyond, "
       "4.29 Too Many Requests with Max-Age (RFC 8516). 0: unlimited; default 10000 (not a libcoap flag)")
      ("amplification", po::value<unsigned>(), "over UDP, an answer larger than this many times its request to an "
       "unverified peer is replaced by 4.01 with Echo (RFC 9175 section 2.4). 0: no limit; default 3 "
       "(not a libcoap flag)");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, visible), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "coap-server: " << e.what() << '\n' << visible;
    return 1;
  }
  if (vm.count("help")) {
    std::cout << "Usage: coap-server [-A address] [-p port] [-k key [-h hint]] [-c cert -j key [-C ca] [-R roots] [-n]]\n"
                 "                   [-b max_block_size] [-v num] [-t threads] [-P [scheme://address[:port]],[name1[,name2..]] [-H host[,host..]]]\n"
                 "                   [-g group [-G group_if]]\n"
                 "                   [--rate requests_per_second] [--amplification factor]\n"
              << visible;
    return 0;
  }
  if (vm["-p"].as<unsigned>() > 0xffff) {
    std::cerr << "coap-server: -p takes a port from 0 to 65535\n";
    return 1;
  }
  const int verbosity = vm["-v"].as<int>();

  const unsigned threads = vm["-t"].as<unsigned>();
  if (threads < 1 || threads > 256) {
    std::cerr << "coap-server: -t takes a number of threads from 1 to 256\n";
    return 1;
  }
  // Each shard would keep its own OSCORE sequence numbers (nonce reuse across shards), join
  // the groups (every shard would answer a group request) and proxy with its own cache.
  if (threads > 1 && (vm.count("-E") || vm.count("-g") || vm.count("-P"))) {
    std::cerr << "coap-server: -t with more than one thread does not combine with -E, -g or -P\n";
    return 1;
  }

  asio::io_context io;
  std::optional<coap::context> single;    // -t 1: everything on this thread, as before -t
  std::optional<coap::shard_group> group;  // -t N: N contexts on N threads (coap/shards.hpp)
  if (threads == 1) single.emplace(io.get_executor());
  else group.emplace(threads);
  shared_state shared;
  // Declared after the group: destroyed first, once stop() has joined the shards' threads.
  std::vector<std::unique_ptr<server>> apps;
  everywhere each = [&apps](std::function<void(server&)> fn) {
    for (auto& a : apps) asio::post(a->executor(), [app = a.get(), fn] { fn(*app); });
  };
  std::vector<asio::ip::address> addresses;
  auto port = static_cast<std::uint16_t>(vm["-p"].as<unsigned>());
  for (unsigned i = 0; i < threads; ++i) {
    auto& ctx = single ? *single : (*group)[i];
    apps.push_back(std::make_unique<server>(ctx, verbosity, shared, each));
    if (const int status = set_up(ctx, *apps.back(), vm, io, addresses, port,
                                  i == 0 ? verbosity : std::min(verbosity, warning_level - 1)))
      return status;
  }
  if (group && verbosity >= info_level) std::cerr << "coap-server: " << threads << " threads\n";
  // Declared after the context: the proxy goes first.
  std::optional<cli_proxy> proxy;
  if (vm.count("-P")) {
    coap::proxy_policy policy = coap::proxy_policy::allow_all();
    if (vm.count("-H")) {
      policy = coap::proxy_policy();
      const auto& hosts = vm["-H"].as<std::string>();
      for (std::size_t start = 0; start <= hosts.size();) {
        auto end = hosts.find(',', start);
        if (end == std::string::npos) end = hosts.size();
        if (end > start) policy.allow_host(std::string_view(hosts).substr(start, end - start));
        start = end + 1;
      }
    }
    proxy.emplace(std::move(policy));
    std::string error;
    if (!set_up_proxy(*proxy, vm["-P"].as<std::string>(), error)) {
      std::cerr << "coap-server: " << error << '\n';
      return 1;
    }
    if (verbosity >= warning_level)
      proxy->set_logger([](std::string_view line) { std::cerr << "coap-server: proxy: " << line << '\n'; });
    proxy->install(*single);
  } else if (vm.count("-H")) {
    std::cerr << "coap-server: -H restricts -P; give -P too\n";
    return 1;
  }

  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& e, int signal) {
    if (e) return;
    if (verbosity >= info_level) std::cerr << "coap-server: signal " << signal << ", stopping\n";
    if (group) return group->stop();  // each shard closes its endpoints on its thread; joined
    apps.front()->stop();
    if (proxy && verbosity >= info_level) {
      const auto& c = proxy->counters();
      std::cerr << "coap-server: proxy counters: requests=" << c.requests << " forwarded=" << c.forwarded
                << " cache_hits=" << c.cache_hits << " revalidated=" << c.revalidated << " refused=" << c.refused
                << " observations_started=" << c.observations_started << " observers_joined=" << c.observers_joined
                << " notifications=" << c.notifications << " observations_released=" << c.observations_released
                << " observations_ended=" << c.observations_ended << '\n';
    }
    proxy.reset();  // its upstream sessions close
    single->stop();
  });
  if (group) group->start();
  io.run();
  if (group) group->stop();
  return 0;
}

// One context's configuration, resources, security and endpoints (each shard's with -t N;
// the later shards' listening addresses are not shown again). Returns main's exit status on
// failure, 0 on success.
int set_up(coap::context& ctx, server& app, const po::variables_map& vm, asio::io_context& io,
           std::vector<asio::ip::address>& addresses, std::uint16_t& port, int verbosity) {
  if (vm.count("-b")) {
    const unsigned b = vm["-b"].as<unsigned>();
    if (b < 16 || b > 1024 || (b & (b - 1)) != 0) {
      std::cerr << "coap-server: -b takes a power of two from 16 to 1024\n";
      return 1;
    }
    ctx.config().session.block_szx = coap::szx_for_size(b);
  }
  // -g: several group members may run on one host, sharing the port (as libcoap's do).
  ctx.config().udp_reuse_address = vm.count("-g") > 0;
  if (vm.count("rate")) {
    const double rate = vm["rate"].as<double>();
    if (!(rate >= 0)) {
      std::cerr << "coap-server: --rate takes a number of requests per second, 0 or more\n";
      return 1;
    }
    ctx.config().session.max_request_rate = rate;
    ctx.config().session.max_request_burst = static_cast<std::size_t>(std::max(1.0, rate));
  }
  if (vm.count("amplification")) ctx.config().session.amplification_factor = vm["amplification"].as<unsigned>();
  app.add_resources();
  // What did not verify (OSCORE), as libcoap's server warns of it.
  if (verbosity >= warning_level)
    ctx.set_event_handler([](coap::session_event e, std::string_view session, std::error_code ec) {
      if (e == coap::session_event::security_refused)
        std::cerr << "coap-server: " << session << ": refused: " << ec.message() << '\n';
    });
  secure_mode secure = secure_mode::none;
  bool oscore = false;
  try {
    secure = set_up_security(ctx, vm);
    oscore = set_up_oscore(ctx, vm);
  } catch (const std::exception& e) {
    std::cerr << "coap-server: " << e.what() << '\n';
    return 1;
  }

  if (addresses.empty()) {  // the first shard resolves them
    std::error_code ec;
    addresses = listen_addresses(io, vm["-A"].as<std::string>(), ec);
    if (ec || addresses.empty()) {
      std::cerr << "coap-server: cannot resolve " << vm["-A"].as<std::string>() << ": "
                << (ec ? ec.message() : std::string("no address")) << '\n';
      return 1;
    }
  }
  // With -p 0, the first endpoint's port is used for the others too (and by the other shards).
  std::size_t listening = 0;
  std::string failures;
  for (const auto& address : addresses) {
    if (oscore) {
      if (!listen<coap::udp, coap::oscore>(ctx, address, port, failures, verbosity, "UDP (OSCORE)")) continue;
      ++listening;
      listening += listen<coap::tcp, coap::oscore>(ctx, address, port, failures, verbosity, "TCP (OSCORE)");
    } else {
      if (!listen<coap::udp, coap::no_sec>(ctx, address, port, failures, verbosity, "UDP")) continue;
      ++listening;
      // RFC 8323: CoAP over TCP on the same port number.
      listening += listen<coap::tcp, coap::no_sec>(ctx, address, port, failures, verbosity, "TCP");
    }
    if (secure == secure_mode::none) continue;
    // DTLS and TLS on the next port, as libcoap's coap-server does.
    std::uint16_t secure_port = static_cast<std::uint16_t>(port + 1);
    if (secure == secure_mode::psk) {
      listening += listen<coap::udp, coap::psk>(ctx, address, secure_port, failures, verbosity, "DTLS (PSK)");
      listening += listen<coap::tcp, coap::psk>(ctx, address, secure_port, failures, verbosity, "TLS (PSK)");
    } else {
      listening += listen<coap::udp, coap::pki>(ctx, address, secure_port, failures, verbosity, "DTLS (PKI)");
      listening += listen<coap::tcp, coap::pki>(ctx, address, secure_port, failures, verbosity, "TLS (PKI)");
    }
  }
  // One family may be missing (a host without IPv6): the other suffices, with a warning.
  if (listening == 0 || verbosity >= warning_level) std::cerr << failures;
  if (listening == 0) return 1;

  // -g, -G as libcoap's (coap_join_mcast_group_intf): every UDP endpoint of the group's family.
  if (vm.count("-g")) {
    const std::string interface = vm.count("-G") ? vm["-G"].as<std::string>() : std::string();
    for (const auto& text : vm["-g"].as<std::vector<std::string>>()) {
      boost::system::error_code bec;
      const auto group = asio::ip::make_address(text, bec);
      const auto e = bec ? std::error_code(bec) : ctx.join_group(group, interface);
      if (e) {
        std::cerr << "coap-server: cannot join group " << text << (interface.empty() ? "" : " on " + interface) << ": "
                  << e.message() << '\n';
        return 1;
      }
      if (verbosity >= info_level) std::cerr << "coap-server: joined group " << text << '\n';
    }
  } else if (vm.count("-G")) {
    std::cerr << "coap-server: -G names the interface for -g; give -g too\n";
    return 1;
  }

  return 0;
}
