#pragma once
// A body written from where its bytes are held instead of first being copied into one
// string: the token document as the scheduler keeps it, the part before the token, the
// token, the part after it (the serving fast path, docs/architecture.md).
#include <array>
#include <cstddef>
#include <string>
#include <string_view>

namespace cltoken {

/// Views: valid only while what they view is left alone, that is, within the event that
/// made them. Whatever keeps a body past that copies it (joined()).
struct HeldBody {
  std::array<std::string_view, 3> parts{};

  [[nodiscard]] std::size_t size() const { return parts[0].size() + parts[1].size() + parts[2].size(); }
  [[nodiscard]] bool empty() const { return size() == 0; }
  [[nodiscard]] std::string joined() const {
    std::string out;
    out.reserve(size());
    for (auto p : parts) out.append(p);
    return out;
  }
};

} // namespace cltoken
