#pragma once
// The Asio driver of the SessionScheduler (core/session_scheduler.hpp), as daemon/broker is
// the TokenScheduler's: it turns the core's actions into upstream requests, revokes, token
// checks, one wake-up timer and answers to waiting clients, and their results back into
// events. It decides nothing. Single-threaded: everything runs on the io_context's thread.
#include <sys/types.h>

#include <optional>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "async/answer_box.hpp"
#include "async/wake_loop.hpp"
#include "core/clock.hpp"
#include "core/config.hpp"
#include "core/random.hpp"
#include "core/session_scheduler.hpp"
#include "core/upstream_budget.hpp"
#include "store/session_store.hpp"
#include "upstream/token_verifier.hpp"
#include "upstream/upstream.hpp"

namespace cltoken {

class Sessions {
public:
  Sessions(boost::asio::any_io_executor executor, const Clock& clock, Upstream& upstream, UpstreamBudget& budget, Random& random,
           const Config& config);
  Sessions(const Sessions&) = delete;
  Sessions& operator=(const Sessions&) = delete;

  /// Takes back the sessions the store kept, then starts the wake-ups (idle eviction,
  /// refresh of sessions in use, waiters' deadlines) and a shared store's feed.
  void start(const Config& config);
  /// Clients waiting for a refresh are answered now; the wake-ups end.
  void stop();
  /// SessionScheduler::apply.
  void apply(const Config& config);

  /// POST /v1/customers/{name}/sessions. The caller checked that the credential is a sales
  /// channel and that the peer is in its allow list. Wipes `body`.
  boost::asio::awaitable<SessionAnswer> create(CredentialConfig credential, uid_t owner, std::string body, SteadyTime deadline);
  /// GET .../sessions/{handle}. Wipes `handle`.
  boost::asio::awaitable<SessionAnswer> read(std::string credential, uid_t owner, std::string handle,
                                             std::optional<Seconds> min_ttl, SteadyTime deadline);
  /// GET .../sessions/{handle} started in the caller's event: the answer when it needs no
  /// wait (a session held here, good for min_ttl: the serving fast path), else what to
  /// await with answer_of(). Wipes `handle`.
  SessionScheduler::Started read_now(const std::string& credential, uid_t owner, std::string& handle,
                                     std::optional<Seconds> min_ttl, SteadyTime deadline);
  /// The answer to a started request, once the core gives it.
  boost::asio::awaitable<SessionAnswer> answer_of(SessionScheduler::Started started) { return await_answer(started); }
  /// DELETE .../sessions/{handle}. Wipes `handle`.
  boost::asio::awaitable<SessionAnswer> end(CredentialConfig credential, uid_t owner, std::string handle, SteadyTime deadline);

  [[nodiscard]] CustomersView view() const { return core_.view(); }
  [[nodiscard]] const SessionScheduler& core() const { return core_; }
  /// Client coroutines parked here now.
  [[nodiscard]] std::size_t parked() const { return answers_.waiting(); }

  /// Checks adopted customer tokens (the ones no upstream answer brought) before a session
  /// holds them; tokens from the upstream are checked by the Upstream itself.
  void set_verifier(TokenVerifier& verifier) { verifier_ = &verifier; }

  /// Where sessions are kept beyond memory (docs/customer-sessions.md, "Sessions in the
  /// store"); before start(), which takes back what it kept. Without one, memory only.
  void set_store(SessionStore& store) { store_ = &store; }

private:
  [[nodiscard]] Now now() const { return clock_.both(); }
  boost::asio::awaitable<SessionAnswer> await_answer(SessionScheduler::Started started);
  /// Performs every action the core decided, and re-arms the wake-up.
  void drive();
  void perform(SessionAction& a);
  boost::asio::awaitable<void> request_token(std::uint64_t id, TokenRequest request);
  boost::asio::awaitable<void> revoke(session_action::Revoke revoke);
  boost::asio::awaitable<void> verify(session_action::Verify verify);
  /// Runs `task` after the current event is fully handled, logging a failure as `what`.
  void spawn(boost::asio::awaitable<void> task, const char* what);
  // The store's actions, and the feed of sessions ended on other daemons.
  [[nodiscard]] std::optional<SessionSubject> subject(const std::string& credential, const SessionKey& key) const;
  boost::asio::awaitable<void> find(session_action::Find a);
  boost::asio::awaitable<void> ask_fleet(session_action::AskFleet a);
  boost::asio::awaitable<void> save(session_action::Save a);
  boost::asio::awaitable<void> end_in_store(session_action::EndInStore a);
  boost::asio::awaitable<void> drop(session_action::Drop a);
  boost::asio::awaitable<void> poll_ended();

  boost::asio::any_io_executor executor_;
  const Clock& clock_;
  Upstream& upstream_;
  TokenVerifier* verifier_ = nullptr;
  SessionStore* store_ = nullptr;
  std::string auth_url_;
  Millis poll_every_;
  SessionScheduler core_;
  AnswerBox<SessionAnswer> answers_;
  WakeLoop wake_;
  WakeLoop feed_; ///< polls a shared store for sessions ended elsewhere
  SteadyTime next_poll_ = SteadyTime::max();
  bool polling_ = false;
};

} // namespace cltoken
