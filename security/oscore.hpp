// RFC 8613: OSCORE. The security policy `coap::oscore` of session<udp|tcp, oscore> and
// set_oscore (policy.hpp), built on the sans-I/O core: security contexts (section 3), the COSE
// inputs (section 5), the OSCORE option (section 6.1), replay protection (section 7.4) and
// message protection (sections 4 and 8).
#pragma once

#include <coap/security/oscore/algorithm.hpp>
#include <coap/security/oscore/context.hpp>
#include <coap/security/oscore/cose.hpp>
#include <coap/security/oscore/error.hpp>
#include <coap/security/oscore/option_value.hpp>
#include <coap/security/oscore/policy.hpp>
#include <coap/security/oscore/protect.hpp>
#include <coap/security/oscore/replay_window.hpp>
