#include "sessions/sessions.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <fmt/format.h>

#include "async/spawn.hpp"

namespace cltoken {

namespace asio = boost::asio;

namespace {
/// An exception out of the upstream client is a failure like any other: the core answers
/// it the same way, and it never escapes to the connection.
UpstreamFailure internal_failure(const std::exception& e) {
  return UpstreamFailure{
      FailureKind::network_error, fmt::format("internal error asking the auth server: {}", e.what()), {}, 0, {}};
}
} // namespace

Sessions::Sessions(asio::any_io_executor executor, const Clock& clock, Upstream& upstream, UpstreamBudget& budget, Random& random,
                   const Config& config)
    : executor_(executor), clock_(clock), upstream_(upstream), auth_url_(config.upstream.auth_url.text),
      poll_every_(config.store.session_poll), core_(config, budget, random, clock.now()), wake_(executor), feed_(executor) {}

void Sessions::start(const Config& config) {
  if (store_ != nullptr && core_.storing()) {
    core_.loaded(now(), store_->load_all(config));
    store_->on_available([this] {
      core_.store_available(now());
      drive();
    });
  }
  wake_.start([this] { return core_.next_wake(); },
              [this] {
                core_.wake(now());
                drive();
              },
              "customer session wake-ups");
  if (store_ != nullptr && core_.shared()) {
    next_poll_ = clock_.now() + poll_every_;
    feed_.start([this] { return polling_ ? SteadyTime::max() : next_poll_; },
                [this] {
                  polling_ = true;
                  spawn(poll_ended(), "reading the sessions ended on other daemons");
                },
                "customer sessions ended elsewhere");
  }
  drive();
}

void Sessions::stop() {
  feed_.stop();
  wake_.stop();
  core_.stop(now());
  drive();
}

void Sessions::apply(const Config& config) {
  auth_url_ = config.upstream.auth_url.text;
  core_.apply(now(), config);
  drive();
}

void Sessions::drive() {
  for (auto actions = core_.take_actions(); !actions.empty(); actions = core_.take_actions())
    for (auto& a : actions) perform(a);
  wake_.rearm(core_.next_wake());
}

void Sessions::perform(SessionAction& a) {
  std::visit(
      [this](auto& act) {
        using A = std::decay_t<decltype(act)>;
        if constexpr (std::is_same_v<A, session_action::Answer>) {
          answers_.deliver(act.op, std::move(act.answer));
        } else if constexpr (std::is_same_v<A, session_action::RequestToken>) {
          spawn(request_token(act.id, std::move(act.request)), "customer session token request");
        } else if constexpr (std::is_same_v<A, session_action::Revoke>) {
          spawn(revoke(std::move(act)), "customer session logout");
        } else if constexpr (std::is_same_v<A, session_action::Verify>) {
          spawn(verify(std::move(act)), "customer token check");
        } else if constexpr (std::is_same_v<A, session_action::Find>) {
          spawn(find(std::move(act)), "looking for a customer session in the store");
        } else if constexpr (std::is_same_v<A, session_action::AskFleet>) {
          spawn(ask_fleet(std::move(act)), "asking the fleet before a customer session refresh");
        } else if constexpr (std::is_same_v<A, session_action::Save>) {
          spawn(save(std::move(act)), "saving a customer session");
        } else if constexpr (std::is_same_v<A, session_action::EndInStore>) {
          spawn(end_in_store(std::move(act)), "ending a customer session in the store");
        } else if constexpr (std::is_same_v<A, session_action::Drop>) {
          spawn(drop(std::move(act)), "dropping a customer session from the store");
        }
      },
      a);
}

void Sessions::spawn(asio::awaitable<void> task, const char* what) {
  // Deferred: a task whose I/O completes without suspending must not re-enter the core
  // while drive() is still handing out the actions of the current event.
  asio::post(executor_,
             [ex = executor_, t = std::move(task), what]() mutable { asio::co_spawn(ex, std::move(t), log_failure(what)); });
}

asio::awaitable<void> Sessions::request_token(std::uint64_t id, TokenRequest request) {
  UpstreamResult result{UpstreamFailure{}};
  try {
    result = co_await upstream_.request_token(request);
  } catch (const std::exception& e) {
    result = internal_failure(e);
  }
  core_.token_answered(now(), id, std::move(result));
  drive();
}

asio::awaitable<void> Sessions::revoke(session_action::Revoke r) {
  std::optional<UpstreamFailure> failure;
  try {
    for (const Secret& token : r.tokens) {
      failure = co_await upstream_.revoke(r.client_id, r.client_secret, token);
      if (failure) break;
    }
  } catch (const std::exception& e) {
    failure = internal_failure(e);
  }
  core_.revoked(now(), r.id, std::move(failure));
  drive();
}

asio::awaitable<void> Sessions::verify(session_action::Verify v) {
  std::optional<std::string> refused;
  if (verifier_ != nullptr && verifier_->settings().mode != VerifyMode::off) {
    auto checked = co_await verifier_->check_issued(v.token.reveal(), std::move(v.expect), v.deadline);
    if (auto* f = std::get_if<VerifyFailure>(&checked)) refused = std::string(to_string(f->reason)) + ": " + f->message;
  }
  core_.verified(now(), v.id, std::move(refused));
  drive();
}

std::optional<SessionSubject> Sessions::subject(const std::string& credential, const SessionKey& key) const {
  const CredentialConfig* cred = core_.credential_config(credential);
  if (cred == nullptr) return std::nullopt;
  return SessionSubject{*cred, auth_url_, key};
}

// Each store call copies what it needs first (SessionSubject holds a reference into the
// core's credentials, which a reload replaces): the credential is copied per call.
asio::awaitable<void> Sessions::find(session_action::Find a) {
  SessionLookup lookup;
  if (auto s = subject(a.credential, a.key)) {
    const CredentialConfig cred = s->credential;
    SessionSubject subject{cred, s->auth_url, a.key}; // named: GCC 12 destroys a braced temporary in co_await twice
    lookup = co_await store_->find(std::move(subject));
  }
  core_.found(now(), a.id, std::move(lookup));
  drive();
}

asio::awaitable<void> Sessions::ask_fleet(session_action::AskFleet a) {
  FleetRefresh answer;
  if (auto s = subject(a.credential, a.key)) {
    const CredentialConfig cred = s->credential;
    SessionSubject subject{cred, s->auth_url, a.key};
    answer = co_await store_->before_refresh(std::move(subject), a.generation);
  }
  core_.fleet_answered(now(), a.id, std::move(answer));
  drive();
}

asio::awaitable<void> Sessions::save(session_action::Save a) {
  auto s = subject(a.record.credential, a.key);
  if (!s) {
    core_.saved(now(), a.key, std::move(a.record), SessionSaved::unreachable, a.op);
    drive();
    co_return;
  }
  const CredentialConfig cred = s->credential;
  SessionSubject subject{cred, s->auth_url, a.key};
  SessionRecord record = a.record;
  const SessionSaved outcome = co_await store_->save(std::move(subject), std::move(record));
  core_.saved(now(), a.key, std::move(a.record), outcome, a.op);
  drive();
}

asio::awaitable<void> Sessions::end_in_store(session_action::EndInStore a) {
  std::optional<SessionRecord> newest;
  if (auto s = subject(a.credential, a.key)) {
    const CredentialConfig cred = s->credential;
    SessionSubject subject{cred, s->auth_url, a.key};
    newest = co_await store_->end(std::move(subject));
  }
  core_.store_ended(now(), a.id, std::move(newest));
  drive();
}

asio::awaitable<void> Sessions::drop(session_action::Drop a) {
  auto s = subject(a.credential, a.key);
  if (!s) co_return;
  const CredentialConfig cred = s->credential;
  SessionSubject subject{cred, s->auth_url, a.key};
  co_await store_->dropped(std::move(subject), a.dead);
}

asio::awaitable<void> Sessions::poll_ended() {
  auto keys = co_await store_->ended_elsewhere();
  polling_ = false;
  next_poll_ = clock_.now() + poll_every_;
  core_.ended_elsewhere(now(), keys);
  drive();
  feed_.rearm(next_poll_);
}

asio::awaitable<SessionAnswer> Sessions::await_answer(SessionScheduler::Started started) {
  if (started.answer) {
    drive();
    co_return std::move(*started.answer);
  }
  co_return co_await answers_.wait(executor_, started.op, [this] { drive(); });
}

asio::awaitable<SessionAnswer> Sessions::create(CredentialConfig credential, uid_t owner, std::string body, SteadyTime deadline) {
  co_return co_await await_answer(core_.create(now(), credential, owner, std::move(body), deadline));
}

asio::awaitable<SessionAnswer> Sessions::read(std::string credential, uid_t owner, std::string handle,
                                              std::optional<Seconds> min_ttl, SteadyTime deadline) {
  const SessionKey key = session_key(handle);
  wipe(handle);
  co_return co_await await_answer(core_.read(now(), credential, owner, key, min_ttl, deadline));
}

SessionScheduler::Started Sessions::read_now(const std::string& credential, uid_t owner, std::string& handle,
                                             std::optional<Seconds> min_ttl, SteadyTime deadline) {
  const SessionKey key = session_key(handle);
  wipe(handle);
  auto started = core_.read(now(), credential, owner, key, min_ttl, deadline);
  // A waiting client is registered before the core's actions run (await_answer); an
  // answer now has nobody to register, so they run here.
  if (started.answer) drive();
  return started;
}

asio::awaitable<SessionAnswer> Sessions::end(CredentialConfig credential, uid_t owner, std::string handle, SteadyTime deadline) {
  const SessionKey key = session_key(handle);
  wipe(handle);
  co_return co_await await_answer(core_.end(now(), credential, owner, key, deadline));
}

} // namespace cltoken
