#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "credential_state.hpp"
#include "ctl_error.hpp"
#include "exit_code.hpp"
#include "status_documents.hpp"

using namespace cltoken::ctl;

TEST_CASE("the contract's exit code numbers", "[exit]") {
  CHECK(to_int(ExitCode::ok) == 0);
  CHECK(to_int(ExitCode::unreachable) == 1);
  CHECK(to_int(ExitCode::usage) == 2);
  CHECK(to_int(ExitCode::refused) == 3);
}

TEST_CASE("HTTP status to exit code", "[exit]") {
  CHECK(exit_code_for_http_status(200) == ExitCode::ok);
  CHECK(exit_code_for_http_status(201) == ExitCode::ok);
  for (const int refused : {400, 401, 403, 404, 410, 413, 429, 503}) {
    INFO("HTTP " << refused);
    CHECK(exit_code_for_http_status(refused) == ExitCode::refused);
  }
  for (const int broken : {0, 101, 301, 500, 502, 504}) {
    INFO("HTTP " << broken);
    CHECK(exit_code_for_http_status(broken) == ExitCode::unreachable);
  }
}

TEST_CASE("which states count as serving", "[exit]") {
  CHECK(is_serving("fresh"));
  CHECK(is_serving("refreshing"));
  CHECK(is_serving("stale"));
  CHECK_FALSE(is_serving("empty"));
  CHECK_FALSE(is_serving("fetching"));
  CHECK_FALSE(is_serving("expired"));
  CHECK_FALSE(is_serving("failing"));
  CHECK_FALSE(is_serving("some-future-state"));
  CHECK_FALSE(is_serving(""));
}

TEST_CASE("status exits 3 when any credential is not serving", "[exit]") {
  CHECK(status_exit_code(Document::parse(fixtures::all_serving)) == ExitCode::ok);
  CHECK(status_exit_code(Document::parse(fixtures::every_state)) == ExitCode::refused);
  CHECK(status_exit_code(Document::parse(fixtures::nulls)) == ExitCode::refused);
  CHECK(status_exit_code(Document::parse(R"({"credentials":[]})")) == ExitCode::ok);
  CHECK(status_exit_code(Document::parse(R"({"credentials":[{"state":"stale"},{"state":"empty"}]})")) == ExitCode::refused);
}

TEST_CASE("a status document without credentials is a protocol error", "[exit]") {
  try {
    (void)status_exit_code(Document::parse(R"({"version":"1"})"));
    FAIL("expected CtlError");
  } catch (const CtlError& e) {
    CHECK(e.code() == ExitCode::unreachable);
  }
}
