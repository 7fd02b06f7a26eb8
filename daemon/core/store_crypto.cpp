#include "core/store_crypto.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#include <limits>
#include <memory>
#include <stdexcept>

namespace cltoken::store_crypto {

namespace {

const unsigned char* bytes(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }

int int_size(std::string_view s) {
  if (s.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) throw std::invalid_argument("input too large");
  return static_cast<int>(s.size());
}

struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* c) const { EVP_PKEY_CTX_free(c); }
};
struct CipherCtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree>;

} // namespace

Secret hkdf_sha256(std::string_view ikm, std::string_view salt, std::string_view info, std::size_t length) {
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree> ctx(EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, nullptr));
  // A zero-length salt is RFC 5869's "not provided" (HashLen zero bytes); OpenSSL does the
  // same, which RFC 5869's test case 3 checks in tests/unit/test_store_crypto.cpp.
  std::string out(length, '\0');
  std::size_t out_len = length;
  const bool ok = ctx && EVP_PKEY_derive_init(ctx.get()) > 0 && EVP_PKEY_CTX_set_hkdf_md(ctx.get(), EVP_sha256()) > 0 &&
                  EVP_PKEY_CTX_set1_hkdf_salt(ctx.get(), bytes(salt), int_size(salt)) > 0 &&
                  EVP_PKEY_CTX_set1_hkdf_key(ctx.get(), bytes(ikm), int_size(ikm)) > 0 &&
                  EVP_PKEY_CTX_add1_hkdf_info(ctx.get(), bytes(info), int_size(info)) > 0 &&
                  EVP_PKEY_derive(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &out_len) > 0 && out_len == length;
  Secret result(std::move(out));
  if (!ok) throw std::runtime_error("HKDF-SHA256 failed in OpenSSL");
  return result;
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), key.data(), int_size(key), bytes(data), data.size(), mac, &len) == nullptr)
    throw std::runtime_error("HMAC-SHA256 failed in OpenSSL");
  return std::string(reinterpret_cast<const char*>(mac), len);
}

std::string aes256gcm_seal(std::string_view key, std::string_view nonce, std::string_view aad, std::string_view plaintext) {
  if (key.size() != key_size) throw std::invalid_argument("AES-256-GCM needs a 32-byte key");
  if (nonce.size() != nonce_size) throw std::invalid_argument("AES-256-GCM needs a 12-byte nonce");
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  std::string out(plaintext.size() + tag_size, '\0');
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  int len = 0;
  int total = 0;
  bool ok = ctx && EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, bytes(key), bytes(nonce)) == 1 &&
            (aad.empty() || EVP_EncryptUpdate(ctx.get(), nullptr, &len, bytes(aad), int_size(aad)) == 1) &&
            EVP_EncryptUpdate(ctx.get(), o, &len, bytes(plaintext), int_size(plaintext)) == 1;
  total = len;
  ok = ok && EVP_EncryptFinal_ex(ctx.get(), o + total, &len) == 1;
  total += len;
  ok = ok && static_cast<std::size_t>(total) == plaintext.size() &&
       EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(tag_size), o + total) == 1;
  if (!ok) throw std::runtime_error("AES-256-GCM encryption failed in OpenSSL");
  return out;
}

std::optional<Secret> aes256gcm_open(std::string_view key, std::string_view nonce, std::string_view aad,
                                     std::string_view sealed) {
  if (key.size() != key_size || nonce.size() != nonce_size || sealed.size() < tag_size) return std::nullopt;
  if (sealed.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) return std::nullopt;
  const std::string_view ciphertext = sealed.substr(0, sealed.size() - tag_size);
  std::string tag(sealed.substr(ciphertext.size()));
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  std::string out(ciphertext.size(), '\0');
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  int len = 0;
  bool ok = ctx && EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, bytes(key), bytes(nonce)) == 1 &&
            (aad.empty() || EVP_DecryptUpdate(ctx.get(), nullptr, &len, bytes(aad), static_cast<int>(aad.size())) == 1) &&
            EVP_DecryptUpdate(ctx.get(), o, &len, bytes(ciphertext), static_cast<int>(ciphertext.size())) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(tag_size), tag.data()) == 1;
  int final_len = 0;
  // The tag is checked here: a failure is the expected answer to tampering, not an error.
  ok = ok && EVP_DecryptFinal_ex(ctx.get(), o + len, &final_len) == 1;
  Secret plaintext(std::move(out)); // wiped on every path, including failure
  if (!ok) return std::nullopt;
  return plaintext;
}

std::string random_bytes(std::size_t n) {
  std::string out(n, '\0');
  if (n > static_cast<std::size_t>(std::numeric_limits<int>::max()) ||
      RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1)
    throw std::runtime_error("OpenSSL's random generator failed");
  return out;
}

std::string to_hex(std::string_view data) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(data.size() * 2);
  for (unsigned char c : data) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 0xf]);
  }
  return out;
}

std::optional<std::string> from_hex(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(hex.size() / 2);
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    const int hi = nibble(hex[i]);
    const int lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi << 4 | lo));
  }
  return out;
}

std::string to_base64(std::string_view data) {
  std::string out(4 * ((data.size() + 2) / 3), '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes(data), int_size(data));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::optional<std::string> from_base64(std::string_view text) {
  // EVP_DecodeBlock skips surrounding blanks and reports padding as zero bytes: check the
  // shape first so that only canonical, padded base64 is accepted.
  if (text.size() % 4 != 0 || text.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) return std::nullopt;
  std::size_t pad = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    const bool alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (c == '=') {
      if (i + 2 < text.size()) return std::nullopt; // '=' only in the last two places
      ++pad;
    } else if (pad > 0 || !(alnum || c == '+' || c == '/')) {
      return std::nullopt;
    }
  }
  std::string out(text.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes(text), static_cast<int>(text.size()));
  if (n < 0 || static_cast<std::size_t>(n) < pad) return std::nullopt;
  out.resize(static_cast<std::size_t>(n) - pad);
  return out;
}

} // namespace cltoken::store_crypto
