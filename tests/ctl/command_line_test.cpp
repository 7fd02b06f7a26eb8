#include <catch2/catch.hpp>

#include "command_line.hpp"
#include "ctl_error.hpp"

using namespace cltoken::ctl;
using namespace std::chrono_literals;

namespace {

Invocation parse(std::vector<std::string> arguments) {
  auto parsed = parse_command_line(arguments);
  REQUIRE(parsed.invocation.has_value());
  return *parsed.invocation;
}

/// The usage error of a command line, which must be one line and exit 2.
std::string usage_error(std::vector<std::string> arguments) {
  try {
    (void)parse_command_line(arguments);
  } catch (const CtlError& e) {
    CHECK(e.code() == ExitCode::usage);
    const std::string what = e.what();
    CHECK(what.find('\n') == std::string::npos);
    return what;
  }
  FAIL("expected a usage error");
  return {};
}

} // namespace

TEST_CASE("global options and their defaults", "[cli]") {
  const auto plain = parse({"status"});
  CHECK(plain.command == Command::status);
  CHECK_FALSE(plain.socket.has_value());
  CHECK_FALSE(plain.json);
  CHECK(plain.timeout == 5000ms);
  CHECK_FALSE(plain.watch);

  const auto all = parse({"-s", "/tmp/x.sock", "--json", "--timeout", "250", "health"});
  CHECK(all.command == Command::health);
  CHECK(all.socket == std::optional<std::string>("/tmp/x.sock"));
  CHECK(all.json);
  CHECK(all.timeout == 250ms);

  CHECK(parse({"--socket", "/tmp/y.sock", "reload"}).socket == std::optional<std::string>("/tmp/y.sock"));
}

TEST_CASE("global options are also accepted after the command", "[cli]") {
  const auto late = parse({"status", "--json", "-s", "/tmp/z.sock"});
  CHECK(late.json);
  CHECK(late.socket == std::optional<std::string>("/tmp/z.sock"));
}

TEST_CASE("each command and its arguments", "[cli]") {
  const auto token = parse({"token", "backoffice", "--min-ttl", "120"});
  CHECK(token.command == Command::token);
  CHECK(token.name == "backoffice");
  CHECK(token.min_ttl == std::optional<std::int64_t>(120));
  CHECK_FALSE(parse({"token", "backoffice"}).min_ttl.has_value());

  CHECK(parse({"invalidate", "backoffice"}).command == Command::invalidate);
  // A token on the command line is readable by every local user: refused, with the way.
  const auto on_argv = usage_error({"invalidate", "backoffice", "eyJ.x.y"});
  CHECK(on_argv.find("reads the token from stdin only") != std::string::npos);
  CHECK(on_argv.find("eyJ.x.y") == std::string::npos);

  CHECK_FALSE(parse({"status"}).daemon_uid.has_value());
  CHECK(parse({"--daemon-uid", "990", "status"}).daemon_uid == std::optional<unsigned>(990));

  CHECK(parse({"revoke", "backoffice"}).command == Command::revoke);
  // refresh waits for the auth server: a longer default deadline, unless one is given.
  const auto refresh = parse({"refresh", "backoffice"});
  CHECK(refresh.command == Command::refresh);
  CHECK(refresh.name == "backoffice");
  CHECK(refresh.timeout == 20000ms);
  CHECK(parse({"--timeout", "700", "refresh", "backoffice"}).timeout == 700ms);
  CHECK(parse({"status"}).timeout == 5000ms);
  CHECK_THAT(usage_error({"refresh"}), Catch::Contains("NAME"));
  CHECK(parse({"reload"}).command == Command::reload);
  CHECK(parse({"health"}).command == Command::health);

  const auto watch = parse({"status", "--watch", "--interval", "0.5"});
  CHECK(watch.watch);
  CHECK(watch.interval == 500ms);
  CHECK(parse({"status", "--watch"}).interval == 2000ms);

  const auto login = parse({"customer", "login", "storefront-eu", "--username", "ann@example.com"});
  CHECK(login.command == Command::customer_login);
  CHECK(login.name == "storefront-eu");
  CHECK(login.username == "ann@example.com");

  const auto customer_token = parse({"customer", "token", "storefront-eu", "s3ss10n", "--min-ttl", "0"});
  CHECK(customer_token.command == Command::customer_token);
  CHECK(customer_token.session == "s3ss10n");
  CHECK(customer_token.min_ttl == std::optional<std::int64_t>(0));

  const auto logout = parse({"customer", "logout", "storefront-eu", "s3ss10n"});
  CHECK(logout.command == Command::customer_logout);
  CHECK(logout.session == "s3ss10n");
}

TEST_CASE("usage errors are one line and exit 2", "[cli]") {
  CHECK(usage_error({}) == "no command given (see cl-tokenctl --help)");
  CHECK(usage_error({"stauts"}) == "unknown command: stauts (see cl-tokenctl --help)");
  CHECK(usage_error({"customer", "frob"}) == "unknown command: frob (see cl-tokenctl --help)");
  CHECK(usage_error({"token"}) == "NAME is required (see cl-tokenctl --help)");
  CHECK(usage_error({"status", "--interval", "3"}) == "--interval requires --watch (see cl-tokenctl --help)");
  CHECK_THAT(usage_error({"--timeout", "0", "status"}), Catch::StartsWith("--timeout: "));
  CHECK_THAT(usage_error({"--timeout", "soon", "status"}), Catch::StartsWith("--timeout: "));
  CHECK_THAT(usage_error({"token", "x", "--min-ttl", "-1"}), Catch::Contains("--min-ttl"));
  CHECK_THAT(usage_error({"status", "--watch", "--interval", "0"}), Catch::Contains("--interval"));
  CHECK_THAT(usage_error({"customer", "login", "storefront-eu"}), Catch::Contains("--username"));
  CHECK_THAT(usage_error({"--socket", "", "status"}), Catch::Contains("--socket"));
  CHECK_THAT(usage_error({"status", "extra"}), Catch::Contains("extra"));
  // A password never goes on the command line.
  CHECK_THAT(usage_error({"customer", "login", "s", "--username", "u", "--password", "p"}), Catch::Contains("--password"));
}

TEST_CASE("help and version print text and exit 0", "[cli]") {
  const auto help = parse_command_line(std::vector<std::string>{"--help"});
  CHECK_FALSE(help.invocation.has_value());
  CHECK_THAT(help.text, Catch::Contains("status") && Catch::Contains("customer") && Catch::Contains("Exit codes"));

  const auto command_help = parse_command_line(std::vector<std::string>{"customer", "login", "--help"});
  CHECK_THAT(command_help.text, Catch::Contains("--username"));

  const auto version = parse_command_line(std::vector<std::string>{"--version"});
  CHECK(version.text == "cl-tokenctl " CLTOKENCTL_VERSION "\n");
}
