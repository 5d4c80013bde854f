// RFC 8613 Appendix B.1.1: the Sender Sequence Number file, read on start and rewritten
// atomically (temporary file, fsync, rename, fsync of the folder) every K numbers.
#include <coap/security/oscore/seq_file.hpp>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <string_view>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace coap::oscore_core {

struct sequence_number_file::state {
  std::string path;
  // Made once: a store allocates nothing (with K = 1 it runs for every message).
  std::string temporary_path;
  std::string folder;
  sequence_number_file_options options;
  std::uint64_t start = 0;
  std::uint64_t stored = 0;
};

namespace {

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::error_code last_error() { return {errno, std::generic_category()}; }

std::string folder_of(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// Writes "value\n" to `temporary`, then renames it over `path`: a reader (or a crash) sees
// either the old file or the new one, never a partial number.
std::error_code write_atomically(const std::string& path, const std::string& temporary, const std::string& folder,
                                 std::uint64_t value, bool sync) {
  char text[24];
  auto [end, err] = std::to_chars(text, text + sizeof text - 1, value);
  (void)err;
  *end++ = '\n';
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) return last_error();
  const char* p = text;
  while (p < end) {
    const ssize_t n = ::write(fd, p, static_cast<std::size_t>(end - p));
    if (n < 0) {
      if (errno == EINTR) continue;
      const auto ec = last_error();
      ::close(fd);
      ::unlink(temporary.c_str());
      return ec;
    }
    p += n;
  }
  if (sync && ::fsync(fd) != 0) {
    const auto ec = last_error();
    ::close(fd);
    ::unlink(temporary.c_str());
    return ec;
  }
  if (::close(fd) != 0) {
    const auto ec = last_error();
    ::unlink(temporary.c_str());
    return ec;
  }
  if (::rename(temporary.c_str(), path.c_str()) != 0) {
    const auto ec = last_error();
    ::unlink(temporary.c_str());
    return ec;
  }
  if (sync) {
    // The rename itself is durable only once the folder is.
    const int dir = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) return last_error();
    const int rc = ::fsync(dir);
    const auto ec = rc != 0 ? last_error() : std::error_code{};
    ::close(dir);
    if (ec) return ec;
  }
  return {};
}

}  // namespace

std::error_code parse_sequence_number(std::string_view text, std::uint64_t& out, conf_diagnostic& where) {
  while (!text.empty() && is_blank(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_blank(text.back())) text.remove_suffix(1);
  out = 0;
  if (text.empty()) return {};
  const auto [end, err] = std::from_chars(text.data(), text.data() + text.size(), out);
  if (err == std::errc::result_out_of_range) {
    where.reason = "the number does not fit in 64 bits";
    return oscore_error::sequence_number_exhausted;
  }
  if (err != std::errc{} || end != text.data() + text.size()) {
    where.reason = "expected one decimal number, found '" + std::string(text.substr(0, 40)) + "'";
    return oscore_conf_error::bad_sequence_number_file;
  }
  return {};
}

std::optional<sequence_number_file> sequence_number_file::open(const std::string& path,
                                                               const sequence_number_file_options& options,
                                                               std::error_code& ec, conf_diagnostic& where) {
  where = conf_diagnostic{};
  where.file = path;
  if (options.interval == 0 || options.interval > max_sequence_number) {
    where.reason = "the interval K must be between 1 and 2^40 - 1";
    ec = oscore_error::invalid_context_parameters;
    return std::nullopt;
  }
  auto s = std::make_shared<state>();
  s->path = path;
  s->temporary_path = path + ".tmp";
  s->folder = folder_of(path);
  s->options = options;

  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  std::uint64_t value = 0;
  if (fd < 0) {
    if (errno != ENOENT) {
      ec = last_error();
      where.reason = std::string("cannot read: ") + std::strerror(errno);
      return std::nullopt;
    }
    // As libcoap: a missing file is created; here at once, so that a folder we cannot write
    // to is an error now rather than on the first request.
    if ((ec = write_atomically(s->path, s->temporary_path, s->folder, 0, options.sync))) {
      where.reason = "cannot create: " + ec.message();
      return std::nullopt;
    }
  } else {
    char buffer[64];
    std::size_t size = 0;
    for (;;) {
      const ssize_t n = ::read(fd, buffer + size, sizeof buffer - size);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        ec = last_error();
        ::close(fd);
        where.reason = "cannot read: " + ec.message();
        return std::nullopt;
      }
      if (n == 0) break;
      size += static_cast<std::size_t>(n);
      if (size == sizeof buffer) {
        ::close(fd);
        where.reason = "longer than a sequence number file can be (" + std::to_string(sizeof buffer) + " bytes)";
        ec = oscore_conf_error::bad_sequence_number_file;
        return std::nullopt;
      }
    }
    ::close(fd);
    if ((ec = parse_sequence_number({buffer, size}, value, where))) return std::nullopt;
  }
  // Resume at a multiple of K so that the core stores before using the first number.
  const std::uint64_t k = options.interval;
  const std::uint64_t limit = max_sequence_number;
  // value + margin <= 2^40 - 1 and k <= 2^40 - 1: the rounding cannot overflow.
  const bool fits = value <= limit && options.margin <= limit - value;
  const std::uint64_t start = fits ? (value + options.margin + k - 1) / k * k : limit + 1;
  if (start > limit) {
    where.reason = "the stored number " + std::to_string(value) + " leaves no Sender Sequence Number below 2^40";
    ec = oscore_error::sequence_number_exhausted;
    return std::nullopt;
  }
  s->start = start;
  s->stored = value;
  ec = {};
  return sequence_number_file(std::move(s));
}

std::uint64_t sequence_number_file::start() const noexcept { return state_->start; }
std::uint64_t sequence_number_file::stored() const noexcept { return state_->stored; }
const std::string& sequence_number_file::path() const noexcept { return state_->path; }

void sequence_number_file::apply(context_params& params) const {
  params.initial_sequence_number = state_->start;
  params.persistence = sequence_number_persistence{};
  params.persistence.interval = state_->options.interval;
  params.persistence.store = [s = state_](std::uint64_t about_to_use) {
    // Every number below about_to_use + K may be used before the next store.
    const std::uint64_t k = s->options.interval;
    const std::uint64_t bound =
        about_to_use > max_sequence_number + 1 - k ? max_sequence_number + 1 : about_to_use + k;
    if (write_atomically(s->path, s->temporary_path, s->folder, bound, s->options.sync)) return false;
    s->stored = bound;
    return true;
  };
}

}  // namespace coap::oscore_core
