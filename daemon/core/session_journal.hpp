#pragma once
// The customer sessions' journal (store.backend = "file", docs/store.md "Customer
// sessions"): one JSON line per change, appended, the last line about a session winning.
// A journal rather than a file rewritten per change: up to 100,000 sessions of ~2.5 KB
// sealed each would make every refresh rewrite ~250 MB.
//
//   {"format":"cl-tokend sessions","version":1}
//   {"put":"<store id>","credential":"NAME","identity":"<64 hex>","expires_at_ms":N,"sealed":"<base64>"}
//   {"del":"<store id>"}
//
// Store id, credential, identity and expiry sit in clear so that a session can be
// forgotten, or told expired or kept for another identity, without its key; all are bound
// to the sealed record (core/sealed_session.hpp), so editing one makes the record fail to
// open. Pure format and folding here, no I/O: store/file_session_store does the reading.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>

#include "core/clock.hpp"
#include "core/sealed_session.hpp"

namespace cltoken {

/// Longer lines are malformed: a sealed session with a 1.2 KB access token makes a
/// ~2.6 KB line, and no token the auth server issues comes near this.
constexpr std::size_t max_journal_line = 16 * 1024;
/// Dead lines (replaced, deleted, malformed) tolerated beyond the live ones before the
/// journal is compacted: keeps a small journal from being rewritten on every change.
constexpr std::size_t journal_compaction_floor = 1000;

struct JournalPut {
  std::string id;         ///< session_store_id(): 64 hex digits
  std::string credential; ///< [credentials.NAME]
  std::string identity;   ///< identity_fingerprint() of that credential
  WallTime expires_at{};  ///< stored_session_expiry(): of no use after this
  std::string sealed;     ///< seal_session() bytes (base64 in the file)
};
struct JournalDel {
  std::string id;
};
using JournalEntry = std::variant<JournalPut, JournalDel>;

/// The first line, '\n' included.
[[nodiscard]] std::string render_journal_header();
/// Why `line` (without its '\n') is not the header this version writes; nullopt when it is.
[[nodiscard]] std::optional<std::string> journal_header_error(std::string_view line);
/// One line each, '\n' included.
[[nodiscard]] std::string render_journal_put(const JournalPut& put);
[[nodiscard]] std::string render_journal_del(std::string_view id);
/// A line without its '\n'; nullopt with `error` set for anything that is not a put or a del.
[[nodiscard]] std::optional<JournalEntry> parse_journal_line(std::string_view line, std::string& error);

/// Until when a stored session is worth keeping: with a refresh token, as long as the auth
/// server keeps that token valid (obtained_at + `refresh_token_lifetime`, the token being
/// issued with the access token); without one, until the access token expires.
[[nodiscard]] WallTime stored_session_expiry(const StoredSession& s, std::chrono::seconds refresh_token_lifetime);

/// The journal folded line by line: where the last put of every live session is, and how
/// many lines are dead. Holds no sealed record: the store reads a live line back by its
/// offset when it needs it (load, compaction), so memory stays ~100 bytes per session.
class JournalIndex {
public:
  struct Live {
    std::uint64_t offset = 0; ///< of the put line in the file
    std::uint32_t length = 0; ///< without the '\n'
    WallTime expires_at{};
  };

  /// Folds one entry line found at `offset`, `length` bytes long, '\n' excluded.
  void put(std::string id, std::uint64_t offset, std::uint32_t length, WallTime expires_at);
  void del(const std::string& id);
  /// A line that is neither: dead from the start.
  void malformed() { ++lines_; }
  /// Forgets a live session without a line (not loaded: it is dead weight in the file).
  void forget(const std::string& id) { live_.erase(id); }
  void clear() {
    live_.clear();
    lines_ = 0;
  }

  [[nodiscard]] const std::unordered_map<std::string, Live>& live() const { return live_; }
  [[nodiscard]] std::size_t lines() const { return lines_; } ///< entry lines, header excluded
  [[nodiscard]] std::size_t dead() const { return lines_ - live_.size(); }
  /// When the dead lines outnumber the live ones by more than the floor: then a rewrite
  /// costs at most as much as the appends since the last one, and a journal is at most
  /// about twice its live size plus the floor.
  [[nodiscard]] bool compaction_due(std::size_t floor = journal_compaction_floor) const { return dead() > live_.size() + floor; }

private:
  std::unordered_map<std::string, Live> live_;
  std::size_t lines_ = 0;
};

/// The largest journal read for `max_sessions`: what compaction_due() lets one reach with
/// lines of max_journal_line. Anything larger was not written by this daemon.
[[nodiscard]] std::uint64_t max_journal_size(std::size_t max_sessions);

} // namespace cltoken
