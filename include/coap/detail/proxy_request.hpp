// RFC 7252 sections 5.7.1-5.7.3 and 5.10.2 (what a proxy forwards, Proxy-Uri, Proxy-Scheme),
// 5.6 (the cache key) and RFC 8768 (Hop-Limit): how a proxy reads a request and builds the
// one it sends on. No I/O: coap::proxy (proxy.hpp) does that.
#pragma once

#include <coap/detail/block_server.hpp>
#include <coap/error.hpp>
#include <coap/message.hpp>
#include <coap/message_view.hpp>
#include <coap/option.hpp>
#include <coap/resource.hpp>
#include <coap/udp_codec.hpp>
#include <coap/uri.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace coap::detail {

// The local host of a session description ("127.0.0.1:5683 <-> 127.0.0.1:40000 UDP",
// "[::1]:5683 <-> ..."): the proxy's own address, which a Proxy-Scheme request without a
// Uri-Host names (section 6.5 step 2).
inline std::string_view local_host_of(std::string_view description) noexcept {
  const auto local = description.substr(0, description.find(' '));
  if (!local.empty() && local.front() == '[') return local.substr(1, local.find(']') - 1);
  return local.substr(0, local.rfind(':'));
}

// Section 5.7.2: a forward-proxy request's target: its Proxy-Uri, or its Proxy-Scheme with
// its Uri-Host, Uri-Port, Uri-Path and Uri-Query (section 6.5 under that scheme).
inline std::error_code proxy_target(const message_view& m, std::string_view local_host, uri& out) {
  if (auto proxy_uri = m.find(option_number::proxy_uri)) return parse_uri(proxy_uri->as_string(), out);
  const auto proxy_scheme = m.find(option_number::proxy_scheme);
  if (!proxy_scheme) return error::invalid_uri;
  const auto s = scheme_from_name(proxy_scheme->as_string());
  if (!s) return error::unsupported_scheme;
  return uri_from_options(m, *s, local_host, default_port(*s), out);
}

// The origin a target is served by: "coap+tcp://host:port" (no path, no query): the key of
// the upstream session pool and the URI async_create_client is given.
inline std::string origin_of(const uri& target) {
  uri origin;
  origin.scheme = target.scheme;
  origin.host_kind = target.host_kind;
  origin.host = target.host;
  origin.port = target.port;
  auto text = to_string(origin);
  if (!text.empty() && text.back() == '/') text.pop_back();
  return text;
}

// RFC 8768 section 3: the Hop-Limit the proxy forwards with: one less than the request's, or
// `initial` (16 by default) when the request has none. 0: the request must not go on (5.08).
inline unsigned next_hop_limit(const message_view& m, unsigned initial) noexcept {
  const auto o = m.find(option_number::hop_limit);
  if (!o) return initial;
  const auto value = o->as_uint();
  return value == 0 ? 0 : value - 1;
}

// Options that belong to one hop, not to the request: each leg does its own block-wise
// transfer (RFC 7959 section 2.10 lets a proxy do so), Observe is not relayed (docs/proxy.md),
// Hop-Limit is recomputed, No-Response would only turn the upstream answer into a timeout.
inline bool is_hop_by_hop(std::uint16_t number) noexcept {
  switch (static_cast<option_number>(number)) {
    case option_number::block1:
    case option_number::block2:
    case option_number::size1:
    case option_number::size2:
    case option_number::observe:
    case option_number::hop_limit:
    case option_number::no_response: return true;
    default: return false;
  }
}

inline bool names_target(std::uint16_t number) noexcept {
  switch (static_cast<option_number>(number)) {
    case option_number::uri_host:
    case option_number::uri_port:
    case option_number::uri_path:
    case option_number::uri_query:
    case option_number::proxy_uri:
    case option_number::proxy_scheme: return true;
    default: return false;
  }
}

// How a forwarded request names its target.
enum class target_form : std::uint8_t {
  origin,  // to the origin server: Uri-* from the target (section 5.7.2)
  proxy,   // to a next-hop proxy: the request's own Proxy-Uri / Proxy-Scheme and Uri-* kept
};

// Section 5.7.1 and 5.7.2: the request the proxy sends on. The method, payload and every
// Safe-to-Forward option (recognised or not) go on; Unsafe options go on only when the proxy
// understands them (the Uri-* and Proxy-* ones, which it rewrites); an unrecognised critical
// option never gets here (section 5.4.1: 4.02 first). Hop-Limit is `hop_limit` (> 0).
template <class Message>
void build_forwarded(const message_view& in, const uri& target, target_form form, unsigned hop_limit,
                     Message& out) {
  out.set_code(in.code());
  out.set_type(message_type::confirmable);
  if (form == target_form::origin)
    add_uri_options(out, target, target.host_kind == host_kind::name, false);
  for (option_view o : in.options()) {
    const auto n = o.number();
    if (is_hop_by_hop(n)) continue;
    if (names_target(n)) {
      if (form == target_form::proxy) out.add_option(n, o.value());
      continue;
    }
    if (is_unsafe(n) && !find_option(n)) continue;  // an elective option the proxy does not know
    out.add_option(n, o.value());
  }
  out.add_uint_option(static_cast<std::uint16_t>(option_number::hop_limit), hop_limit);
  out.set_payload(in.payload());
}

// Section 5.7.3: the request a reverse proxy sends to `origin` for a request whose first
// `prefix_length` Uri-Path segments named the mapping: the origin's path, then the rest.
template <class Message>
void build_reverse(const message_view& in, const uri& origin, std::size_t prefix_length, unsigned hop_limit,
                   Message& out, uri& target) {
  target = origin;
  std::size_t segment = 0;
  for (option_view o : in.options()) {
    if (o.number() == static_cast<std::uint16_t>(option_number::uri_path) && segment++ >= prefix_length)
      target.path.emplace_back(o.as_string());
    if (o.number() == static_cast<std::uint16_t>(option_number::uri_query)) target.query.emplace_back(o.as_string());
  }
  build_forwarded(in, target, target_form::origin, hop_limit, out);
}

// Section 5.6: the cache key: the method, the target (whatever form named it: Proxy-Uri,
// Proxy-Scheme or Uri-*) and every option that is not NoCacheKey (section 5.4.6). Left out
// besides: the options of one hop (Block, Size, Observe: RFC 7641 section 2 makes Observe
// no part of the key) and Hop-Limit, which describes the path, not the resource. FETCH's
// payload would belong to it (RFC 8132 section 2); only GET is cached here.
inline std::string cache_key(const message_view& m, const uri& target) {
  std::string key;
  key.push_back(static_cast<char>(m.code().raw()));
  key += to_string(target);
  for (option_view o : m.options()) {
    const auto n = o.number();
    if (is_no_cache_key(n) || is_hop_by_hop(n) || names_target(n)) continue;
    key.push_back('\0');
    key += std::to_string(n);
    key.push_back(':');
    key += std::to_string(o.value().size());
    key.push_back(':');
    key.append(reinterpret_cast<const char*>(o.value().data()), o.value().size());
  }
  return key;
}

// RFC 7959 section 2.4 towards the client: the representation the upstream leg fetched
// whole, cut into the block the request asks for (block 0 when larger than `room`).
// Block2 and Size2 from upstream are of the other hop: the response is copied without them.
inline constexpr std::size_t client_block_room = 1024;
template <class Message>
bool cut_for_client(const message_view& request, Message& response, std::size_t room = client_block_room) {
  block_counters counters;
  return cut_block2(request, response, room, max_szx, false, counters);
}

// The payload an answer to `req` may carry whole: a 1024-byte block where messages are
// small (UDP's MTU), what the session's peer takes less room for the header and options
// where it takes more (coap+tcp, RFC 8323 section 3.2): a reliable hop is not cut needlessly,
// and an OSCORE answer reaches a coap+tcp client whole (RFC 8613 section 4.1.3.4.2).
inline std::size_t answer_room(const request& req) noexcept {
  constexpr std::size_t headroom = 128;
  const std::size_t max = req.max_message_size();
  return max > client_block_room + headroom ? max - headroom : client_block_room;
}

// The options of a request that decide which block answers it (Block2, Size2), kept past the
// handler call for an answer that comes later (the request's own view is gone by then).
class block_request {
 public:
  explicit block_request(const message_view& m, std::size_t room = client_block_room) : room_(room) {
    coap::message held(m.code());
    for (auto n : {option_number::block2, option_number::size2})
      if (auto o = m.find(n)) held.add_option(n, o->value());
    if (udp_codec::encode(held, wire_)) wire_.clear();
  }
  // Section 2.2: a later block (NUM > 0) is asked for.
  bool asks_later_block() const {
    message_view v;
    if (wire_.empty() || udp_codec::parse(wire_, v)) return false;
    const auto b2 = v.find(option_number::block2);
    const auto asked = b2 ? read_block(b2->value(), false) : std::nullopt;
    return asked && asked->num > 0;
  }
  template <class Message>
  bool cut(Message& response) const {
    message_view v;
    if (wire_.empty() || udp_codec::parse(wire_, v)) return true;
    return cut_for_client(v, response, room_);
  }

 private:
  std::size_t room_;
  std::vector<std::uint8_t> wire_;
};

}  // namespace coap::detail
