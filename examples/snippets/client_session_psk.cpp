// coap_session(3), "CoAP Client PSK Setup": a DTLS client session with an identity and a
// pre-shared key (coap_new_client_session_psk). A PSK program: it links Botan's TLS, and
// none of the certificate code of security::pki.
#include <coap/security/psk.hpp>
#include <coap/session.hpp>
#include <coap/transports/udp.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address_v4.hpp>

#include <cstdint>
#include <iostream>
#include <string>
#include <vector>

namespace {

coap::session<coap::udp, coap::psk> setup_client_session_psk(coap::context& context,
                                                              boost::asio::ip::address_v4 ip_address,
                                                              const std::string& identity,
                                                              const std::vector<std::uint8_t>& key) {
  coap::security::psk_client_config psk;
  psk.identity = identity;
  psk.key = key;
  std::error_code ec;
  auto session = coap::session<coap::udp, coap::psk>::create_client(context, {ip_address, 5684}, psk, ec);
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
    std::cerr << "usage: snippet_client_session_psk [IPv4 address]\n";
    return 1;
  }
  const std::string key = "secretPSK";
  auto session = setup_client_session_psk(context, ip, "coap-client", {key.begin(), key.end()});
  if (!session) return 1;
  std::cout << session.description() << '\n';  // like coap_session_str()
  return 0;
}
