#include "core/router.hpp"

#include <array>
#include <charconv>
#include <vector>

#include <nlohmann/json.hpp>

namespace cltoken {

const char* Route::name() const {
  switch (kind) {
  case RouteKind::get_token: return "token";
  case RouteKind::invalidate_token: return "invalidate";
  case RouteKind::revoke_token: return "revoke";
  case RouteKind::refresh_token: return "refresh";
  case RouteKind::status: return "status";
  case RouteKind::health: return "health";
  case RouteKind::metrics: return "metrics";
  case RouteKind::reload: return "reload";
  case RouteKind::create_session: return "session_create";
  case RouteKind::get_session: return "session_token";
  case RouteKind::end_session: return "session_end";
  case RouteKind::credentials: return "credentials";
  case RouteKind::oauth_token: return "oauth_token";
  case RouteKind::verify: return "verify";
  case RouteKind::clients: return "clients";
  case RouteKind::not_found: return "not_found";
  case RouteKind::method_not_allowed: return "method_not_allowed";
  case RouteKind::bad_request: return "bad_request";
  }
  return "not_found";
}

Response error_response(unsigned status, std::string_view code, std::string_view message) {
  nlohmann::json j{{"error", {{"code", code}, {"message", message}}}};
  Response r;
  r.status = status;
  // Messages may quote what a client sent (a query key); invalid UTF-8 there must not make
  // dump() throw and cost the client its answer: replace it with U+FFFD.
  r.body = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

Response json_response(std::string body, unsigned status) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

namespace {

/// The segments of a path, without allocating: no route has more than five, so a path
/// with more is counted as one with six, which matches none.
class Segments {
public:
  static constexpr std::size_t most = 6;
  explicit Segments(std::string_view path) {
    while (!path.empty()) {
      if (path.front() == '/') {
        path.remove_prefix(1);
        continue;
      }
      auto slash = path.find('/');
      if (n_ == most) break;
      at_[n_++] = path.substr(0, slash);
      if (slash == std::string_view::npos) break;
      path.remove_prefix(slash);
    }
  }
  [[nodiscard]] std::size_t size() const { return n_; }
  std::string_view operator[](std::size_t i) const { return at_[i]; }

private:
  std::array<std::string_view, most> at_{};
  std::size_t n_ = 0;
};

/// What std::isalnum says in the C locale, without the call per byte, whatever the locale.
bool ascii_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

bool valid_segment(std::string_view s) {
  if (s.empty() || s.size() > 64 || s == "." || s == "..") return false;
  for (char c : s)
    if (!(ascii_alnum(c) || c == '-' || c == '_' || c == '.')) return false;
  return true;
}

/// A route naming credential `segment`: not_found when the name could never be configured,
/// else with the name set (never empty) for the caller to give it a kind.
Route for_credential(std::string_view segment) {
  Route r;
  if (!valid_segment(segment)) {
    r.kind = RouteKind::not_found;
    r.error = "no credential by that name";
    return r;
  }
  r.credential = std::string(segment);
  return r;
}

Route not_allowed(const char* allow) {
  Route r;
  r.kind = RouteKind::method_not_allowed;
  r.allow = allow;
  return r;
}

/// A session handle as new_session_handle() makes them: base64url, no padding.
bool valid_handle(std::string_view s) {
  if (s.empty() || s.size() > 256) return false;
  for (char c : s)
    if (!(ascii_alnum(c) || c == '-' || c == '_')) return false;
  return true;
}

Route bad(std::string error) {
  Route r;
  r.kind = RouteKind::bad_request;
  r.error = std::move(error);
  return r;
}

/// The only query parameter of a token read: min_ttl, whole seconds. An error sentence or nullopt.
std::optional<std::string> parse_min_ttl(std::string_view query, Route& r) {
  while (!query.empty()) {
    auto amp = query.find('&');
    auto pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (pair.empty()) continue;
    auto eq = pair.find('=');
    auto key = pair.substr(0, eq);
    auto value = eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
    if (key != "min_ttl") return "unknown query parameter (this endpoint takes only min_ttl)";
    long v = -1;
    auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
    if (ec != std::errc{} || p != value.data() + value.size() || value.empty() || v < 0 || v > 86400)
      return "min_ttl must be whole seconds between 0 and 86400";
    r.min_ttl = Seconds(v);
  }
  return std::nullopt;
}

} // namespace

Route route(std::string_view method, std::string_view target) {
  if (target.empty() || target.front() != '/') return bad("request target must be an absolute path");
  auto q = target.find('?');
  std::string_view path = target.substr(0, q);
  std::string_view query = q == std::string_view::npos ? std::string_view{} : target.substr(q + 1);
  const Segments seg(path);
  const bool get = method == "GET" || method == "HEAD";
  const bool post = method == "POST";

  auto no_query = [&](Route r) {
    if (!query.empty() && r.kind != RouteKind::method_not_allowed) return bad("this endpoint takes no query parameters");
    return r;
  };
  auto simple = [&](RouteKind k, bool method_ok, const char* allow) {
    if (!method_ok) return not_allowed(allow);
    Route r;
    r.kind = k;
    return no_query(r);
  };

  if (seg.size() == 1 && seg[0] == "metrics") return simple(RouteKind::metrics, get, "GET");
  if (seg.size() == 2 && seg[0] == "oauth" && seg[1] == "token") return simple(RouteKind::oauth_token, post, "POST");
  if (seg.size() >= 2 && seg[0] == "v1") {
    if (seg.size() == 2 && seg[1] == "status") return simple(RouteKind::status, get, "GET");
    if (seg.size() == 2 && seg[1] == "health") return simple(RouteKind::health, get, "GET");
    if (seg.size() == 2 && seg[1] == "reload") return simple(RouteKind::reload, post, "POST");
    if (seg.size() == 2 && seg[1] == "credentials") return simple(RouteKind::credentials, get, "GET");
    if (seg.size() == 2 && seg[1] == "verify") return simple(RouteKind::verify, post, "POST");
    if (seg.size() == 2 && seg[1] == "clients") return simple(RouteKind::clients, get, "GET");
    if (seg[1] == "tokens" && (seg.size() == 3 || seg.size() == 4)) {
      Route r = for_credential(seg[2]);
      if (r.credential.empty()) return r; // not_found
      if (seg.size() == 3) {
        if (!get) return not_allowed("GET");
        r.kind = RouteKind::get_token;
        if (auto error = parse_min_ttl(query, r)) return bad(*error);
        return r;
      }
      if (seg[3] == "invalidate") {
        if (!post) return not_allowed("POST");
        r.kind = RouteKind::invalidate_token;
        return no_query(r);
      }
      if (seg[3] == "refresh") {
        if (!post) return not_allowed("POST");
        r.kind = RouteKind::refresh_token;
        return no_query(r);
      }
      if (seg[3] == "revoke") {
        if (!post) return not_allowed("POST");
        r.kind = RouteKind::revoke_token;
        return no_query(r);
      }
    }
    if (seg[1] == "customers" && (seg.size() == 4 || seg.size() == 5) && seg[3] == "sessions") {
      Route r = for_credential(seg[2]);
      if (r.credential.empty()) return r; // not_found
      if (seg.size() == 4) {
        if (!post) return not_allowed("POST");
        r.kind = RouteKind::create_session;
        return no_query(r);
      }
      const bool del = method == "DELETE";
      if (!get && !del) return not_allowed("GET, DELETE");
      if (!valid_handle(seg[4])) {
        r.kind = RouteKind::not_found;
        r.error = "no such session";
        return r;
      }
      r.session = std::string(seg[4]);
      if (del) {
        r.kind = RouteKind::end_session;
        return no_query(r);
      }
      r.kind = RouteKind::get_session;
      if (auto error = parse_min_ttl(query, r)) return bad(*error);
      return r;
    }
  }
  Route r;
  r.kind = RouteKind::not_found;
  r.error = "no such endpoint";
  return r;
}

} // namespace cltoken
