#pragma once
// The generation anchor of the state file (store.backend = "file", docs/store.md
// "Rolled-back files"): for each credential, the generation of the last save or removal of
// its stored token. Each record carries, sealed, the generation it was saved with; a record
// older than the anchor's is a state file put back from before a later save or removal
// (a revoked or invalidated token coming back) and is refused. The anchor lives in another
// place than the state file (store.generation_path), so that restoring the state folder
// does not restore it. Format:
//
//   {"format": "cl-tokend generations", "version": 1, "generations": {"NAME": N, ...}}
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace cltoken {

using Generations = std::map<std::string, std::uint64_t, std::less<>>;

[[nodiscard]] std::string render_generations(const Generations& g);
/// nullopt with `error` set for anything that is not an anchor file.
[[nodiscard]] std::optional<Generations> parse_generations(std::string_view text, std::string& error);

/// Why a record saved with `record` must not be loaded when the anchor says `anchored`
/// (nullopt: the anchor knows nothing of the credential, as after a reboot or on first use),
/// or nullopt when it may be.
[[nodiscard]] std::optional<std::string> rolled_back(std::uint64_t record, std::optional<std::uint64_t> anchored);

} // namespace cltoken
