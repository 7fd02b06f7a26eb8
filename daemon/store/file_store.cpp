#include "store/file_store.hpp"

#include <algorithm>

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
  read_anchor();
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
  auto state = parse_state_file(*text, error);
  if (!state) {
    spdlog::error("state file {} refused, starting without stored tokens: {}", config_.path, error);
    return;
  }
  for (auto& r : state->records) {
    std::string name = r.credential;
    records_.insert_or_assign(std::move(name), std::move(r));
  }
  if (!state->key_sets.empty()) key_set_ = std::move(state->key_sets.back());
  spdlog::info("state file {}: {} stored tokens{}", config_.path, records_.size(),
               key_set_ ? " and the auth server's key set" : "");
}

boost::asio::awaitable<std::optional<CachedToken>> FileStore::load(StoreSubject s) {
  auto it = records_.find(s.credential.name);
  if (it == records_.end()) co_return std::nullopt;
  auto key = sealing_key(s.credential, s.auth_url, config_);
  if (!key) co_return std::nullopt;
  const StateRecord& r = it->second;
  if (r.identity != key->identity) {
    spdlog::info("credential {}: the stored token was obtained for another identity (client_id, secret, scope or "
                 "auth_url changed); not used",
                 key->credential);
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
  const auto anchored = anchor_.find(key->credential);
  if (auto why = rolled_back(token.generation,
                             anchored == anchor_.end() ? std::nullopt : std::optional<std::uint64_t>(anchored->second))) {
    spdlog::error("credential {}: stored token in {} refused: {}; fetching a new one", key->credential, config_.path, *why);
    records_.erase(it);
    co_return std::nullopt;
  }
  if (token.expires_at <= clock_.wall_now()) co_return std::nullopt;
  it->second.generation = token.generation; // the sealed count, not the one in clear
  // Anchored at once: an even older copy put back before the next save is refused too.
  if (anchored == anchor_.end() || anchored->second < token.generation) {
    anchor_[key->credential] = token.generation;
    write_anchor();
  }
  co_return to_cached(token, clock_);
}

boost::asio::awaitable<void> FileStore::save(StoreSubject s, CachedToken token) {
  auto key = sealing_key(s.credential, s.auth_url, config_);
  if (!key) co_return;
  StoredToken stored = to_stored(token, key->credential, key->identity, clock_);
  stored.generation = generation_of(key->credential) + 1;
  StateRecord r;
  r.credential = key->credential;
  r.identity = key->identity;
  r.expires_at = stored.expires_at;
  r.generation = stored.generation;
  try {
    r.sealed = seal_token(stored, key->material);
  } catch (const std::exception& e) {
    spdlog::error("credential {}: cannot seal the token for the state file: {}", key->credential, e.what());
    co_return;
  }
  records_.insert_or_assign(key->credential, std::move(r));
  write();
  // After the file: a crash in between leaves the anchor behind the file, which loads.
  anchor_[key->credential] = stored.generation;
  write_anchor();
}

boost::asio::awaitable<void> FileStore::forget(StoreSubject s) {
  // Before the file: a crash in between leaves the removed record refused, never loaded.
  anchor_[s.credential.name] = generation_of(s.credential.name) + 1;
  write_anchor();
  if (records_.erase(s.credential.name) > 0) write();
  co_return;
}

std::uint64_t FileStore::generation_of(const std::string& name) const {
  std::uint64_t g = 0;
  if (auto it = anchor_.find(name); it != anchor_.end()) g = it->second;
  if (auto it = records_.find(name); it != records_.end()) g = std::max(g, it->second.generation);
  return g;
}

void FileStore::read_anchor() {
  const std::string& path = config_.generation_path;
  if (path.empty()) {
    spdlog::info("store.generation_path is not set: a state file put back from an older copy cannot be told");
    return;
  }
  if (auto why = check_path_trust(path, "generation file", /*check_file=*/true)) {
    spdlog::warn("generation file refused, a state file put back from an older copy cannot be told: {}", *why);
    return;
  }
  anchor_kept_ = true;
  std::optional<std::string> text;
  try {
    text = read_whole_file(path, 1024 * 1024);
  } catch (const std::exception& e) {
    spdlog::warn("generation file {} unreadable, starting without it: {}", path, e.what());
    return;
  }
  if (!text) return; // first start since boot: whatever the state file holds is taken
  std::string error;
  auto parsed = parse_generations(*text, error);
  if (!parsed) {
    spdlog::warn("generation file {} refused, starting without it: {}", path, error);
    return;
  }
  anchor_ = std::move(*parsed);
}

void FileStore::write_anchor() {
  if (!anchor_kept_) return;
  try {
    replace_file_atomically(config_.generation_path, render_generations(anchor_));
  } catch (const std::exception& e) {
    spdlog::error("cannot write the generation file: {}; a rolled-back state file would go unnoticed", e.what());
  }
}

boost::asio::awaitable<std::optional<StoredKeySet>> FileStore::load_key_set(KeySetKey key) {
  if (!key_set_) co_return std::nullopt;
  if (key_set_->identity != key.identity) {
    spdlog::info("the stored key set was kept for another auth server or key; not used");
    co_return std::nullopt;
  }
  auto opened = unseal_key_set(key_set_->sealed, key);
  if (auto* bad = std::get_if<UnsealError>(&opened)) {
    spdlog::error("stored key set in {} refused: {}; fetching it from the auth server", config_.path, bad->message);
    key_set_.reset();
    co_return std::nullopt;
  }
  co_return std::move(std::get<StoredKeySet>(opened));
}

boost::asio::awaitable<void> FileStore::save_key_set(KeySetKey key, StoredKeySet set) {
  StateKeySet entry{key.identity, set.fetched_at, {}};
  try {
    entry.sealed = seal_key_set(set, key);
  } catch (const std::exception& e) {
    spdlog::error("cannot seal the key set for the state file: {}", e.what());
    co_return;
  }
  key_set_ = std::move(entry);
  write();
}

void FileStore::write() {
  if (!trusted_) return; // said at start
  const WallTime now = clock_.wall_now();
  StateFile state;
  if (key_set_) state.key_sets.push_back(*key_set_);
  std::vector<StateRecord>& keep = state.records;
  for (auto it = records_.begin(); it != records_.end();) {
    if (it->second.expires_at <= now) {
      it = records_.erase(it);
      continue;
    }
    keep.push_back(it->second);
    ++it;
  }
  try {
    replace_file_atomically(config_.path, render_state_file(state));
  } catch (const std::exception& e) {
    // The token is still served from memory; only the next restart pays for this.
    spdlog::error("cannot write the state file: {}; tokens will be fetched again after a restart", e.what());
  }
}

} // namespace cltoken
