// What every benchmark program (bench/*_load.cpp, bench/*_bench_server.cpp, bench/dtls_bench.cpp)
// does alike: option parsing, error exits, clocks and CPU time, a latency histogram, and the
// CPU time and memory of another process read from /proc. Plain C++ and POSIX: the load
// generators are not built on coap-cpp (or Boost), and this header keeps it so.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace bench {

// "PROGRAM: WHAT" on stderr, exit status 2: a usage error.
[[noreturn]] inline void usage_error(const char* program, const char* what) {
  std::fprintf(stderr, "%s: %s\n", program, what);
  std::exit(2);
}

// "PROGRAM: WHAT: strerror(errno)" on stderr, exit status 1: a system call failed.
[[noreturn]] inline void system_error(const char* program, const char* what) {
  std::fprintf(stderr, "%s: %s: %s\n", program, what, std::strerror(errno));
  std::exit(1);
}

// --host and --port, the server's address (where a server listens, or the one a load
// generator loads): every program's options derive from it, and parse_arguments reads them.
struct address_options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 5683;
};

// Walks argv[first..argc): --host and --port go into `address`; for any other argument
// `handle(option, value)` is called, where value() takes the next argument as the option's
// value (usage("missing option value") when there is none); an option `handle` does not know
// (it returns false) is usage("unknown option ..."). `usage` does not return.
template <class Handler>
void parse_arguments(int argc, char** argv, int first, void (*usage)(const char*), address_options& address,
                     Handler&& handle) {
  for (int i = first; i < argc; ++i) {
    const std::string_view a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage("missing option value");
      return argv[++i];
    };
    if (a == "--host") address.host = value();
    else if (a == "--port") address.port = static_cast<std::uint16_t>(std::stoul(value()));
    else if (!handle(a, value)) usage(("unknown option " + std::string(a)).c_str());
  }
}

// The IPv4 socket address of --host and --port (usage() when host is not a numeric IPv4
// address).
inline sockaddr_in ipv4_address(const address_options& address, void (*usage)(const char*)) {
  sockaddr_in a{};
  if (inet_pton(AF_INET, address.host.c_str(), &a.sin_addr) != 1) usage("--host must be a numeric IPv4 address");
  a.sin_family = AF_INET;
  a.sin_port = htons(address.port);
  return a;
}

// Raises this process's soft limit on open files to the hard limit (a load generator opens a
// socket per endpoint or connection).
inline void raise_file_limit() noexcept {
  rlimit r;
  if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    setrlimit(RLIMIT_NOFILE, &r);
  }
}

// CLOCK_MONOTONIC in nanoseconds.
inline std::int64_t now_ns() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

// This process's CPU time so far (user + system), in seconds.
inline double cpu_seconds() noexcept {
  rusage u;
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

inline void sleep_ms(long ms) {
  timespec t{ms / 1000, (ms % 1000) * 1'000'000};
  nanosleep(&t, nullptr);
}

// Latency in 1 us buckets up to max_us; slower ones land in the last bucket.
class histogram {
 public:
  explicit histogram(std::int64_t max_us) : buckets_(static_cast<std::size_t>(max_us) + 1, 0) {}
  void add(std::int64_t ns) noexcept {
    const auto us = static_cast<std::size_t>(std::max<std::int64_t>(ns / 1000, 0));
    ++buckets_[std::min(us, buckets_.size() - 1)];
    ++count_;
  }
  void clear() noexcept {
    std::fill(buckets_.begin(), buckets_.end(), 0);
    count_ = 0;
  }
  // The smallest latency (us) that at least `fraction` of the samples do not exceed.
  std::size_t percentile(double fraction) const noexcept {
    if (count_ == 0) return 0;
    const auto want = static_cast<std::uint64_t>(fraction * static_cast<double>(count_) + 0.5);
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < buckets_.size(); ++i) {
      seen += buckets_[i];
      if (seen >= std::max<std::uint64_t>(want, 1)) return i;
    }
    return buckets_.size() - 1;
  }

 private:
  std::vector<std::uint64_t> buckets_;
  std::uint64_t count_ = 0;
};

// One Uri-Path option per segment of `path` (RFC 7252 section 3.1: delta 11, then 0), for
// requests encoded by hand; a segment longer than 12 bytes is usage().
inline std::vector<std::uint8_t> uri_path_options(std::string_view path, void (*usage)(const char*)) {
  std::vector<std::uint8_t> options;
  unsigned previous = 0;
  while (!path.empty()) {
    const auto slash = path.find('/');
    const std::string_view segment = path.substr(0, slash);
    path = slash == std::string_view::npos ? std::string_view() : path.substr(slash + 1);
    const unsigned delta = 11 - previous;
    previous = 11;
    if (segment.size() > 12) usage("path segments longer than 12 bytes are not supported");
    options.push_back(static_cast<std::uint8_t>((delta << 4) | segment.size()));
    options.insert(options.end(), segment.begin(), segment.end());
  }
  return options;
}

// Another process seen from outside: /proc/PID/stat utime + stime (seconds) and
// /proc/PID/status VmRSS (kB); 0 when they cannot be read.
struct process_usage {
  double cpu_s = 0;
  long rss_kb = 0;
};

inline process_usage read_process_usage(int pid) {
  process_usage s;
  const std::string proc = "/proc/" + std::to_string(pid);
  {
    std::ifstream f(proc + "/stat");
    std::string line;
    std::getline(f, line);
    // Fields after the command name (which may hold spaces) start at ") ".
    const auto close = line.rfind(')');
    if (close != std::string::npos) {
      std::istringstream in(line.substr(close + 2));
      std::string field;
      unsigned long long utime = 0, stime = 0;
      for (int i = 3; i <= 15 && in >> field; ++i) {
        if (i == 14) utime = std::stoull(field);
        if (i == 15) stime = std::stoull(field);
      }
      s.cpu_s = static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
    }
  }
  {
    std::ifstream f(proc + "/status");
    std::string line;
    while (std::getline(f, line))
      if (line.rfind("VmRSS:", 0) == 0) s.rss_kb = std::stol(line.substr(6));
  }
  return s;
}

}  // namespace bench
