#pragma once
// store.backend = "file": customer sessions in a journal beside the state file
// (store.sessions_path; format in core/session_journal.hpp, docs/store.md "Customer
// sessions"), so that a restart keeps every session.
//
// Every change is one line appended with O_APPEND and no fsync, on the event loop (a few
// KB, like the state file's writes): the line is in the kernel when save() returns, so a
// daemon crash loses nothing; a host crash may lose the last few seconds of changes (a
// logout then comes back as a session whose refresh token was revoked). The journal is
// compacted (rewritten atomically and durably with the live lines only, read back from the
// file) when its dead lines outnumber the live ones (core/session_journal.hpp).
//
// A file that is not a journal of this version, or cannot be read, or is larger than
// customers.max_sessions allows, is moved aside to PATH.refused-TIME (never read, written
// or removed again) and a new journal is started: the daemon starts without sessions and
// says so. A path that fails its checks (core/path_trust.hpp) is neither read nor written:
// sessions then live in memory only.
#include <cstdint>
#include <map>
#include <string>

#include "core/clock.hpp"
#include "core/config.hpp"
#include "core/log_throttle.hpp"
#include "core/session_journal.hpp"
#include "store/session_store.hpp"

namespace cltoken {

/// What the last load_all() found, for its log line and for tests.
struct SessionLoadReport {
  std::size_t loaded = 0;
  std::size_t expired = 0;
  std::size_t no_credential = 0;   ///< its credential is gone from the config, or has no key material
  std::size_t other_identity = 0;  ///< its credential's identity changed (client_id, secret, scope, auth_url)
  std::size_t unopened = 0;        ///< the sealed record failed to open (altered, or another key)
  std::size_t malformed_lines = 0; ///< lines that are neither a put nor a del, skipped
  bool torn_tail = false;          ///< the last line was cut short (a crash mid-append), ignored
  std::string refused;             ///< why the whole file was refused ("" = it was not)
  std::string moved_to;            ///< where a refused file was moved
};

class FileSessionStore final : public SessionStore {
public:
  /// Touches no file: the journal is opened by load_all() (or the first write).
  FileSessionStore(StoreConfig store, CustomersConfig customers, const Clock& clock);
  ~FileSessionStore() override;
  FileSessionStore(const FileSessionStore&) = delete;
  FileSessionStore& operator=(const FileSessionStore&) = delete;

  [[nodiscard]] bool shared() const override { return false; }
  std::vector<KeptSession> load_all(const Config& config) override;
  boost::asio::awaitable<SessionLookup> find(SessionSubject) override { co_return SessionLookup{}; }
  boost::asio::awaitable<FleetRefresh> before_refresh(SessionSubject, std::uint64_t) override { co_return FleetRefresh{}; }
  boost::asio::awaitable<SessionSaved> save(SessionSubject s, SessionRecord record) override;
  boost::asio::awaitable<std::optional<SessionRecord>> end(SessionSubject s) override;
  boost::asio::awaitable<void> dropped(SessionSubject s, bool dead) override;
  boost::asio::awaitable<std::vector<SessionKey>> ended_elsewhere() override { co_return std::vector<SessionKey>{}; }
  /// Nothing to flush: every append is written when it is made.
  void stop() override {}

  [[nodiscard]] const SessionLoadReport& last_load() const { return report_; }
  [[nodiscard]] std::size_t live() const { return index_.live().size(); }
  [[nodiscard]] std::uint64_t journal_bytes() const { return size_; }

private:
  /// Opens (creating, or moving a refused file aside) and folds the journal, once.
  void open();
  /// Reads the journal from fd_, folding it into index_; false: refuse it (report_.refused).
  bool fold();
  /// Moves a refused file aside and starts an empty journal; false: neither could be done.
  bool replace_refused();
  bool start_new();
  /// Appends one line; false (logged, throttled) when it could not be written.
  bool append(const std::string& line);
  /// The put line at `live` read back; nullopt when it cannot be (logged).
  std::optional<JournalPut> read_put(const std::string& id, const JournalIndex::Live& live);
  void compact_if_due();
  void forget(SessionSubject& s);
  void write_failed(const std::string& what);

  StoreConfig store_;
  CustomersConfig customers_;
  const Clock& clock_;
  int fd_ = -1;
  bool opened_ = false;
  std::uint64_t size_ = 0; ///< bytes in the journal: where the next line goes
  JournalIndex index_;
  std::size_t compact_retry_lines_ = 0; ///< after a failed compaction: not before this many lines
  SessionLoadReport report_;
  LogThrottle write_log_{5, Seconds(60)};
};

} // namespace cltoken
