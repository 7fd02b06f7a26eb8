#include "child_process.hpp"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <stdexcept>

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace ctl_test {
namespace {

[[noreturn]] void fail(const std::string& what) { throw std::runtime_error(what + ": " + std::strerror(errno)); }

/// Closes a descriptor once, on every path out.
class Fd {
public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  [[nodiscard]] int get() const { return fd_; }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

private:
  int fd_;
};

struct Pipe {
  Fd read;
  Fd write;
};

void open_pipe(Pipe& pipe) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) fail("pipe2");
  pipe.read.reset(fds[0]);
  pipe.write.reset(fds[1]);
}

/// The test's environment with the changes applied, as "NAME=value" strings.
std::vector<std::string> environment_for(const ChildOptions& options) {
  std::map<std::string, std::optional<std::string>> changes = {{"CL_TOKEND_SOCKET", std::nullopt}, {"NO_COLOR", std::nullopt}};
  for (const auto& [name, value] : options.environment) changes[name] = value;
  std::vector<std::string> result;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    const std::string variable = *entry;
    const std::string name = variable.substr(0, variable.find('='));
    if (changes.count(name) == 0) result.push_back(variable);
  }
  for (const auto& [name, value] : changes) {
    if (value) result.push_back(name + "=" + *value);
  }
  return result;
}

} // namespace

ChildResult run_ctl(const std::vector<std::string>& arguments, const ChildOptions& options) {
  Pipe in;
  Pipe out;
  Pipe err;
  open_pipe(in);
  open_pipe(out);
  open_pipe(err);

  // posix_spawn, not fork + setenv: the fake daemon's thread is running, and only
  // async-signal-safe calls are allowed between fork and exec in a threaded process.
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in.read.get(), STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out.write.get(), STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err.write.get(), STDERR_FILENO);

  std::vector<std::string> argv_strings = {CLTOKENCTL_BINARY};
  argv_strings.insert(argv_strings.end(), arguments.begin(), arguments.end());
  std::vector<char*> argv;
  for (auto& argument : argv_strings) argv.push_back(argument.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_strings = environment_for(options);
  std::vector<char*> envp;
  for (auto& variable : env_strings) envp.push_back(variable.data());
  envp.push_back(nullptr);

  pid_t pid = 0;
  const int spawned = ::posix_spawn(&pid, CLTOKENCTL_BINARY, &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) {
    errno = spawned;
    fail("posix_spawn " CLTOKENCTL_BINARY);
  }
  in.read.reset();
  out.write.reset();
  err.write.reset();

  // The input is a line or two, far below a pipe's capacity: write it whole, then EOF.
  if (!options.stdin_data.empty() && ::write(in.write.get(), options.stdin_data.data(), options.stdin_data.size()) < 0 &&
      errno != EPIPE) {
    fail("write stdin");
  }
  in.write.reset();

  Fd deadline(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC));
  if (deadline.get() < 0) fail("timerfd_create");
  itimerspec when{};
  when.it_value.tv_sec = options.deadline.count() / 1000;
  when.it_value.tv_nsec = (options.deadline.count() % 1000) * 1'000'000;
  if (::timerfd_settime(deadline.get(), 0, &when, nullptr) != 0) fail("timerfd_settime");

  ChildResult result;
  bool out_open = true;
  bool err_open = true;
  while (out_open || err_open) {
    pollfd fds[3] = {
        {out_open ? out.read.get() : -1, POLLIN, 0}, {err_open ? err.read.get() : -1, POLLIN, 0}, {deadline.get(), POLLIN, 0}};
    if (::poll(fds, 3, -1) < 0) {
      if (errno == EINTR) continue;
      fail("poll");
    }
    if (fds[2].revents != 0) {
      ::kill(pid, SIGKILL);
      result.timed_out = true;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].revents == 0) continue;
      char buffer[4096];
      const ssize_t got = ::read(fds[i].fd, buffer, sizeof buffer);
      if (got <= 0) {
        (i == 0 ? out_open : err_open) = false;
      } else {
        (i == 0 ? result.out : result.err).append(buffer, static_cast<std::size_t>(got));
      }
    }
  }

  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) fail("waitpid");
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

} // namespace ctl_test
