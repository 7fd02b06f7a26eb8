#include <catch2/catch.hpp>

#include "core/secret.hpp"

using cltoken::Secret;

TEST_CASE("Secret compares by value and shows only a fingerprint") {
  Secret a("eyJhbGciOiJSUzUxMiJ9.payload.signature-abcd");
  Secret b("eyJhbGciOiJSUzUxMiJ9.payload.signature-abcd");
  Secret c("eyJhbGciOiJSUzUxMiJ9.payload.signature-abce");
  CHECK(a.equals(b));
  CHECK_FALSE(a.equals(c));
  CHECK_FALSE(a.equals(std::string_view("short")));
  CHECK(a.fingerprint() == "eyJh…abcd");
  CHECK(Secret("tiny").fingerprint() == "…");
}

TEST_CASE("Secret is emptied when moved from and when cleared") {
  Secret a("client-secret-value-123");
  Secret b(std::move(a));
  CHECK(a.empty()); // NOLINT(bugprone-use-after-move): the point of the test
  CHECK(b.reveal() == "client-secret-value-123");
  b.clear();
  CHECK(b.empty());
  Secret c("x");
  c = Secret("replacement-value");
  CHECK(c.reveal() == "replacement-value");
}

TEST_CASE("wipe overwrites and empties a string") {
  std::string s = "sensitive";
  cltoken::wipe(s);
  CHECK(s.empty());
}
