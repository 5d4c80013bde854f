// RFC 7252 section 8.1 and 12.8, RFC 7390 section 2.4: how a UDP endpoint joins a multicast
// group and tells a request to the group from one to itself. One socket per joined group,
// bound to the group's address and the endpoint's port: the kernel delivers to it only what
// was sent to the group, so "arrived by multicast" needs no IP_PKTINFO. The endpoint's own
// (unicast) socket stops taking group traffic (IP_MULTICAST_ALL off) and allows other servers
// on the port (SO_REUSEADDR, as libcoap's endpoints have): answers go from it, so the client
// sees the server's unicast address and sends any follow-up (Block2) there. Linux.
#pragma once

#include <coap/detail/multicast_answers.hpp>
#include <coap/udp_codec.hpp>

#include <boost/asio/ip/udp.hpp>
#include <boost/asio/ip/v6_only.hpp>

#include <cstring>
#include <memory>
#include <new>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>

#ifndef IPV6_MULTICAST_ALL
#define IPV6_MULTICAST_ALL 29  // Linux 4.20; older kernels ignore the call
#endif

namespace coap::detail {

// Groups are joined without security only: DTLS has no multicast, and group OSCORE is not done.
template <class Security>
constexpr bool joins_groups() noexcept {
  if constexpr (Security::secure) return false;
  else if constexpr (requires { Security::message_secure; }) return !Security::message_secure;
  else return true;
}

inline std::error_code last_socket_error() { return {errno, std::system_category()}; }

// The interface's index; 0 for an empty name (the system's choice).
inline std::error_code interface_index(std::string_view name, unsigned& index) {
  index = 0;
  if (name.empty()) return {};
  index = ::if_nametoindex(std::string(name).c_str());
  return index ? std::error_code() : std::make_error_code(std::errc::no_such_device);
}

// Joins `group` on `socket` (IP_ADD_MEMBERSHIP / IPV6_JOIN_GROUP), on interface `index`.
inline std::error_code join_membership(boost::asio::ip::udp::socket& socket, const boost::asio::ip::address& group,
                                       unsigned index) {
  const int fd = socket.native_handle();
  if (group.is_v4()) {
    ip_mreqn request{};
    const auto bytes = group.to_v4().to_bytes();
    std::memcpy(&request.imr_multiaddr, bytes.data(), bytes.size());
    request.imr_ifindex = static_cast<int>(index);
    if (::setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &request, sizeof request) != 0) return last_socket_error();
    return {};
  }
  ipv6_mreq request{};
  const auto bytes = group.to_v6().to_bytes();
  std::memcpy(&request.ipv6mr_multiaddr, bytes.data(), bytes.size());
  request.ipv6mr_interface = index;
  if (::setsockopt(fd, IPPROTO_IPV6, IPV6_JOIN_GROUP, &request, sizeof request) != 0) return last_socket_error();
  return {};
}

// Only traffic for groups this socket joined (not every group any socket of the host joined).
inline void own_groups_only(boost::asio::ip::udp::socket& socket, bool v6) {
  const int off = 0;
  if (v6) ::setsockopt(socket.native_handle(), IPPROTO_IPV6, IPV6_MULTICAST_ALL, &off, sizeof off);
  else ::setsockopt(socket.native_handle(), IPPROTO_IP, IP_MULTICAST_ALL, &off, sizeof off);
}

// The endpoint's unicast socket, before its first join: see the file comment.
inline std::error_code prepare_unicast_socket(boost::asio::ip::udp::socket& socket) {
  boost::system::error_code ec;
  socket.set_option(boost::asio::socket_base::reuse_address(true), ec);
  if (ec) return ec;
  own_groups_only(socket, socket.local_endpoint(ec).address().is_v6());
  return {};
}

// One joined group of an endpoint: its socket, and the loop that hands each datagram with its
// sender to Endpoint::on_group_datagram.
template <class Endpoint>
class group_listener : public std::enable_shared_from_this<group_listener<Endpoint>> {
 public:
  using socket_type = boost::asio::ip::udp::socket;
  using endpoint_type = socket_type::endpoint_type;

  template <class Executor>
  group_listener(const Executor& ex, std::weak_ptr<Endpoint> owner) : socket_(ex), owner_(std::move(owner)) {}

  // Binds group:port (link-local IPv6 groups on the interface's scope) and joins the group.
  std::error_code open(const boost::asio::ip::address& group, std::uint16_t port, unsigned index) {
    boost::system::error_code bec;
    endpoint_type local(group, port);
    if (group.is_v6()) {
      auto v6 = group.to_v6();
      if (v6.is_multicast_link_local() || v6.is_multicast_node_local()) v6.scope_id(index);
      local = endpoint_type(v6, port);
    }
    socket_.open(local.protocol(), bec);
    if (!bec) socket_.set_option(boost::asio::socket_base::reuse_address(true), bec);
    if (!bec && group.is_v6()) socket_.set_option(boost::asio::ip::v6_only(true), bec);
    if (!bec) socket_.bind(local, bec);
    if (!bec) socket_.non_blocking(true, bec);
    if (bec) return bec;
    own_groups_only(socket_, group.is_v6());
    group_ = local;
    return join_membership(socket_, group, index);
  }
  void start() {
    buffer_.resize(receive_buffer_size);
    receive();
  }
  void close() noexcept {
    boost::system::error_code ignored;
    socket_.close(ignored);
  }
  const endpoint_type& group() const noexcept { return group_; }

 private:
  static constexpr std::size_t receive_buffer_size = 65536;

  void receive() {
    socket_.async_receive_from(boost::asio::buffer(buffer_), sender_,
                               [self = this->shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
                                 if (ec == boost::asio::error::operation_aborted || !self->socket_.is_open()) return;
                                 auto owner = self->owner_.lock();
                                 if (!owner) return;
                                 if (!ec) owner->on_group_datagram(std::span<const std::uint8_t>(self->buffer_.data(), n),
                                                                   self->sender_);
                                 self->receive();
                               });
  }

  socket_type socket_;
  std::weak_ptr<Endpoint> owner_;
  std::vector<std::uint8_t> buffer_;  // set-up memory, once per joined group
  endpoint_type sender_;
  endpoint_type group_;
};

// What a UDP endpoint keeps for section 8: its joined groups and the answers waiting out
// their leisure. Empty (two pointers and a vector) until the first join.
template <class Endpoint, class Allocator>
class group_membership {
 public:
  using answers_type = delayed_group_answers<boost::asio::ip::udp::socket, Allocator>;

  // Joins `group` on `interface` for `endpoint`, whose unicast socket is `unicast`.
  std::error_code join(basic_context<Allocator>& ctx, const std::shared_ptr<Endpoint>& endpoint,
                       boost::asio::ip::udp::socket& unicast, const boost::asio::ip::address& group,
                       std::string_view interface) {
    boost::system::error_code bec;
    const auto local = unicast.local_endpoint(bec);
    if (bec) return bec;
    if (local.address().is_v6() != group.is_v6()) return std::make_error_code(std::errc::operation_not_supported);
    unsigned index = 0;
    if (auto ec = interface_index(interface, index)) return ec;
    for (const auto& l : listeners_)
      if (l->group().address() == group || (l->group().address().is_v6() && group.is_v6() &&
                                             l->group().address().to_v6().to_bytes() == group.to_v6().to_bytes()))
        return std::make_error_code(std::errc::address_in_use);  // joined already: one socket per group
    try {
      if (!answers_) {
        if (auto ec = prepare_unicast_socket(unicast)) return ec;
        answers_ = std::allocate_shared<answers_type>(ctx.get_allocator(), ctx, unicast);
      }
      listeners_.reserve(listeners_.size() + 1);
      auto listener = std::make_shared<group_listener<Endpoint>>(ctx.get_executor(), endpoint);
      if (auto ec = listener->open(group, local.port(), index)) return ec;
      listener->start();
      listeners_.push_back(std::move(listener));
    } catch (const std::bad_alloc&) {
      return std::make_error_code(std::errc::not_enough_memory);
    }
    return {};
  }
  answers_type* answers() const noexcept { return answers_.get(); }
  void close() noexcept {
    for (auto& l : listeners_) l->close();
    listeners_.clear();
    if (answers_) answers_->close();
  }

 private:
  std::vector<std::shared_ptr<group_listener<Endpoint>>> listeners_;
  std::shared_ptr<answers_type> answers_;
};

// Section 8.1 and the resource's choice: does a datagram that arrived at a group reach the
// resources? A NON request to a resource that did not opt out (resource::multicast(false)).
// Anything else is dropped here, before it makes a session: never an ACK, never an RST.
template <class Context>
bool group_request_admitted(Context& ctx, std::span<const std::uint8_t> d) {
  message_view m;
  if (udp_codec::parse(d, m) || !group_request_accepted(m.type(), m.code())) return false;
  const request req(m, {});
  const auto r = ctx.resources().find(req);
  return !r || r->serves_multicast;
}

}  // namespace coap::detail
