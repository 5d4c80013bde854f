// RFC 7252 section 5.7: resource lookup by Uri-Path (templates of resource.hpp).
#pragma once

#include <algorithm>

namespace coap {

namespace detail {
inline std::string_view trim_slashes(std::string_view p) noexcept {
  while (!p.empty() && p.front() == '/') p.remove_prefix(1);
  while (!p.empty() && p.back() == '/') p.remove_suffix(1);
  return p;
}
// Compares the request's Uri-Path segments with "a/b/c" without building a string.
inline bool path_equals(const request& r, std::string_view path) noexcept {
  for (std::string_view segment : r.path()) {
    if (path.empty() && segment.empty()) continue;  // "coap://h/" may carry one empty segment
    const auto slash = path.find('/');
    const std::string_view head = path.substr(0, slash);
    if (head != segment) return false;
    path = slash == std::string_view::npos ? std::string_view() : path.substr(slash + 1);
  }
  return path.empty();
}
}  // namespace detail

template <class Allocator>
bool basic_resource<Allocator>::matches(const request& r) const noexcept {
  return detail::path_equals(r, path);
}

template <class Allocator>
auto basic_resource_registry<Allocator>::add(std::string_view path) -> resource& {
  path = detail::trim_slashes(path);
  if (auto* existing = find(path)) return *existing;
  auto r = std::make_shared<resource>();
  r->path = std::string(path);
  r->id = ++next_id_;
  resources_.push_back(std::move(r));
  return *resources_.back();
}

template <class Allocator>
bool basic_resource_registry<Allocator>::remove(std::string_view path) {
  path = detail::trim_slashes(path);
  auto it = std::find_if(resources_.begin(), resources_.end(),
                         [&](const auto& r) { return r->path == path; });
  if (it == resources_.end()) return false;
  resources_.erase(it);
  return true;
}

template <class Allocator>
auto basic_resource_registry<Allocator>::find(std::string_view path) noexcept -> resource* {
  path = detail::trim_slashes(path);
  for (auto& r : resources_)
    if (r->path == path) return r.get();
  return nullptr;
}

template <class Allocator>
auto basic_resource_registry<Allocator>::find_by_id(std::uint64_t id) noexcept -> resource* {
  for (auto& r : resources_)
    if (r->id == id) return r.get();
  return nullptr;
}

template <class Allocator>
auto basic_resource_registry<Allocator>::find(const request& req) noexcept -> std::shared_ptr<resource> {
  for (auto& r : resources_)
    if (r->matches(req)) return r;
  return nullptr;
}

}  // namespace coap

namespace coap {

namespace detail {
// RFC 6690 section 4.1: does a resource pass the filter "name=value" (value may end in '*')?
template <class Resource>
bool passes_filter(const Resource& r, std::string_view item) {
  const auto eq = item.find('=');
  if (eq == std::string_view::npos) return true;
  const std::string_view name = item.substr(0, eq);
  std::string_view want = item.substr(eq + 1);
  const bool prefix = !want.empty() && want.back() == '*';
  if (prefix) want.remove_suffix(1);
  auto match = [&](std::string_view have) {
    return prefix ? have.substr(0, want.size()) == want : have == want;
  };
  if (name == "href") {
    // The href is "/" + path; compared without building it.
    if (want.empty()) return prefix;
    if (want.front() != '/') return false;
    want.remove_prefix(1);
    return prefix ? std::string_view(r.path).substr(0, want.size()) == want : r.path == want;
  }
  for (const auto& [n, v] : r.attributes) {
    if (n != name) continue;
    // rt and if hold space-separated lists: any one entry may match.
    std::string_view rest = v;
    while (true) {
      const auto space = rest.find(' ');
      if (match(rest.substr(0, space))) return true;
      if (space == std::string_view::npos) break;
      rest.remove_prefix(space + 1);
    }
  }
  return false;
}
}  // namespace detail

template <class Allocator>
std::string basic_resource_registry<Allocator>::well_known_core(const request* filter) const {
  std::string out;
  write_well_known_core(out, filter);
  return out;
}

template <class Allocator>
template <class String>
void basic_resource_registry<Allocator>::write_well_known_core(String& out, const request* filter) const {
  std::string_view item;
  if (filter)
    for (std::string_view q : filter->queries()) {
      item = q;
      break;
    }
  const auto start = out.size();
  for (const auto& r : resources_) {
    if (r->hidden || !detail::passes_filter(*r, item)) continue;
    if (out.size() != start) out += ',';
    out += "</";
    out += r->path;
    out += '>';
    for (const auto& [name, value] : r->attributes) {
      out += ';';
      out += name;
      if (value.empty()) continue;
      out += '=';
      // Numbers (ct, sz) stand bare; everything else is a quoted-string.
      const bool numeric = value.find_first_not_of("0123456789") == std::string::npos;
      if (numeric) {
        out += value;
        continue;
      }
      out += '"';
      for (char c : value) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
      }
      out += '"';
    }
  }
}

}  // namespace coap
