#pragma once
// JSON that a socket peer sent (request bodies, the payload of an adopted
// token), read without recursion: a document nested deeper than
// max_client_json_depth is refused before it is parsed, and wiping walks it
// with a stack of its own. A recursive walk of a body of 100,000 nested arrays
// would overflow the daemon's stack (the body cap allows up to 16 MiB).
// nlohmann's parser and destructor are iterative themselves.
#include <cstddef>
#include <string_view>

#include <nlohmann/json.hpp>

namespace cltoken {

/// No request document of the protocol is nested deeper than 3 levels; 32
/// leaves room.
inline constexpr std::size_t max_client_json_depth = 32;

/// True when no array or object in `text` is nested deeper than `max_depth`
/// levels (brackets inside strings do not count). Meant for text about to be
/// parsed: on text that is not JSON the answer may be either, and the parse
/// fails anyway.
[[nodiscard]] bool json_depth_within(std::string_view text, std::size_t max_depth);

/// The document, or a discarded value when `text` is not JSON or is nested
/// deeper than max_client_json_depth.
[[nodiscard]] nlohmann::json parse_client_json(std::string_view text);

/// Zeroes every string value in `j` (a password or a token may be among them),
/// iteratively.
void wipe_json(nlohmann::json& j);

} // namespace cltoken
