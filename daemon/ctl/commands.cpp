#include "commands.hpp"

#include <nlohmann/json.hpp>

#include "clients_table.hpp"
#include "credential_state.hpp"
#include "ctl_error.hpp"
#include "daemon_answer.hpp"
#include "duration_format.hpp"
#include "status_table.hpp"
#include "stdin_secret.hpp"
#include "terminal_text.hpp"
#include "url_segment.hpp"

namespace cltoken::ctl {
namespace {

using json = Document;

std::string pretty(const json& document) {
  // Replace rather than throw on invalid UTF-8: the document came from the daemon and
  // printing it is the whole point of --json.
  return document.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

std::string min_ttl_query(const std::optional<std::int64_t>& min_ttl) {
  return min_ttl ? "?min_ttl=" + std::to_string(*min_ttl) : std::string();
}

std::string token_path(const Invocation& invocation) { return "/v1/tokens/" + url_segment(invocation.name); }

std::string sessions_path(const Invocation& invocation) { return "/v1/customers/" + url_segment(invocation.name) + "/sessions"; }

/// A request body from user input (a password, a pasted token), which may not be UTF-8.
std::string body_of(const json& document, std::string_view what) {
  try {
    return document.dump();
  } catch (const json::type_error&) {
    throw CtlError(ExitCode::usage, std::string(what) + " is not valid UTF-8");
  }
}

/// The "error.code" of a refusal, or "" when the body has none.
std::string error_code_of(const Response& response) {
  const auto document = json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  if (!document.is_object()) return {};
  const auto error = document.find("error");
  if (error == document.end() || !error->is_object()) return {};
  const auto code = error->find("code");
  return code != error->end() && code->is_string() ? code->get<std::string>() : std::string();
}

/// Answers carrying a token document: print the bare token (for `$(...)`) or the document.
Outcome token_outcome(const Response& response, const Presentation& presentation) {
  const json document = expect_success(response);
  // Checked even with --json: a 200 without a usable token is a protocol error either way.
  const std::string token = expect_opaque_string(document, "access_token");
  return {ExitCode::ok, presentation.json ? pretty(document) : token + "\n"};
}

/// Answers of admin and logout operations: a confirmation for people, the document for --json.
Outcome confirmation(const Response& response, const Presentation& presentation, std::string said) {
  const json document = expect_success(response);
  return {ExitCode::ok, presentation.json ? pretty(document) : said + "\n"};
}

/// "refreshed NAME: token valid for 1h 59m", or why nothing was fetched.
Outcome refresh(const Invocation& invocation, const Exchange& exchange, const Presentation& presentation) {
  const json document = expect_success(exchange({"POST", token_path(invocation) + "/refresh", std::nullopt}));
  if (presentation.json) return {ExitCode::ok, pretty(document)};
  const auto expires_in = document.find("expires_in");
  const std::string valid_for = expires_in != document.end() && expires_in->is_number_integer()
                                    ? " valid for " + format_duration(expires_in->get<std::int64_t>())
                                    : std::string();
  const auto refreshed = document.find("refreshed");
  if (refreshed != document.end() && refreshed->is_boolean() && refreshed->get<bool>())
    return {ExitCode::ok, "refreshed " + one_line(invocation.name) + ": token" + valid_for + "\n"};
  const auto message = document.find("message");
  return {ExitCode::ok,
          "kept " + one_line(invocation.name) + "'s token" + valid_for +
              (message != document.end() && message->is_string() ? ": " + one_line(message->get<std::string>()) : "") + "\n"};
}

Outcome clients(const Exchange& exchange, const Presentation& presentation) {
  const json document = expect_success(exchange({"GET", "/v1/clients", std::nullopt}));
  return {ExitCode::ok, presentation.json ? pretty(document) : render_clients_table(document)};
}

Outcome status(const Invocation& invocation, const Exchange& exchange, const Presentation& presentation) {
  const json document = expect_success(exchange({"GET", "/v1/status", std::nullopt}));
  const ExitCode code = status_exit_code(document);
  if (!invocation.clients) {
    if (presentation.json) return {code, pretty(document)};
    return {code, render_status_table(document, {presentation.colour, presentation.terminal_columns})};
  }
  const json list = expect_success(exchange({"GET", "/v1/clients", std::nullopt}));
  if (presentation.json) return {code, pretty(json{{"status", document}, {"clients", list}})};
  return {code, render_status_table(document, {presentation.colour, presentation.terminal_columns}) + "\n" +
                    render_clients_table(list)};
}

bool flag_of(const json& document, const char* key) {
  const auto found = document.find(key);
  return found != document.end() && found->is_boolean() && found->get<bool>();
}

Outcome health(const Exchange& exchange, const Presentation& presentation) {
  const Response response = exchange({"GET", "/v1/health", std::nullopt});
  json document;
  if (response.status == 503) {
    // 503 is the documented "live but not ready" answer, with the health document; a
    // 503 without one is an ordinary refusal.
    document = parse_document(response);
    if (!document.contains("ready")) throw CtlError(ExitCode::refused, refusal_message(response));
  } else {
    document = expect_success(response);
  }
  const bool live = flag_of(document, "live");
  const bool ready = flag_of(document, "ready");
  const ExitCode code = live && ready ? ExitCode::ok : ExitCode::refused;
  if (presentation.json) return {code, pretty(document)};
  if (!live) return {code, "not live\n"};
  if (ready) return {code, "live, ready\n"};
  // The daemon names the credentials without a valid token, in config order.
  std::string names;
  if (const auto missing = document.find("credentials_not_ready"); missing != document.end() && missing->is_array()) {
    for (const auto& name : *missing) {
      if (!name.is_string()) continue;
      names += names.empty() ? ": " : ", ";
      names += one_line(name.get_ref<const std::string&>());
    }
  }
  return {code, "live, not ready" + names + "\n"};
}

/// {"access_token": TOKEN} read from stdin, never from the command line (every local user
/// can read that); `what` names the command for the error.
std::string token_body(const ReadSecret& read_secret, std::string_view what) {
  const std::string token = trim(read_secret("Token: ").value_or(std::string()));
  if (token.empty()) throw CtlError(ExitCode::usage, "no token to " + std::string(what) + ": pipe it on stdin");
  return body_of(json{{"access_token", token}}, "the token");
}

Outcome invalidate(const Invocation& invocation, const Exchange& exchange, const Presentation& presentation,
                   const ReadSecret& read_secret) {
  const std::string body = token_body(read_secret, "invalidate");
  return token_outcome(exchange({"POST", token_path(invocation) + "/invalidate", body}), presentation);
}

std::string text_at(const json& document, const char* object, const char* key) {
  const auto o = document.find(object);
  if (o == document.end() || !o->is_object()) return "-";
  const auto v = o->find(key);
  return v != o->end() && v->is_string() ? one_line(v->get<std::string>()) : std::string("-");
}

/// valid: exit 0 and a line of who the token is for; not valid: exit 3 and why.
Outcome verify(const Invocation& /*invocation*/, const Exchange& exchange, const Presentation& presentation,
               const ReadSecret& read_secret) {
  const std::string body = token_body(read_secret, "verify");
  const json document = expect_success(exchange({"POST", "/v1/verify", body}));
  const bool valid = flag_of(document, "valid");
  const ExitCode code = valid ? ExitCode::ok : ExitCode::refused;
  if (presentation.json) return {code, pretty(document)};
  if (!valid) {
    const auto reason = document.find("reason");
    const auto message = document.find("message");
    return {code, "not valid: " + (reason != document.end() && reason->is_string() ? one_line(reason->get<std::string>()) : "-") +
                      (message != document.end() && message->is_string() ? ": " + one_line(message->get<std::string>()) : "") +
                      "\n"};
  }
  json claims = document.contains("claims") ? document["claims"] : json::object();
  const auto owner = text_at(claims, "owner", "id");
  return {code, "valid: " + text_at(claims, "application", "kind") + " " + text_at(claims, "application", "client_id") + " of " +
                    text_at(claims, "organization", "slug") + (owner != "-" ? ", customer " + owner : "") + ", expires " +
                    (claims.contains("expires_at") && claims["expires_at"].is_string()
                         ? one_line(claims["expires_at"].get<std::string>())
                         : std::string("-")) +
                    "\n"};
}

Outcome customer_login(const Invocation& invocation, const Exchange& exchange, const Presentation& presentation,
                       const ReadSecret& read_secret) {
  const std::optional<std::string> password = read_secret("Password: ");
  if (!password || password->empty()) throw CtlError(ExitCode::usage, "no password: pipe it on stdin");
  const std::string body = body_of(json{{"username", invocation.username}, {"password", *password}}, "the username or password");
  const json document = expect_success(exchange({"POST", sessions_path(invocation), body}));
  const std::string session = expect_opaque_string(document, "session");
  return {ExitCode::ok, presentation.json ? pretty(document) : session + "\n"};
}

} // namespace

Outcome run_command(const Invocation& invocation, const Exchange& daemon, const Presentation& presentation,
                    const ReadSecret& read_secret) {
  // cl-tokend does not repeat a name it does not know (its answers carry no text the
  // client chose); the person who typed it wants to see it, so it is said here.
  const Exchange exchange = [&](const Request& request) {
    Response response = daemon(request);
    if (response.status == 404 && !invocation.name.empty() && error_code_of(response) == "unknown_credential")
      throw CtlError(exit_code_for_http_status(404), "no credential named \"" + one_line(invocation.name) + "\"");
    return response;
  };
  switch (invocation.command) {
  case Command::status: return status(invocation, exchange, presentation);
  case Command::clients: return clients(exchange, presentation);
  case Command::health: return health(exchange, presentation);
  case Command::token:
    return token_outcome(exchange({"GET", token_path(invocation) + min_ttl_query(invocation.min_ttl), std::nullopt}),
                         presentation);
  case Command::invalidate: return invalidate(invocation, exchange, presentation, read_secret);
  case Command::verify: return verify(invocation, exchange, presentation, read_secret);
  case Command::refresh: return refresh(invocation, exchange, presentation);
  case Command::revoke:
    return confirmation(exchange({"POST", token_path(invocation) + "/revoke", std::nullopt}), presentation,
                        "revoked " + invocation.name);
  case Command::reload: return confirmation(exchange({"POST", "/v1/reload", std::nullopt}), presentation, "reloaded");
  case Command::customer_login: return customer_login(invocation, exchange, presentation, read_secret);
  case Command::customer_token:
    return token_outcome(
        exchange({"GET", sessions_path(invocation) + "/" + url_segment(invocation.session) + min_ttl_query(invocation.min_ttl),
                  std::nullopt}),
        presentation);
  case Command::customer_logout:
    return confirmation(exchange({"DELETE", sessions_path(invocation) + "/" + url_segment(invocation.session), std::nullopt}),
                        presentation, "session ended");
  }
  throw CtlError(ExitCode::usage, "unknown command");
}

} // namespace cltoken::ctl
