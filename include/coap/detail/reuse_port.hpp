// Which socket option lets several sockets, one per thread, share an address and port
// (docs/design.md "Multi-core"): SO_REUSEPORT, which Asio has no name for.
#pragma once

#include <boost/asio/detail/socket_option.hpp>
#include <boost/asio/detail/socket_types.hpp>

namespace coap::detail {

// Linux 3.9+ (and the BSDs): the kernel picks one socket of the group for each datagram or
// connection by a hash of its 4-tuple, so a peer keeps reaching the same socket.
using reuse_port = boost::asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

}  // namespace coap::detail
