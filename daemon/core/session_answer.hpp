#pragma once
// What a customer-session request came to, as a domain outcome: server/answers turns it
// into a status code, headers and an error body, and nothing else decides those.
#include <string>

#include "core/clock.hpp"

namespace cltoken {

struct SessionAnswer {
  enum class Kind {
    served,              ///< a read: the token document
    created,             ///< a login: the token document with the new handle
    ended,               ///< a logout: revoked and gone
    unknown,             ///< no such session, or not this peer's: the same answer
    expired,             ///< the session is over (its token and refresh token are dead)
    bad_request,         ///< the request itself is wrong: `message` says how
    invalid_credentials, ///< the customer's own credentials were refused
    rate_limited,        ///< this peer's logins, or the host's upstream budget: come back later
    unavailable,         ///< the auth server could not help now: come back later
  };
  Kind kind = Kind::unknown;
  std::string document;   ///< served, created
  std::string message;    ///< every refusal: a sentence for the client, never a secret
  bool rejected = false;  ///< unavailable: the auth server refused the request (not a failure to reach it)
  Seconds retry_after{0}; ///< rate_limited, unavailable

  static SessionAnswer of(Kind kind, std::string message = {}) { return {kind, {}, std::move(message), false, Seconds(0)}; }
  static SessionAnswer later(Kind kind, std::string message, Seconds retry, bool rejected = false) {
    return {kind, {}, std::move(message), rejected, retry};
  }
  static SessionAnswer with(Kind kind, std::string document) { return {kind, std::move(document), {}, false, Seconds(0)}; }
};

} // namespace cltoken
