// The test PKI (tests/support/make_certs.sh, a data dependency of the test), made once per run
// into $TEST_TMPDIR or a fresh temporary directory. Bazel runs tests from the runfiles root,
// where the script is at tests/support/make_certs.sh.
#pragma once

#include <stdlib.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

namespace coap::test {

// The directory of the test PKI, made on first use.
inline const std::string& cert_dir() {
  static const std::string dir = [] {
    namespace fs = std::filesystem;
    fs::path script = "tests/support/make_certs.sh";
    if (!fs::exists(script))
      if (const char* src = std::getenv("TEST_SRCDIR")) {
        const char* ws = std::getenv("TEST_WORKSPACE");
        script = fs::path(src) / (ws ? ws : "_main") / "tests/support/make_certs.sh";
      }
    if (!fs::exists(script)) throw std::runtime_error("make_certs.sh not found");
    std::string out;
    if (const char* tmp = std::getenv("TEST_TMPDIR"); tmp && *tmp) {
      out = std::string(tmp) + "/certs";
    } else {
      std::string tmpl = (fs::temp_directory_path() / "coap-certs-XXXXXX").string();
      if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
      out = tmpl;
    }
    const std::string cmd = "bash '" + script.string() + "' '" + out + "'";
    if (std::system(cmd.c_str()) != 0) throw std::runtime_error("make_certs.sh failed: " + cmd);
    return out;
  }();
  return dir;
}

// The path of file `name` of the test PKI.
inline std::string cert(const std::string& name) { return cert_dir() + "/" + name; }

// The bytes of file `name` of the test PKI.
inline std::vector<std::uint8_t> file_bytes(const std::string& name) {
  std::ifstream in(cert(name), std::ios::binary);
  return std::vector<std::uint8_t>(std::istreambuf_iterator<char>(in), {});
}

}  // namespace coap::test
