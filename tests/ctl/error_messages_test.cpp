#include <catch2/catch.hpp>

#include <cerrno>
#include <nlohmann/json.hpp>

#include "ctl_error.hpp"
#include "daemon_answer.hpp"
#include "error_line.hpp"
#include "transport_messages.hpp"

using namespace cltoken::ctl;

namespace {

std::error_code errno_code(int value) { return {value, std::system_category()}; }

} // namespace

TEST_CASE("an error is exactly one prefixed line", "[errors]") {
  CHECK(error_line("no credential named nope") == "cl-tokenctl: no credential named nope\n");
  CHECK(error_line("two\nlines\r\n") == "cl-tokenctl: two lines\n");
  CHECK(error_line("") == "cl-tokenctl: unknown error\n");
  CHECK(error_line("esc \x1b[2J") == "cl-tokenctl: esc \xEF\xBF\xBD[2J\n");
}

TEST_CASE("connect failures name the socket and hint at the likely cause", "[errors]") {
  CHECK(connect_failure_message("/run/cl-tokend/cl-tokend.sock", errno_code(ENOENT)) ==
        "cannot connect to /run/cl-tokend/cl-tokend.sock: No such file or directory (is cl-tokend running?)");
  CHECK(connect_failure_message("/s", errno_code(ECONNREFUSED)) ==
        "cannot connect to /s: Connection refused (is cl-tokend running?)");
  CHECK(connect_failure_message("/s", errno_code(EACCES)) ==
        "cannot connect to /s: Permission denied (is your user in the socket's group?)");
  CHECK(connect_failure_message("/s", errno_code(ENAMETOOLONG)) ==
        "cannot connect to /s: File name too long (a socket path has at most 107 bytes)");
  CHECK(connect_failure_message("/s", errno_code(ENOTSOCK)) == "cannot connect to /s: Socket operation on non-socket");
}

TEST_CASE("only the daemon's uid or root is sent anything", "[errors]") {
  CHECK_FALSE(untrusted_daemon_message("/s", 990, 990));
  CHECK_FALSE(untrusted_daemon_message("/s", 0, 990));
  CHECK(untrusted_daemon_message("/s", 65534, 990) ==
        std::optional<std::string>("the process listening on /s runs as uid 65534, not as uid 990 or root; refusing to "
                                   "send it anything (--daemon-uid)"));
  CHECK(untrusted_folder_message("/srv/d/s", "/srv").find("(/srv can be written by others)") != std::string::npos);
}

TEST_CASE("transport failures name the socket", "[errors]") {
  CHECK(timeout_message("/s", std::chrono::milliseconds(300)) == "no answer from cl-tokend on /s within 300 ms (--timeout)");
  CHECK(closed_message("/s") == "cl-tokend on /s closed the connection before answering");
  CHECK(too_large_message("/s", std::size_t{8} * 1024 * 1024) == "the answer of cl-tokend on /s is larger than 8 MiB");
  CHECK(too_large_message("/s", 1000) == "the answer of cl-tokend on /s is larger than 1000 bytes");
  CHECK(malformed_message("/s", "bad version") == "malformed HTTP answer from cl-tokend on /s: bad version");
  CHECK(io_failure_message("/s", "Broken pipe") == "cannot talk to cl-tokend on /s: Broken pipe");
}

TEST_CASE("a refusal uses the daemon's message", "[errors]") {
  const Response forbidden{403, R"({"error":{"code":"forbidden","message":"uid 1000 may not use backoffice"}})", std::nullopt};
  CHECK(refusal_message(forbidden) == "uid 1000 may not use backoffice");

  const Response unavailable{503, R"({"error":{"code":"upstream_unavailable","message":"no valid token for backoffice"}})",
                             std::string("30")};
  CHECK(refusal_message(unavailable) == "no valid token for backoffice (retry in 30s)");

  const Response later{429, R"({"error":{"code":"too_many","message":"over budget"}})", std::string("125")};
  CHECK(refusal_message(later) == "over budget (retry in 2m 05s)");

  const Response dated{503, "", std::string("Wed, 25 Nov 2026 12:03:04 GMT")};
  CHECK(refusal_message(dated) == "cl-tokend answered HTTP 503 (retry after Wed, 25 Nov 2026 12:03:04 GMT)");
}

TEST_CASE("a refusal without a message falls back to the status and code", "[errors]") {
  CHECK(refusal_message({404, R"({"error":{"code":"not_found"}})", std::nullopt}) == "cl-tokend answered HTTP 404 (not_found)");
  CHECK(refusal_message({404, R"({"error":{"code":"not_found","message":""}})", std::nullopt}) ==
        "cl-tokend answered HTTP 404 (not_found)");
  CHECK(refusal_message({410, "{}", std::nullopt}) == "cl-tokend answered HTTP 410");
  CHECK(refusal_message({500, "", std::nullopt}) == "cl-tokend answered HTTP 500");
  CHECK(refusal_message({403, R"({"error":{"message":"multi\nline"}})", std::nullopt}) == "multi line");
}

TEST_CASE("an answer that is not JSON is a protocol error", "[errors]") {
  try {
    (void)refusal_message({502, "<html>Bad Gateway</html>", std::nullopt});
    FAIL("expected CtlError");
  } catch (const CtlError& e) {
    CHECK(e.code() == ExitCode::unreachable);
    CHECK(std::string(e.what()) == "cl-tokend answered HTTP 502 with a body that is not JSON");
  }
  try {
    (void)parse_document({200, "[1,2]", std::nullopt});
    FAIL("expected CtlError");
  } catch (const CtlError& e) {
    CHECK(e.code() == ExitCode::unreachable);
    CHECK(std::string(e.what()) == "cl-tokend answered HTTP 200 with JSON that is not an object");
  }
}

TEST_CASE("a token must be safe to paste into a shell", "[errors]") {
  const auto document = Document::parse(R"({"access_token":"eyJ.a-b_c.d","session":"s 1","empty":""})");
  CHECK(expect_opaque_string(document, "access_token") == "eyJ.a-b_c.d");
  CHECK_THROWS_AS(expect_opaque_string(document, "session"), CtlError);
  CHECK_THROWS_AS(expect_opaque_string(document, "empty"), CtlError);
  CHECK_THROWS_AS(expect_opaque_string(document, "missing"), CtlError);
  CHECK_THROWS_WITH(expect_opaque_string(document, "missing"), "the answer of cl-tokend has no missing");
}
