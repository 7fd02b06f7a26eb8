#pragma once
// Secrets (client secrets, access and refresh tokens) as a type:
// the bytes are wiped when released, the type cannot be streamed or formatted, and
// comparison takes constant time. Reading the value needs an explicit reveal().
#include <iosfwd>
#include <string>
#include <string_view>

namespace cltoken {

class Secret {
public:
  Secret() = default;
  explicit Secret(std::string value) : value_(std::move(value)) {}
  Secret(const Secret& other) : value_(other.value_) {}
  Secret(Secret&& other) noexcept;
  Secret& operator=(const Secret& other);
  Secret& operator=(Secret&& other) noexcept;
  ~Secret();

  [[nodiscard]] bool empty() const noexcept { return value_.empty(); }
  [[nodiscard]] std::size_t size() const noexcept { return value_.size(); }

  /// The value itself, for the few places that must send it (a request body, a response).
  [[nodiscard]] std::string_view reveal() const noexcept { return value_; }

  /// Constant-time equality, so a peer cannot learn a token byte by byte from timing.
  [[nodiscard]] bool equals(const Secret& other) const noexcept;
  [[nodiscard]] bool equals(std::string_view other) const noexcept;

  /// "abcd…wxyz" for debug logs; "…" alone when the value is too short to show any of it.
  [[nodiscard]] std::string fingerprint() const;

  /// Wipes the value now.
  void clear() noexcept;

  /// Streaming a secret is a compile error, so a careless `log << token` cannot leak it.
  /// There is no fmt::formatter either (and fmt 9 does not fall back to operator<<), so
  /// spdlog::info("{}", secret) does not compile. Log fingerprint() instead.
  friend std::ostream& operator<<(std::ostream&, const Secret&) = delete;

private:
  std::string value_;
};

/// Overwrites a string's bytes in a way the optimizer cannot remove, then empties it.
void wipe(std::string& s) noexcept;

} // namespace cltoken
