// coap_session(3), "CoAP Client PKI Setup": a DTLS client session with a certificate, its
// private key and the CA the server must chain to (coap_new_client_session_pki), every field
// of the manual's coap_dtls_pki_t set as there. A PKI program: no PSK code of ours.
#include <coap/security/pki.hpp>
#include <coap/session.hpp>
#include <coap/transports/udp.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address_v4.hpp>

#include <iostream>
#include <string>

namespace {

bool verify_cn_callback(const coap::security::pki_cn_info& info) {
  // Check that the CN is valid (info.cn, info.der, info.depth, info.validated).
  (void)info;
  return true;
}

coap::session<coap::udp, coap::pki> setup_client_session_pki(coap::context& context,
                                                              boost::asio::ip::address_v4 ip_address,
                                                              const std::string& public_cert_file,
                                                              const std::string& private_key_file,
                                                              const std::string& ca_file) {
  coap::security::pki_config dtls_pki;
  dtls_pki.verify_peer_cert = true;
  dtls_pki.require_peer_cert = true;
  dtls_pki.allow_self_signed = true;
  dtls_pki.allow_expired_certs = true;
  dtls_pki.cert_chain_validation = true;
  dtls_pki.cert_chain_verify_depth = 1;
  dtls_pki.check_cert_revocation = true;
  dtls_pki.allow_no_crl = true;
  dtls_pki.allow_expired_crl = true;
  dtls_pki.validate_cn = verify_cn_callback;
  dtls_pki.key = coap::security::pki_key::from_files(ca_file, public_cert_file, private_key_file);
  std::error_code ec;
  auto session = coap::session<coap::udp, coap::pki>::create_client(context, {ip_address, 5684}, dtls_pki, ec);
  if (ec) std::cerr << "cannot create client session: " << ec.message() << '\n';
  return session;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::cerr << "usage: snippet_client_session_pki IPv4-address cert.pem key.pem ca.pem\n";
    return 1;
  }
  boost::asio::io_context io;
  coap::context context(io.get_executor());
  boost::system::error_code bec;
  const auto ip = boost::asio::ip::make_address_v4(argv[1], bec);
  if (bec) {
    std::cerr << "not an IPv4 address: " << argv[1] << '\n';
    return 1;
  }
  auto session = setup_client_session_pki(context, ip, argv[2], argv[3], argv[4]);
  if (!session) return 1;
  std::cout << session.description() << '\n';
  return 0;
}
