// RFC 8613 Appendix B.1.1: the Sender Sequence Number kept in a file across restarts, the
// `seq_file` of `coap-client -E conf_file,seq_file` in libcoap 4.3.5's format: the decimal
// number from which on no Sender Sequence Number has been used, then '\n' (e.g. "2\n" after
// the numbers 0 and 1). Built on context_params::persistence (the core's callback store).
//
// Before a number divisible by K is used, the file is rewritten to that number plus K (write
// a temporary file beside it, fsync, rename over, fsync the folder), so it always bounds every
// number used. On start the context resumes at the value read, rounded up to a multiple of K
// (plus a margin F if asked): no number is ever used twice, whoever wrote the file last,
// libcoap or us. One process per file: nothing locks it.
#pragma once

#include <coap/security/oscore/conf_file.hpp>
#include <coap/security/oscore/context.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <system_error>

namespace coap::oscore_core {

struct sequence_number_file_options {
  std::uint64_t interval = 1;  // K, libcoap's ssn_freq; at least 1
  std::uint64_t margin = 0;    // F: numbers skipped on start beyond the stored bound
  // fsync the file and its folder on every store. Without it a power loss (not a crash of the
  // process) may lose the last store; then F should cover it.
  bool sync = true;
};

class sequence_number_file {
 public:
  // Reads `path` (a missing file is created holding 0; an empty one reads as 0, as in
  // libcoap). Errors: the file's errno code; oscore_conf_error::bad_sequence_number_file for
  // content other than blanks around one decimal number; oscore_error::sequence_number_exhausted
  // when the number to resume at passes 2^40 - 1. `where` says which and why.
  [[nodiscard]] static std::optional<sequence_number_file> open(const std::string& path,
                                                  const sequence_number_file_options& options,
                                                  std::error_code& ec, conf_diagnostic& where);

  // The first Sender Sequence Number to use.
  std::uint64_t start() const noexcept;
  // The value the file holds now: every number used is below it.
  std::uint64_t stored() const noexcept;
  const std::string& path() const noexcept;

  // Sets params.initial_sequence_number and params.persistence (interval K and a store that
  // rewrites the file; the store shares this object's state, so it may outlive it). A store
  // that cannot write returns false: the core then refuses to use the number
  // (oscore_error::sequence_number_not_stored).
  void apply(context_params& params) const;

 private:
  struct state;
  explicit sequence_number_file(std::shared_ptr<state> s) noexcept : state_(std::move(s)) {}
  std::shared_ptr<state> state_;
};

// The file format alone: blanks, one decimal number, blanks (or nothing: 0).
[[nodiscard]] std::error_code parse_sequence_number(std::string_view text, std::uint64_t& out, conf_diagnostic& where);

}  // namespace coap::oscore_core
