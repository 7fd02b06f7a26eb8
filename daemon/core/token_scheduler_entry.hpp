#pragma once
// TokenScheduler's record of one credential; only the scheduler's own files include this.
#include "core/token_scheduler.hpp"

namespace cltoken {

struct TokenScheduler::Entry {
  Entry(CredentialRef r, CredentialConfig c, RefreshPolicy p) : ref(std::move(r)), config(std::move(c)), state(p) {}

  /// A client parked until the token changes or its deadline passes.
  struct Waiter {
    std::uint64_t id;
    Seconds min_ttl;
    std::uint64_t generation; ///< the entry's when it started waiting
    SteadyTime deadline;
    std::optional<uid_t> peer;
    bool refresh = false; ///< an admin refresh: answered when the fetch ends, never with the token
  };

  CredentialRef ref;
  CredentialConfig config;
  CredentialState state;
  std::vector<Waiter> waiters;
  std::uint64_t generation = 0; ///< bumped when a fetch finishes or a token arrives
  bool removed = false;
  SteadyTime fetch_started{};             ///< of the fetch in flight, if any
  std::optional<SteadyTime> queued_until; ///< due but over budget: when its turn is expected
  std::optional<uid_t> cause;             ///< the peer whose request made the next fetch due early
  enum class Store { unloaded, loading, ready } store = Store::unloaded;
  enum class Gate { ask, asking, open } gate = Gate::ask; ///< shared store: may this daemon fetch?
  int fleet_rounds = 0;
  TokenDocumentCache document; ///< what a client is served, rendered once a second
};

} // namespace cltoken
