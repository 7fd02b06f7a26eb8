#include "store/atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>
#include <vector>

namespace cltoken {

namespace {

[[noreturn]] void fail(const std::string& what, const std::string& path) {
  throw std::system_error(errno, std::generic_category(), what + " " + path);
}

/// Closes on scope exit, so every early return or throw releases the descriptor.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

std::string folder_of(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

} // namespace

void replace_file_atomically(const std::string& path, std::string_view content, bool durable) {
  std::string tmpl = path + ".tmp.XXXXXX";
  std::vector<char> name(tmpl.begin(), tmpl.end());
  name.push_back('\0');
  Fd tmp;
  tmp.fd = ::mkostemp(name.data(), O_CLOEXEC); // mkostemp creates the file with mode 0600
  if (tmp.fd < 0) fail("cannot create a temporary file next to", path);
  const std::string tmp_path(name.data());
  try {
    if (::fchmod(tmp.fd, 0600) != 0) fail("cannot set mode 0600 on", tmp_path);
    std::size_t done = 0;
    while (done < content.size()) {
      const ssize_t n = ::write(tmp.fd, content.data() + done, content.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) fail("cannot write", tmp_path);
      done += static_cast<std::size_t>(n);
    }
    if (durable && ::fsync(tmp.fd) != 0) fail("cannot fsync", tmp_path);
    if (::rename(tmp_path.c_str(), path.c_str()) != 0) fail("cannot rename the temporary file to", path);
  } catch (...) {
    ::unlink(tmp_path.c_str());
    throw;
  }
  if (!durable) return;
  Fd dir;
  dir.fd = ::open(folder_of(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir.fd < 0 || ::fsync(dir.fd) != 0) fail("cannot fsync the folder of", path);
}

std::optional<std::string> read_whole_file(const std::string& path, std::size_t max_size) {
  Fd f;
  // O_NOFOLLOW: a link in the file's place is refused (ELOOP), never followed.
  f.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW);
  if (f.fd < 0) {
    if (errno == ENOENT) return std::nullopt;
    fail("cannot open", path);
  }
  struct stat st {};
  if (::fstat(f.fd, &st) != 0) fail("cannot stat", path);
  if (!S_ISREG(st.st_mode)) {
    errno = EINVAL;
    fail("not a regular file:", path);
  }
  if (static_cast<std::size_t>(st.st_size) > max_size) {
    errno = EFBIG;
    fail("too large to be a state file:", path);
  }
  std::string content;
  char buf[8192];
  for (;;) {
    const ssize_t n = ::read(f.fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("cannot read", path);
    if (n == 0) break;
    content.append(buf, static_cast<std::size_t>(n));
    if (content.size() > max_size) {
      errno = EFBIG;
      fail("too large to be a state file:", path);
    }
  }
  return content;
}

unsigned file_mode(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

} // namespace cltoken
