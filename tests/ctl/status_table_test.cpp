// Golden output of the status table: byte for byte, for fixed status documents.
#include <catch2/catch.hpp>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "ctl_error.hpp"
#include "status_documents.hpp"
#include "status_table.hpp"
#include "terminal_text.hpp"

using namespace cltoken::ctl;

namespace {

std::string render(const char* document, TableOptions options = {}) {
  return render_status_table(Document::parse(document), options);
}

// Spelled out so the golden text stays greppable; "—" is U+2014, "…" U+2026.
#define DASH "\xE2\x80\x94"
#define ELLIPSIS "\xE2\x80\xA6"

} // namespace

TEST_CASE("table: one row per state, null fields as dashes", "[table]") {
  CHECK(render(fixtures::every_state) ==
        "cl-tokend 0.1.0, up 2h 05m, upstream 3/25 req/min\n"
        "\n"
        "NAME           KIND           STATE       EXPIRES  REFRESH  UPSTREAM      LAST ERROR\n"
        "backoffice     integration    fresh       1h 52m   1h 23m   12            " DASH "\n"
        "storefront-eu  sales_channel  refreshing  4m 05s   now      4             " DASH "\n"
        "reports        integration    stale       59s      now      9 (2 failed)  upstream timed out\n"
        "new-one        integration    fetching    " DASH "        " DASH "        1             " DASH "\n"
        "old            integration    expired     expired  " DASH "        3 (3 failed)  upstream answered 401 invalid_client\n"
        "broken         sales_channel  failing     " DASH "        30s      7 (7 failed)  network unreachable\n"
        "idle           integration    empty       " DASH "        " DASH "        0             " DASH "\n");
}

TEST_CASE("table: colour paints the state, padding stays outside the codes", "[table]") {
  CHECK(render(fixtures::every_state, {true, std::nullopt}) ==
        "cl-tokend 0.1.0, up 2h 05m, upstream 3/25 req/min\n"
        "\n"
        "NAME           KIND           STATE       EXPIRES  REFRESH  UPSTREAM      LAST ERROR\n"
        "backoffice     integration    \x1b[32mfresh\x1b[0m       1h 52m   1h 23m   12            " DASH "\n"
        "storefront-eu  sales_channel  \x1b[36mrefreshing\x1b[0m  4m 05s   now      4             " DASH "\n"
        "reports        integration    \x1b[33mstale\x1b[0m       59s      now      9 (2 failed)  upstream timed out\n"
        "new-one        integration    \x1b[36mfetching\x1b[0m    " DASH "        " DASH "        1             " DASH "\n"
        "old            integration    \x1b[31mexpired\x1b[0m     expired  " DASH
        "        3 (3 failed)  upstream answered 401 invalid_client\n"
        "broken         sales_channel  \x1b[31mfailing\x1b[0m     " DASH "        30s      7 (7 failed)  network unreachable\n"
        "idle           integration    \x1b[2mempty\x1b[0m       " DASH "        " DASH "        0             " DASH "\n");
}

TEST_CASE("table: a document as the daemon sends it, with a rejected credential retried now", "[table]") {
  CHECK(render(fixtures::daemon_rejected) ==
        "cl-tokend 0.1.0, up 5s, upstream 5/25 req/min\n"
        "\n"
        "NAME           KIND           STATE    EXPIRES  REFRESH  UPSTREAM      LAST ERROR\n"
        "backoffice     integration    fresh    1h 59m   1h 29m   1             " DASH "\n"
        "reports        integration    failing  " DASH
        "        now      3 (3 failed)  client_id or client_secret rejected by the auth server (401" ELLIPSIS "\n"
        "storefront-eu  sales_channel  fresh    3h 59m   2h 59m   1             " DASH "\n"
        "\n"
        "reports: client_id or client_secret rejected by the auth server (401 invalid_client)\n");
}

TEST_CASE("table: columns shrink to their content", "[table]") {
  CHECK(render(fixtures::all_serving) == "cl-tokend 0.1.0, up 42s, upstream 1/25 req/min\n"
                                         "\n"
                                         "NAME        KIND         STATE  EXPIRES  REFRESH  UPSTREAM  LAST ERROR\n"
                                         "backoffice  integration  fresh  1h 59m   1h 29m   1         " DASH "\n"
                                         "reports     integration  stale  4m 18s   now      1         " DASH "\n");
}

TEST_CASE("table: a document of nulls still renders", "[table]") {
  CHECK(render(fixtures::nulls) == "cl-tokend\n"
                                   "\n"
                                   "NAME     KIND  STATE  EXPIRES  REFRESH  UPSTREAM  LAST ERROR\n"
                                   "mystery  " DASH "     " DASH "      " DASH "        " DASH "        " DASH "         " DASH
                                   "\n");
  // Fields missing altogether, or of an unexpected type, do not fail the view either.
  CHECK(render(R"({"credentials":[{"name":"x","state":"fresh","expires_in":"soon","upstream_requests":true}]})") ==
        "cl-tokend\n"
        "\n"
        "NAME  KIND  STATE  EXPIRES  REFRESH  UPSTREAM  LAST ERROR\n"
        "x     " DASH "     fresh  " DASH "        " DASH "        " DASH "         " DASH "\n");
}

TEST_CASE("table: the header shows a spent budget and a rate-limit pause", "[table]") {
  CHECK(render(fixtures::rate_limited) == "cl-tokend 0.1.0, up 3d 04h, upstream 25/25 req/min, rate limited until 12:03:04Z\n"
                                          "\n"
                                          "NAME        KIND         STATE  EXPIRES  REFRESH  UPSTREAM       LAST ERROR\n"
                                          "backoffice  integration  stale  6m 56s   54s      31 (6 failed)  upstream answered "
                                          "429 (rate limited), retrying after 54s\n");
  CHECK(render(fixtures::rate_limited, {true, std::nullopt}) ==
        "cl-tokend 0.1.0, up 3d 04h, upstream \x1b[33m25/25 req/min\x1b[0m, \x1b[31mrate limited until 12:03:04Z\x1b[0m\n"
        "\n"
        "NAME        KIND         STATE  EXPIRES  REFRESH  UPSTREAM       LAST ERROR\n"
        "backoffice  integration  \x1b[33mstale\x1b[0m  6m 56s   54s      31 (6 failed)  upstream answered 429 (rate limited), "
        "retrying after 54s\n");
}

TEST_CASE("table: the header counts customer sessions when the daemon reports them", "[table]") {
  CHECK(render(R"({"version":"0.1.0","uptime_s":5,"customers":{"sessions":12},"credentials":[]})") ==
        "cl-tokend 0.1.0, up 5s, 12 customer sessions\n\nno credentials configured\n");
  CHECK(render(R"({"customers":{"sessions":1},"credentials":[]})") ==
        "cl-tokend, 1 customer session\n\nno credentials configured\n");
}

TEST_CASE("table: a negative next refresh reads as overdue", "[table]") {
  // The schema says next_refresh_in is never negative; should a daemon send one anyway,
  // the table says what it means rather than "-1m 00s".
  CHECK_THAT(render(R"({"credentials":[{"name":"x","state":"stale","expires_in":30,"next_refresh_in":-60}]})"),
             Catch::Contains("x     " DASH "     stale  30s      overdue  "));
}

TEST_CASE("table: a rate-limit time that is not ISO UTC is shown as sent", "[table]") {
  const std::string out = render(R"({"upstream":{"rate_limited_until":"in a while"},"credentials":[]})");
  CHECK(out == "cl-tokend, rate limited until in a while\n\nno credentials configured\n");
}

TEST_CASE("table: long names widen their column, long errors are cut readably", "[table]") {
  CHECK(render(fixtures::long_fields) ==
        "cl-tokend 0.1.0, up 59s, upstream 0/25 req/min\n"
        "\n"
        "NAME                                    KIND           STATE    EXPIRES  REFRESH  UPSTREAM      LAST ERROR\n"
        "storefront-europe-west-marketplace-b2b  sales_channel  failing  " DASH
        "        12s      2 (2 failed)  upstream answered 401 invalid_client: The client identifier" ELLIPSIS "\n"
        "a                                       integration    fresh    59m 01s  44m 01s  1             " DASH "\n"
        "\n"
        "storefront-europe-west-marketplace-b2b: upstream answered 401 invalid_client: The client identifier provided is "
        "invalid, \xEF\xBF\xBD[31mthe client failed to authenticate, or the authentication method is unsupported\n");
}

TEST_CASE("table: errors that fit are not repeated under the table", "[table]") {
  const std::string out = render(fixtures::every_state);
  CHECK(out.find("\n\n", out.find("NAME")) == std::string::npos);
}

TEST_CASE("table: on a terminal LAST ERROR gets the columns left, at least 12", "[table]") {
  const std::string wide = render(fixtures::long_fields, {false, 160});
  CHECK_THAT(wide, Catch::Contains("  upstream answered 401 invalid_client: The client identifier" ELLIPSIS "\n"));
  // The table's lines fit; the whole error after it may wrap.
  const std::string table = wide.substr(0, wide.find("\n\n", wide.find("NAME")) + 1);
  CHECK_THAT(wide.substr(table.size()), Catch::Contains("the authentication method is unsupported\n"));
  std::size_t start = 0;
  while (start < table.size()) {
    const std::size_t end = table.find('\n', start);
    CHECK(display_width(table.substr(start, end - start)) < 160);
    start = end + 1;
  }
  const std::string narrow = render(fixtures::long_fields, {false, 40});
  CHECK_THAT(narrow, Catch::Contains("  upstream" ELLIPSIS "\n"));
  CHECK_THAT(narrow, Catch::Contains("\nstorefront-europe-west-marketplace-b2b: upstream answered 401 invalid_client: "));
}

TEST_CASE("table: daemon strings cannot drive the terminal", "[table]") {
  const std::string out = render(
      R"({"credentials":[{"name":"evil\u001b[2J","state":"failing","last_error":"line one\nline two \u001b]0;title\u0007"}]})");
  CHECK(out.find('\x1b') == std::string::npos);
  CHECK(out.find('\a') == std::string::npos);
  CHECK(std::count(out.begin(), out.end(), '\n') == 4);
  CHECK_THAT(out, Catch::Contains("line one line two"));
}

TEST_CASE("table: no credentials", "[table]") {
  CHECK(render(R"({"version":"0.1.0","uptime_s":5,"credentials":[]})") ==
        "cl-tokend 0.1.0, up 5s\n\nno credentials configured\n");
}

TEST_CASE("table: a document without a credentials list is a protocol error", "[table]") {
  for (const char* document : {R"({"version":"0.1.0"})", R"({"credentials":{}})", R"({"credentials":null})"}) {
    INFO(document);
    try {
      (void)render(document);
      FAIL("expected CtlError");
    } catch (const CtlError& e) {
      CHECK(e.code() == ExitCode::unreachable);
      CHECK(std::string(e.what()) == "the status document from cl-tokend has no credentials list");
    }
  }
}
