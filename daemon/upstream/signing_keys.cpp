#include "upstream/signing_keys.hpp"

#include <algorithm>

#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "async/spawn.hpp"

namespace cltoken {

namespace asio = boost::asio;

SigningKeys::SigningKeys(asio::any_io_executor executor, JwksSource& source, const Clock& clock, Seconds min_interval,
                         Seconds max_age)
    : executor_(std::move(executor)), source_(source), clock_(clock), gate_(min_interval, max_age),
      keys_(std::make_shared<KeySet>()) {}

void SigningKeys::reset() {
  keys_ = std::make_shared<KeySet>();
  gate_.reset();
  last_error_.clear();
  recalled_ = false;
}

std::shared_ptr<const KeySet> SigningKeys::held_for(std::string_view kid) const {
  const SteadyTime now = clock_.now();
  if (!keys_->contains(kid) || (gate_.stale(now) && gate_.may_fetch(now))) return nullptr;
  return keys_;
}

asio::awaitable<std::shared_ptr<const KeySet>> SigningKeys::keys_for(std::string kid, SteadyTime deadline) {
  if (auto held = held_for(kid)) co_return held;
  const SteadyTime now = clock_.now();
  const bool stale = gate_.stale(now) && gate_.may_fetch(now);
  if (!in_flight_) {
    const bool recall = keeper_ != nullptr && !recalled_;
    if (!recall && !gate_.may_fetch(now)) co_return keys_; // asked recently: the set stands
    co_await update(std::move(kid), recall, stale);
    co_return keys_;
  }
  // One fetch at a time: the others wait for its outcome, bounded by their deadline.
  ClockTimer t(executor_, deadline);
  waiters_.push_back(&t);
  (void)co_await t.async_wait(use_tuple);
  waiters_.erase(std::find(waiters_.begin(), waiters_.end(), &t));
  co_return keys_;
}

asio::awaitable<void> SigningKeys::update(std::string kid, bool recall, bool stale) {
  in_flight_ = true;
  if (recall) {
    recalled_ = true;
    co_await recall_kept();
    stale = gate_.stale(clock_.now());
  }
  if ((!keys_->contains(kid) || stale) && gate_.may_fetch(clock_.now())) co_await fetch();
  in_flight_ = false;
  for (auto* w : waiters_) w->cancel();
}

asio::awaitable<void> SigningKeys::recall_kept() {
  std::optional<KeySetKeeper::Kept> kept;
  try {
    kept = co_await keeper_->recall();
  } catch (const std::exception& e) {
    spdlog::error("reading the kept key set failed unexpectedly: {}", e.what());
  }
  if (!kept) co_return;
  // Checked as strictly as a fetched set: the store only saves a request, it adds no trust.
  JwksParse parsed = parse_jwks(kept->jwks);
  if (!parsed.error.empty()) {
    spdlog::warn("kept key set not used: {}", parsed.error);
    co_return;
  }
  spdlog::info("auth server key set loaded from the store: {} key(s)", parsed.keys.size());
  keys_ = std::make_shared<const KeySet>(std::move(parsed.keys));
  // Its age counts from when the auth server published it, not from the restart.
  const auto age = std::max(SteadyClock::duration::zero(),
                            std::chrono::duration_cast<SteadyClock::duration>(clock_.wall_now() - kept->fetched_at));
  gate_.obtained(clock_.now() - age);
}

asio::awaitable<void> SigningKeys::fetch() {
  gate_.started(clock_.now());
  JwksAnswer answer{UpstreamFailure{}};
  try {
    answer = co_await source_.fetch_jwks();
  } catch (const std::exception& e) {
    answer =
        UpstreamFailure{FailureKind::network_error, std::string("internal error asking for the key set: ") + e.what(), {}, 0, {}};
  }
  if (auto* f = std::get_if<UpstreamFailure>(&answer)) {
    last_error_ = "the auth server's key set could not be fetched: " + f->message;
    spdlog::warn("{}", last_error_);
    if (count_) count_("failed");
  } else {
    JwksParse parsed = parse_jwks(std::get<std::string>(answer));
    for (const auto& why : parsed.refused) spdlog::warn("auth server key set: refused {}", why);
    if (!parsed.error.empty()) {
      last_error_ = "the auth server's key set was refused: " + parsed.error;
      spdlog::warn("{}", last_error_);
      if (count_) count_("refused");
    } else {
      // The set is what the auth server publishes now: a rotation publishes the new key
      // next to the old one for as long as tokens signed by the old one live.
      spdlog::info("auth server key set fetched: {} key(s)", parsed.keys.size());
      keys_ = std::make_shared<const KeySet>(std::move(parsed.keys));
      gate_.obtained(clock_.now());
      last_error_.clear();
      if (count_) count_("ok");
      if (keeper_ != nullptr) keeper_->keep(jwks_document(*keys_));
    }
  }
}

} // namespace cltoken
