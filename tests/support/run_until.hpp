// Runs an io_context in short steps until a condition holds or a time limit passes: how the
// loopback tests wait for what their scripted peers and sessions do.
#pragma once

#include <boost/asio/io_context.hpp>

#include <chrono>

namespace coap::test {

// Runs `io` for `step` at a time until done() (true) or `limit` has passed (false). done() may
// consume input: it is called until it first says yes, never after.
template <class Pred>
bool run_until(boost::asio::io_context& io, Pred&& done, std::chrono::milliseconds limit,
               std::chrono::milliseconds step) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= end) return false;
    io.run_for(step);
    io.restart();
  }
  return true;
}

}  // namespace coap::test
