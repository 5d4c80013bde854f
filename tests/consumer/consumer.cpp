// Uses coap-cpp through @coap_cpp//:coap; tools/test expects it to print "2.05 Content".
#include <coap/coap.hpp>

#include <iostream>

int main() {
  std::cout << coap::to_string(coap::code(coap::response_code::content)) << '\n';
}
