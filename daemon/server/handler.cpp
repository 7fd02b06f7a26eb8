#include "server/handler.hpp"

#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <map>
#include <stdexcept>
#include <vector>

#include <spdlog/spdlog.h>

#include "core/invalidate_request.hpp"
#include "core/oauth_endpoint.hpp"
#include "server/answers.hpp"
#include "server/verify_route.hpp"

namespace cltoken {

namespace asio = boost::asio;

namespace {

Response oauth_response(const OAuthError& e) {
  Response r;
  r.status = e.status;
  r.body = oauth_error_document(e);
  return r;
}

/// Was this request about handing out a token of the credential it names?
bool hands_out_tokens(RouteKind kind) {
  return kind == RouteKind::get_token || kind == RouteKind::invalidate_token || kind == RouteKind::create_session ||
         kind == RouteKind::get_session;
}

/// The user database's name for a uid, looked up once per uid per document.
std::optional<std::string> user_name(uid_t uid) {
  std::vector<char> buf(16384);
  passwd pw{};
  passwd* result = nullptr;
  while (getpwuid_r(uid, &pw, buf.data(), buf.size(), &result) == ERANGE) buf.resize(buf.size() * 2);
  if (result == nullptr) return std::nullopt;
  return std::string(result->pw_name);
}

} // namespace

Handler::Handler(Broker& broker, Metrics& metrics, const Clock& clock, std::vector<Principal> admin, ReloadFn reload)
    : broker_(broker), metrics_(metrics), clock_(clock), admin_(std::move(admin)), reload_(std::move(reload)) {}

void Handler::log_denial(const PeerIdentity& peer, const std::string& what) {
  // Once per denial, but at most a burst a minute per uid, so a client looping on 403
  // cannot flood the journal nor hide another uid's denials; the lines left out are counted.
  auto v = denials_.admit(peer.uid, clock_.now());
  if (v.suppressed > 0) spdlog::warn("{} further access denials of uid {} were not logged", v.suppressed, peer.uid);
  if (v.log) spdlog::warn("access denied: uid={} gid={} pid={} unit={} {}", peer.uid, peer.gid, peer.pid, unit_text(peer), what);
}

void Handler::account(const PeerIdentity& peer, const std::string& credential, std::string_view route, unsigned status,
                      SteadyTime now) {
  usage_.record(peer, credential, status == 403, now);
  if (!access_ || status == 403) return;
  auto v = access_->admit(peer.uid, now);
  for (const auto& note : v.notes) spdlog::warn("{}", note);
  if (v.log) spdlog::info("{}", access_line(credential, route, peer, status));
}

std::string Handler::known_name(const std::string& name) const {
  if (name.empty()) return "";
  return broker_.credential(name) != nullptr ? name : "(unknown)";
}

Handler::Handled Handler::handle(Request request, const PeerIdentity& peer, SteadyTime now, SteadyTime deadline) {
  Route route = cltoken::route(request.method, request.target);
  // The fast path: a token held in memory, and a token verified with a key held in
  // memory, are answered here, in the event that read the request, without a coroutine
  // unless they have to wait (docs/architecture.md). Every other route is a coroutine.
  Handled answer = route.kind == RouteKind::get_token     ? token_now(route, peer, now, deadline)
                   : route.kind == RouteKind::verify      ? verify_now(request, peer, deadline)
                   : route.kind == RouteKind::get_session ? session_now(route, request, peer, deadline)
                                                          : handle_later(std::move(route), std::move(request), peer, deadline);
  if (auto* later = std::get_if<asio::awaitable<Response>>(&answer))
    return finish_later(std::move(route), peer, std::move(*later), now);
  finish(route, peer, std::get<Response>(answer), now);
  return answer;
}

asio::awaitable<Response> Handler::handle_later(Route route, Request request, PeerIdentity peer, SteadyTime deadline) {
  co_return co_await dispatch(route, request, peer, deadline);
}

asio::awaitable<Response> Handler::finish_later(Route route, PeerIdentity peer, asio::awaitable<Response> answer,
                                                SteadyTime start) {
  Response response = co_await std::move(answer);
  finish(route, peer, response, start);
  co_return response;
}

void Handler::finish(const Route& route, const PeerIdentity& peer, const Response& response, SteadyTime start) {
  const SteadyTime end = clock_.now();
  if (hands_out_tokens(route.kind) && broker_.credential(route.credential) != nullptr)
    account(peer, route.credential, route.name(), response.status, end);
  const double seconds = std::chrono::duration<double>(end - start).count();
  metrics_.observe_request(route.name(), response.status, seconds);
  // The route and a configured credential name only: never the body, nor a name the
  // client made up (it could be anything, a token included).
  if (spdlog::should_log(spdlog::level::trace))
    spdlog::trace("request uid={} pid={} {} {}{} -> {} in {:.3f} s", peer.uid, peer.pid, route.name(),
                  route.credential.empty() ? "" : "credential=", known_name(route.credential), response.status, seconds);
}

std::optional<Response> Handler::credential_refusal(const Route& route, const PeerIdentity& peer) {
  // Admin first: a peer that may not revoke or refresh learns nothing from these routes.
  const bool admin_route = route.kind == RouteKind::revoke_token || route.kind == RouteKind::refresh_token;
  if (admin_route && !allowed(admin_, peer)) {
    log_denial(peer, std::string(route.name()) + " credential=" + known_name(route.credential));
    return error_response(403, "forbidden", std::string(route.name()) + " needs an admin principal");
  }
  // An unknown name is 404 even for a peer outside every allow list: GET /v1/status
  // lists the names to any peer, so this reveals nothing more.
  const CredentialConfig* cred = broker_.credential(route.credential);
  if (cred == nullptr) return error_response(404, "unknown_credential", unknown_credential_message);
  if (!admin_route && !allowed(cred->allow, peer)) {
    log_denial(peer, std::string(route.name()) + " credential=" + route.credential);
    return error_response(403, "forbidden", "this peer may not use this credential");
  }
  return std::nullopt;
}

Handler::Handled Handler::token_now(const Route& route, const PeerIdentity& peer, SteadyTime now, SteadyTime deadline) {
  if (auto refused = credential_refusal(route, peer)) return std::move(*refused);
  auto asked = broker_.ask_token(route.credential, route.min_ttl, deadline, peer.uid, Now{now, clock_.wall_now()});
  if (asked.held) {
    Response r; // the usual answer: sent from where the token and its document are held
    r.held = *asked.held;
    return r;
  }
  if (!asked.answer) return wait_token(asked.waiter);
  return token_response(std::move(*asked.answer));
}

asio::awaitable<Response> Handler::wait_token(std::uint64_t waiter) {
  co_return token_response(co_await broker_.wait_token(waiter));
}

Handler::Handled Handler::verify_now(Request& request, const PeerIdentity& peer, SteadyTime deadline) {
  std::string body = std::move(request.body); // a token: wiped on every path
  if (verifier_ == nullptr || !allowed(verify_allow_, peer)) {
    wipe(body);
    if (verifier_ == nullptr) return error_response(404, "not_found", "no such endpoint");
    log_denial(peer, "verify");
    return error_response(403, "forbidden", "this peer may not verify tokens");
  }
  return verify_token(*verifier_, body, deadline);
}

asio::awaitable<Response> Handler::dispatch(const Route& route, Request& request, const PeerIdentity& peer, SteadyTime deadline) {
  switch (route.kind) {
  case RouteKind::bad_request: co_return error_response(400, "bad_request", route.error);
  case RouteKind::not_found: co_return error_response(404, "not_found", route.error);
  case RouteKind::method_not_allowed: {
    Response r = error_response(405, "method_not_allowed", "use " + route.allow + " for this endpoint");
    r.allow = route.allow;
    co_return r;
  }
  case RouteKind::status: {
    auto view = broker_.status_view();
    if (sessions_ != nullptr) view.customers = sessions_->view();
    if (verifier_ != nullptr) view.verification = verifier_->view();
    co_return json_response(status_document(view, clock_.now(), clock_.wall_now(), allowed(admin_, peer)));
  }
  case RouteKind::health: {
    auto missing = broker_.not_ready();
    co_return json_response(health_document(missing.empty(), missing), missing.empty() ? 200 : 503);
  }
  case RouteKind::metrics: {
    Response r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    auto view = broker_.status_view();
    if (sessions_ != nullptr) view.customers = sessions_->view();
    if (verifier_ != nullptr) view.verification = verifier_->view();
    r.body =
        metrics_.render(view, clock_.now(), view.budget_per_minute - std::min(view.budget_per_minute, view.requests_last_minute),
                        allowed(admin_, peer) || allowed(metrics_allow_, peer));
    co_return r;
  }
  case RouteKind::reload: {
    if (!allowed(admin_, peer)) {
      log_denial(peer, "reload");
      co_return error_response(403, "forbidden", "reload needs an admin principal");
    }
    std::string error = reload_ ? reload_() : std::string("reload is not available");
    if (!error.empty()) co_return error_response(400, "bad_request", "config not reloaded: " + error);
    co_return json_response(R"({"reloaded":true})");
  }
  case RouteKind::credentials: {
    std::vector<const CredentialConfig*> mine;
    for (const CredentialConfig* c : broker_.credentials())
      if (allowed(c->allow, peer)) mine.push_back(c);
    co_return json_response(credentials_document(mine));
  }
  case RouteKind::oauth_token: co_return co_await dispatch_oauth(request, peer, deadline);
  case RouteKind::clients: {
    if (!allowed(admin_, peer)) {
      log_denial(peer, "clients");
      co_return error_response(403, "forbidden", "the client list needs an admin principal");
    }
    std::map<uid_t, std::optional<std::string>> names;
    auto name_of = [&names](uid_t uid) {
      auto it = names.find(uid);
      if (it == names.end()) it = names.emplace(uid, user_name(uid)).first;
      return it->second;
    };
    co_return json_response(clients_document(usage_, clock_.now(), clock_.wall_now(), name_of));
  }
  case RouteKind::get_token:
  case RouteKind::verify: throw std::logic_error("routed to dispatch(): handle() answers it");
  case RouteKind::invalidate_token:
  case RouteKind::revoke_token:
  case RouteKind::refresh_token: break;
  case RouteKind::create_session:
  case RouteKind::get_session:
  case RouteKind::end_session: co_return co_await dispatch_session(route, request, peer, deadline);
  }

  if (auto refused = credential_refusal(route, peer)) co_return std::move(*refused);
  if (route.kind == RouteKind::revoke_token) co_return revoke_response(co_await broker_.revoke(route.credential, peer.uid));
  if (route.kind == RouteKind::refresh_token)
    co_return refresh_response(co_await broker_.refresh(route.credential, deadline, peer.uid));

  // invalidate: {"access_token":"..."}
  auto reported = parse_invalidate_request(request.body);
  if (!reported) co_return error_response(400, "bad_request", "body must be {\"access_token\":\"...\"}");
  // Reporting the current token costs an upstream request (and a revoke when the auth
  // server hands it back): one peer may cause only so many. Older tokens cost nothing.
  if (broker_.holds(route.credential, *reported) && !allowed(admin_, peer)) {
    if (auto wait = invalidations_.admit(peer.uid, clock_.now())) {
      log_denial(peer, "invalidate over the peer's limit credential=" + route.credential);
      Response r = error_response(429, "rate_limited",
                                  "this peer reported the current token invalid too often; the token is kept; "
                                  "try again after Retry-After");
      r.retry_after = std::max<long>(1, std::chrono::ceil<Seconds>(*wait).count());
      co_return r;
    }
  }
  co_return token_response(co_await broker_.invalidate(route.credential, std::move(*reported), deadline, peer.uid));
}

asio::awaitable<Response> Handler::dispatch_oauth(Request& request, const PeerIdentity& peer, SteadyTime deadline) {
  auto parsed = parse_oauth_token_request(request.body);
  if (const auto* refused = std::get_if<OAuthError>(&parsed)) co_return oauth_response(*refused);
  const auto& req = std::get<OAuthTokenRequest>(parsed);
  bool named = false, permitted = false;
  std::string name;        // copied: a reload may replace the config while the request waits
  std::string first_named; // for the access log and /v1/clients when none is used
  for (const CredentialConfig* c : broker_.credentials()) {
    if (!names_credential(req, *c)) continue;
    if (!named) first_named = c->name;
    named = true;
    // The allow list before the secret, so that a peer that may not use the credential
    // cannot use the socket to try secrets faster than the auth server would let it.
    if (!allowed(c->allow, peer)) continue;
    permitted = true;
    if (secret_accepted(req, *c)) {
      name = c->name;
      break;
    }
  }
  if (named && !permitted) {
    log_denial(peer, "oauth_token credential=" + first_named);
    account(peer, first_named, "oauth_token", 403, clock_.now());
    co_return oauth_response({403, "forbidden", "this peer may not use this credential"});
  }
  if (name.empty()) {
    if (named) {
      log_denial(peer, "oauth_token: wrong or missing client secret");
      account(peer, first_named, "oauth_token", 401, clock_.now());
    }
    co_return oauth_response(invalid_client());
  }
  Response r = token_response(co_await broker_.get_token(name, std::nullopt, deadline, peer.uid));
  if (r.status == 200) {
    if (auto doc = oauth_token_document(r.body, clock_.wall_now())) {
      account(peer, name, "oauth_token", 200, clock_.now());
      co_return json_response(std::move(*doc));
    }
    account(peer, name, "oauth_token", 500, clock_.now());
    co_return oauth_response({500, "server_error", "cl-tokend could not answer"});
  }
  account(peer, name, "oauth_token", r.status, clock_.now());
  Response refused = oauth_response(oauth_error_from(r.status, r.body));
  refused.retry_after = r.retry_after;
  co_return refused;
}

const CredentialConfig* Handler::session_credential(const Route& route, Request& request, const PeerIdentity& peer,
                                                    Response& refused) {
  // Sales channels only: under an integration credential (or none) there are no sessions.
  const CredentialConfig* found = broker_.credential(route.credential);
  if (found == nullptr || found->kind != CredentialKind::sales_channel || sessions_ == nullptr) {
    wipe(request.body);
    refused = error_response(404, "unknown_credential", "no such sales-channel credential");
    return nullptr;
  }
  if (!allowed(found->allow, peer)) {
    wipe(request.body);
    log_denial(peer, std::string(route.name()) + " credential=" + route.credential);
    refused = error_response(403, "forbidden", "this peer may not use this credential");
    return nullptr;
  }
  return found;
}

Handler::Handled Handler::session_now(const Route& route, Request& request, const PeerIdentity& peer, SteadyTime deadline) {
  Response refused;
  const CredentialConfig* cred = session_credential(route, request, peer, refused);
  if (cred == nullptr) return refused;
  // Past the allow list, sessions belong to the uid that created them: anyone else is told
  // the session does not exist (Sessions answers 404 for both). A session held here and
  // good for min_ttl is answered in this event, like a held token; a wait is a coroutine.
  std::string handle = route.session;
  auto started = sessions_->read_now(cred->name, peer.uid, handle, route.min_ttl, deadline);
  if (started.answer) return session_response(std::move(*started.answer));
  return session_later(started);
}

asio::awaitable<Response> Handler::session_later(SessionScheduler::Started started) {
  co_return session_response(co_await sessions_->answer_of(started));
}

asio::awaitable<Response> Handler::dispatch_session(const Route& route, Request& request, const PeerIdentity& peer,
                                                    SteadyTime deadline) {
  Response refused;
  const CredentialConfig* found = session_credential(route, request, peer, refused);
  if (found == nullptr) co_return refused;
  CredentialConfig cred = *found; // a reload may replace the config while this request waits
  std::string handle = route.session;
  if (route.kind == RouteKind::create_session)
    co_return session_response(co_await sessions_->create(std::move(cred), peer.uid, std::move(request.body), deadline));
  co_return session_response(co_await sessions_->end(std::move(cred), peer.uid, std::move(handle), deadline));
}

} // namespace cltoken
