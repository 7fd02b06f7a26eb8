// Every command against a canned daemon: the request it sends, what it prints, how it exits.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "commands.hpp"
#include "ctl_error.hpp"
#include "status_documents.hpp"
#include "stdin_secret.hpp"

using namespace cltoken::ctl;

namespace {

constexpr const char* token_document =
    R"({"credential":"backoffice","kind":"integration","access_token":"eyJhbGciOiJSUzUxMiJ9.e30.c2ln",)"
    R"("token_type":"bearer","scope":"market:all","expires_at":"2026-11-25T21:03:04Z","expires_in":5423})";

/// Answers every request with one canned response and remembers what it was asked.
struct CannedDaemon {
  Response answer;
  std::vector<Request> seen;

  Exchange exchange() {
    return [this](const Request& request) {
      seen.push_back(request);
      return answer;
    };
  }
};

/// A stdin that holds `text`, or nothing.
ReadSecret stdin_with(std::optional<std::string> text) {
  return [text](std::string_view) { return text; };
}

const ReadSecret no_stdin = [](std::string_view) -> std::optional<std::string> {
  FAIL("this command must not read stdin");
  return std::nullopt;
};

Invocation command(Command which, std::string name = {}) {
  Invocation invocation;
  invocation.command = which;
  invocation.name = std::move(name);
  return invocation;
}

ExitCode thrown_code(const std::function<void()>& run) {
  try {
    run();
  } catch (const CtlError& e) {
    return e.code();
  }
  FAIL("expected CtlError");
  return ExitCode::ok;
}

} // namespace

TEST_CASE("token prints the bare access token", "[commands]") {
  CannedDaemon daemon{{200, token_document, std::nullopt}, {}};
  auto invocation = command(Command::token, "backoffice");
  invocation.min_ttl = 120;
  const auto outcome = run_command(invocation, daemon.exchange(), {}, no_stdin);
  CHECK(outcome.code == ExitCode::ok);
  CHECK(outcome.out == "eyJhbGciOiJSUzUxMiJ9.e30.c2ln\n");
  REQUIRE(daemon.seen.size() == 1);
  CHECK(daemon.seen[0].method == "GET");
  CHECK(daemon.seen[0].target == "/v1/tokens/backoffice?min_ttl=120");
  CHECK_FALSE(daemon.seen[0].body.has_value());
}

TEST_CASE("token --json prints the whole document, pretty, in the daemon's order", "[commands]") {
  CannedDaemon daemon{{200, token_document, std::nullopt}, {}};
  const auto outcome = run_command(command(Command::token, "backoffice"), daemon.exchange(), {true, false, {}}, no_stdin);
  CHECK(outcome.code == ExitCode::ok);
  CHECK(nlohmann::json::parse(outcome.out) == nlohmann::json::parse(token_document));
  CHECK_THAT(outcome.out, Catch::StartsWith("{\n  \"credential\": \"backoffice\",\n  \"kind\": \"integration\",\n"));
  CHECK(daemon.seen[0].target == "/v1/tokens/backoffice");
}

TEST_CASE("names are percent-encoded so they stay one path segment", "[commands]") {
  CannedDaemon daemon{{200, token_document, std::nullopt}, {}};
  (void)run_command(command(Command::token, "a/b?c d"), daemon.exchange(), {}, no_stdin);
  CHECK(daemon.seen[0].target == "/v1/tokens/a%2Fb%3Fc%20d");
}

TEST_CASE("refusals exit 3 with the daemon's message", "[commands]") {
  for (const int status : {403, 404, 410, 429, 503}) {
    INFO("HTTP " << status);
    CannedDaemon daemon{{status, R"({"error":{"code":"x","message":"said no"}})", std::nullopt}, {}};
    try {
      (void)run_command(command(Command::token, "backoffice"), daemon.exchange(), {}, no_stdin);
      FAIL("expected a refusal");
    } catch (const CtlError& e) {
      CHECK(e.code() == ExitCode::refused);
      CHECK(std::string(e.what()) == "said no");
    }
  }
}

TEST_CASE("a 200 without a usable token is a protocol error", "[commands]") {
  CannedDaemon daemon{{200, R"({"access_token":""})", std::nullopt}, {}};
  CHECK(thrown_code([&] { (void)run_command(command(Command::token, "b"), daemon.exchange(), {}, no_stdin); }) ==
        ExitCode::unreachable);
  daemon.answer = {200, "eyJ.not-json", std::nullopt};
  CHECK(thrown_code([&] { (void)run_command(command(Command::token, "b"), daemon.exchange(), {}, no_stdin); }) ==
        ExitCode::unreachable);
  daemon.answer = {500, R"({"error":{"code":"internal","message":"boom"}})", std::nullopt};
  CHECK(thrown_code([&] { (void)run_command(command(Command::token, "b"), daemon.exchange(), {}, no_stdin); }) ==
        ExitCode::unreachable);
}

TEST_CASE("invalidate sends the rejected token and prints the one to use now", "[commands]") {
  CannedDaemon daemon{{200, token_document, std::nullopt}, {}};
  const auto outcome = run_command(command(Command::invalidate, "backoffice"), daemon.exchange(), {}, stdin_with("eyJold\n"));
  CHECK(outcome.out == "eyJhbGciOiJSUzUxMiJ9.e30.c2ln\n");
  CHECK(daemon.seen[0].method == "POST");
  CHECK(daemon.seen[0].target == "/v1/tokens/backoffice/invalidate");
  CHECK(daemon.seen[0].body == std::optional<std::string>(R"({"access_token":"eyJold"})"));
}

TEST_CASE("invalidate reads the token from stdin, trimmed", "[commands]") {
  CannedDaemon daemon{{200, token_document, std::nullopt}, {}};
  (void)run_command(command(Command::invalidate, "backoffice"), daemon.exchange(), {}, stdin_with("  eyJold \r"));
  CHECK(daemon.seen[0].body == std::optional<std::string>(R"({"access_token":"eyJold"})"));
}

TEST_CASE("invalidate without a token is a usage error and sends nothing", "[commands]") {
  CannedDaemon daemon{{200, token_document, std::nullopt}, {}};
  CHECK(thrown_code([&] {
          (void)run_command(command(Command::invalidate, "b"), daemon.exchange(), {}, stdin_with(std::nullopt));
        }) == ExitCode::usage);
  CHECK(thrown_code([&] { (void)run_command(command(Command::invalidate, "b"), daemon.exchange(), {}, stdin_with("   ")); }) ==
        ExitCode::usage);
  CHECK(daemon.seen.empty());
}

TEST_CASE("refresh says what the token held has left, or why nothing was fetched", "[commands]") {
  CannedDaemon daemon{{200, R"({"refreshed":true,"expires_in":7199})", std::nullopt}, {}};
  const auto refreshed = run_command(command(Command::refresh, "backoffice"), daemon.exchange(), {}, no_stdin);
  CHECK(refreshed.code == ExitCode::ok);
  CHECK(refreshed.out == "refreshed backoffice: token valid for 1h 59m\n");
  CHECK(daemon.seen[0].method == "POST");
  CHECK(daemon.seen[0].target == "/v1/tokens/backoffice/refresh");

  daemon.answer = {200, R"({"refreshed":false,"expires_in":5412,"message":"nothing fetched"})", std::nullopt};
  CHECK(run_command(command(Command::refresh, "backoffice"), daemon.exchange(), {}, no_stdin).out ==
        "kept backoffice's token valid for 1h 30m: nothing fetched\n");
  CHECK(run_command(command(Command::refresh, "backoffice"), daemon.exchange(), {true, false, {}}, no_stdin).out ==
        "{\n  \"refreshed\": false,\n  \"expires_in\": 5412,\n  \"message\": \"nothing fetched\"\n}\n");

  daemon.answer = {503, R"({"error":{"code":"upstream_rejected","message":"the auth server refuses credential"}})",
                   std::string("600")};
  CHECK(thrown_code([&] { (void)run_command(command(Command::refresh, "backoffice"), daemon.exchange(), {}, no_stdin); }) ==
        ExitCode::refused);
}

TEST_CASE("revoke and reload confirm in words, or print the document", "[commands]") {
  CannedDaemon daemon{{200, R"({"revoked":true})", std::nullopt}, {}};
  const auto revoked = run_command(command(Command::revoke, "backoffice"), daemon.exchange(), {}, no_stdin);
  CHECK(revoked.code == ExitCode::ok);
  CHECK(revoked.out == "revoked backoffice\n");
  CHECK(daemon.seen[0].method == "POST");
  CHECK(daemon.seen[0].target == "/v1/tokens/backoffice/revoke");

  daemon.answer = {200, R"({"reloaded":true})", std::nullopt};
  CHECK(run_command(command(Command::reload), daemon.exchange(), {}, no_stdin).out == "reloaded\n");
  CHECK(run_command(command(Command::reload), daemon.exchange(), {true, false, {}}, no_stdin).out ==
        "{\n  \"reloaded\": true\n}\n");
  CHECK(daemon.seen.back().method == "POST");
  CHECK(daemon.seen.back().target == "/v1/reload");

  daemon.answer = {400, R"({"error":{"code":"bad_request","message":"cl-tokend.toml:3: unknown key"}})", std::nullopt};
  CHECK(thrown_code([&] { (void)run_command(command(Command::reload), daemon.exchange(), {}, no_stdin); }) == ExitCode::refused);
}

TEST_CASE("health: 0 when live and ready, 3 otherwise", "[commands]") {
  CannedDaemon daemon{{200, R"({"live":true,"ready":true})", std::nullopt}, {}};
  auto outcome = run_command(command(Command::health), daemon.exchange(), {}, no_stdin);
  CHECK(outcome.code == ExitCode::ok);
  CHECK(outcome.out == "live, ready\n");
  CHECK(daemon.seen[0].target == "/v1/health");

  daemon.answer = {503, R"({"live":true,"ready":false})", std::nullopt};
  outcome = run_command(command(Command::health), daemon.exchange(), {}, no_stdin);
  CHECK(outcome.code == ExitCode::refused);
  CHECK(outcome.out == "live, not ready\n");

  outcome = run_command(command(Command::health), daemon.exchange(), {true, false, {}}, no_stdin);
  CHECK(outcome.code == ExitCode::refused);
  CHECK(nlohmann::json::parse(outcome.out) == nlohmann::json{{"live", true}, {"ready", false}});

  daemon.answer = {503, R"({"live":true,"ready":false,"credentials_not_ready":["backoffice","storefront-eu"]})", std::nullopt};
  outcome = run_command(command(Command::health), daemon.exchange(), {}, no_stdin);
  CHECK(outcome.code == ExitCode::refused);
  CHECK(outcome.out == "live, not ready: backoffice, storefront-eu\n");

  daemon.answer = {503, R"({"error":{"code":"x","message":"shutting down"}})", std::nullopt};
  CHECK(thrown_code([&] { (void)run_command(command(Command::health), daemon.exchange(), {}, no_stdin); }) == ExitCode::refused);
}

TEST_CASE("status: a table, 3 when degraded, the same code with --json", "[commands]") {
  CannedDaemon daemon{{200, fixtures::every_state, std::nullopt}, {}};
  auto outcome = run_command(command(Command::status), daemon.exchange(), {}, no_stdin);
  CHECK(outcome.code == ExitCode::refused);
  CHECK_THAT(outcome.out, Catch::StartsWith("cl-tokend 0.1.0, up 2h 05m"));
  CHECK(daemon.seen[0].target == "/v1/status");

  outcome = run_command(command(Command::status), daemon.exchange(), {true, false, {}}, no_stdin);
  CHECK(outcome.code == ExitCode::refused);
  CHECK(nlohmann::json::parse(outcome.out) == nlohmann::json::parse(fixtures::every_state));

  daemon.answer = {200, fixtures::all_serving, std::nullopt};
  CHECK(run_command(command(Command::status), daemon.exchange(), {}, no_stdin).code == ExitCode::ok);

  daemon.answer = {200, R"({"version":"0.1.0"})", std::nullopt};
  CHECK(thrown_code([&] { (void)run_command(command(Command::status), daemon.exchange(), {}, no_stdin); }) ==
        ExitCode::unreachable);
}

TEST_CASE("customer login sends the password from stdin and prints the session", "[commands]") {
  CannedDaemon daemon{{201,
                       R"({"session":"c2Vzc2lvbg","credential":"storefront-eu","access_token":"eyJc.u.s",)"
                       R"("token_type":"bearer","expires_in":7200,"owner_id":"xYZkjABcde"})",
                       std::nullopt},
                      {}};
  auto invocation = command(Command::customer_login, "storefront-eu");
  invocation.username = "ann@example.com";
  const auto outcome = run_command(invocation, daemon.exchange(), {}, stdin_with(" pass word "));
  CHECK(outcome.code == ExitCode::ok);
  CHECK(outcome.out == "c2Vzc2lvbg\n");
  CHECK(daemon.seen[0].method == "POST");
  CHECK(daemon.seen[0].target == "/v1/customers/storefront-eu/sessions");
  // The password is sent as typed: spaces can be part of it.
  CHECK(nlohmann::json::parse(*daemon.seen[0].body) ==
        nlohmann::json{{"username", "ann@example.com"}, {"password", " pass word "}});

  const auto json = run_command(invocation, daemon.exchange(), {true, false, {}}, stdin_with("pw"));
  CHECK(nlohmann::json::parse(json.out)["owner_id"] == "xYZkjABcde");
}

TEST_CASE("customer login refuses an empty or non-UTF-8 password before sending", "[commands]") {
  CannedDaemon daemon{{201, R"({"session":"s"})", std::nullopt}, {}};
  auto invocation = command(Command::customer_login, "storefront-eu");
  invocation.username = "ann@example.com";
  CHECK(thrown_code([&] { (void)run_command(invocation, daemon.exchange(), {}, stdin_with(std::nullopt)); }) == ExitCode::usage);
  CHECK(thrown_code([&] { (void)run_command(invocation, daemon.exchange(), {}, stdin_with("")); }) == ExitCode::usage);
  CHECK(thrown_code([&] { (void)run_command(invocation, daemon.exchange(), {}, stdin_with("\xFF\xFE")); }) == ExitCode::usage);
  CHECK(daemon.seen.empty());

  daemon.answer = {401, R"({"error":{"code":"invalid_credentials","message":"wrong username or password"}})", std::nullopt};
  CHECK(thrown_code([&] { (void)run_command(invocation, daemon.exchange(), {}, stdin_with("pw")); }) == ExitCode::refused);
}

TEST_CASE("customer token and logout address the session", "[commands]") {
  CannedDaemon daemon{{200, token_document, std::nullopt}, {}};
  auto invocation = command(Command::customer_token, "storefront-eu");
  invocation.session = "c2Vz/c2lvbg==";
  invocation.min_ttl = 30;
  CHECK(run_command(invocation, daemon.exchange(), {}, no_stdin).out == "eyJhbGciOiJSUzUxMiJ9.e30.c2ln\n");
  CHECK(daemon.seen[0].method == "GET");
  CHECK(daemon.seen[0].target == "/v1/customers/storefront-eu/sessions/c2Vz%2Fc2lvbg%3D%3D?min_ttl=30");

  daemon.answer = {410, R"({"error":{"code":"session_expired","message":"the session has expired"}})", std::nullopt};
  CHECK(thrown_code([&] { (void)run_command(invocation, daemon.exchange(), {}, no_stdin); }) == ExitCode::refused);

  daemon.answer = {200, R"({"ended":true})", std::nullopt};
  invocation.command = Command::customer_logout;
  CHECK(run_command(invocation, daemon.exchange(), {}, no_stdin).out == "session ended\n");
  CHECK(daemon.seen.back().method == "DELETE");
  CHECK(daemon.seen.back().target == "/v1/customers/storefront-eu/sessions/c2Vz%2Fc2lvbg%3D%3D");
}

TEST_CASE("secrets on stdin: the first line, without its line ending, bounded", "[commands]") {
  std::istringstream lf("hunter2\nsecond line\n");
  CHECK(read_secret_line(lf) == std::optional<std::string>("hunter2"));
  std::istringstream crlf(" spaced \r\n");
  CHECK(read_secret_line(crlf) == std::optional<std::string>(" spaced "));
  std::istringstream bare("no newline");
  CHECK(read_secret_line(bare) == std::optional<std::string>("no newline"));
  std::istringstream blank("\n");
  CHECK(read_secret_line(blank) == std::optional<std::string>(""));
  std::istringstream empty("");
  CHECK_FALSE(read_secret_line(empty).has_value());
  std::istringstream huge(std::string(max_secret_length + 1, 'x'));
  CHECK(thrown_code([&] { (void)read_secret_line(huge); }) == ExitCode::usage);
  std::istringstream just_fits(std::string(max_secret_length, 'x'));
  CHECK(read_secret_line(just_fits)->size() == max_secret_length);
  CHECK(trim(" \t eyJ.a.b \r\n") == "eyJ.a.b");
  CHECK(trim("   ").empty());
}
