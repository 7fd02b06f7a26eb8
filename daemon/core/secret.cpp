#include "core/secret.hpp"

#include <openssl/crypto.h>

namespace cltoken {

void wipe(std::string& s) noexcept {
  if (!s.empty()) OPENSSL_cleanse(s.data(), s.size());
  s.clear();
}

Secret::Secret(Secret&& other) noexcept : value_(std::move(other.value_)) { other.clear(); }

Secret& Secret::operator=(const Secret& other) {
  if (this != &other) {
    clear();
    value_ = other.value_;
  }
  return *this;
}

Secret& Secret::operator=(Secret&& other) noexcept {
  if (this != &other) {
    clear();
    value_ = std::move(other.value_);
    other.clear();
  }
  return *this;
}

Secret::~Secret() { clear(); }

void Secret::clear() noexcept {
  // Small strings live inside the object and a moved-from string may keep its buffer:
  // wipe the whole capacity, not only size(), before letting it go.
  if (value_.capacity() > 0) {
    value_.resize(value_.capacity());
    OPENSSL_cleanse(value_.data(), value_.size());
  }
  value_.clear();
}

bool Secret::equals(const Secret& other) const noexcept { return equals(other.reveal()); }

bool Secret::equals(std::string_view other) const noexcept {
  if (other.size() != value_.size()) return false; // length is not secret: JWTs vary anyway
  return CRYPTO_memcmp(value_.data(), other.data(), value_.size()) == 0;
}

std::string Secret::fingerprint() const {
  if (value_.size() < 16) return "…";
  return value_.substr(0, 4) + "…" + value_.substr(value_.size() - 4);
}

} // namespace cltoken
