#pragma once
// What the config loader's parts share (core/config*.cpp): a TOML table read with its
// types, ranges and unknown keys checked, principals, secret files and credentials. Not
// for use outside the loader.
#include <sys/types.h>

#include <algorithm>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "core/config.hpp"

namespace cltoken::config_detail {

inline unsigned line_of(const toml::node& n) { return static_cast<unsigned>(n.source().begin.line); }

/// Reads one TOML table, checks types and ranges, and rejects keys it was not asked
/// about (a typo such as "clent_id" must not silently fall back to a default).
class TableReader {
public:
  TableReader(const std::string& file, const toml::table& table, std::string section)
      : file_(file), table_(table), section_(std::move(section)) {}

  [[noreturn]] void fail(unsigned line, const std::string& what) const { throw ConfigError(file_, line, what); }
  [[noreturn]] void fail_at(const toml::node& n, const std::string& what) const { fail(line_of(n), what); }
  [[noreturn]] void fail_here(const std::string& what) const { fail(line(), what); }

  unsigned line() const { return std::max(1u, line_of(table_)); }
  std::string qualified(std::string_view key) const {
    return section_.empty() ? std::string(key) : section_ + "." + std::string(key);
  }

  const toml::node* get(std::string_view key) {
    seen_.insert(std::string(key));
    return table_.get(key);
  }

  std::optional<std::string> string(std::string_view key) {
    const toml::node* n = get(key);
    if (n == nullptr) return std::nullopt;
    if (!n->is_string()) fail_at(*n, qualified(key) + " must be a string");
    return n->as_string()->get();
  }

  std::string required_string(std::string_view key) {
    auto v = string(key);
    if (!v) fail_here("missing " + qualified(key));
    if (v->empty()) fail_at(*table_.get(key), qualified(key) + " must not be empty");
    return *v;
  }

  std::optional<std::int64_t> integer(std::string_view key, std::int64_t min, std::int64_t max) {
    const toml::node* n = get(key);
    if (n == nullptr) return std::nullopt;
    if (!n->is_integer()) fail_at(*n, qualified(key) + " must be an integer");
    auto v = n->as_integer()->get();
    if (v < min || v > max) fail_at(*n, fmt::format("{} must be between {} and {}, not {}", qualified(key), min, max, v));
    return v;
  }

  std::optional<double> number(std::string_view key, double min, double max) {
    const toml::node* n = get(key);
    if (n == nullptr) return std::nullopt;
    double v = 0;
    if (n->is_floating_point()) v = n->as_floating_point()->get();
    else if (n->is_integer()) v = static_cast<double>(n->as_integer()->get());
    else fail_at(*n, qualified(key) + " must be a number");
    if (!(v >= min && v <= max)) fail_at(*n, fmt::format("{} must be between {} and {}, not {}", qualified(key), min, max, v));
    return v;
  }

  std::optional<bool> boolean(std::string_view key) {
    const toml::node* n = get(key);
    if (n == nullptr) return std::nullopt;
    if (!n->is_boolean()) fail_at(*n, qualified(key) + " must be true or false");
    return n->as_boolean()->get();
  }

  const std::string& file() const { return file_; }

  std::optional<std::vector<std::pair<std::string, unsigned>>> strings(std::string_view key) {
    const toml::node* n = get(key);
    if (n == nullptr) return std::nullopt;
    if (!n->is_array()) fail_at(*n, qualified(key) + " must be an array of strings");
    std::vector<std::pair<std::string, unsigned>> out;
    for (const auto& item : *n->as_array()) {
      if (!item.is_string()) fail_at(item, qualified(key) + " must contain only strings");
      out.emplace_back(item.as_string()->get(), std::max(line_of(item), line_of(*n)));
    }
    return out;
  }

  /// Every key not read so far is a mistake.
  void reject_unknown() const {
    for (auto&& [key, node] : table_) {
      if (!seen_.contains(std::string(key.str())))
        fail(std::max(1u, static_cast<unsigned>(key.source().begin.line)), "unknown key " + qualified(key.str()));
    }
  }

private:
  const std::string& file_;
  const toml::table& table_;
  std::string section_;
  std::set<std::string> seen_;
};

/// A secret as read from a file or the environment, without the line end an editor adds.
inline std::string trim_trailing_newlines(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

const toml::table& sub_table(const std::string& file, const toml::table& root, std::string_view name, const toml::table& empty);

/// The principals listed under `key`, or `fallback` when it is absent (none: required);
/// unit and slice principals are noted in `units` for the start-up warnings.
std::vector<Principal> principals(TableReader& r, std::string_view key, const ConfigEnvironment& env,
                                  std::optional<std::vector<Principal>> fallback, std::vector<std::string>* units = nullptr);

/// Which permission bits make a secret file unacceptable.
enum class SecretFileRule {
  private_file, ///< any group or other bit: only the owner may touch it
  /// systemd credentials: systemd gives the service user read access through an ACL,
  /// which shows as group bits (the ACL mask), in a folder only that user can enter; so
  /// only "others" bits are refused there.
  systemd_credential,
};

/// Reads a secret file, refusing one that other users could read or replace.
Secret read_secret_file(TableReader& r, unsigned line, const std::string& key, const std::string& path,
                        SecretFileRule rule = SecretFileRule::private_file);

/// One [credentials.NAME] table.
CredentialConfig load_credential(const std::string& file, const std::string& name, const toml::table& t,
                                 const ConfigEnvironment& env, bool config_private, std::vector<std::string>* units);

} // namespace cltoken::config_detail
