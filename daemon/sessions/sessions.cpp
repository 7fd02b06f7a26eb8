#include "sessions/sessions.hpp"

#include <algorithm>

#include <boost/asio/co_spawn.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "async/spawn.hpp"
#include "core/jwt_claims.hpp"
#include "core/session_request.hpp"
#include "sessions/handle.hpp"

namespace cltoken {

namespace asio = boost::asio;

namespace {

/// How often the sweep looks for idle sessions and sessions in use whose refresh is due.
constexpr Millis sweep_interval{1000};

// No reissue window: a refresh-token grant always issues a new token, so a customer
// token is refreshed at refresh.at of its life whatever refresh.reissue_window_s says.
RefreshPolicy policy_of(const Config& c) {
  return RefreshPolicy{c.refresh.at, c.refresh.jitter, c.refresh.backoff_initial, c.refresh.backoff_max, c.refresh.min_ttl};
}

long seconds_ceil(SteadyClock::duration d) {
  auto s = std::chrono::ceil<Seconds>(d).count();
  return s < 1 ? 1 : s;
}

Response not_found() { return error_response(404, "not_found", "no such session"); }

Response session_expired() {
  return error_response(410, "session_expired", "the customer session has expired; create a new one");
}

Response rate_limited(long retry, std::string_view why) {
  Response r = error_response(429, "rate_limited", why);
  r.retry_after = retry;
  return r;
}

/// The auth server's verdict on the customer's own credentials (wrong password, unknown,
/// revoked or expired refresh token, unknown assertion owner): no retry can help.
bool customer_refused(const UpstreamFailure& f) {
  return f.kind == FailureKind::rejected && (f.code == "invalid_grant" || f.code == "invalid_request");
}

/// An exception out of the upstream client is a failure like any other: the session
/// flows answer it the same way, and it never escapes to the connection.
UpstreamFailure internal_failure(const std::exception& e) {
  return UpstreamFailure{FailureKind::network_error, fmt::format("internal error asking the auth server: {}", e.what()), {}, 0, {}};
}

} // namespace

Sessions::Sessions(asio::any_io_executor executor, const Clock& clock, Upstream& upstream, UpstreamBudget& budget, Random& random,
                   const Config& config)
    : executor_(executor), clock_(clock), upstream_(upstream), budget_(budget), random_(random), policy_(policy_of(config)),
      min_ttl_(config.refresh.min_ttl), auth_url_(config.upstream.auth_url.text), table_(config.customers.max_sessions, config.customers.idle_timeout),
      limiter_(config.customers.login_burst, config.customers.login_interval), tick_(executor) {
  table_.set_peer_limits(config.customers.max_sessions_per_peer, config.customers.max_memory_mib << 20);
  for (const auto& c : config.credentials) credentials_.emplace(c.name, c);
}

void Sessions::start() {
  running_ = true;
  asio::co_spawn(executor_, sweep(), Rethrow{"customer session sweep"});
}

void Sessions::stop() {
  running_ = false;
  tick_.cancel();
  for (auto& [key, timers] : waiters_)
    for (auto* t : timers) t->cancel();
}

void Sessions::apply(const Config& config) {
  policy_ = policy_of(config);
  min_ttl_ = config.refresh.min_ttl;
  table_.set_limits(config.customers.max_sessions, config.customers.idle_timeout);
  table_.set_peer_limits(config.customers.max_sessions_per_peer, config.customers.max_memory_mib << 20);
  limiter_.set_rate(config.customers.login_burst, config.customers.login_interval);
  std::map<std::string, CredentialConfig, std::less<>> next;
  for (const auto& c : config.credentials) next.emplace(c.name, c);
  for (const auto& [name, old] : credentials_) {
    auto it = next.find(name);
    if (it == next.end() || it->second.kind != CredentialKind::sales_channel || !old.same_identity(it->second) ||
        config.upstream.auth_url.text != auth_url_) {
      if (auto n = table_.drop_credential(name); n > 0)
        spdlog::info("credential {}: {} customer sessions dropped (credential removed or changed)", name, n);
    }
  }
  credentials_ = std::move(next);
  auth_url_ = config.upstream.auth_url.text;
  note_evictions(table_.evict_over_max());
}

const CredentialConfig* Sessions::credential(const std::string& name) const {
  auto it = credentials_.find(name);
  return it == credentials_.end() ? nullptr : &it->second;
}

CustomersView Sessions::view() const {
  CustomersView v = view_;
  v.sessions = table_.size();
  v.max_sessions = table_.max_sessions();
  return v;
}

CustomerSession Sessions::from_grant(const std::string& credential, uid_t owner, TokenGrant& grant, SteadyTime sent) {
  CustomerSession s;
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

asio::awaitable<UpstreamResult> Sessions::request_token(const TokenRequest& tr) {
  UpstreamResult result;
  try {
    result = co_await upstream_.request_token(tr);
  } catch (const std::exception& e) {
    result = internal_failure(e);
  }
  budget_.release(clock_.now());
  co_return result;
}

asio::awaitable<std::optional<std::string>> Sessions::verify_adopted(const CredentialConfig& cred, std::string_view token,
                                                                     std::string owner_id, SteadyTime deadline) {
  if (verifier_ == nullptr || verifier_->settings().mode == VerifyMode::off) co_return std::nullopt;
  TokenExpectations expect;
  expect.client_id = cred.client_id;
  expect.kind = to_string(cred.kind);
  expect.scope = cred.scope;
  expect.owner_id = std::move(owner_id);
  auto checked = co_await verifier_->check_issued(token, std::move(expect), deadline);
  if (auto* f = std::get_if<VerifyFailure>(&checked)) co_return std::string(to_string(f->reason)) + ": " + f->message;
  co_return std::nullopt;
}

asio::awaitable<Response> Sessions::create(CredentialConfig cred, uid_t owner, std::string body, SteadyTime deadline) {
  // The upstream client's own deadlines (request_timeout_ms) bound the one call made here;
  // `deadline` bounds the wait for the auth server's keys when an adopted token needs them.
  auto parsed = parse_session_request(body);
  if (auto* error = std::get_if<std::string>(&parsed)) co_return error_response(400, "bad_request", *error);
  SessionRequest req = std::move(std::get<SessionRequest>(parsed));
  const SteadyTime now = clock_.now();

  // Every new session counts against its uid's login limit, adopted ones too: they cost
  // no upstream request, but memory, and a flood of them would evict other sessions.
  if (auto wait = limiter_.admit(owner, now)) {
    ++view_.logins["rate_limited"];
    co_return rate_limited(seconds_ceil(*wait), "too many customer logins from this peer; retry later");
  }
  CustomerSession session;
  if (req.grant == SessionRequest::Grant::adopt) {
    // Adopting costs no upstream request: the token's own claims say when it expires.
    auto claims = read_jwt_claims(req.access_token->reveal());
    if (!claims) co_return error_response(400, "bad_request", "access_token is not a Commerce Layer access token (a JWT)");
    if (claims->owner_id.empty()) co_return error_response(400, "bad_request", "access_token is not a customer token (it has no owner)");
    // Another application's token could never be refreshed with this credential.
    if (!claims->client_id.empty() && claims->client_id != cred.client_id)
      co_return error_response(400, "bad_request", "access_token was issued to another application than this credential's");
    const auto wall_exp = WallTime(std::chrono::duration_cast<WallTime::duration>(Seconds(claims->exp)));
    const auto left = std::chrono::duration_cast<SteadyClock::duration>(wall_exp - clock_.wall_now());
    if (left > SteadyClock::duration::zero() || !req.refresh_token) {
      if (left <= SteadyClock::duration::zero()) {
        ++view_.logins["invalid_credentials"];
        co_return error_response(401, "invalid_credentials", "the access token has expired and there is no refresh token");
      }
      if (auto refused = co_await verify_adopted(cred, req.access_token->reveal(), claims->owner_id, deadline)) {
        ++view_.logins["invalid_token"];
        co_return error_response(400, "bad_request", "access_token does not verify: " + *refused);
      }
      session.credential = cred.name;
      session.owner = owner;
      session.access_token = std::move(*req.access_token);
      session.refresh_token = std::move(req.refresh_token);
      session.scope = claims->scope;
      session.owner_id = claims->owner_id;
      session.expires_at = now + left;
      // The lifetime is unknown (iat is not trusted either): refresh on the policy's
      // fraction of what is left, which is early, never late.
      session.obtained = now;
      session.refresh_at = policy_.refresh_at(now, std::chrono::floor<Seconds>(left), random_.symmetric());
    } else {
      // Expired, but with a refresh token: start from that.
      req.grant = SessionRequest::Grant::refresh_token;
    }
  }

  if (req.grant != SessionRequest::Grant::adopt) {
    if (req.grant == SessionRequest::Grant::assertion && !cred.client_secret)
      co_return error_response(400, "bad_request", "the assertion grant needs a credential with a client secret");
    // A login has a client waiting: it takes a slot when there is one, and is told when
    // to come back when there is none, rather than queueing behind the budget.
    if (!budget_.try_take(owner, clock_.now())) {
      ++view_.logins["rate_limited"];
      co_return rate_limited(seconds_ceil(budget_.next_slot(clock_.now()) - clock_.now()),
                             "upstream request budget exhausted; retry later");
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
    const SteadyTime sent = clock_.now();
    UpstreamResult result = co_await request_token(tr);
    if (auto* f = std::get_if<UpstreamFailure>(&result)) {
      // Once, at once: a wrong password is not retried.
      if (customer_refused(*f)) {
        ++view_.logins["invalid_credentials"];
        spdlog::info("credential {}: customer login refused by the auth server ({})", cred.name, f->code);
        co_return error_response(401, "invalid_credentials", "the auth server rejected the customer's credentials");
      }
      if (f->kind == FailureKind::rate_limited) {
        pause_for_rate_limit(*f, cred.name);
        ++view_.logins["rate_limited"];
        co_return rate_limited(seconds_ceil(budget_.next_slot(clock_.now()) - clock_.now()),
                               "the auth server is rate limiting this host; retry later");
      }
      ++view_.logins["failed"];
      spdlog::warn("credential {}: customer login failed: {}", cred.name, f->message);
      Response r = error_response(503, f->kind == FailureKind::rejected ? "upstream_rejected" : "upstream_unavailable",
                                  "customer login failed: " + f->message);
      r.retry_after = 1;
      co_return r;
    }
    auto& grant = std::get<TokenGrant>(result);
    session = from_grant(cred.name, owner, grant, sent);
  }

  auto handle = new_session_handle();
  if (!handle) {
    ++view_.logins["failed"];
    co_return error_response(503, "upstream_unavailable", "no randomness for a session handle");
  }
  ++view_.logins["ok"];
  const SteadyTime at = clock_.now();
  std::string document = customer_token_document(session, at, clock_.wall_now(), &*handle);
  note_evictions(table_.insert(session_key(*handle), std::move(session), at));
  spdlog::debug("credential {}: customer session created for uid {}", cred.name, owner);
  wipe(*handle);
  co_return json_response(std::move(document), 201);
}

asio::awaitable<Response> Sessions::read(std::string credential, uid_t owner, std::string handle, std::optional<Seconds> min_ttl,
                                         SteadyTime deadline) {
  const SessionKey key = session_key(handle);
  wipe(handle);
  const SteadyTime now = clock_.now();
  CustomerSession* s = table_.use(key, owner, credential, now);
  if (s == nullptr) co_return not_found();
  // Without an explicit min_ttl, refresh.min_ttl applies, but never more than a quarter of
  // the token's life: a short-lived customer token would otherwise be refreshed at every read.
  Seconds want = min_ttl.value_or(std::min(min_ttl_, std::chrono::floor<Seconds>((s->expires_at - s->obtained) / 4)));
  switch (decide_read(*s, now, want)) {
  case SessionRead::serve:
  case SessionRead::serve_last: break;
  case SessionRead::serve_and_refresh: spawn_refresh(key, owner); break;
  case SessionRead::expired:
    table_.erase(key);
    ++view_.expired;
    co_return session_expired();
  case SessionRead::refresh_then_serve: {
    Outcome o = co_await refresh(key, deadline, owner);
    s = table_.get(key);
    if (o == Outcome::expired || s == nullptr) co_return o == Outcome::expired ? session_expired() : not_found();
    if (clock_.now() >= s->expires_at) {
      Response r = error_response(503, "upstream_unavailable", "the customer token has expired and could not be refreshed yet");
      r.retry_after = 1;
      co_return r;
    }
    break; // refreshed, or the best there is (the caller reads expires_in)
  }
  }
  co_return json_response(customer_token_document(*s, clock_.now(), clock_.wall_now()));
}

asio::awaitable<Response> Sessions::end(CredentialConfig cred, uid_t owner, std::string handle, SteadyTime deadline) {
  const SessionKey key = session_key(handle);
  wipe(handle);
  CustomerSession* s = table_.find(key, owner, cred.name);
  if (s == nullptr) co_return not_found();
  if (s->refreshing) {
    // Revoking the tokens held now would leave the ones the refresh brings alive upstream
    // (a refresh token lasts two weeks): end the session with those instead.
    co_await wait_refresh(key, deadline);
    s = table_.find(key, owner, cred.name);
    if (s == nullptr) co_return not_found(); // the refresh ended it (refused refresh token)
    if (s->refreshing) {
      Response r = error_response(503, "upstream_unavailable", "a refresh of this session is still under way; the session is kept");
      r.retry_after = 1;
      co_return r;
    }
  }
  // Copies: the session may go (evicted, a second logout) while the revokes are under way.
  Secret access = s->access_token;
  std::optional<Secret> refresh = s->refresh_token;
  if (!budget_.try_take(owner, clock_.now())) {
    Response r = error_response(503, "upstream_unavailable", "the upstream request budget is used up for now; the session is kept");
    r.retry_after = seconds_ceil(budget_.next_slot(clock_.now()) - clock_.now());
    co_return r;
  }
  std::optional<UpstreamFailure> failure;
  try {
    failure = co_await upstream_.revoke(cred.client_id, cred.client_secret, access);
    // The refresh token too: at Commerce Layer (Doorkeeper) revoking one revokes its grant,
    // but an auth server that keeps them apart must not be left with a live refresh token.
    if (!failure && refresh) failure = co_await upstream_.revoke(cred.client_id, cred.client_secret, *refresh);
  } catch (const std::exception& e) {
    failure = internal_failure(e);
  }
  budget_.release(clock_.now());
  if (failure) {
    if (failure->kind == FailureKind::rate_limited) pause_for_rate_limit(*failure, cred.name);
    spdlog::warn("credential {}: customer session logout: revoke failed: {}", cred.name, failure->message);
    Response r = error_response(503, "upstream_unavailable", "revoke failed, the session is kept: " + failure->message);
    r.retry_after = 1;
    co_return r;
  }
  if (table_.erase(key)) ++view_.ended;
  notify(key);
  co_return json_response(R"({"ended":true})");
}

asio::awaitable<bool> Sessions::wait_refresh(const SessionKey& key, SteadyTime deadline) {
  asio::steady_timer t(executor_, deadline);
  auto& list = waiters_[key];
  list.push_back(&t);
  auto [ec] = co_await t.async_wait(use_tuple);
  auto it = waiters_.find(key);
  if (it != waiters_.end()) {
    std::erase(it->second, &t);
    if (it->second.empty()) waiters_.erase(it);
  }
  co_return ec == asio::error::operation_aborted;
}

void Sessions::notify(const SessionKey& key) {
  auto it = waiters_.find(key);
  if (it == waiters_.end()) return;
  for (auto* t : it->second) t->cancel();
}

void Sessions::spawn_refresh(const SessionKey& key, std::optional<uid_t> peer) {
  asio::co_spawn(executor_, refresh(key, clock_.now(), peer), log_failure("customer session refresh"));
}

void Sessions::pause_for_rate_limit(const UpstreamFailure& f, const std::string& name) {
  // The auth server counts per client IP: a 429 here pauses the credentials' requests too.
  const Millis pause = budget_.rate_limited(f, clock_.now(), policy_, random_.uniform());
  spdlog::warn("credential {}: {}; all upstream requests paused for {} ms", name, f.message, pause.count());
}

asio::awaitable<Sessions::Outcome> Sessions::refresh(SessionKey key, SteadyTime deadline, std::optional<uid_t> peer) {
  CustomerSession* s = table_.get(key);
  if (s == nullptr) co_return Outcome::gone;
  if (s->refreshing) { // single flight: wait for the one under way
    if (deadline <= clock_.now()) co_return Outcome::failed;
    co_await wait_refresh(key, deadline);
    s = table_.get(key);
    if (s == nullptr) co_return Outcome::gone;
    co_return s->refreshing ? Outcome::failed : Outcome::ok;
  }
  const CredentialConfig* cred = credential(s->credential);
  if (cred == nullptr || !s->refresh_token) co_return Outcome::failed;
  if (!budget_.try_take(peer, clock_.now())) co_return Outcome::failed;
  TokenRequest tr;
  tr.grant_type = "refresh_token";
  tr.client_id = cred->client_id;
  tr.client_secret = cred->client_secret;
  tr.refresh_token = s->refresh_token;
  tr.application_kind = to_string(cred->kind);
  tr.expected_owner_id = s->owner_id;
  const std::string name = s->credential;
  s->refreshing = true;
  const SteadyTime sent = clock_.now();
  UpstreamResult result = co_await request_token(tr);
  Outcome outcome = Outcome::ok;
  s = table_.get(key); // it may have been ended or evicted meanwhile
  if (s == nullptr) {
    outcome = Outcome::gone;
  } else if (auto* f = std::get_if<UpstreamFailure>(&result)) {
    s->refreshing = false;
    if (f->kind == FailureKind::rejected && f->code == "invalid_grant") {
      // The refresh token is dead (expired, revoked, rotated away): so is the session.
      spdlog::info("credential {}: customer session ended: the auth server refused its refresh token", name);
      table_.erase(key);
      ++view_.refreshes["expired"];
      ++view_.expired;
      outcome = Outcome::expired;
    } else {
      if (f->kind == FailureKind::rate_limited) pause_for_rate_limit(*f, name);
      ++view_.refreshes["failed"];
      ++s->failures;
      s->refresh_at = clock_.now() + policy_.backoff(s->failures, random_.uniform());
      spdlog::warn("credential {}: customer session refresh failed: {}", name, f->message);
      outcome = Outcome::failed;
    }
  } else {
    auto& grant = std::get<TokenGrant>(result);
    std::optional<Secret> kept = std::move(s->refresh_token);
    CustomerSession next = from_grant(name, s->owner, grant, sent);
    if (!next.refresh_token) next.refresh_token = std::move(kept); // no rotation: the old one still works
    next.last_used = s->last_used;
    next.last_read = s->last_read;
    *s = std::move(next);
    ++view_.refreshes["ok"];
    note_evictions(table_.resize(key)); // s may be gone from here
  }
  notify(key);
  co_return outcome;
}

asio::awaitable<void> Sessions::sweep() {
  while (running_) {
    tick_.expires_after(sweep_interval);
    co_await tick_.async_wait(use_tuple);
    if (!running_) break;
    const SteadyTime now = clock_.now();
    view_.evicted_idle += table_.evict_idle(now);
    // Only sessions read since their token was obtained; each takes a budget slot, and one
    // is always left for a client that is waiting (a login, or a credential's own fetch).
    for (const auto& key : table_.due_for_refresh(now)) {
      if (budget_.left(now) <= 1) break;
      spawn_refresh(key, std::nullopt);
    }
  }
}

} // namespace cltoken
