// RFC 7252 section 6.5: reading a request's path and query back from its options.
#include <coap/resource.hpp>

namespace coap {

std::string request::path_string() const {
  std::string out;
  bool first = true;
  for (std::string_view s : path()) {
    if (!first) out += '/';
    out += s;
    first = false;
  }
  return out;
}

std::optional<std::string_view> request::query(std::string_view key) const noexcept {
  for (std::string_view q : queries()) {
    const auto eq = q.find('=');
    if (q.substr(0, eq) != key) continue;
    return eq == std::string_view::npos ? std::string_view() : q.substr(eq + 1);
  }
  return std::nullopt;
}

}  // namespace coap
