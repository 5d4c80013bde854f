// What a server session tells its endpoint when it ends, so that the endpoint forgets it at
// once (a closed session must not hold its peer's address, its place under the caps, or a
// handshake slot). Not a std::function: its capture would be allocated per session from the
// global heap, outside the session's allocator.
#pragma once

namespace coap::transports {

template <class Session>
class session_owner {
 public:
  virtual ~session_owner() = default;
  virtual void session_closed(Session& s) = 0;
};

}  // namespace coap::transports
