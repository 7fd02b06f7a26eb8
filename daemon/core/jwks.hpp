#pragma once
// The auth server's signing keys: a JSON Web Key Set (RFC 7517) read into OpenSSL keys.
// Only what Commerce Layer uses is accepted: RSA keys of at least 2048 bits for RS512
// signatures. Anything else in the set is refused key by key, with a reason to log, so one
// odd key cannot take the others down with it.
#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

typedef struct evp_pkey_st EVP_PKEY;
typedef struct evp_pkey_ctx_st EVP_PKEY_CTX;

namespace cltoken {

/// One RSA public key, shared between copies of a KeySet.
struct SigningKey {
  std::shared_ptr<EVP_PKEY> pkey;
  int bits = 0;
  /// The key set up once for RS512 verification (PKCS#1 v1.5 padding, SHA-512), so that a
  /// verification does not look the algorithms up in OpenSSL's provider store again: that
  /// set-up cost more than the RSA operation itself. Used from one thread only (the
  /// daemon's); null when OpenSSL could not set it up, then each check sets up its own.
  std::shared_ptr<EVP_PKEY_CTX> verifier;
};

/// Keys by `kid`.
using KeySet = std::map<std::string, SigningKey, std::less<>>;

struct JwksParse {
  KeySet keys;
  std::vector<std::string> refused; ///< "key N (kid ...): why", for the log; never key material
  std::string error;                ///< the whole document is unusable (keys is then empty)
};

/// A JWKS larger than this is refused unread: real sets hold a handful of keys.
inline constexpr std::size_t max_jwks_bytes = 64 * 1024;
/// At most this many keys are read from one set.
inline constexpr std::size_t max_jwks_keys = 16;
/// RSA moduli outside [min, max] bits are refused: short keys are forgeable, huge ones
/// make every verification slow.
inline constexpr int min_rsa_bits = 2048;
inline constexpr int max_rsa_bits = 8192;

/// Reads a JWKS document. Never throws.
[[nodiscard]] JwksParse parse_jwks(std::string_view document);

/// A `kid` the daemon accepts: 1 to 128 characters of [A-Za-z0-9._-], so that it cannot
/// carry a path, a URL or a control character into a log line.
[[nodiscard]] bool valid_kid(std::string_view kid);

/// The JWKS document for a set (kty, n, e, kid, alg, use): how the store keeps it.
[[nodiscard]] std::string jwks_document(const KeySet& keys);

} // namespace cltoken
