#include <catch2/catch.hpp>

#include <cstdlib>
#include <ostream>
#include <string>
#include <type_traits>

#include <fmt/format.h>

#include "core/secret.hpp"
#include "core/secret_variables.hpp"

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

// Compile-time guarantees: a Secret cannot reach a stream, a format string or a string_view
// by accident. The positive controls show each check can tell the difference.
namespace {
template <class T>
concept Streamable = requires(std::ostream& os, const T& t) {
  os << t;
};
} // namespace

static_assert(Streamable<std::string>, "control: a string can be streamed");
static_assert(!Streamable<Secret>, "a Secret must not be streamable");
static_assert(fmt::is_formattable<std::string>::value, "control: a string can be formatted");
static_assert(!fmt::is_formattable<Secret>::value, "a Secret must not be formattable by fmt/spdlog");
static_assert(!std::is_convertible_v<Secret, std::string_view>, "reading a Secret needs reveal()");
static_assert(!std::is_convertible_v<Secret, std::string>, "reading a Secret needs reveal()");
static_assert(!std::is_convertible_v<std::string, Secret>, "making a Secret is explicit");

TEST_CASE("equals compares every byte, whatever the position of the difference") {
  const std::string base(64, 'a');
  Secret s(base);
  for (std::size_t i = 0; i < base.size(); ++i) {
    std::string other = base;
    other[i] = 'b';
    CHECK_FALSE(s.equals(other));
  }
  CHECK(s.equals(base));
  CHECK_FALSE(Secret().equals(std::string_view("a")));
  CHECK(Secret().equals(Secret()));
}

TEST_CASE("a fingerprint shows at most the first and last four characters") {
  const std::string token = "eyJhbGciOiJSUzUxMiJ9.eyJvcmdhbml6YXRpb24iOnt9fQ.c2lnbmF0dXJl";
  const std::string fp = Secret(token).fingerprint();
  CHECK(fp.find(token) == std::string::npos);
  CHECK(fp.find(token.substr(4, 4)) == std::string::npos);
  CHECK(fp == token.substr(0, 4) + "…" + token.substr(token.size() - 4));
  CHECK(Secret(std::string(15, 'x')).fingerprint() == "…"); // too short to show any of it
}

TEST_CASE("copies are independent and assignment replaces the value") {
  Secret a("first-secret-value");
  Secret b = a;
  a.clear();
  CHECK(a.empty());
  CHECK(b.reveal() == "first-secret-value");
  b = b; // self-assignment keeps the value
  CHECK(b.reveal() == "first-secret-value");
}

TEST_CASE("A secret variable is taken out of the environment at its first read") {
  // Names of our own, so no other test (or the shell) sees the change.
  ::setenv("CLTOKEN_TEST_TAKEN_SECRET", "value-from-env", 1);
  CHECK(cltoken::take_secret_variable("CLTOKEN_TEST_TAKEN_SECRET") == "value-from-env");
  CHECK(std::getenv("CLTOKEN_TEST_TAKEN_SECRET") == nullptr);
  // A reload reads it again: the value found first, whatever the environment says now.
  CHECK(cltoken::take_secret_variable("CLTOKEN_TEST_TAKEN_SECRET") == "value-from-env");
  ::setenv("CLTOKEN_TEST_TAKEN_SECRET", "set-later", 1);
  CHECK(cltoken::take_secret_variable("CLTOKEN_TEST_TAKEN_SECRET") == "value-from-env");
  ::unsetenv("CLTOKEN_TEST_TAKEN_SECRET");

  CHECK_FALSE(cltoken::take_secret_variable("CLTOKEN_TEST_NEVER_SET").has_value());
  ::setenv("CLTOKEN_TEST_NEVER_SET", "too-late", 1);
  CHECK_FALSE(cltoken::take_secret_variable("CLTOKEN_TEST_NEVER_SET").has_value());
  ::unsetenv("CLTOKEN_TEST_NEVER_SET");
}
