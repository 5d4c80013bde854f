// RFC 7252 section 12.1, RFC 8132, RFC 8323 section 11.1: the registered code names.
#include <coap/code.hpp>

namespace coap {

std::string_view name(code c) noexcept {
  switch (c.raw()) {
    case make_code(0, 1): return "GET";
    case make_code(0, 2): return "POST";
    case make_code(0, 3): return "PUT";
    case make_code(0, 4): return "DELETE";
    case make_code(0, 5): return "FETCH";
    case make_code(0, 6): return "PATCH";
    case make_code(0, 7): return "iPATCH";
    case make_code(2, 1): return "Created";
    case make_code(2, 2): return "Deleted";
    case make_code(2, 3): return "Valid";
    case make_code(2, 4): return "Changed";
    case make_code(2, 5): return "Content";
    case make_code(2, 31): return "Continue";
    case make_code(4, 0): return "Bad Request";
    case make_code(4, 1): return "Unauthorized";
    case make_code(4, 2): return "Bad Option";
    case make_code(4, 3): return "Forbidden";
    case make_code(4, 4): return "Not Found";
    case make_code(4, 5): return "Method Not Allowed";
    case make_code(4, 6): return "Not Acceptable";
    case make_code(4, 8): return "Request Entity Incomplete";
    case make_code(4, 9): return "Conflict";
    case make_code(4, 12): return "Precondition Failed";
    case make_code(4, 13): return "Request Entity Too Large";
    case make_code(4, 15): return "Unsupported Content-Format";
    case make_code(4, 22): return "Unprocessable Entity";
    case make_code(4, 29): return "Too Many Requests";
    case make_code(5, 0): return "Internal Server Error";
    case make_code(5, 1): return "Not Implemented";
    case make_code(5, 2): return "Bad Gateway";
    case make_code(5, 3): return "Service Unavailable";
    case make_code(5, 4): return "Gateway Timeout";
    case make_code(5, 5): return "Proxying Not Supported";
    case make_code(5, 8): return "Hop Limit Reached";
    case make_code(7, 1): return "CSM";
    case make_code(7, 2): return "Ping";
    case make_code(7, 3): return "Pong";
    case make_code(7, 4): return "Release";
    case make_code(7, 5): return "Abort";
    default: return {};
  }
}

std::string to_string(code c) {
  char number[4];
  format_number(c, number);
  std::string out(number, 4);
  if (auto n = name(c); !n.empty()) {
    out += ' ';
    out += n;
  }
  return out;
}

}  // namespace coap
