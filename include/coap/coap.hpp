// coap-cpp: the whole public interface in one include.
#pragma once

#include <coap/code.hpp>
#include <coap/content_format.hpp>
#include <coap/error.hpp>
#include <coap/message.hpp>
#include <coap/message_type.hpp>
#include <coap/message_view.hpp>
#include <coap/option.hpp>
#include <coap/option_view.hpp>
#include <coap/tcp_codec.hpp>
#include <coap/token.hpp>
#include <coap/udp_codec.hpp>
