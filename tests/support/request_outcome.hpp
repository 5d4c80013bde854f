// One request through a real session, waited for on the test's io_context: what the
// session-level tests ask of a client session, and what came back.
#pragma once

#include "run_until.hpp"

#include <coap/message.hpp>

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <system_error>
#include <utility>

namespace coap::test {

struct outcome {
  std::error_code ec;
  coap::message response;
  bool done = false;  // false: the time limit passed first
};

// Sends `m` on `s` and runs `io` in `step`s until its handler ran or `limit` passed.
template <class Session>
outcome ask(boost::asio::io_context& io, Session& s, coap::message m, std::chrono::milliseconds limit,
            std::chrono::milliseconds step) {
  outcome out;
  s.async_request(std::move(m), [&](std::error_code ec, coap::message r) { out = {ec, std::move(r), true}; });
  (void)run_until(io, [&] { return out.done; }, limit, step);
  return out;
}

}  // namespace coap::test
