// cl-tokenctl: the control client of cl-tokend. Wiring only: parse, pick the socket, run one
// command (or a watch), print, exit with the contract's code. Shares nothing with the daemon
// but the protocol documents.
#include <cstdlib>
#include <exception>
#include <iostream>

#include "ansi.hpp"
#include "command_line.hpp"
#include "commands.hpp"
#include "ctl_error.hpp"
#include "error_line.hpp"
#include "socket_path.hpp"
#include "stdin_secret.hpp"
#include "terminal.hpp"
#include "unix_http_client.hpp"
#include "watch.hpp"
#include "watch_clock.hpp"

namespace {

using namespace cltoken::ctl;

int run(int argc, const char* const* argv) {
  const ParsedCommandLine parsed = parse_command_line(argc, argv);
  if (!parsed.invocation) {
    std::cout << parsed.text << std::flush;
    return to_int(ExitCode::ok);
  }
  const Invocation& invocation = *parsed.invocation;

  const std::string env_name(socket_env_var);
  Endpoint endpoint;
  endpoint.socket_path = resolve_socket_path(invocation.socket, std::getenv(env_name.c_str()));
  endpoint.timeout = invocation.timeout;
  endpoint.daemon_uid = invocation.daemon_uid;
  const Exchange exchange = [&endpoint](const Request& request) { return exchange_over_unix_socket(request, endpoint); };

  const bool tty = stdout_is_terminal();
  Presentation presentation{invocation.json, colour_wanted(tty, std::getenv("NO_COLOR"), std::getenv("TERM")),
                            terminal_columns()};

  if (invocation.command == Command::status && invocation.watch) {
    WatchClock clock;
    auto frame = [&] {
      presentation.terminal_columns = terminal_columns(); // follow a resized window
      return run_command(invocation, exchange, presentation, read_secret_from_stdin);
    };
    return to_int(watch(frame, {invocation.interval, tty && !invocation.json}, std::cout, std::cerr,
                        [&clock](std::chrono::milliseconds interval) { return clock.wait(interval); }));
  }

  const Outcome outcome = run_command(invocation, exchange, presentation, read_secret_from_stdin);
  std::cout << outcome.out << std::flush;
  // A token that did not reach its reader (disk full, closed pipe) is a failure.
  if (!std::cout) throw CtlError(ExitCode::unreachable, "cannot write to standard output");
  return to_int(outcome.code);
}

} // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const CtlError& error) {
    std::cerr << error_line(error.what());
    return to_int(error.code());
  } catch (const std::exception& error) {
    std::cerr << error_line(error.what());
    return to_int(ExitCode::unreachable);
  }
}
