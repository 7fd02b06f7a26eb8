#pragma once
// One request in, one response out: routing, access control, and the call into the
// broker. Knows nothing of sockets; the connection gives it the peer identity.
#include <functional>
#include <string>
#include <variant>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "broker/broker.hpp"
#include "core/access_log.hpp"
#include "core/client_usage.hpp"
#include "core/log_throttle.hpp"
#include "core/metrics.hpp"
#include "core/peer_rate_limiter.hpp"
#include "core/principal.hpp"
#include "core/router.hpp"
#include "sessions/sessions.hpp"
#include "upstream/token_verifier.hpp"

namespace cltoken {

struct Request {
  std::string method;
  std::string target;
  std::string body;
};

class Handler {
public:
  /// `reload` applies the config file again and returns "" or the error sentence.
  using ReloadFn = std::function<std::string()>;

  Handler(Broker& broker, Metrics& metrics, const Clock& clock, std::vector<Principal> admin, ReloadFn reload);

  /// The answer now when it needs no wait (a token held in memory: the serving fast path,
  /// docs/architecture.md), else the coroutine that answers it, to be awaited at once.
  /// `now` is when the request was read; `deadline` bounds every wait.
  using Handled = std::variant<Response, boost::asio::awaitable<Response>>;
  Handled handle(Request request, const PeerIdentity& peer, SteadyTime now, SteadyTime deadline);

  void set_admin(std::vector<Principal> admin) { admin_ = std::move(admin); }
  /// Reports of a current token per uid: `burst`, then one per `interval` (config reload).
  void set_invalidate_rate(unsigned burst, Millis interval) { invalidations_.set_rate(burst, interval); }
  /// Customer sessions; without them the session routes answer 404.
  void set_sessions(Sessions& sessions) { sessions_ = &sessions; }
  /// POST /v1/verify and who may call it; without a verifier the route answers 404.
  void set_verifier(TokenVerifier& verifier, std::vector<Principal> allow) {
    verifier_ = &verifier;
    verify_allow_ = std::move(allow);
  }
  void set_verify_allow(std::vector<Principal> allow) { verify_allow_ = std::move(allow); }
  /// [log] access: one line per token handed out or refused, at most `per_minute` a minute.
  void set_access_log(bool on, unsigned per_minute) {
    if (!on) access_.reset();
    else if (!access_ || access_->per_minute() != per_minute) access_.emplace(per_minute);
  }
  /// Besides admins, who gets the per-credential counters of /metrics (config reload).
  void set_metrics_allow(std::vector<Principal> allow) { metrics_allow_ = std::move(allow); }
  /// Called by the listener as connections come and go (for /metrics).
  void set_connections(std::size_t n) { metrics_.set_connections(n); }
  /// Called by a connection that answered without routing (400, 408, 413, 429).
  void count_refused(unsigned code) { metrics_.count_refused(code); }

private:
  /// The routes that may wait, as a coroutine.
  boost::asio::awaitable<Response> handle_later(Route route, Request request, PeerIdentity peer, SteadyTime deadline);
  boost::asio::awaitable<Response> finish_later(Route route, PeerIdentity peer, boost::asio::awaitable<Response> answer,
                                                SteadyTime start);
  /// After every answer: /v1/clients, the access log, the metrics, the trace line.
  void finish(const Route& route, const PeerIdentity& peer, const Response& response, SteadyTime start);
  /// 403 / 404 for a token route's credential and peer, or nothing when it may go on.
  std::optional<Response> credential_refusal(const Route& route, const PeerIdentity& peer);
  /// GET /v1/tokens/{name}: answered now when the broker can (Broker::ask_token).
  Handled token_now(const Route& route, const PeerIdentity& peer, SteadyTime now, SteadyTime deadline);
  boost::asio::awaitable<Response> wait_token(std::uint64_t waiter);
  /// POST /v1/verify: answered now when the key is held (verify_token).
  Handled verify_now(Request& request, const PeerIdentity& peer, SteadyTime deadline);
  /// GET .../sessions/{handle}: a session held here answered now, else its wait.
  Handled session_now(const Route& route, Request& request, const PeerIdentity& peer, SteadyTime deadline);
  boost::asio::awaitable<Response> session_later(SessionScheduler::Started started);
  /// The sales channel of a session route the peer may use, or nullptr with `refused` set.
  const CredentialConfig* session_credential(const Route& route, Request& request, const PeerIdentity& peer, Response& refused);
  /// Every other route (get_token and verify are handle()'s).
  boost::asio::awaitable<Response> dispatch(const Route& route, Request& request, const PeerIdentity& peer, SteadyTime deadline);
  void log_denial(const PeerIdentity& peer, const std::string& what);
  /// A request naming configured credential `credential` ended with `status`: counted for
  /// GET /v1/clients and written to the access log (403s are the denial lines instead).
  void account(const PeerIdentity& peer, const std::string& credential, std::string_view route, unsigned status, SteadyTime now);
  /// `name` when it is a configured credential, else "(unknown)": safe to log.
  [[nodiscard]] std::string known_name(const std::string& name) const;
  /// POST /oauth/token: Commerce Layer's request and documents, served from the cache.
  boost::asio::awaitable<Response> dispatch_oauth(Request& request, const PeerIdentity& peer, SteadyTime deadline);
  boost::asio::awaitable<Response> dispatch_session(const Route& route, Request& request, const PeerIdentity& peer,
                                                    SteadyTime deadline);

  Broker& broker_;
  Metrics& metrics_;
  const Clock& clock_;
  std::vector<Principal> admin_;
  ReloadFn reload_;
  Sessions* sessions_ = nullptr;
  PeerLogThrottle denials_; ///< per uid: one peer's denials cannot hide another's
  /// Per uid: reports of a credential's current token, each an upstream request.
  PeerRateLimiter invalidations_{5, Millis(12000)};
  TokenVerifier* verifier_ = nullptr;
  std::vector<Principal> verify_allow_;
  ClientUsage usage_;               ///< GET /v1/clients
  std::optional<AccessLog> access_; ///< when [log] access = true
  std::vector<Principal> metrics_allow_;
};

} // namespace cltoken
