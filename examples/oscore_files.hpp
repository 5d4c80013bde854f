// libcoap 4.3.5's `-E conf_file[,seq_file]` for coap-client and coap-server: RFC 8613
// section 3.2's input parameters from a coap-oscore-conf(5) file, and Appendix B.1.1's
// Sender Sequence Number kept in seq_file across runs (security/oscore/seq_file.hpp).
#pragma once

#include <coap/security/oscore.hpp>
#include <coap/security/oscore/conf_file.hpp>
#include <coap/security/oscore/seq_file.hpp>

#include <string>
#include <vector>

namespace coap_examples {

// The contexts of `-E text`: a client's one (its first recipient_id), or a server's one per
// recipient_id. seq_file, when given, is applied to the first: the one whose Sender Context
// the others share (security/oscore/store.hpp). False with `error` set when a file is refused.
inline bool load_oscore(const std::string& text, bool server, std::vector<coap::oscore::context_params>& out,
                        std::string& error) {
  namespace core = coap::oscore_core;
  const auto comma = text.find(',');
  const std::string conf_path = text.substr(0, comma);
  core::conf conf;
  core::conf_diagnostic where;
  if (auto ec = core::load_conf(conf_path, conf, where)) {
    error = where.to_string();
    return false;
  }
  if (conf.recipient_ids.empty()) {
    error = conf_path + ": no recipient_id";
    return false;
  }
  out.clear();
  const std::size_t count = server ? conf.recipient_ids.size() : 1;
  for (std::size_t i = 0; i < count; ++i) {
    auto& p = out.emplace_back();
    if (auto ec = conf.params(i, p)) {
      error = conf_path + ": " + ec.message();
      return false;
    }
  }
  if (comma != std::string::npos) {
    core::sequence_number_file_options options;
    options.interval = conf.ssn_freq;
    std::error_code ec;
    auto file = core::sequence_number_file::open(text.substr(comma + 1), options, ec, where);
    if (!file) {
      error = where.to_string();
      return false;
    }
    file->apply(out.front());
  }
  return true;
}

}  // namespace coap_examples
