// RFC 7252 section 9 "NoSec": no security. Stateless; costs a session nothing.
#pragma once

#include <coap/policies.hpp>

namespace coap {
namespace security {

struct no_sec {
  static constexpr bool secure = false;
};
static_assert(security_policy<no_sec>);

}  // namespace security

using security::no_sec;

}  // namespace coap
