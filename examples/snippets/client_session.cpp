// coap_session(3), "CoAP Client Non-Encrypted Setup": a client session to a server's IPv4
// address on port 5683, over UDP without security. libcoap's example makes the context
// inside the function and reaches it later through the session; here the caller owns the
// context (and the executor it runs on), and the session refers to it.
#include <coap/session.hpp>
#include <coap/transports/udp.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address_v4.hpp>

#include <iostream>

namespace {

coap::session<coap::udp> setup_client_session(coap::context& context,
                                              boost::asio::ip::address_v4 ip_address) {
  std::error_code ec;
  auto session = coap::session<coap::udp>::create_client(context, {ip_address, 5683}, ec);
  // An empty handle on failure, as libcoap returns NULL; ec says why.
  if (ec) std::cerr << "cannot create client session: " << ec.message() << '\n';
  return session;
}

}  // namespace

int main(int argc, char** argv) {
  boost::asio::io_context io;
  coap::context context(io.get_executor());
  boost::system::error_code bec;
  const auto ip = boost::asio::ip::make_address_v4(argc > 1 ? argv[1] : "127.0.0.1", bec);
  if (bec) {
    std::cerr << "usage: snippet_client_session [IPv4 address]\n";
    return 1;
  }
  auto session = setup_client_session(context, ip);
  if (!session) return 1;
  std::cout << session.description() << '\n';  // like coap_session_str()
  return 0;
}
