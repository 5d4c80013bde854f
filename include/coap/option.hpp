// RFC 7252 section 5.4 and 12.2: option numbers, their properties and value formats.
// Also RFC 7641 (Observe), RFC 7959 (Block1/Block2/Size2), RFC 8323 section 5 (signalling
// options), RFC 9175 (Echo, Request-Tag), RFC 8768 (Hop-Limit), RFC 7967 (No-Response).
#pragma once

#include <coap/code.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <string_view>

namespace coap {

enum class option_number : std::uint16_t {
  if_match = 1,
  uri_host = 3,
  etag = 4,
  if_none_match = 5,
  observe = 6,
  uri_port = 7,
  location_path = 8,
  oscore = 9,
  uri_path = 11,
  content_format = 12,
  max_age = 14,
  uri_query = 15,
  hop_limit = 16,
  accept = 17,
  location_query = 20,
  block2 = 23,
  block1 = 27,
  size2 = 28,
  proxy_uri = 35,
  proxy_scheme = 39,
  size1 = 60,
  echo = 252,
  no_response = 258,
  request_tag = 292,
};

// RFC 7252 section 3.2.
enum class option_format : std::uint8_t { empty, opaque, uint, string };

// The properties that follow from the number alone (RFC 7252 section 5.4.6).
constexpr bool is_critical(std::uint16_t number) noexcept { return (number & 1u) != 0; }
constexpr bool is_unsafe(std::uint16_t number) noexcept { return (number & 2u) != 0; }
constexpr bool is_no_cache_key(std::uint16_t number) noexcept { return (number & 0x1eu) == 0x1cu; }

// A registered option: its name, value format, length bounds and whether it may repeat.
struct option_definition {
  std::uint16_t number;
  std::string_view name;
  option_format format;
  std::uint16_t min_length;
  std::uint16_t max_length;
  bool repeatable;

  constexpr bool critical() const noexcept { return is_critical(number); }
  constexpr bool unsafe() const noexcept { return is_unsafe(number); }
  constexpr bool no_cache_key() const noexcept { return is_no_cache_key(number); }
};

// RFC 8323 sections 5.3 to 5.6: the signalling options. Their numbers mean something only
// with their signal code (2 is Max-Message-Size in a CSM, Custody in a Ping).
namespace signal_option {
inline constexpr std::uint16_t max_message_size = 2;     // 7.01 CSM, section 5.3.1
inline constexpr std::uint16_t block_wise_transfer = 4;  // 7.01 CSM, section 5.3.2
inline constexpr std::uint16_t custody = 2;              // 7.02 Ping and 7.03 Pong, section 5.4.1
inline constexpr std::uint16_t alternative_address = 2;  // 7.04 Release, section 5.5.1
inline constexpr std::uint16_t hold_off = 4;             // 7.04 Release, section 5.5.2
inline constexpr std::uint16_t bad_csm_option = 2;       // 7.05 Abort, section 5.6.1
}  // namespace signal_option

namespace detail {
// Sorted by number: lookups are a short constexpr search.
inline constexpr option_definition option_registry[] = {
    {1, "If-Match", option_format::opaque, 0, 8, true},
    {3, "Uri-Host", option_format::string, 1, 255, false},
    {4, "ETag", option_format::opaque, 1, 8, true},
    {5, "If-None-Match", option_format::empty, 0, 0, false},
    {6, "Observe", option_format::uint, 0, 3, false},
    {7, "Uri-Port", option_format::uint, 0, 2, false},
    {8, "Location-Path", option_format::string, 0, 255, true},
    {9, "OSCORE", option_format::opaque, 0, 255, false},
    {11, "Uri-Path", option_format::string, 0, 255, true},
    {12, "Content-Format", option_format::uint, 0, 2, false},
    {14, "Max-Age", option_format::uint, 0, 4, false},
    {15, "Uri-Query", option_format::string, 0, 255, true},
    {16, "Hop-Limit", option_format::uint, 1, 1, false},
    {17, "Accept", option_format::uint, 0, 2, false},
    {20, "Location-Query", option_format::string, 0, 255, true},
    {23, "Block2", option_format::uint, 0, 3, false},
    {27, "Block1", option_format::uint, 0, 3, false},
    {28, "Size2", option_format::uint, 0, 4, false},
    {35, "Proxy-Uri", option_format::string, 1, 1034, false},
    {39, "Proxy-Scheme", option_format::string, 1, 255, false},
    {60, "Size1", option_format::uint, 0, 4, false},
    {252, "Echo", option_format::opaque, 1, 40, false},
    {258, "No-Response", option_format::uint, 0, 1, false},
    {292, "Request-Tag", option_format::opaque, 0, 8, true},
};

// RFC 8323 section 5: signalling options are numbered per signal code.
struct signal_option_entry {
  signal_code signal;
  option_definition definition;
};
inline constexpr signal_option_entry signal_option_registry[] = {
    {signal_code::csm, {signal_option::max_message_size, "Max-Message-Size", option_format::uint, 0, 4, false}},
    {signal_code::csm, {signal_option::block_wise_transfer, "Block-Wise-Transfer", option_format::empty, 0, 0, false}},
    {signal_code::ping, {signal_option::custody, "Custody", option_format::empty, 0, 0, false}},
    {signal_code::pong, {signal_option::custody, "Custody", option_format::empty, 0, 0, false}},
    {signal_code::release, {signal_option::alternative_address, "Alternative-Address", option_format::string, 1, 255, true}},
    {signal_code::release, {signal_option::hold_off, "Hold-Off", option_format::uint, 0, 3, false}},
    {signal_code::abort, {signal_option::bad_csm_option, "Bad-CSM-Option", option_format::uint, 0, 2, false}},
};
}  // namespace detail

namespace detail {
// Every registered number is below 293: a direct index makes lookups one load (the encoder
// looks up every option it writes).
inline constexpr std::size_t option_index_size = 293;
constexpr std::array<std::int8_t, option_index_size> make_option_index() noexcept {
  std::array<std::int8_t, option_index_size> index{};
  for (auto& i : index) i = -1;
  for (std::size_t i = 0; i < std::size(option_registry); ++i)
    index[option_registry[i].number] = static_cast<std::int8_t>(i);
  return index;
}
inline constexpr auto option_index = make_option_index();
}  // namespace detail

// The registered definition of a request/response option, or nullptr when unknown.
constexpr const option_definition* find_option(std::uint16_t number) noexcept {
  if (number >= detail::option_index_size) return nullptr;
  const auto i = detail::option_index[number];
  return i < 0 ? nullptr : &detail::option_registry[static_cast<std::size_t>(i)];
}

// The definition of an option inside a signalling message (RFC 8323 section 5).
constexpr const option_definition* find_signal_option(code signal, std::uint16_t number) noexcept {
  for (const auto& e : detail::signal_option_registry)
    if (code(e.signal) == signal && e.definition.number == number) return &e.definition;
  return nullptr;
}

// Typed option tags: the value type of each option is known at compile time, so that
// `msg.add(options::uri_path{}, 42)` or `msg.add(options::content_format{}, "x")` does not
// compile (see message.hpp).
namespace options {
template <option_number N>
struct tag {
  static constexpr std::uint16_t number = static_cast<std::uint16_t>(N);
  static constexpr const option_definition& definition = *find_option(number);
  static constexpr option_format format = definition.format;
};
using if_match = tag<option_number::if_match>;
using uri_host = tag<option_number::uri_host>;
using etag = tag<option_number::etag>;
using if_none_match = tag<option_number::if_none_match>;
using observe = tag<option_number::observe>;
using uri_port = tag<option_number::uri_port>;
using location_path = tag<option_number::location_path>;
using oscore = tag<option_number::oscore>;
using uri_path = tag<option_number::uri_path>;
using content_format = tag<option_number::content_format>;
using max_age = tag<option_number::max_age>;
using uri_query = tag<option_number::uri_query>;
using hop_limit = tag<option_number::hop_limit>;
using accept = tag<option_number::accept>;
using location_query = tag<option_number::location_query>;
using block2 = tag<option_number::block2>;
using block1 = tag<option_number::block1>;
using size2 = tag<option_number::size2>;
using proxy_uri = tag<option_number::proxy_uri>;
using proxy_scheme = tag<option_number::proxy_scheme>;
using size1 = tag<option_number::size1>;
using echo = tag<option_number::echo>;
using no_response = tag<option_number::no_response>;
using request_tag = tag<option_number::request_tag>;

template <class T>
concept string_option = (T::format == option_format::string);
template <class T>
concept uint_option = (T::format == option_format::uint);
template <class T>
concept opaque_option = (T::format == option_format::opaque);
template <class T>
concept empty_option = (T::format == option_format::empty);
}  // namespace options

}  // namespace coap
