// libcoap's coap-server (or coap-server-notls), when installed: found on PATH and run as a
// separate process on a free loopback port for the life of the object. For the client tests
// against a server not built on coap-cpp (skipped when there is none).
#pragma once

#include <boost/asio.hpp>
#include <boost/test/unit_test.hpp>

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <initializer_list>
#include <optional>
#include <string>
#include <thread>

extern char** environ;

namespace coap::test {

// The first of `names` that is an executable file in a directory of $PATH.
inline std::optional<std::string> find_program(std::initializer_list<const char*> names) {
  const char* path = std::getenv("PATH");
  if (!path) return std::nullopt;
  for (const char* name : names) {
    std::string dirs = path;
    for (std::size_t start = 0; start <= dirs.size();) {
      auto end = dirs.find(':', start);
      if (end == std::string::npos) end = dirs.size();
      auto candidate = dirs.substr(start, end - start) + "/" + name;
      if (::access(candidate.c_str(), X_OK) == 0) return candidate;
      start = end + 1;
    }
  }
  return std::nullopt;
}

// `program -A 127.0.0.1 -p PORT -v 0` on a port free for UDP, from construction (once it
// listens: 300 ms) to destruction (SIGTERM, then reaped).
struct libcoap_server {
  pid_t pid = -1;
  std::uint16_t port = 0;
  explicit libcoap_server(const std::string& program) {
    boost::asio::io_context probe;
    boost::asio::ip::udp::socket s(probe, {boost::asio::ip::make_address("127.0.0.1"), 0});
    port = s.local_endpoint().port();
    s.close();
    const std::string port_text = std::to_string(port);
    const char* argv[] = {program.c_str(), "-A", "127.0.0.1", "-p", port_text.c_str(), "-v", "0", nullptr};
    BOOST_TEST_REQUIRE(posix_spawn(&pid, program.c_str(), nullptr, nullptr, const_cast<char**>(argv), environ) == 0);
    // Until it listens (a TCP connect would fail before).
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  ~libcoap_server() {
    if (pid > 0) {
      ::kill(pid, SIGTERM);
      ::waitpid(pid, nullptr, 0);
    }
  }
  libcoap_server(const libcoap_server&) = delete;
  libcoap_server& operator=(const libcoap_server&) = delete;
};

}  // namespace coap::test
