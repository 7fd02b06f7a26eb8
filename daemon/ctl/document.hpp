// How cl-tokenctl holds the protocol's JSON documents.
#pragma once

#include <nlohmann/json_fwd.hpp>

namespace cltoken::ctl {

/// Insertion-ordered, so --json prints a document in the daemon's field order and request
/// bodies read in the order of the API reference.
using Document = nlohmann::ordered_json;

} // namespace cltoken::ctl
