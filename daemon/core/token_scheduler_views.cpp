// TokenScheduler: what clients are told when there is no token, admin revoke, and the
// read-only views (status, readiness, watchdog).
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "core/token_scheduler.hpp"
#include "core/token_scheduler_entry.hpp"

namespace cltoken {

namespace {
Seconds seconds_ceil(SteadyClock::duration d) { return std::max(Seconds(1), std::chrono::ceil<Seconds>(d)); }
} // namespace

TokenAnswer TokenScheduler::unavailable(const Entry& e, SteadyTime now) const {
  const auto& st = e.state;
  const std::string& name = e.ref.name;
  const std::string& why = st.last_error();
  // When a client may usefully come back: the end of a backoff, of a 429 pause, its turn
  // in the budget queue, or the deadline of a request still in flight.
  SteadyTime back = now;
  if (auto r = st.retry_at(now)) back = std::max(back, *r);
  if (auto p = budget_.paused_until(now)) back = std::max(back, *p);
  if (e.queued_until) back = std::max(back, *e.queued_until);
  if (st.in_flight()) back = std::max(back, e.fetch_started + upstream_timeout_);
  const Seconds retry = seconds_ceil(back - now);
  if (st.rejected())
    return TokenAnswer::unavailable(
        Unavailable::rejected,
        fmt::format("the auth server refuses credential \"{}\": {}; next attempt in {} s", name, why, retry.count()), retry);
  if (auto p = budget_.paused_until(now))
    return TokenAnswer::unavailable(Unavailable::rate_limited,
                                    fmt::format("no valid token for \"{}\": {}; no upstream request for {} s", name,
                                                budget_.pause_reason(), seconds_ceil(*p - now).count()),
                                    retry);
  if (e.queued_until)
    return TokenAnswer::unavailable(Unavailable::queued,
                                    fmt::format("no valid token for \"{}\" yet: waiting for the upstream request budget ({} a "
                                                "minute, all credentials together); its turn comes in about {} s",
                                                name, budget_.limit(), retry.count()),
                                    retry);
  if (st.in_flight())
    return TokenAnswer::unavailable(
        Unavailable::no_answer,
        fmt::format("no valid token for \"{}\": the auth server has not answered within the request deadline{}", name,
                    why.empty() ? "" : " (last failure: " + why + ")"),
        retry);
  return TokenAnswer::unavailable(Unavailable::failing,
                                  fmt::format("no valid token for \"{}\": {}; next attempt in {} s", name,
                                              why.empty() ? "no token fetched yet" : why, retry.count()),
                                  retry);
}

TokenAnswer TokenScheduler::refresh_ended(const Entry& e, SteadyTime now) const {
  const auto& st = e.state;
  if (st.has_valid(now) && st.last_error().empty())
    return TokenAnswer::refreshed(std::chrono::floor<Seconds>(st.token()->expires_at - now));
  TokenAnswer a = unavailable(e, now);
  // unavailable() speaks to clients without a token; an admin may be told there is one.
  if (st.has_valid(now) && !st.in_flight())
    a.message = fmt::format("refresh of \"{}\" failed: {}; the current token is still served; next attempt in {} s", e.ref.name,
                            st.last_error(), a.retry_after.count());
  return a;
}

TokenScheduler::RevokeStart TokenScheduler::revoke_begin(Now now, std::string_view name, std::optional<uid_t> peer) {
  RevokeStart r;
  Entry* e = find(name);
  if (!e) return r;
  r.credential = e->ref;
  if (!e->state.token()) {
    r.kind = RevokeStart::Kind::nothing;
    return r;
  }
  if (!budget_.window().available(now.steady)) {
    r.kind = RevokeStart::Kind::refused;
    r.refused_answer = TokenAnswer::unavailable(
        Unavailable::budget,
        budget_.paused_until(now.steady) ? "upstream requests are paused after a 429 from the auth server; the token is kept"
                                         : "the upstream request budget is used up for now; the token is kept",
        seconds_ceil(budget_.next_slot(now.steady) - now.steady));
    return r;
  }
  budget_.window().start(now.steady);
  budget_.charge(peer, now.steady);
  r.kind = RevokeStart::Kind::revoke;
  r.token = e->state.token()->access_token;
  return r;
}

std::optional<TokenAnswer> TokenScheduler::revoke_end(Now now, const CredentialRef& c, const Secret& token,
                                                      const std::optional<UpstreamFailure>& failure) {
  budget_.window().finish(now.steady);
  std::optional<TokenAnswer> answer;
  if (failure) {
    spdlog::warn("credential {}: revoke failed: {}", c.name, failure->message);
    if (failure->kind == FailureKind::rate_limited) rate_limited(*failure, now.steady, c.name);
    const auto pause = budget_.paused_until(now.steady);
    answer = TokenAnswer::unavailable(failure->kind == FailureKind::rejected ? Unavailable::rejected : Unavailable::failing,
                                      "revoke failed, the token is kept: " + failure->message,
                                      pause ? seconds_ceil(*pause - now.steady) : Seconds(1));
  } else if (Entry* e = find(c)) {
    // Drop only the token we revoked: a refresh may have replaced it meanwhile.
    if (e->state.token() && e->state.token()->access_token.equals(token.reveal())) {
      e->state.drop();
      emit(action::Forget{e->ref}); // a stored copy must not come back at the next restart
    }
    ++e->generation;
    settle(now, *e, true);
    spdlog::info("credential {}: token revoked upstream and dropped", c.name);
  }
  poke(now.steady); // a slot's window now runs from here
  return answer;
}

const CredentialConfig* TokenScheduler::credential(std::string_view name) const {
  Entry* e = find(name);
  return e ? &e->config : nullptr;
}

std::vector<const CredentialConfig*> TokenScheduler::credentials() const {
  std::vector<const CredentialConfig*> out;
  out.reserve(entries_.size());
  for (const auto& [name, e] : entries_) out.push_back(&e->config);
  return out;
}

bool TokenScheduler::holds(std::string_view name, const Secret& token) const {
  Entry* e = find(name);
  return e && e->state.token() && e->state.token()->access_token.equals(token.reveal());
}

const CredentialState* TokenScheduler::state(std::string_view name) const {
  Entry* e = find(name);
  return e ? &e->state : nullptr;
}

std::size_t TokenScheduler::waiting(std::string_view name) const {
  Entry* e = find(name);
  return e ? e->waiters.size() : 0;
}

void TokenScheduler::status_view(StatusView& s, SteadyTime now) {
  s.credentials.clear(); // keeps its capacity
  s.auth_url = auth_url_;
  s.requests_last_minute = budget_.window().used(now);
  s.budget_per_minute = budget_.limit();
  s.rate_limited_until = budget_.paused_until(now);
  for (const auto& [name, e] : entries_) {
    CredentialView v;
    v.name = name;
    v.kind = e->config.kind;
    v.state = e->state.status(now);
    if (e->state.token()) v.expires_at = e->state.token()->expires_at;
    if (e->state.in_flight()) v.next_refresh = now;
    else if (e->queued_until) v.next_refresh = e->queued_until;
    else if (auto due = e->state.next_due(now); due != SteadyTime::max()) v.next_refresh = due;
    v.last_refresh_at = e->state.last_refresh_at();
    v.last_error = e->state.last_error();
    v.rejected = e->state.rejected();
    v.counters = e->state.counters();
    s.credentials.push_back(std::move(v));
  }
}

std::vector<std::string> TokenScheduler::not_ready(SteadyTime now) const {
  std::vector<std::string> out;
  for (const auto& [name, e] : entries_)
    if (!e->state.has_valid(now)) out.push_back(name);
  return out;
}

std::optional<SteadyTime> TokenScheduler::oldest_fetch() const {
  std::optional<SteadyTime> oldest;
  for (const auto& [name, e] : entries_)
    if (e->state.in_flight() && (!oldest || e->fetch_started < *oldest)) oldest = e->fetch_started;
  return oldest;
}

} // namespace cltoken
