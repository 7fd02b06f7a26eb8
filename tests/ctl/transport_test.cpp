// The transport in process, for the limits that are awkward to reach through the binary.
#include <catch2/catch.hpp>

#include "ctl_error.hpp"
#include "fake_daemon.hpp"
#include "unix_http_client.hpp"

using namespace cltoken::ctl;
using namespace ctl_test;
using namespace std::chrono_literals;

TEST_CASE("transport: returns any status with its body and Retry-After", "[transport]") {
  FakeDaemon daemon(http_response(429, R"({"error":{"code":"x","message":"slow down"}})", "Retry-After: 7\r\n"));
  const auto response = exchange_over_unix_socket({"POST", "/v1/reload", std::string("{}")}, {daemon.socket_path(), 5000ms});
  CHECK(response.status == 429);
  CHECK(response.body == R"({"error":{"code":"x","message":"slow down"}})");
  CHECK(response.retry_after == std::optional<std::string>("7"));
  const auto requests = daemon.requests();
  REQUIRE(requests.size() == 1);
  CHECK_THAT(requests[0], Catch::StartsWith("POST /v1/reload HTTP/1.1\r\n"));
  CHECK_THAT(requests[0], Catch::Contains("\r\nContent-Length: 2\r\n"));
  CHECK_THAT(requests[0], Catch::EndsWith("\r\n\r\n{}"));
}

TEST_CASE("transport: a POST without a body still says Content-Length: 0", "[transport]") {
  FakeDaemon daemon(http_response(200, R"({"reloaded":true})"));
  const auto response = exchange_over_unix_socket({"POST", "/v1/reload", std::nullopt}, {daemon.socket_path(), 5000ms});
  CHECK(response.status == 200);
  const auto requests = daemon.requests();
  REQUIRE(requests.size() == 1);
  CHECK_THAT(requests[0], Catch::Contains("\r\nContent-Length: 0\r\n"));
  CHECK_THAT(requests[0], Catch::Contains("\r\nConnection: close\r\n"));
}

TEST_CASE("transport: a body over the limit is refused, not buffered", "[transport]") {
  FakeDaemon daemon(http_response(200, "{\"pad\":\"" + std::string(4096, 'x') + "\"}"));
  Endpoint endpoint{daemon.socket_path(), 5000ms, 1024, std::nullopt};
  try {
    (void)exchange_over_unix_socket({"GET", "/v1/status", std::nullopt}, endpoint);
    FAIL("expected CtlError");
  } catch (const CtlError& e) {
    CHECK(e.code() == ExitCode::unreachable);
    CHECK(std::string(e.what()) == "the answer of cl-tokend on " + daemon.socket_path() + " is larger than 1024 bytes");
  }
}

TEST_CASE("transport: a socket path longer than sun_path is reported, not truncated", "[transport]") {
  const std::string path = "/tmp/" + std::string(120, 'a') + ".sock";
  CHECK_THROWS_WITH(exchange_over_unix_socket({"GET", "/v1/health", std::nullopt}, {path, 5000ms}),
                    Catch::Contains("(a socket path has at most 107 bytes)"));
}

TEST_CASE("transport: the deadline covers the whole exchange", "[transport]") {
  FakeDaemon daemon("", FakeDaemon::Behaviour::never_answer);
  CHECK_THROWS_WITH(exchange_over_unix_socket({"GET", "/v1/health", std::nullopt}, {daemon.socket_path(), 100ms}),
                    "no answer from cl-tokend on " + daemon.socket_path() + " within 100 ms (--timeout)");
}
