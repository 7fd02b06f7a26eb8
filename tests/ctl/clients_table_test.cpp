// The client list: golden output of the table, and the requests `clients` and
// `status --clients` send.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>
#include <vector>

#include "clients_table.hpp"
#include "command_line.hpp"
#include "commands.hpp"
#include "ctl_error.hpp"
#include "status_documents.hpp"

using namespace cltoken::ctl;

namespace {

constexpr const char* clients_document =
    R"({"window_s":3600,"capacity":4096,"evicted":0,"clients":[)"
    R"({"principal":"unit:storefront.service","unit":"storefront.service","uid":61234,"user":null,)"
    R"("credential":"storefront-eu","requests":120,"refused":0,"first_seen":"2026-11-25T20:10:00Z","last_seen":"2026-11-25T21:03:04Z"},)"
    R"({"principal":"user:erp","unit":null,"uid":1001,"user":"erp","credential":"backoffice","requests":3,"refused":3,)"
    R"("first_seen":"2026-11-25T21:00:00Z","last_seen":"2026-11-25T21:01:00Z"}]})";

ParsedCommandLine parse(const std::vector<std::string>& args) { return parse_command_line(args); }

} // namespace

TEST_CASE("clients table: one row per principal and credential", "[clients]") {
  CHECK(render_clients_table(Document::parse(clients_document)) ==
        "2 clients in the last hour (at most 4096 kept)\n"
        "\n"
        "PRINCIPAL                CREDENTIAL     REQUESTS  REFUSED  LAST SEEN\n"
        "unit:storefront.service  storefront-eu  120       0        2026-11-25T21:03:04Z\n"
        "user:erp                 backoffice     3         3        2026-11-25T21:01:00Z\n");
}

TEST_CASE("clients table: empty, dropped rows, and control characters from the daemon", "[clients]") {
  CHECK(render_clients_table(Document::parse(R"({"capacity":4096,"evicted":0,"clients":[]})")) ==
        "0 clients in the last hour (at most 4096 kept)\n");
  const auto table = render_clients_table(Document::parse(
      R"({"capacity":1,"evicted":7,"clients":[{"principal":"unit:a\u001b[31m.service","credential":"x","requests":1,"refused":0,"last_seen":null}]})"));
  CHECK(table.find('\x1b') == std::string::npos);
  CHECK(table.find("7 older rows were dropped to stay within the bound\n") != std::string::npos);
  CHECK_THROWS_AS(render_clients_table(Document::parse(R"({"credentials":[]})")), CtlError);
}

TEST_CASE("clients and status --clients ask for /v1/clients", "[clients]") {
  auto clients = parse({"clients"});
  REQUIRE(clients.invocation);
  CHECK(clients.invocation->command == Command::clients);
  auto status = parse({"status", "--clients"});
  REQUIRE(status.invocation);
  CHECK(status.invocation->command == Command::status);
  CHECK(status.invocation->clients);
  CHECK_THROWS_AS(parse({"status", "--clients", "--watch"}), CtlError);

  std::vector<std::string> asked;
  const Exchange daemon = [&](const Request& request) {
    asked.push_back(request.target);
    Response r;
    r.status = 200;
    r.body = request.target == "/v1/clients" ? clients_document : fixtures::every_state;
    return r;
  };
  const ReadSecret no_stdin = [](std::string_view) -> std::optional<std::string> { return std::nullopt; };
  auto out = run_command(*clients.invocation, daemon, Presentation{}, no_stdin);
  CHECK(asked == std::vector<std::string>{"/v1/clients"});
  CHECK(out.out.rfind("2 clients in the last hour", 0) == 0);
  asked.clear();
  out = run_command(*status.invocation, daemon, Presentation{}, no_stdin);
  CHECK(asked == std::vector<std::string>{"/v1/status", "/v1/clients"});
  CHECK(out.out.find("NAME ") != std::string::npos);
  CHECK(out.out.find("unit:storefront.service") != std::string::npos);
  Presentation json;
  json.json = true;
  out = run_command(*status.invocation, daemon, json, no_stdin);
  const auto both = Document::parse(out.out);
  CHECK(both["clients"]["clients"].size() == 2);
  CHECK(both["status"].contains("credentials"));
}

TEST_CASE("clients: a non-admin is refused with exit 3", "[clients]") {
  auto clients = parse({"clients"});
  const Exchange daemon = [](const Request&) {
    Response r;
    r.status = 403;
    r.body = R"({"error":{"code":"forbidden","message":"the client list needs an admin principal"}})";
    return r;
  };
  const ReadSecret no_stdin = [](std::string_view) -> std::optional<std::string> { return std::nullopt; };
  try {
    (void)run_command(*clients.invocation, daemon, Presentation{}, no_stdin);
    FAIL("expected a refusal");
  } catch (const CtlError& e) {
    CHECK(e.code() == ExitCode::refused);
    CHECK(std::string(e.what()).find("admin") != std::string::npos);
  }
}
