#pragma once
// store.backend = "file": one state file (store.path, under systemd's StateDirectory=)
// holding each credential's last token, sealed (core/sealed_token.hpp), so that a restart
// while tokens are valid costs no upstream request. Read once at start; rewritten
// atomically after every accepted fetch, and at once when a token is revoked or reported
// invalid. Each record carries a generation, anchored in store.generation_path
// (core/store_generations.hpp), so that a state file put back from an older copy is refused. A file that cannot be read or opened is logged and ignored: the daemon then fetches as if there were none, and the next save replaces it.
// The write happens on the event loop: a few KiB once per refresh, where a thread hop
// would cost more than the fsync it hides.
#include <map>
#include <optional>
#include <string>

#include "core/clock.hpp"
#include "core/config.hpp"
#include "core/store_generations.hpp"
#include "core/store_state_file.hpp"
#include "store/token_store.hpp"

namespace cltoken {

class FileStore final : public TokenStore {
public:
  /// Reads store.path now (a missing file is an empty store). Never throws for the file's
  /// content or absence.
  FileStore(StoreConfig config, const Clock& clock);
  FileStore(const FileStore&) = delete;
  FileStore& operator=(const FileStore&) = delete;

  boost::asio::awaitable<std::optional<CachedToken>> load(StoreSubject s) override;
  boost::asio::awaitable<std::optional<CachedToken>> before_fetch(StoreSubject, SteadyTime) override { co_return std::nullopt; }
  boost::asio::awaitable<void> save(StoreSubject s, CachedToken token) override;
  boost::asio::awaitable<void> forget(StoreSubject s) override;
  [[nodiscard]] bool shared() const override { return false; }
  boost::asio::awaitable<std::optional<StoredKeySet>> load_key_set(KeySetKey key) override;
  boost::asio::awaitable<void> save_key_set(KeySetKey key, StoredKeySet set) override;

private:
  /// Writes every record still valid; failures are logged, the daemon carries on.
  void write();
  /// Reads store.generation_path, if any (constructor).
  void read_anchor();
  /// Writes the anchor, if it is kept; failures are logged.
  void write_anchor();
  /// The last generation saved or removed for `name`, as far as this daemon knows.
  [[nodiscard]] std::uint64_t generation_of(const std::string& name) const;

  StoreConfig config_;
  const Clock& clock_;
  std::map<std::string, StateRecord> records_; ///< by credential name
  std::optional<StateKeySet> key_set_;         ///< one auth server per daemon: the last set kept
  bool trusted_ = true;                        ///< false: the path failed its checks (core/path_trust.hpp); never written
  Generations anchor_;                         ///< by credential: the last generation saved or removed
  bool anchor_kept_ = false;                   ///< store.generation_path is set and passed its checks
};

} // namespace cltoken
