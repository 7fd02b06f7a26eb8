#include "broker/broker.hpp"

#include <malloc.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "async/spawn.hpp"

namespace cltoken {

namespace asio = boost::asio;

namespace {
UpstreamFailure internal_failure(const std::exception& ex) {
  // A bug or resource exhaustion must not leave a credential in flight for ever and its
  // budget slot taken: it becomes a failure like any other, with backoff.
  return UpstreamFailure{
      FailureKind::network_error, fmt::format("internal error asking the auth server: {}", ex.what()), {}, 0, {}};
}
} // namespace

Broker::Broker(asio::any_io_executor executor, const Clock& clock, Upstream& upstream, Random& random, UpstreamBudget& budget,
               const Config& config)
    : executor_(executor), clock_(clock), upstream_(upstream), scheduler_(config, budget, random, clock.now()), wake_(executor),
      started_at_(clock.wall_now()), started_steady_(clock.now()) {}

Broker::~Broker() = default;

void Broker::set_store(TokenStore& store) {
  store_ = &store;
  scheduler_.set_store(StoreMode{true, store.shared()});
}

void Broker::start() {
  scheduler_.wake(now());
  wake_.start([this] { return scheduler_.next_wake(); },
              [this] {
                scheduler_.wake(now());
                drive();
              },
              "token scheduler");
  drive();
}

void Broker::stop() {
  wake_.stop();
  scheduler_.stop(now());
  drive();
}

void Broker::apply(const Config& config) {
  scheduler_.apply(now(), config);
  drive();
}

void Broker::drive() {
  for (auto actions = scheduler_.take_actions(); !actions.empty(); actions = scheduler_.take_actions())
    for (auto& a : actions) perform(a);
  wake_.rearm(scheduler_.next_wake());
}

void Broker::perform(SchedulerAction& a) {
  std::visit(
      [this](auto& act) {
        using A = std::decay_t<decltype(act)>;
        if constexpr (!std::is_same_v<A, action::Answer>) {
          // Actions are performed in the turn that decided them: the credential is there.
          if (!scheduler_.credential(act.credential.name)) return;
        }
        if constexpr (std::is_same_v<A, action::Answer>) {
          answers_.deliver(act.waiter, std::move(act.answer));
        } else if constexpr (std::is_same_v<A, action::Fetch>) {
          ++fetches_;
          spawn(fetch(act.credential, *scheduler_.credential(act.credential.name)),
                "credential " + act.credential.name + ": fetch");
        } else if constexpr (std::is_same_v<A, action::RevokeReported>) {
          spawn(revoke_reported(act.credential, *scheduler_.credential(act.credential.name), std::move(act.token)),
                "credential " + act.credential.name + ": revoke");
        } else if constexpr (std::is_same_v<A, action::Load>) {
          spawn(load(act.credential, *scheduler_.credential(act.credential.name)),
                "credential " + act.credential.name + ": store load");
        } else if constexpr (std::is_same_v<A, action::AskFleet>) {
          spawn(ask_fleet(act.credential, *scheduler_.credential(act.credential.name), act.newer_than),
                "credential " + act.credential.name + ": asking the token store");
        } else if constexpr (std::is_same_v<A, action::Save>) {
          spawn(save(*scheduler_.credential(act.credential.name), scheduler_.auth_url(), std::move(act.token)),
                "credential " + act.credential.name + ": saving the token");
        } else if constexpr (std::is_same_v<A, action::Forget>) {
          spawn(forget(*scheduler_.credential(act.credential.name), scheduler_.auth_url()),
                "credential " + act.credential.name + ": removing the revoked or invalidated token from the store");
        }
      },
      a);
}

void Broker::spawn(asio::awaitable<void> task, std::string what) {
  // Deferred: a task whose I/O completes without suspending must not re-enter the
  // scheduler while drive() is still handing out the actions of the current event.
  asio::post(executor_, [ex = executor_, t = std::move(task), w = std::move(what)]() mutable {
    asio::co_spawn(ex, std::move(t), log_failure(std::move(w)));
  });
}

asio::awaitable<void> Broker::fetch(CredentialRef ref, CredentialConfig config) {
  TokenRequest req;
  req.grant_type = "client_credentials";
  req.client_id = config.client_id;
  req.client_secret = config.client_secret;
  req.scope = config.scope;
  req.application_kind = to_string(config.kind);
  UpstreamResult result{UpstreamFailure{}};
  try {
    result = co_await upstream_.request_token(req);
  } catch (const std::exception& ex) {
    result = internal_failure(ex);
  }
  scheduler_.fetch_done(now(), ref, std::move(result));
  // A start with many credentials fetches them all at once: each TLS connection's buffers
  // are freed when it ends, but the allocator keeps the pages, so the daemon would hold the
  // peak (about 90 MiB for 1,000 credentials) for good. The last fetch of a burst hands
  // them back; this runs once per burst, not per request (docs/performance.md).
  if (--fetches_ == 0) ::malloc_trim(0);
  drive();
}

asio::awaitable<void> Broker::revoke_reported(CredentialRef ref, CredentialConfig config, Secret token) {
  std::optional<UpstreamFailure> failure;
  try {
    failure = co_await upstream_.revoke(config.client_id, config.client_secret, token);
  } catch (const std::exception& ex) {
    failure = internal_failure(ex);
  }
  scheduler_.reported_revoked(now(), ref, failure);
  drive();
}

asio::awaitable<void> Broker::load(CredentialRef ref, CredentialConfig config) {
  // A named subject: GCC 12 destroys a braced temporary twice across co_await.
  const StoreSubject subject{config, scheduler_.auth_url()};
  auto token = co_await store_->load(subject);
  scheduler_.store_loaded(now(), ref, std::move(token));
  drive();
}

asio::awaitable<void> Broker::ask_fleet(CredentialRef ref, CredentialConfig config, SteadyTime newer_than) {
  const StoreSubject subject{config, scheduler_.auth_url()}; // named: see load()
  auto token = co_await store_->before_fetch(subject, newer_than);
  scheduler_.fleet_answered(now(), ref, std::move(token));
  drive();
}

// The store calls own a copy of the credential's config and auth server, as they were
// when the action was decided: a reload may replace the scheduler's while they run.
asio::awaitable<void> Broker::save(CredentialConfig config, std::string auth_url, CachedToken token) {
  const StoreSubject subject{config, std::move(auth_url)}; // named: see load()
  co_await store_->save(subject, std::move(token));
}

asio::awaitable<void> Broker::forget(CredentialConfig config, std::string auth_url) {
  const StoreSubject subject{config, std::move(auth_url)}; // named: see load()
  co_await store_->forget(subject);
}

asio::awaitable<TokenAnswer> Broker::await_answer(TokenScheduler::Asked asked) {
  if (asked.answer) {
    drive();
    co_return std::move(*asked.answer);
  }
  co_return co_await wait_token(asked.waiter);
}

asio::awaitable<TokenAnswer> Broker::wait_token(std::uint64_t waiter) {
  // The scheduler answers every waiter by its deadline (and at stop()).
  co_return co_await answers_.wait(executor_, waiter, [this] { drive(); });
}

asio::awaitable<TokenAnswer> Broker::get_token(std::string name, std::optional<Seconds> min_ttl, SteadyTime deadline,
                                               std::optional<uid_t> peer) {
  co_return co_await await_answer(scheduler_.ask(now(), name, min_ttl, deadline, peer));
}

TokenScheduler::Asked Broker::ask_token(std::string_view name, std::optional<Seconds> min_ttl, SteadyTime deadline,
                                        std::optional<uid_t> peer, Now now) {
  auto asked = scheduler_.ask_held(now, name, min_ttl, deadline, peer);
  if (asked.answer || asked.held) drive();
  return asked;
}

asio::awaitable<TokenAnswer> Broker::invalidate(std::string name, Secret reported, SteadyTime deadline,
                                                std::optional<uid_t> peer) {
  co_return co_await await_answer(scheduler_.invalidate(now(), name, reported, deadline, peer));
}

asio::awaitable<TokenAnswer> Broker::refresh(std::string name, SteadyTime deadline, std::optional<uid_t> peer) {
  co_return co_await await_answer(scheduler_.refresh(now(), name, deadline, peer));
}

asio::awaitable<RevokeAnswer> Broker::revoke(std::string name, std::optional<uid_t> peer) {
  auto start = scheduler_.revoke_begin(now(), name, peer);
  using Kind = TokenScheduler::RevokeStart::Kind;
  switch (start.kind) {
  case Kind::unknown: co_return RevokeAnswer{};
  case Kind::nothing: co_return RevokeAnswer{RevokeAnswer::Kind::revoked, {}};
  case Kind::refused: co_return RevokeAnswer{RevokeAnswer::Kind::unavailable, std::move(*start.refused_answer)};
  case Kind::revoke: break;
  }
  const CredentialConfig config = *scheduler_.credential(name);
  const Secret token = *start.token;
  std::optional<UpstreamFailure> failure;
  try {
    failure = co_await upstream_.revoke(config.client_id, config.client_secret, token);
  } catch (const std::exception& ex) {
    failure = internal_failure(ex);
  }
  auto refused = scheduler_.revoke_end(now(), *start.credential, token, failure);
  drive();
  if (refused) co_return RevokeAnswer{RevokeAnswer::Kind::unavailable, std::move(*refused)};
  co_return RevokeAnswer{RevokeAnswer::Kind::revoked, {}};
}

StatusView Broker::status_view() {
  StatusView s;
  status_view(s);
  return s;
}

void Broker::status_view(StatusView& s) {
  s.version = CLTOKEN_VERSION;
  s.started_at = started_at_;
  s.started_steady = started_steady_;
  scheduler_.status_view(s, clock_.now());
}

Broker::Progress Broker::progress() const { return Progress{wake_.running(), scheduler_.next_wake(), scheduler_.oldest_fetch()}; }

} // namespace cltoken
