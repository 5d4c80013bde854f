// RFC 7252 section 5.1 and RFC 8132 sections 2 and 3: which methods are safe (no side effect:
// GET, FETCH) and which idempotent (repeating them changes nothing more: GET, FETCH, PUT,
// DELETE and iPATCH; not POST nor PATCH).
#pragma once

#include <coap/code.hpp>

namespace coap::detail {

constexpr bool is_idempotent(method m) noexcept {
  switch (m) {
    case method::get:
    case method::fetch:
    case method::put:
    case method::delete_:
    case method::ipatch: return true;
    case method::post:
    case method::patch: return false;
  }
  return false;
}

}  // namespace coap::detail
