// The built cl-tokenctl against a fake daemon on a real Unix socket: transport, socket
// choice, --timeout, stdin secrets, and the exit codes and stderr lines scripts see.
#include <catch2/catch.hpp>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "child_process.hpp"
#include "fake_daemon.hpp"
#include "status_documents.hpp"

using namespace ctl_test;
using namespace std::chrono_literals;

namespace {

const std::string token_body =
    R"({"credential":"backoffice","kind":"integration","access_token":"eyJhbGciOiJSUzUxMiJ9.e30.c2ln",)"
    R"("token_type":"bearer","scope":"market:all","expires_at":"2026-11-25T21:03:04Z","expires_in":5423})";

std::string body_of(const std::string& request) { return request.substr(request.find("\r\n\r\n") + 4); }

} // namespace

TEST_CASE("process: token prints the bare token for $(...)", "[process]") {
  FakeDaemon daemon(http_response(200, token_body));
  const auto result = run_ctl({"-s", daemon.socket_path(), "token", "backoffice", "--min-ttl", "120"});
  CHECK(result.exit_code == 0);
  CHECK(result.out == "eyJhbGciOiJSUzUxMiJ9.e30.c2ln\n");
  CHECK(result.err.empty());
  const auto requests = daemon.requests();
  REQUIRE(requests.size() == 1);
  CHECK_THAT(requests[0], Catch::StartsWith("GET /v1/tokens/backoffice?min_ttl=120 HTTP/1.1\r\n"));
  CHECK_THAT(requests[0], Catch::Contains("\r\nHost: localhost\r\n"));
}

TEST_CASE("process: the socket comes from --socket, else CL_TOKEND_SOCKET", "[process]") {
  FakeDaemon daemon(http_response(200, token_body));
  ChildOptions from_env;
  from_env.environment["CL_TOKEND_SOCKET"] = daemon.socket_path();
  CHECK(run_ctl({"token", "backoffice"}, from_env).exit_code == 0);

  ChildOptions wrong_env;
  wrong_env.environment["CL_TOKEND_SOCKET"] = daemon.missing_socket_path();
  CHECK(run_ctl({"--socket", daemon.socket_path(), "token", "backoffice"}, wrong_env).exit_code == 0);
  CHECK(daemon.requests().size() == 2);
}

TEST_CASE("process: invalidate reads the token from stdin", "[process]") {
  FakeDaemon daemon(http_response(200, token_body));
  ChildOptions options;
  options.stdin_data = "  eyJold.rejected.token \n";
  const auto result = run_ctl({"-s", daemon.socket_path(), "invalidate", "backoffice"}, options);
  CHECK(result.exit_code == 0);
  CHECK(result.out == "eyJhbGciOiJSUzUxMiJ9.e30.c2ln\n");
  const auto requests = daemon.requests();
  REQUIRE(requests.size() == 1);
  CHECK_THAT(requests[0], Catch::StartsWith("POST /v1/tokens/backoffice/invalidate HTTP/1.1\r\n"));
  CHECK_THAT(requests[0], Catch::Contains("\r\nContent-Type: application/json\r\n"));
  CHECK(body_of(requests[0]) == R"({"access_token":"eyJold.rejected.token"})");
}

TEST_CASE("process: customer login takes the password from stdin only", "[process]") {
  FakeDaemon daemon(http_response(201, R"({"session":"c2Vzc2lvbg","access_token":"eyJc.u.s","owner_id":"xYZ"})"));
  ChildOptions options;
  options.stdin_data = "correct horse\n";
  const auto result =
      run_ctl({"-s", daemon.socket_path(), "customer", "login", "storefront-eu", "--username", "ann@example.com"}, options);
  CHECK(result.exit_code == 0);
  CHECK(result.out == "c2Vzc2lvbg\n");
  const auto requests = daemon.requests();
  REQUIRE(requests.size() == 1);
  CHECK_THAT(requests[0], Catch::StartsWith("POST /v1/customers/storefront-eu/sessions HTTP/1.1\r\n"));
  CHECK(nlohmann::json::parse(body_of(requests[0])) ==
        nlohmann::json{{"username", "ann@example.com"}, {"password", "correct horse"}});
}

TEST_CASE("process: status prints a plain table when stdout is not a terminal", "[process]") {
  FakeDaemon daemon(http_response(200, fixtures::all_serving));
  const auto result = run_ctl({"-s", daemon.socket_path(), "status"});
  CHECK(result.exit_code == 0);
  CHECK_THAT(result.out, Catch::StartsWith("cl-tokend 0.1.0, up 42s, upstream 1/25 req/min\n\nNAME "));
  CHECK(result.out.find('\x1b') == std::string::npos);
}

TEST_CASE("process: degraded status and unready health exit 3", "[process]") {
  FakeDaemon degraded(http_response(200, fixtures::every_state));
  const auto status = run_ctl({"-s", degraded.socket_path(), "--json", "status"});
  CHECK(status.exit_code == 3);
  CHECK(nlohmann::json::parse(status.out) == nlohmann::json::parse(fixtures::every_state));
  CHECK(status.err.empty());

  FakeDaemon unready(http_response(503, R"({"live":true,"ready":false})"));
  const auto health = run_ctl({"-s", unready.socket_path(), "health"});
  CHECK(health.exit_code == 3);
  CHECK(health.out == "live, not ready\n");
}

TEST_CASE("process: a refusal exits 3 with the daemon's message on one line", "[process]") {
  FakeDaemon daemon(http_response(404, R"({"error":{"code":"unknown_credential","message":"no such credential"}})"));
  const auto result = run_ctl({"-s", daemon.socket_path(), "token", "nope"});
  CHECK(result.exit_code == 3);
  CHECK(result.out.empty());
  // The daemon does not repeat the name; cl-tokenctl says which one it asked for.
  CHECK(result.err == "cl-tokenctl: no credential named \"nope\"\n");

  FakeDaemon busy(http_response(503, R"({"error":{"code":"upstream_unavailable","message":"no valid token for backoffice"}})",
                                "Retry-After: 30\r\n"));
  const auto later = run_ctl({"-s", busy.socket_path(), "token", "backoffice"});
  CHECK(later.exit_code == 3);
  CHECK(later.err == "cl-tokenctl: no valid token for backoffice (retry in 30s)\n");
}

TEST_CASE("process: no daemon exits 1 and says where it looked", "[process]") {
  FakeDaemon daemon(http_response(200, token_body));
  const std::string missing = daemon.missing_socket_path();
  const auto result = run_ctl({"-s", missing, "token", "backoffice"});
  CHECK(result.exit_code == 1);
  CHECK(result.out.empty());
  CHECK(result.err == "cl-tokenctl: cannot connect to " + missing + ": No such file or directory (is cl-tokend running?)\n");
}

TEST_CASE("process: an answer that is not JSON exits 1", "[process]") {
  FakeDaemon daemon("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 13\r\n\r\n<html></html>");
  const auto result = run_ctl({"-s", daemon.socket_path(), "token", "backoffice"});
  CHECK(result.exit_code == 1);
  CHECK(result.err == "cl-tokenctl: cl-tokend answered HTTP 200 with a body that is not JSON\n");
}

TEST_CASE("process: a peer that is not HTTP, or hangs up, exits 1", "[process]") {
  FakeDaemon garbage("SSH-2.0-OpenSSH_9.2\r\n");
  const auto not_http = run_ctl({"-s", garbage.socket_path(), "health"});
  CHECK(not_http.exit_code == 1);
  CHECK_THAT(not_http.err, Catch::StartsWith("cl-tokenctl: malformed HTTP answer from cl-tokend on "));

  FakeDaemon rude("", FakeDaemon::Behaviour::hang_up);
  const auto closed = run_ctl({"-s", rude.socket_path(), "health"});
  CHECK(closed.exit_code == 1);
  CHECK(closed.err == "cl-tokenctl: cl-tokend on " + rude.socket_path() + " closed the connection before answering\n");
}

TEST_CASE("process: --timeout bounds a daemon that never answers", "[process]") {
  FakeDaemon daemon("", FakeDaemon::Behaviour::never_answer);
  ChildOptions options;
  // Far above the 300 ms asked for, far below the 5 s default: a ctl that ignored
  // --timeout would be killed here and the test would fail on timed_out.
  options.deadline = 3000ms;
  const auto result = run_ctl({"-s", daemon.socket_path(), "--timeout", "300", "health"}, options);
  CHECK_FALSE(result.timed_out);
  CHECK(result.exit_code == 1);
  CHECK(result.err == "cl-tokenctl: no answer from cl-tokend on " + daemon.socket_path() + " within 300 ms (--timeout)\n");
  CHECK(daemon.requests().size() == 1);
}

TEST_CASE("process: usage errors exit 2 with one line and send nothing", "[process]") {
  FakeDaemon daemon(http_response(200, token_body));
  for (const auto& arguments : std::vector<std::vector<std::string>>{
           {"-s", daemon.socket_path(), "frobnicate"},
           {"-s", daemon.socket_path(), "token"},
           {"-s", daemon.socket_path(), "--timeout", "0", "status"},
           {"-s", daemon.socket_path(), "status", "--interval", "5"},
           {"-s", daemon.socket_path(), "customer", "login", "storefront-eu"},
           {"-s", daemon.socket_path(), "invalidate", "backoffice"}, // no TOKEN, empty stdin
       }) {
    const auto result = run_ctl(arguments);
    INFO(arguments.back() << ": " << result.err);
    CHECK(result.exit_code == 2);
    CHECK_THAT(result.err, Catch::StartsWith("cl-tokenctl: "));
    CHECK(std::count(result.err.begin(), result.err.end(), '\n') == 1);
    CHECK(result.out.empty());
  }
  CHECK(daemon.requests().empty());
}

TEST_CASE("process: --help and --version exit 0", "[process]") {
  const auto help = run_ctl({"--help"});
  CHECK(help.exit_code == 0);
  CHECK_THAT(help.out, Catch::Contains("Usage: cl-tokenctl"));
  const auto version = run_ctl({"--version"});
  CHECK(version.exit_code == 0);
  CHECK(version.out == "cl-tokenctl " CLTOKENCTL_VERSION "\n");
}
