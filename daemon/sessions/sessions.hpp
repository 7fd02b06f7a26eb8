#pragma once
// Customer sessions with real I/O (docs/customer-sessions.md): login, read with
// refresh, logout, and a sweep that evicts idle sessions and refreshes the ones in use.
// The decisions are core/session_table.hpp's; this class only sequences upstream calls
// (through the host's shared UpstreamBudget) and the clients waiting for them.
// Single-threaded: everything runs on the io_context's one thread, like the Broker.
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "core/random.hpp"
#include "core/clock.hpp"
#include "core/config.hpp"
#include "core/documents.hpp"
#include "core/refresh_policy.hpp"
#include "core/router.hpp"
#include "core/upstream_budget.hpp"
#include "core/peer_rate_limiter.hpp"
#include "core/session_table.hpp"
#include "upstream/token_verifier.hpp"
#include "upstream/upstream.hpp"

namespace cltoken {

class Sessions {
public:
  Sessions(boost::asio::any_io_executor executor, const Clock& clock, Upstream& upstream, UpstreamBudget& budget, Random& random,
           const Config& config);
  Sessions(const Sessions&) = delete;
  Sessions& operator=(const Sessions&) = delete;

  /// Starts the sweep (idle eviction, refresh of sessions in use).
  void start();
  void stop();
  /// New limits and policy; sessions of credentials that are gone, no longer sales
  /// channels, or whose identity changed are dropped (their tokens would not fit).
  void apply(const Config& config);

  /// POST /v1/customers/{name}/sessions. The caller checked that the credential is a
  /// sales channel and that the peer is in its allow list. Wipes `body`.
  boost::asio::awaitable<Response> create(CredentialConfig credential, uid_t owner, std::string body, SteadyTime deadline);
  /// GET .../sessions/{handle}. Wipes `handle`.
  boost::asio::awaitable<Response> read(std::string credential, uid_t owner, std::string handle,
                                        std::optional<Seconds> min_ttl, SteadyTime deadline);
  /// DELETE .../sessions/{handle}. Wipes `handle`.
  boost::asio::awaitable<Response> end(CredentialConfig credential, uid_t owner, std::string handle, SteadyTime deadline);

  [[nodiscard]] CustomersView view() const;

  /// Checks adopted customer tokens (the ones no upstream answer brought) before a session
  /// holds them; tokens from the upstream are checked by the Upstream itself.
  void set_verifier(TokenVerifier& verifier) { verifier_ = &verifier; }

private:
  enum class Outcome { ok, expired, failed, gone };
  /// Why an adopted token is refused (reason: message), or nullopt when it verifies.
  boost::asio::awaitable<std::optional<std::string>> verify_adopted(const CredentialConfig& cred, std::string_view token,
                                                                    std::string owner_id, SteadyTime deadline);
  /// Refreshes one session (single flight: a second caller waits for the first).
  /// `peer` made it happen (a read), or nobody did (the sweep); it is charged for it.
  boost::asio::awaitable<Outcome> refresh(SessionKey key, SteadyTime deadline, std::optional<uid_t> peer);
  /// A 429 from the auth server pauses the whole host's budget.
  void pause_for_rate_limit(const UpstreamFailure& f, const std::string& name);
  /// One token request on an upstream budget slot the caller took; releases the slot when
  /// the answer is in, and turns an exception into a failure.
  boost::asio::awaitable<UpstreamResult> request_token(const TokenRequest& request);
  boost::asio::awaitable<void> sweep();
  void spawn_refresh(const SessionKey& key, std::optional<uid_t> peer);
  /// The client credentials of a session's credential, as configured now.
  [[nodiscard]] const CredentialConfig* credential(const std::string& name) const;
  boost::asio::awaitable<bool> wait_refresh(const SessionKey& key, SteadyTime deadline);
  void notify(const SessionKey& key);
  /// A session from a grant, with its refresh point; `sent` is when the request went out.
  CustomerSession from_grant(const std::string& credential, uid_t owner, TokenGrant& grant, SteadyTime sent);
  void note_evictions(std::size_t n) { view_.evicted_lru += n; }

  boost::asio::any_io_executor executor_;
  const Clock& clock_;
  Upstream& upstream_;
  TokenVerifier* verifier_ = nullptr;
  UpstreamBudget& budget_;
  Random& random_;
  RefreshPolicy policy_;
  Seconds min_ttl_;
  std::string auth_url_; ///< a new auth server invalidates every session
  std::map<std::string, CredentialConfig, std::less<>> credentials_;
  SessionTable table_;
  PeerRateLimiter limiter_;
  CustomersView view_;
  std::map<SessionKey, std::vector<boost::asio::steady_timer*>> waiters_;
  boost::asio::steady_timer tick_;
  bool running_ = false;
};

} // namespace cltoken
