#include "command_line.hpp"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <sstream>

#include "ctl_error.hpp"
#include "socket_path.hpp"
#include "terminal_text.hpp"

namespace cltoken::ctl {
namespace {

constexpr const char* footer = "Exit codes: 0 ok; 1 cl-tokend unreachable or protocol error; 2 usage;\n"
                               "3 answered but refused (403/404/410/429/503...) or degraded (status, health).";

/// The options every parse fills in; CLI11 binds to these, and they become the Invocation.
struct Bindings {
  Invocation invocation;
  std::string socket;
  std::string token;
  std::int64_t timeout_ms = 5000;
  CLI::Option* timeout_option = nullptr;
  unsigned daemon_uid = 0;
  std::int64_t min_ttl = 0;
  double interval_s = 2.0;
  // Options whose absence means something (no --min-ttl: the daemon's default).
  CLI::Option* socket_option = nullptr;
  CLI::Option* token_option = nullptr;
  CLI::Option* daemon_uid_option = nullptr;
  CLI::Option* verify_token_option = nullptr;
  std::vector<CLI::Option*> min_ttl_options;
};

/// A validator that still checks but adds nothing to --help, where "MS:INT in [1 - 86400000]"
/// would replace the readable type name.
CLI::Validator quiet(CLI::Validator validator) {
  validator.description("");
  return validator;
}

/// Builds the CLI11 app; every callback only records which command was chosen.
void define(CLI::App& app, Bindings& b) {
  app.set_version_flag("--version", "cl-tokenctl " CLTOKENCTL_VERSION);
  app.footer(footer);
  app.require_subcommand(1);
  // Global options are also accepted after the command ("status --json"); set before the
  // subcommands are added, which inherit it.
  app.fallthrough();

  b.socket_option =
      app.add_option("-s,--socket", b.socket,
                     "Socket of cl-tokend (default: $" + std::string(socket_env_var) + ", else " +
                         std::string(default_socket_path) + ")")
          ->type_name("PATH")
          ->check([](const std::string& value) { return value.empty() ? std::string("must not be empty") : std::string(); });
  app.add_flag("--json", b.invocation.json, "Print the daemon's JSON document");
  b.timeout_option = app.add_option("--timeout", b.timeout_ms,
                                    "Deadline of the whole exchange with cl-tokend, in ms (default 5000; refresh: 20000)")
                         ->type_name("MS")
                         ->check(quiet(CLI::Range(std::int64_t{1}, std::int64_t{86'400'000})));

  b.daemon_uid_option = app.add_option("--daemon-uid", b.daemon_uid,
                                       "The uid cl-tokend runs as; nothing is sent to a listener running as anyone else but root "
                                       "(default: the socket file's owner)")
                            ->type_name("UID");

  auto choose = [&b](Command command) { return [&b, command] { b.invocation.command = command; }; };
  auto add_min_ttl = [&b](CLI::App* command) {
    b.min_ttl_options.push_back(command->add_option("--min-ttl", b.min_ttl, "Only a token valid for at least this long")
                                    ->type_name("SECONDS")
                                    ->check(quiet(CLI::Range(std::int64_t{0}, std::int64_t{31'536'000}))));
  };

  auto* status = app.add_subcommand("status", "One row per credential: state, expiry, next refresh, last error");
  status->callback(choose(Command::status));
  auto* watch = status->add_flag("--watch", b.invocation.watch, "Redraw every --interval seconds until Ctrl-C");
  status->add_option("--interval", b.interval_s, "Seconds between redraws (default 2)")
      ->type_name("S")
      ->check(quiet(CLI::Range(0.1, 86'400.0)))
      ->needs(watch);
  status
      ->add_flag("--clients", b.invocation.clients,
                 "Also list who used which credential in the last hour (admin; as the clients command)")
      ->excludes(watch);

  app.add_subcommand("clients", "Who used which credential in the last hour: unit or user, requests, last seen (admin)")
      ->callback(choose(Command::clients));

  auto* token = app.add_subcommand("token", "Print the access token of a credential");
  token->callback(choose(Command::token));
  token->add_option("NAME", b.invocation.name, "Credential name")->required();
  add_min_ttl(token);

  auto* invalidate = app.add_subcommand("invalidate", "Report a token the API rejected; print the token to use now");
  invalidate->callback(choose(Command::invalidate));
  invalidate->add_option("NAME", b.invocation.name, "Credential name")->required();
  // Accepted only to be refused with the reason: on the command line every local user
  // can read it (/proc/PID/cmdline).
  b.token_option = invalidate->add_option("TOKEN", b.token, "Not accepted: the token is read from stdin");

  auto* verify = app.add_subcommand("verify", "Verify a Commerce Layer token with the auth server's keys; print its claims");
  verify->callback(choose(Command::verify));
  b.verify_token_option = verify->add_option("TOKEN", b.token, "Not accepted: the token is read from stdin");

  auto* refresh = app.add_subcommand("refresh", "Fetch a credential's token now, cutting short a backoff (admin)");
  refresh->callback(choose(Command::refresh));
  refresh->add_option("NAME", b.invocation.name, "Credential name")->required();

  auto* revoke = app.add_subcommand("revoke", "Revoke a credential's token upstream and drop it (admin)");
  revoke->callback(choose(Command::revoke));
  revoke->add_option("NAME", b.invocation.name, "Credential name")->required();

  app.add_subcommand("reload", "Reload the daemon's configuration (admin)")->callback(choose(Command::reload));
  app.add_subcommand("health", "Exit 0 when the daemon is live and every credential holds a valid token")
      ->callback(choose(Command::health));

  auto* customer = app.add_subcommand("customer", "Customer sessions of a sales-channel credential");
  customer->require_subcommand(1);
  auto* login = customer->add_subcommand("login", "Start a session; the password is read from stdin");
  login->callback(choose(Command::customer_login));
  login->add_option("NAME", b.invocation.name, "Sales-channel credential name")->required();
  login->add_option("--username", b.invocation.username, "Customer email")->type_name("U")->required();
  auto* customer_token = customer->add_subcommand("token", "Print the access token of a session");
  customer_token->callback(choose(Command::customer_token));
  customer_token->add_option("NAME", b.invocation.name, "Sales-channel credential name")->required();
  customer_token->add_option("SESSION", b.invocation.session, "Session handle from login")->required();
  add_min_ttl(customer_token);
  auto* logout = customer->add_subcommand("logout", "End a session and revoke its tokens upstream");
  logout->callback(choose(Command::customer_logout));
  logout->add_option("NAME", b.invocation.name, "Sales-channel credential name")->required();
  logout->add_option("SESSION", b.invocation.session, "Session handle from login")->required();
}

ParsedCommandLine finish(Bindings& b) {
  Invocation& invocation = b.invocation;
  if (b.socket_option->count() > 0) invocation.socket = b.socket;
  if (b.token_option->count() > 0) {
    throw CtlError(ExitCode::usage, "invalidate reads the token from stdin only: on the command line every local user "
                                    "can read it (/proc/PID/cmdline); run: printf '%s\\n' \"$TOKEN\" | cl-tokenctl "
                                    "invalidate NAME");
  }
  if (b.verify_token_option->count() > 0) {
    throw CtlError(ExitCode::usage, "verify reads the token from stdin only: on the command line every local user "
                                    "can read it (/proc/PID/cmdline); run: printf '%s\\n' \"$TOKEN\" | cl-tokenctl "
                                    "verify");
  }
  if (b.daemon_uid_option->count() > 0) invocation.daemon_uid = b.daemon_uid;
  const bool has_min_ttl = std::any_of(b.min_ttl_options.begin(), b.min_ttl_options.end(),
                                       [](const CLI::Option* option) { return option->count() > 0; });
  if (has_min_ttl) invocation.min_ttl = b.min_ttl;
  // A refresh waits for the auth server (up to the daemon's request deadline, 15 s by
  // default): the usual 5 s would give up on a slow but working answer.
  if (invocation.command == Command::refresh && b.timeout_option->count() == 0) b.timeout_ms = 20000;
  invocation.timeout = std::chrono::milliseconds(b.timeout_ms);
  invocation.interval = std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(b.interval_s * 1000)));
  return ParsedCommandLine{std::move(invocation), {}};
}

/// CLI11's sentence, except for a missing or misspelt command, where it says "A subcommand
/// is required" even for "cl-tokenctl stauts"; the word that was not understood is the
/// better message.
std::string usage_message(const CLI::App& app, const CLI::ParseError& e) {
  const std::string what = one_line(e.what());
  if (dynamic_cast<const CLI::RequiredError*>(&e) == nullptr || what.rfind("A subcommand is required", 0) != 0) {
    return what;
  }
  const auto remaining = app.remaining();
  if (remaining.empty()) return "no command given";
  return "unknown command: " + one_line(remaining.front());
}

template <typename Parse>
ParsedCommandLine parse_with(Parse&& parse) {
  CLI::App app{"cl-tokenctl: ask cl-tokend for Commerce Layer tokens, and look after it", "cl-tokenctl"};
  Bindings bindings;
  define(app, bindings);
  try {
    parse(app);
  } catch (const CLI::Success& e) {
    // --help or --version: CLI11 knows which help (the selected subcommand's) to print.
    std::ostringstream out;
    std::ostringstream err;
    app.exit(e, out, err);
    return ParsedCommandLine{std::nullopt, out.str()};
  } catch (const CLI::ParseError& e) {
    throw CtlError(ExitCode::usage, usage_message(app, e) + " (see cl-tokenctl --help)");
  }
  return finish(bindings);
}

} // namespace

ParsedCommandLine parse_command_line(int argc, const char* const* argv) {
  return parse_with([&](CLI::App& app) { app.parse(argc, argv); });
}

ParsedCommandLine parse_command_line(const std::vector<std::string>& arguments) {
  return parse_with([&](CLI::App& app) {
    // CLI11 takes a vector in reverse order (it pops from the back).
    std::vector<std::string> reversed(arguments.rbegin(), arguments.rend());
    app.parse(reversed);
  });
}

} // namespace cltoken::ctl
