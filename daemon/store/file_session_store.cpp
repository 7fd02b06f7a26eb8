#include "store/file_session_store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include <spdlog/spdlog.h>

#include "core/path_trust.hpp"
#include "core/sealed_session.hpp"
#include "core/store_identity.hpp"
#include "store/atomic_file.hpp"
#include "store/session_owner.hpp"

namespace cltoken {

namespace {

constexpr int open_flags = O_RDWR | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK;

std::string errno_text(int e) { return std::strerror(e); }

/// Reads exactly `length` bytes at `offset`; false on a short read or an error.
bool read_at(int fd, std::uint64_t offset, std::string& out, std::size_t length) {
  out.resize(length);
  std::size_t done = 0;
  while (done < length) {
    const ssize_t n = ::pread(fd, out.data() + done, length - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

std::string utc_stamp(WallTime t) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

} // namespace

FileSessionStore::FileSessionStore(StoreConfig store, CustomersConfig customers, const Clock& clock)
    : store_(std::move(store)), customers_(customers), clock_(clock) {}

FileSessionStore::~FileSessionStore() {
  if (fd_ >= 0) ::close(fd_);
}

void FileSessionStore::open() {
  if (opened_) return;
  opened_ = true;
  const std::string& path = store_.sessions_path;
  // Another user who could replace the file could put back sessions that were ended: such
  // a journal is neither read nor written, nor moved (its folder is not ours to trust).
  if (auto why = check_path_trust(path, "session journal", /*check_file=*/true)) {
    report_.refused = *why;
    spdlog::error("session journal refused, starting with no stored sessions and keeping sessions in memory only: {}", *why);
    return;
  }
  fd_ = ::open(path.c_str(), open_flags);
  if (fd_ < 0) {
    const int e = errno;
    if (e == ENOENT) {
      spdlog::info("session journal {} does not exist yet; it is started now", path);
      start_new();
      return;
    }
    report_.refused = "it cannot be opened: " + errno_text(e);
    replace_refused();
    return;
  }
  struct stat st {};
  if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
    report_.refused = "it is not a regular file";
  } else if (static_cast<std::uint64_t>(st.st_size) > max_journal_size(customers_.max_sessions)) {
    report_.refused = fmt::format("it holds {} bytes, more than customers.max_sessions = {} can make ({} bytes)", st.st_size,
                                  customers_.max_sessions, max_journal_size(customers_.max_sessions));
  } else {
    if ((st.st_mode & 077) != 0) {
      spdlog::warn("session journal {} has mode {:04o}; set to 0600", path, st.st_mode & 07777);
      if (::fchmod(fd_, 0600) != 0) spdlog::warn("cannot set mode 0600 on {}: {}", path, errno_text(errno));
    }
    if (fold()) return;
  }
  replace_refused();
}

bool FileSessionStore::fold() {
  index_.clear();
  std::string line;          // the line being read
  bool too_long = false;     // the line being read is past max_journal_line: skipped, not kept
  bool header = true;        // the next complete line is the header
  std::uint64_t line_at = 0; // offset of the line being read
  std::uint64_t pos = 0;
  std::string chunk(1 << 16, '\0');
  auto complete = [&](std::string_view text) {
    if (header) {
      header = false;
      if (auto why = too_long ? std::optional<std::string>("its first line is too long") : journal_header_error(text)) {
        report_.refused = *why;
        return false;
      }
      return true;
    }
    std::string error;
    auto entry = too_long ? std::nullopt : parse_journal_line(text, error);
    if (!entry) {
      index_.malformed();
      ++report_.malformed_lines;
      return true;
    }
    if (auto* put = std::get_if<JournalPut>(&*entry))
      index_.put(std::move(put->id), line_at, static_cast<std::uint32_t>(text.size()), put->expires_at);
    else index_.del(std::get<JournalDel>(*entry).id);
    return true;
  };
  for (;;) {
    const ssize_t n = ::pread(fd_, chunk.data(), chunk.size(), static_cast<off_t>(pos));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      report_.refused = "it cannot be read: " + errno_text(errno);
      return false;
    }
    if (n == 0) break;
    std::string_view rest(chunk.data(), static_cast<std::size_t>(n));
    while (!rest.empty()) {
      const auto nl = rest.find('\n');
      const std::string_view piece = rest.substr(0, nl);
      if (!too_long) line.append(piece);
      if (line.size() > max_journal_line) {
        too_long = true;
        line.clear();
      }
      if (nl == std::string_view::npos) break;
      if (!complete(line)) return false;
      line_at = pos + static_cast<std::uint64_t>(piece.data() + piece.size() + 1 - chunk.data());
      line.clear();
      too_long = false;
      rest.remove_prefix(nl + 1);
    }
    pos += static_cast<std::uint64_t>(n);
  }
  const bool torn = line_at < pos;
  if (header) { // no complete line: a new journal, or one whose header write was cut short
    if (torn && !render_journal_header().starts_with(line)) {
      report_.refused = "it does not start with a sessions journal header";
      return false;
    }
    if (::ftruncate(fd_, 0) != 0) {
      report_.refused = "it cannot be truncated: " + errno_text(errno);
      return false;
    }
    size_ = 0;
    if (append(render_journal_header())) return true;
    report_.refused = "its header cannot be written";
    return false;
  }
  if (torn) {
    // A crash mid-append: that change is lost either way. Cut it off so that the next line
    // does not run into it.
    report_.torn_tail = true;
    spdlog::warn("session journal {}: its last line was cut short (a crash while writing it); ignored", store_.sessions_path);
    if (::ftruncate(fd_, static_cast<off_t>(line_at)) != 0) {
      report_.refused = "its cut-short last line cannot be removed: " + errno_text(errno);
      return false;
    }
  }
  size_ = line_at;
  return true;
}

bool FileSessionStore::replace_refused() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  index_.clear();
  const std::string& path = store_.sessions_path;
  // Never removed: it may hold sessions a newer cl-tokend wrote, or be someone's file.
  std::string aside = path + ".refused-" + utc_stamp(clock_.wall_now());
  struct stat st {};
  for (int i = 2; ::lstat(aside.c_str(), &st) == 0 && i < 100; ++i)
    aside = path + ".refused-" + utc_stamp(clock_.wall_now()) + "-" + std::to_string(i);
  if (::rename(path.c_str(), aside.c_str()) != 0) {
    spdlog::error("session journal {} refused ({}), and it cannot be moved aside to {}: {}; starting with no stored "
                  "sessions and keeping sessions in memory only",
                  path, report_.refused, aside, errno_text(errno));
    return false;
  }
  report_.moved_to = aside;
  spdlog::error("session journal {} refused ({}): moved to {}, starting with no stored sessions and a new journal", path,
                report_.refused, aside);
  return start_new();
}

bool FileSessionStore::start_new() {
  const std::string& path = store_.sessions_path;
  index_.clear();
  size_ = 0;
  fd_ = ::open(path.c_str(), open_flags | O_CREAT | O_EXCL, 0600);
  if (fd_ < 0) {
    spdlog::error("cannot create the session journal {}: {}; keeping sessions in memory only", path, errno_text(errno));
    return false;
  }
  if (append(render_journal_header())) return true;
  ::close(fd_);
  fd_ = -1;
  return false;
}

bool FileSessionStore::append(const std::string& line) {
  if (fd_ < 0) return false;
  std::size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = ::write(fd_, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int e = n < 0 ? errno : ENOSPC;
      // Cut off what was written, so that the next line starts on a line of its own.
      if (done > 0 && ::ftruncate(fd_, static_cast<off_t>(size_)) != 0) {
        write_failed(errno_text(e) + ", and the partial line cannot be removed; the journal is not written any more");
        ::close(fd_);
        fd_ = -1;
        return false;
      }
      write_failed(errno_text(e));
      return false;
    }
    done += static_cast<std::size_t>(n);
  }
  size_ += line.size();
  return true;
}

void FileSessionStore::write_failed(const std::string& what) {
  const auto v = write_log_.admit(clock_.now());
  if (v.suppressed > 0) spdlog::error("{} more session journal write failures not logged", v.suppressed);
  if (v.log)
    spdlog::error("cannot append to the session journal {}: {}; the change is lost at the next restart", store_.sessions_path,
                  what);
}

std::optional<JournalPut> FileSessionStore::read_put(const std::string& id, const JournalIndex::Live& live) {
  std::string line;
  std::string error;
  if (!read_at(fd_, live.offset, line, live.length)) {
    spdlog::error("session journal {}: cannot read a session back: {}", store_.sessions_path, errno_text(errno));
    return std::nullopt;
  }
  auto entry = parse_journal_line(line, error);
  auto* put = entry ? std::get_if<JournalPut>(&*entry) : nullptr;
  if (put == nullptr || put->id != id) {
    spdlog::error("session journal {}: a session's line changed under the daemon", store_.sessions_path);
    return std::nullopt;
  }
  return std::move(*put);
}

std::vector<KeptSession> FileSessionStore::load_all(const Config& config) {
  open();
  std::vector<KeptSession> out;
  SessionLoadReport& r = report_;
  r.loaded = r.expired = r.no_credential = r.other_identity = r.unopened = 0;
  if (fd_ < 0) return out; // said when it was refused
  const WallTime now = clock_.wall_now();
  std::map<std::string, std::optional<SealingKey>> keys; // by credential
  std::map<std::string, std::size_t> other_identity;     // by credential: logged once each
  std::map<std::string, std::string> unopened;           // by credential: the first reason
  std::vector<std::string> not_loaded;
  for (const auto& [id, live] : index_.live()) {
    if (live.expires_at <= now) {
      ++r.expired;
      not_loaded.push_back(id);
      continue;
    }
    auto put = read_put(id, live);
    if (!put) {
      ++r.unopened;
      not_loaded.push_back(id);
      continue;
    }
    auto k = keys.find(put->credential);
    if (k == keys.end()) {
      const CredentialConfig* c = config.find(put->credential);
      k = keys.emplace(put->credential, c ? sealing_key(*c, config.upstream.auth_url.text, config.store) : std::nullopt).first;
    }
    const std::optional<SealingKey>& key = k->second;
    if (!key) {
      ++r.no_credential;
    } else if (key->identity != put->identity) {
      ++r.other_identity;
      ++other_identity[put->credential];
    } else {
      auto opened = unseal_session(put->sealed, key->material, key->credential, key->identity, id);
      if (auto* bad = std::get_if<UnsealError>(&opened)) {
        ++r.unopened;
        unopened.emplace(put->credential, bad->message);
      } else if (auto& s = std::get<StoredSession>(opened); stored_session_expiry(s, customers_.refresh_token_lifetime) <= now) {
        ++r.expired; // customers.refresh_token_lifetime_s was shortened since it was written
      } else {
        out.push_back(KeptSession{s.key, to_session_record(s, s.owner_uid, clock_)});
        continue;
      }
    }
    not_loaded.push_back(id);
  }
  // Not loaded is not kept: their lines are dead, and go at the next compaction.
  for (const auto& id : not_loaded) index_.forget(id);
  r.loaded = out.size();
  for (const auto& [credential, count] : other_identity)
    spdlog::warn("credential {}: {} stored sessions were kept for another identity (client_id, secret, scope or auth_url "
                 "changed); not loaded",
                 credential, count);
  for (const auto& [credential, why] : unopened) spdlog::error("credential {}: stored sessions refused: {}", credential, why);
  spdlog::info("session journal {}: {} sessions loaded, {} not ({} expired, {} of a credential gone from the config, "
               "{} kept for another identity, {} failed to open), {} malformed lines skipped",
               store_.sessions_path, r.loaded, r.expired + r.no_credential + r.other_identity + r.unopened, r.expired,
               r.no_credential, r.other_identity, r.unopened, r.malformed_lines);
  compact_if_due();
  return out;
}

boost::asio::awaitable<SessionSaved> FileSessionStore::save(SessionSubject s, SessionRecord record) {
  open();
  auto key = sealing_key(s.credential, s.auth_url, store_);
  if (fd_ < 0 || !key) co_return SessionSaved::unreachable; // said at start (load_config refuses a missing key)
  std::string id = session_store_id(key->material, key->credential, s.key);
  const StoredSession stored = to_stored_session(record, s.key, key->identity, id, session_owner_name(record.owner), clock_);
  const WallTime expires = stored_session_expiry(stored, customers_.refresh_token_lifetime);
  if (expires <= clock_.wall_now()) { // of no use after a restart
    forget(s);
    co_return SessionSaved::stored;
  }
  JournalPut put{id, key->credential, key->identity, expires, {}};
  try {
    put.sealed = seal_session(stored, key->material);
  } catch (const std::exception& e) {
    write_failed(std::string("cannot seal the session: ") + e.what());
    co_return SessionSaved::unreachable;
  }
  const std::string line = render_journal_put(put);
  if (line.size() > max_journal_line + 1) { // it could not be read back
    write_failed("a session too large to keep (" + std::to_string(line.size()) + " bytes)");
    co_return SessionSaved::unreachable;
  }
  const std::uint64_t at = size_;
  if (!append(line)) co_return SessionSaved::unreachable;
  index_.put(std::move(id), at, static_cast<std::uint32_t>(line.size() - 1), expires);
  compact_if_due();
  co_return SessionSaved::stored;
}

boost::asio::awaitable<std::optional<SessionRecord>> FileSessionStore::end(SessionSubject s) {
  forget(s);
  co_return std::nullopt; // this daemon held the newest record: nothing more to revoke
}

boost::asio::awaitable<void> FileSessionStore::dropped(SessionSubject s, bool) {
  forget(s);
  co_return;
}

void FileSessionStore::forget(SessionSubject& s) {
  open();
  auto key = sealing_key(s.credential, s.auth_url, store_);
  if (fd_ < 0 || !key) return;
  const std::string id = session_store_id(key->material, key->credential, s.key);
  if (!index_.live().contains(id)) return; // never kept, or gone already
  if (!append(render_journal_del(id))) return;
  index_.del(id);
  compact_if_due();
}

void FileSessionStore::compact_if_due() {
  if (fd_ < 0 || !index_.compaction_due() || index_.lines() < compact_retry_lines_) return;
  const std::string& path = store_.sessions_path;
  const WallTime now = clock_.wall_now();
  // The live lines as they are in the file: no sealed copy is kept in memory between
  // compactions. Transiently the live part of the journal (~2.6 KB a session).
  std::string content = render_journal_header();
  JournalIndex next;
  std::string line;
  for (const auto& [id, live] : index_.live()) {
    if (live.expires_at <= now) continue;
    if (!read_at(fd_, live.offset, line, live.length) || !line.starts_with("{\"put\":\"" + id + "\"")) {
      spdlog::error("session journal {}: a session's line cannot be read back; not compacted", path);
      compact_retry_lines_ = index_.lines() + journal_compaction_floor;
      return;
    }
    next.put(id, content.size(), live.length, live.expires_at);
    content += line;
    content += '\n';
  }
  const std::uint64_t before = size_;
  try {
    replace_file_atomically(path, content); // durable: it replaces every session at once
  } catch (const std::exception& e) {
    spdlog::error("cannot compact the session journal: {}; it keeps growing until it can", e.what());
    compact_retry_lines_ = index_.lines() + journal_compaction_floor;
    return;
  }
  const int fd = ::open(path.c_str(), open_flags);
  if (fd < 0) {
    spdlog::error("cannot reopen the compacted session journal {}: {}; keeping sessions in memory only", path, errno_text(errno));
    ::close(fd_);
    fd_ = -1;
    return;
  }
  ::close(fd_);
  fd_ = fd;
  size_ = content.size();
  index_ = std::move(next);
  compact_retry_lines_ = 0;
  spdlog::info("session journal {} compacted: {} sessions, {} bytes (was {})", path, index_.live().size(), size_, before);
}

} // namespace cltoken
