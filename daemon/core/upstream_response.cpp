#include "core/upstream_response.hpp"

#include <algorithm>
#include <ctime>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace cltoken {

using nlohmann::json;

const char* to_string(FailureKind k) {
  switch (k) {
  case FailureKind::rate_limited: return "rate_limited";
  case FailureKind::rejected: return "rejected";
  case FailureKind::server_error: return "server_error";
  case FailureKind::network_error: return "network_error";
  case FailureKind::invalid_token: return "invalid_token";
  }
  return "network_error";
}

std::string token_request_body(const TokenRequest& r) {
  json j{{"grant_type", r.grant_type}, {"client_id", r.client_id}};
  if (r.client_secret) j["client_secret"] = r.client_secret->reveal();
  if (!r.scope.empty()) j["scope"] = r.scope;
  if (r.username) j["username"] = *r.username;
  if (r.password) j["password"] = r.password->reveal();
  if (r.refresh_token) j["refresh_token"] = r.refresh_token->reveal();
  if (r.assertion) j["assertion"] = r.assertion->reveal();
  return j.dump();
}

std::string revoke_request_body(const std::string& client_id, const std::optional<Secret>& client_secret, const Secret& token) {
  json j{{"client_id", client_id}, {"token", token.reveal()}};
  if (client_secret) j["client_secret"] = client_secret->reveal();
  return j.dump();
}

namespace {
/// The longest pause an upstream Retry-After can impose: asking for more than a day is a
/// misbehaving server (or a date typo), and the daemon must not go silent for years.
constexpr Seconds max_retry_after{86400};
} // namespace

std::optional<Seconds> parse_retry_after(std::string_view value, WallTime now) {
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  if (value.find_first_not_of("0123456789") == std::string_view::npos) {
    if (value.size() > 9) return max_retry_after; // absurd: cap rather than overflow
    return std::min(Seconds(std::stol(std::string(value))), max_retry_after);
  }
  std::tm tm{};
  std::string s(value);
  const char* end = strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == nullptr || *end != '\0') return std::nullopt;
  // Compare as time_t: a date past 2262 does not fit system_clock's nanoseconds, and
  // from_time_t would overflow (found by tests/fuzz, corpus token_response/retry-after-year-4050).
  const std::time_t at = timegm(&tm);
  const std::time_t now_t = std::chrono::system_clock::to_time_t(now);
  if (at <= now_t) return Seconds(0);
  return std::min(Seconds(at - now_t), max_retry_after);
}

namespace {

std::string clip(std::string s, std::size_t n = 160) {
  for (auto& c : s)
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  if (s.size() > n) s = s.substr(0, n) + "…";
  return s;
}

/// The first entry of `errors`, whether it is an array or a single object.
const json* first_error(const json& body) {
  if (!body.is_object()) return nullptr;
  auto it = body.find("errors");
  if (it == body.end()) return nullptr;
  if (it->is_array() && !it->empty() && (*it)[0].is_object()) return &(*it)[0];
  if (it->is_object()) return &*it;
  return nullptr;
}

std::string str_field(const json& o, const char* key) {
  auto it = o.find(key);
  return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
}

UpstreamFailure rejected_failure(unsigned status, const json* err) {
  UpstreamFailure f;
  f.kind = FailureKind::rejected;
  f.http_status = status;
  std::string title = err ? str_field(*err, "title") : "";
  std::string code = err ? str_field(*err, "code") : "";
  std::string detail = err ? str_field(*err, "detail") : "";
  f.code = !title.empty() ? title : code;
  if (title == "invalid_client")
    f.message = fmt::format("client_id or client_secret rejected by the auth server ({} invalid_client)", status);
  else if (title == "invalid_scope")
    f.message = fmt::format("scope rejected by the auth server ({} invalid_scope): check the market in scope", status);
  else if (title == "invalid_grant") f.message = fmt::format("grant rejected by the auth server ({} invalid_grant)", status);
  else if (title == "unsupported_grant_type" || title == "unauthorized_client")
    f.message = fmt::format("this client may not use this grant ({} {})", status, title);
  else
    f.message = fmt::format("auth server rejected the request ({}{}{})", status, f.code.empty() ? "" : " " + clip(f.code, 60),
                            detail.empty() ? "" : ": " + clip(detail));
  return f;
}

} // namespace

UpstreamResult parse_token_response(unsigned status, std::string_view body, std::string_view retry_after, WallTime now) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  const bool is_json = !j.is_discarded();

  if (status == 429) {
    UpstreamFailure f;
    f.kind = FailureKind::rate_limited;
    f.http_status = status;
    f.code = "rate_limited";
    f.retry_after = parse_retry_after(retry_after, now);
    f.message = f.retry_after ? fmt::format("auth server rate limit reached (429, Retry-After {} s)", f.retry_after->count())
                              : std::string("auth server rate limit reached (429, no Retry-After)");
    return f;
  }
  if (status >= 500 || status == 408) {
    UpstreamFailure f;
    f.kind = FailureKind::server_error;
    f.http_status = status;
    f.retry_after = parse_retry_after(retry_after, now);
    f.message = fmt::format("auth server error ({})", status);
    return f;
  }
  if (status >= 400) {
    if (!is_json) {
      UpstreamFailure f;
      f.kind = FailureKind::rejected;
      f.http_status = status;
      f.message = fmt::format("auth server rejected the request ({}, body is not JSON)", status);
      return f;
    }
    return rejected_failure(status, first_error(j));
  }
  if (status != 200 && status != 201) {
    UpstreamFailure f;
    f.kind = FailureKind::server_error;
    f.http_status = status;
    f.message = fmt::format("auth server answered unexpected status {}", status);
    return f;
  }
  auto malformed = [&](std::string_view why) {
    UpstreamFailure f;
    f.kind = FailureKind::server_error;
    f.http_status = status;
    f.code = "malformed_response";
    f.message = fmt::format("auth server answered {} with {}", status, why);
    return f;
  };
  if (!is_json) return malformed("a body that is not JSON (truncated or garbage)");
  if (!j.is_object()) return malformed("JSON that is not an object");
  auto at = j.find("access_token");
  if (at == j.end() || !at->is_string() || at->get_ref<const std::string&>().empty()) return malformed("no access_token");
  auto ei = j.find("expires_in");
  if (ei == j.end() || !ei->is_number() || ei->get<double>() < 1 || ei->get<double>() > 31536000.0)
    return malformed("no usable expires_in");
  TokenGrant g;
  g.access_token = Secret(at->get<std::string>());
  g.expires_in = Seconds(static_cast<long>(ei->get<double>()));
  g.token_type = str_field(j, "token_type");
  if (g.token_type.empty()) g.token_type = "bearer";
  std::string lower;
  for (char c : g.token_type) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower != "bearer") return malformed("token_type \"" + clip(g.token_type, 30) + "\" instead of bearer");
  g.token_type = "bearer";
  g.scope = str_field(j, "scope");
  auto rt = j.find("refresh_token");
  if (rt != j.end() && rt->is_string() && !rt->get_ref<const std::string&>().empty())
    g.refresh_token = Secret(rt->get<std::string>());
  g.owner_id = str_field(j, "owner_id");
  g.owner_type = str_field(j, "owner_type");
  // The parsed JSON holds copies of the token; wipe them before the tree is freed.
  if (at->is_string()) wipe(at->get_ref<std::string&>());
  if (rt != j.end() && rt->is_string()) wipe(rt->get_ref<std::string&>());
  return g;
}

} // namespace cltoken
