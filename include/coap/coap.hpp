// coap-cpp: the core interface in one include. Transports are separate
// (<coap/transports/udp.hpp>, <coap/transports/tcp.hpp>), as are security policies.
#pragma once

#include <coap/block.hpp>
#include <coap/code.hpp>
#include <coap/content_format.hpp>
#include <coap/context.hpp>
#include <coap/error.hpp>
#include <coap/link_format.hpp>
#include <coap/message.hpp>
#include <coap/message_type.hpp>
#include <coap/message_view.hpp>
#include <coap/option.hpp>
#include <coap/option_view.hpp>
#include <coap/resource.hpp>
#include <coap/session.hpp>
#include <coap/session_config.hpp>
#include <coap/session_event.hpp>
#include <coap/tcp_codec.hpp>
#include <coap/token.hpp>
#include <coap/udp_codec.hpp>
#include <coap/uri.hpp>
