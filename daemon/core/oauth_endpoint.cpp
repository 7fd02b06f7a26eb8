#include "core/oauth_endpoint.hpp"

#include <chrono>
#include <map>

#include <nlohmann/json.hpp>

#include "core/wipe_json.hpp"

namespace cltoken {

namespace {

// Doorkeeper's wording (the OAuth server behind Commerce Layer), so clients that show
// upstream's detail show the same sentence.
constexpr std::string_view invalid_request_detail =
    "The request is missing a required parameter, includes an unsupported parameter value, or is otherwise malformed.";
constexpr std::string_view invalid_client_detail =
    "Client authentication failed due to unknown client, no client authentication included, or unsupported "
    "authentication method.";

OAuthError invalid_request(std::string detail = std::string(invalid_request_detail)) {
  return {400, "invalid_request", std::move(detail)};
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/// Percent-decoding with `+` as a space (application/x-www-form-urlencoded); false on a
/// broken escape.
bool form_decode(std::string_view in, std::string& out) {
  out.clear();
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '+') {
      out.push_back(' ');
    } else if (in[i] == '%') {
      if (i + 2 >= in.size()) return false;
      const int hi = hex_value(in[i + 1]), lo = hex_value(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out.push_back(in[i]);
    }
  }
  return true;
}

/// The body's fields as strings, JSON or form; nullopt when it is neither, a field repeats,
/// or a field the daemon reads is not a string. Wipes what it parsed.
std::optional<std::map<std::string, std::string>> fields_of(const std::string& body) {
  static constexpr std::string_view read[] = {"grant_type", "client_id", "client_secret", "scope"};
  std::map<std::string, std::string> out;
  const auto first = body.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && body[first] == '{') {
    auto j = nlohmann::json::parse(body, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return std::nullopt;
    bool ok = true;
    for (auto key : read) {
      auto it = j.find(std::string(key));
      if (it == j.end() || it->is_null()) continue;
      if (!it->is_string()) ok = false;
      else out.emplace(key, it->get<std::string>());
    }
    wipe_json(j);
    if (!ok) {
      for (auto& [k, v] : out) wipe(v);
      return std::nullopt;
    }
    return out;
  }
  std::string_view rest = body;
  std::string key, value;
  bool ok = true;
  while (ok && !rest.empty()) {
    const auto amp = rest.find('&');
    const std::string_view pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
    if (pair.empty()) continue;
    const auto eq = pair.find('=');
    if (!form_decode(pair.substr(0, eq), key) ||
        !form_decode(eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1), value)) {
      ok = false;
    } else if (!out.emplace(key, value).second) {
      ok = false; // a repeated field: which one would upstream take?
    }
  }
  wipe(value);
  if (!ok) {
    for (auto& [k, v] : out) wipe(v);
    return std::nullopt;
  }
  return out;
}

const char* status_name(unsigned status) {
  switch (status) {
  case 400: return "BAD_REQUEST";
  case 401: return "UNAUTHORIZED";
  case 403: return "FORBIDDEN";
  case 404: return "NOT_FOUND";
  case 408: return "REQUEST_TIMEOUT";
  case 429: return "TOO_MANY_REQUESTS";
  case 503: return "SERVICE_UNAVAILABLE";
  case 504: return "GATEWAY_TIMEOUT";
  default: return "INTERNAL_SERVER_ERROR";
  }
}

} // namespace

std::variant<OAuthTokenRequest, OAuthError> parse_oauth_token_request(std::string& body) {
  auto fields = fields_of(body);
  wipe(body);
  if (!fields) return invalid_request();
  struct Wiper {
    std::map<std::string, std::string>& f;
    ~Wiper() {
      for (auto& [k, v] : f) wipe(v);
    }
  } wiper{*fields};
  auto field = [&](const char* k) -> std::string* {
    auto it = fields->find(k);
    return it == fields->end() ? nullptr : &it->second;
  };
  const std::string* grant = field("grant_type");
  if (grant == nullptr || grant->empty()) return invalid_request("The request is missing grant_type.");
  if (*grant != "client_credentials")
    return OAuthError{400, "unsupported_grant_type",
                      "cl-tokend answers only grant_type client_credentials here. Customer tokens are sessions on a "
                      "sales-channel credential: POST /v1/customers/{name}/sessions (docs/customer-sessions.md)."};
  OAuthTokenRequest r;
  if (const std::string* id = field("client_id")) r.client_id = *id;
  if (std::string* secret = field("client_secret"); secret != nullptr && !secret->empty()) r.client_secret = Secret(*secret);
  if (const std::string* scope = field("scope")) r.scope = *scope;
  return r;
}

std::string_view effective_scope(std::string_view scope) { return scope.empty() ? "market:all" : scope; }

bool names_credential(const OAuthTokenRequest& request, const CredentialConfig& credential) {
  return !request.client_id.empty() && request.client_id == credential.client_id &&
         effective_scope(request.scope) == effective_scope(credential.scope);
}

bool secret_accepted(const OAuthTokenRequest& request, const CredentialConfig& credential) {
  if (!request.client_secret) return credential.kind == CredentialKind::sales_channel;
  return credential.client_secret.has_value() && credential.client_secret->equals(*request.client_secret);
}

std::optional<std::string> oauth_token_document(std::string& token_document, WallTime now) {
  auto j = nlohmann::json::parse(token_document, nullptr, false);
  wipe(token_document);
  std::optional<std::string> out;
  if (!j.is_discarded() && j.is_object() && j.contains("access_token") && j["access_token"].is_string() &&
      j.contains("expires_in") && j["expires_in"].is_number_integer()) {
    nlohmann::ordered_json doc;
    doc["access_token"] = j["access_token"];
    doc["token_type"] = j.value("token_type", "bearer");
    doc["expires_in"] = j["expires_in"];
    doc["scope"] = j.contains("scope") && j["scope"].is_string() ? j["scope"].get<std::string>() : std::string();
    doc["created_at"] = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
    out = doc.dump();
    wipe(doc["access_token"].get_ref<std::string&>());
  }
  if (!j.is_discarded()) wipe_json(j);
  return out;
}

OAuthError invalid_client() { return {401, "invalid_client", std::string(invalid_client_detail)}; }

OAuthError oauth_error_from(unsigned status, std::string_view daemon_error_document) {
  // A credential removed by a reload while the request waited is, by then, unknown.
  if (status == 404) return invalid_client();
  auto j = nlohmann::json::parse(daemon_error_document, nullptr, false);
  OAuthError e{status, "server_error", "cl-tokend could not answer"};
  if (!j.is_discarded() && j.is_object() && j.contains("error") && j["error"].is_object()) {
    const auto& error = j["error"];
    if (error.contains("code") && error["code"].is_string()) e.error = error["code"].get<std::string>();
    if (error.contains("message") && error["message"].is_string()) e.detail = error["message"].get<std::string>();
  }
  return e;
}

std::string oauth_error_document(const OAuthError& e) {
  nlohmann::ordered_json error;
  error["code"] = status_name(e.status);
  error["title"] = e.error;
  error["status"] = e.status;
  error["detail"] = e.detail;
  nlohmann::ordered_json j;
  j["errors"] = nlohmann::ordered_json::array({error});
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

} // namespace cltoken
