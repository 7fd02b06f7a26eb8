// SessionScheduler's logins: the four forms of POST .../sessions (docs/customer-sessions.md).
#include <spdlog/spdlog.h>

#include "core/credential_state.hpp"
#include "core/jwt_claims.hpp"
#include "core/session_handle.hpp"
#include "core/session_scheduler.hpp"

namespace cltoken {

namespace {

using Kind = SessionAnswer::Kind;

Seconds seconds_ceil(SteadyClock::duration d) { return std::max(Seconds(1), std::chrono::ceil<Seconds>(d)); }

/// The auth server's verdict on the customer's own credentials (wrong password, unknown,
/// revoked or expired refresh token, unknown assertion owner): no retry can help.
bool customer_refused(const UpstreamFailure& f) {
  return f.kind == FailureKind::rejected && (f.code == "invalid_grant" || f.code == "invalid_request");
}

} // namespace

SessionRecord SessionScheduler::from_grant(const std::string& credential, uid_t owner, TokenGrant& grant, SteadyTime sent) {
  SessionRecord s;
  s.credential = credential;
  s.owner = owner;
  s.access_token = std::move(grant.access_token);
  s.refresh_token = std::move(grant.refresh_token);
  s.token_type = grant.token_type;
  s.scope = grant.scope;
  s.owner_id = grant.owner_id;
  s.obtained = sent;
  // As for credentials: created_at and exp are whole seconds rounded down, so the token may
  // die up to a second before sent + expires_in (docs/failure-behaviour.md, "Expiry").
  s.expires_at = sent + grant.expires_in - CredentialState::expiry_margin;
  s.refresh_at = policy_.refresh_at(sent, grant.expires_in, random_.symmetric());
  return s;
}

SessionScheduler::Started SessionScheduler::create(Now now, const CredentialConfig& cred, uid_t owner, std::string body,
                                                   SteadyTime deadline) {
  auto parsed = parse_session_request(body);
  if (auto* error = std::get_if<std::string>(&parsed)) return {SessionAnswer::of(Kind::bad_request, *error), 0};
  SessionRequest req = std::move(std::get<SessionRequest>(parsed));
  // Every new session counts against its uid's login limit, adopted ones too: they cost
  // no upstream request, but memory, and a flood of them would evict other sessions.
  if (auto wait = limiter_.admit(owner, now.steady)) {
    ++view_.logins["rate_limited"];
    return {SessionAnswer::later(Kind::rate_limited, "too many customer logins from this peer; retry later", seconds_ceil(*wait)),
            0};
  }
  const std::uint64_t op = next_id_++;
  if (req.grant == SessionRequest::Grant::adopt) {
    auto started = adopt(now, op, cred, owner, req, deadline);
    if (started.answer || started.op != 0) return started;
    req.grant = SessionRequest::Grant::refresh_token; // expired, but with a refresh token: start from that
  }
  return request_login(now, op, cred, owner, req);
}

SessionScheduler::Started SessionScheduler::adopt(Now now, std::uint64_t op, const CredentialConfig& cred, uid_t owner,
                                                  SessionRequest& req, SteadyTime deadline) {
  // Adopting costs no upstream request: the token's own claims say when it expires.
  auto claims = read_jwt_claims(req.access_token->reveal());
  if (!claims) return {SessionAnswer::of(Kind::bad_request, "access_token is not a Commerce Layer access token (a JWT)"), 0};
  if (claims->owner_id.empty())
    return {SessionAnswer::of(Kind::bad_request, "access_token is not a customer token (it has no owner)"), 0};
  // Another application's token could never be refreshed with this credential.
  if (!claims->client_id.empty() && claims->client_id != cred.client_id)
    return {SessionAnswer::of(Kind::bad_request, "access_token was issued to another application than this credential's"), 0};
  const auto wall_exp = WallTime(std::chrono::duration_cast<WallTime::duration>(Seconds(claims->exp)));
  const auto left = std::chrono::duration_cast<SteadyClock::duration>(wall_exp - now.wall);
  if (left <= SteadyClock::duration::zero()) {
    if (req.refresh_token) return {}; // neither answered nor parked: log in with the refresh token
    ++view_.logins["invalid_credentials"];
    return {SessionAnswer::of(Kind::invalid_credentials, "the access token has expired and there is no refresh token"), 0};
  }
  CustomerSession session;
  session.credential = cred.name;
  session.owner = owner;
  session.access_token = std::move(*req.access_token);
  session.refresh_token = std::move(req.refresh_token);
  session.scope = claims->scope;
  session.owner_id = claims->owner_id;
  session.expires_at = now.steady + left;
  // The lifetime is unknown (iat is not trusted either): refresh on the policy's
  // fraction of what is left, which is early, never late.
  session.obtained = now.steady;
  session.refresh_at = policy_.refresh_at(now.steady, std::chrono::floor<Seconds>(left), random_.symmetric());
  TokenExpectations expect;
  expect.client_id = cred.client_id;
  expect.kind = to_string(cred.kind);
  expect.scope = cred.scope;
  expect.owner_id = claims->owner_id;
  emit(session_action::Verify{op, session.access_token, std::move(expect), deadline});
  logins_.emplace(op, Login{cred.name, owner, now.steady, std::move(session)});
  return {std::nullopt, op};
}

void SessionScheduler::verified(Now now, std::uint64_t id, std::optional<std::string> refused) {
  auto node = logins_.extract(id);
  if (node.empty() || !node.mapped().adopted) return;
  if (refused) {
    ++view_.logins["invalid_token"];
    answer(id, SessionAnswer::of(Kind::bad_request, "access_token does not verify: " + *refused));
    return;
  }
  created(now, id, std::move(*node.mapped().adopted));
}

SessionScheduler::Started SessionScheduler::request_login(Now now, std::uint64_t op, const CredentialConfig& cred, uid_t owner,
                                                          SessionRequest& req) {
  if (req.grant == SessionRequest::Grant::assertion && !cred.client_secret)
    return {SessionAnswer::of(Kind::bad_request, "the assertion grant needs a credential with a client secret"), 0};
  // A login has a client waiting: it takes a slot when there is one, and is told when
  // to come back when there is none, rather than queueing behind the budget.
  if (!budget_.try_take(owner, now.steady)) {
    ++view_.logins["rate_limited"];
    return {SessionAnswer::later(Kind::rate_limited, "upstream request budget exhausted; retry later",
                                 seconds_ceil(budget_.next_slot(now.steady) - now.steady)),
            0};
  }
  TokenRequest tr;
  tr.client_id = cred.client_id;
  tr.client_secret = cred.client_secret;
  tr.scope = cred.scope;
  tr.application_kind = to_string(cred.kind);
  switch (req.grant) {
  case SessionRequest::Grant::password:
    tr.grant_type = "password";
    tr.username = req.username;
    tr.password = std::move(req.password);
    break;
  case SessionRequest::Grant::refresh_token:
  case SessionRequest::Grant::adopt:
    tr.grant_type = "refresh_token";
    tr.refresh_token = std::move(req.refresh_token);
    break;
  case SessionRequest::Grant::assertion:
    tr.grant_type = "urn:ietf:params:oauth:grant-type:jwt-bearer";
    tr.assertion = std::move(req.assertion);
    break;
  }
  logins_.emplace(op, Login{cred.name, owner, now.steady, std::nullopt});
  emit(session_action::RequestToken{op, std::move(tr)});
  return {std::nullopt, op};
}

void SessionScheduler::login_answered(Now now, std::uint64_t id, UpstreamResult result) {
  auto node = logins_.extract(id);
  Login& login = node.mapped();
  if (auto* f = std::get_if<UpstreamFailure>(&result)) {
    // Once, at once: a wrong password is not retried.
    if (customer_refused(*f)) {
      ++view_.logins["invalid_credentials"];
      spdlog::info("credential {}: customer login refused by the auth server ({})", login.credential, f->code);
      answer(id, SessionAnswer::of(Kind::invalid_credentials, "the auth server rejected the customer's credentials"));
    } else if (f->kind == FailureKind::rate_limited) {
      pause_for_rate_limit(*f, now.steady, login.credential);
      ++view_.logins["rate_limited"];
      answer(id, SessionAnswer::later(Kind::rate_limited, "the auth server is rate limiting this host; retry later",
                                      seconds_ceil(budget_.next_slot(now.steady) - now.steady)));
    } else {
      ++view_.logins["failed"];
      spdlog::warn("credential {}: customer login failed: {}", login.credential, f->message);
      answer(id, SessionAnswer::later(Kind::unavailable, "customer login failed: " + f->message, Seconds(1),
                                      f->kind == FailureKind::rejected));
    }
    return;
  }
  CustomerSession session;
  static_cast<SessionRecord&>(session) = from_grant(login.credential, login.owner, std::get<TokenGrant>(result), login.sent);
  created(now, id, std::move(session));
}

void SessionScheduler::created(Now now, std::uint64_t op, CustomerSession session) {
  auto handle = new_session_handle();
  if (!handle) {
    ++view_.logins["failed"];
    answer(op, SessionAnswer::later(Kind::unavailable, "no randomness for a session handle", Seconds(1)));
    return;
  }
  ++view_.logins["ok"];
  std::string document = customer_token_document(session, now.steady, now.wall, &*handle);
  spdlog::debug("credential {}: customer session created for uid {}", session.credential, session.owner);
  const SessionKey key = session_key(*handle);
  wipe(*handle);
  note_evictions(table_.insert(key, std::move(session), now.steady));
  plan_sweep(now.steady);
  const CustomerSession* held = table_.get(key);
  if (held != nullptr && shared_) {
    // A load balancer may send the customer's next request to another daemon at once: the
    // answer waits until the fleet can read the session (or the store says it cannot).
    emit(session_action::Save{key, *held, op});
    creating_.emplace(op, std::move(document));
    return;
  }
  if (held != nullptr) save(key, *held);
  answer(op, SessionAnswer::with(Kind::created, std::move(document)));
}

} // namespace cltoken
