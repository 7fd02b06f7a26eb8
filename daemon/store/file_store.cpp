#include "store/file_store.hpp"

#include <spdlog/spdlog.h>

#include "core/path_trust.hpp"
#include "core/sealed_token.hpp"
#include "core/store_identity.hpp"
#include "store/atomic_file.hpp"

namespace cltoken {

namespace {
/// A state file holds a few records of a few KiB each; anything much larger is not one.
constexpr std::size_t max_state_file = 16 * 1024 * 1024;
} // namespace

FileStore::FileStore(StoreConfig config, const Clock& clock) : config_(std::move(config)), clock_(clock) {
  // Another user who can write the folder (or one above it) could roll the file back to a
  // revoked token, or put a link in its place: such a file is neither read nor written.
  if (auto why = check_path_trust(config_.path, "state file", /*check_file=*/true)) {
    spdlog::error("state file refused, starting without stored tokens and not saving any: {}", *why);
    trusted_ = false;
    return;
  }
  std::optional<std::string> text;
  try {
    text = read_whole_file(config_.path, max_state_file);
  } catch (const std::exception& e) {
    spdlog::error("state file refused, starting without stored tokens: {}", e.what());
    return;
  }
  if (!text) {
    spdlog::info("state file {} does not exist yet; it is written after the first token", config_.path);
    return;
  }
  if (const unsigned mode = file_mode(config_.path); (mode & 077) != 0)
    spdlog::warn("state file {} has mode {:04o}; it is rewritten with 0600 at the next save", config_.path, mode);
  std::string error;
  auto records = parse_state_file(*text, error);
  if (!records) {
    spdlog::error("state file {} refused, starting without stored tokens: {}", config_.path, error);
    return;
  }
  for (auto& r : *records) {
    std::string name = r.credential;
    records_.insert_or_assign(std::move(name), std::move(r));
  }
  spdlog::info("state file {}: {} stored tokens", config_.path, records_.size());
}

boost::asio::awaitable<std::optional<CachedToken>> FileStore::load(StoreSubject s) {
  auto it = records_.find(s.credential.name);
  if (it == records_.end()) co_return std::nullopt;
  auto key = sealing_key(s.credential, s.auth_url, config_);
  if (!key) co_return std::nullopt;
  const StateRecord& r = it->second;
  if (r.identity != key->identity) {
    spdlog::info("credential {}: the stored token was obtained for another identity (client_id, secret, scope or "
                 "auth_url changed); not used", key->credential);
    co_return std::nullopt;
  }
  if (r.expires_at <= clock_.wall_now()) {
    spdlog::debug("credential {}: the stored token has expired", key->credential);
    co_return std::nullopt;
  }
  auto opened = unseal_token(r.sealed, key->material, key->credential, key->identity);
  if (auto* bad = std::get_if<UnsealError>(&opened)) {
    spdlog::error("credential {}: stored token in {} refused: {}; fetching a new one", key->credential, config_.path,
                  bad->message);
    records_.erase(it);
    co_return std::nullopt;
  }
  auto& token = std::get<StoredToken>(opened);
  if (token.expires_at <= clock_.wall_now()) co_return std::nullopt;
  co_return to_cached(token, clock_);
}

boost::asio::awaitable<void> FileStore::save(StoreSubject s, CachedToken token) {
  auto key = sealing_key(s.credential, s.auth_url, config_);
  if (!key) co_return;
  StoredToken stored = to_stored(token, key->credential, key->identity, clock_);
  StateRecord r;
  r.credential = key->credential;
  r.identity = key->identity;
  r.expires_at = stored.expires_at;
  try {
    r.sealed = seal_token(stored, key->material);
  } catch (const std::exception& e) {
    spdlog::error("credential {}: cannot seal the token for the state file: {}", key->credential, e.what());
    co_return;
  }
  records_.insert_or_assign(key->credential, std::move(r));
  write();
}

boost::asio::awaitable<void> FileStore::forget(StoreSubject s) {
  if (records_.erase(s.credential.name) > 0) write();
  co_return;
}

void FileStore::write() {
  if (!trusted_) return; // said at start
  const WallTime now = clock_.wall_now();
  std::vector<StateRecord> keep;
  for (auto it = records_.begin(); it != records_.end();) {
    if (it->second.expires_at <= now) {
      it = records_.erase(it);
      continue;
    }
    keep.push_back(it->second);
    ++it;
  }
  try {
    replace_file_atomically(config_.path, render_state_file(keep));
  } catch (const std::exception& e) {
    // The token is still served from memory; only the next restart pays for this.
    spdlog::error("cannot write the state file: {}; tokens will be fetched again after a restart", e.what());
  }
}

} // namespace cltoken
