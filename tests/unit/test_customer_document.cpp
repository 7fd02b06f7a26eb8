// A customer session's token document, written without a json object, against the
// nlohmann rendering it replaced: the same bytes for every session, and the same
// type_error for a string that is not UTF-8.
#include <catch2/catch.hpp>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/documents.hpp"

using namespace cltoken;
using namespace std::chrono_literals;

namespace {

using json = nlohmann::ordered_json;

/// The document as it was rendered before: a json object, dumped.
std::string by_json(const CustomerSession& s, SteadyTime now, WallTime wall_now, const std::string* handle) {
  json j;
  if (handle != nullptr) j["session"] = *handle;
  j["credential"] = s.credential;
  j["kind"] = "sales_channel";
  j["access_token"] = s.access_token.reveal();
  j["token_type"] = s.token_type;
  j["scope"] = s.scope.empty() ? json(nullptr) : json(s.scope);
  j["expires_at"] = rfc3339(wall_of(s.expires_at, now, wall_now));
  j["expires_in"] = std::max(0L, std::chrono::floor<Seconds>(s.expires_at - now).count());
  if (handle != nullptr) j["owner_id"] = s.owner_id;
  return j.dump();
}

/// What rendering gave: the document, or the type_error's message.
struct Rendered {
  std::string document;
  std::string error;
};
template <class Render>
Rendered rendered(Render render) {
  try {
    return {render(), ""};
  } catch (const json::type_error& e) {
    return {"", e.what()};
  }
}

/// Strings made of pieces JSON writes as they are and pieces it escapes or refuses.
class Strings {
public:
  explicit Strings(unsigned seed) : rng_(seed) {}

  std::string any() {
    switch (pick(6)) {
    case 0: return "";
    case 1: return jwt_like(1 + pick(900)); // written as it is, 32 and 16 bytes at a time
    case 2: return jwt_like(pick(40)) + piece() + jwt_like(pick(40));
    default: {
      std::string s;
      for (std::size_t n = pick(8); n > 0; --n) s += piece();
      return s;
    }
    }
  }
  std::size_t pick(std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng_); }

private:
  std::string jwt_like(std::size_t n) {
    static constexpr std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.";
    std::string s(n, 'x');
    for (char& c : s) c = alphabet[pick(alphabet.size())];
    return s;
  }
  /// One in sixteen is not UTF-8, so that most documents are written and some refused.
  std::string piece() {
    static const std::vector<std::string> text{"\"",
                                               "\\",
                                               "\\\"",
                                               "/",
                                               " ",
                                               "\x7f",
                                               "\b",
                                               "\f",
                                               "\n",
                                               "\r",
                                               "\t",
                                               std::string(1, '\0'),
                                               "\x01",
                                               "\x1f",
                                               "\xc3\xa9",         // é
                                               "\xe2\x82\xac",     // €
                                               "\xf0\x9d\x84\x9e", // U+1D11E, four bytes
                                               "\xef\xbf\xbf",     // U+FFFF
                                               "u0041",
                                               "\\u0041",
                                               "null",
                                               "}",
                                               "{\"a\":1}",
                                               "abc"};
    static const std::vector<std::string> not_utf8{
        "\xc3",     "\x80",         "\xff",
        "\xfe",                                         // a lone lead byte, a lone continuation, never UTF-8
        "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", // overlong, a surrogate, above U+10FFFF
        "\xe2\x82", "\xf0\x9d\x84"};                    // cut short
    if (pick(16) == 0) return not_utf8[pick(not_utf8.size())];
    return text[pick(text.size())];
  }
  std::mt19937 rng_;
};

} // namespace

TEST_CASE("a customer session's document has the bytes nlohmann wrote, for every session") {
  Strings gen(20261205);
  const SteadyTime now = SteadyTime{} + 1000h;
  std::size_t compared = 0, refused = 0, nulls = 0, past = 0;
  for (int n = 0; n < 20000; ++n) {
    CustomerSession s;
    s.credential = gen.any();
    s.access_token = Secret(gen.any());
    s.token_type = gen.pick(3) == 0 ? "bearer" : gen.any();
    s.scope = gen.pick(4) == 0 ? "" : gen.any();
    s.owner_id = gen.any();
    const std::string handle = gen.pick(2) == 0 ? "cs_" + gen.any() : gen.any();
    // Expiry from long past (expires_in 0) to decades ahead, at any nanosecond.
    const auto ahead = std::chrono::nanoseconds(static_cast<long long>(gen.pick(2'000'000'000)) *
                                                static_cast<long long>(gen.pick(1'000'000'000)));
    s.expires_at = gen.pick(4) == 0 ? now - ahead / 1000 : now + ahead;
    // Wall time anywhere from 1970 to about 2128.
    const WallTime wall_now{std::chrono::nanoseconds(static_cast<long long>(gen.pick(5'000'000'000)) * 1'000'000'000 +
                                                     static_cast<long long>(gen.pick(1'000'000'000)))};
    for (const std::string* h : {static_cast<const std::string*>(nullptr), &handle}) {
      const Rendered old = rendered([&] { return by_json(s, now, wall_now, h); });
      const Rendered now_ = rendered([&] { return customer_token_document(s, now, wall_now, h); });
      INFO("session " << n << (h ? " at login" : " read"));
      REQUIRE(now_.document == old.document);
      REQUIRE(now_.error == old.error);
      if (old.error.empty()) ++compared;
      else ++refused;
      if (s.scope.empty()) ++nulls;
      if (s.expires_at <= now) ++past;
    }
  }
  // The generator reached every case: documents written, strings refused, no scope, expired.
  CHECK(compared > 10000);
  CHECK(refused > 1000);
  CHECK(nulls > 1000);
  CHECK(past > 1000);
}

TEST_CASE("a customer session's document: verbatim and escaped strings, null scope, expiry, large values") {
  const SteadyTime now = SteadyTime{} + 1000h;
  const WallTime wall_now{std::chrono::seconds(1'764'972'184)}; // 2025-12-05T22:03:04Z
  CustomerSession s;
  s.credential = "storefront";
  s.access_token = Secret("eyJhbGciOiJSUzUxMiJ9.eyJpc3MiOiJ4In0.c2ln-_");
  s.token_type = "bearer";
  s.owner_id = "cust-1";
  s.expires_at = now + 7200s + 999ms;
  const std::string handle = "cs_abc";
  CHECK(customer_token_document(s, now, wall_now) ==
        R"({"credential":"storefront","kind":"sales_channel","access_token":"eyJhbGciOiJSUzUxMiJ9.eyJpc3MiOiJ4In0.c2ln-_",)"
        R"("token_type":"bearer","scope":null,"expires_at":"2025-12-06T00:03:04Z","expires_in":7200})");
  CHECK(customer_token_document(s, now, wall_now, &handle) ==
        R"({"session":"cs_abc","credential":"storefront","kind":"sales_channel",)"
        R"("access_token":"eyJhbGciOiJSUzUxMiJ9.eyJpc3MiOiJ4In0.c2ln-_","token_type":"bearer","scope":null,)"
        R"("expires_at":"2025-12-06T00:03:04Z","expires_in":7200,"owner_id":"cust-1"})");

  s.scope = "market:id:1 \"q\"\\\x01\x7f\xc3\xa9";
  s.expires_at = now - 1ms;
  CHECK(customer_token_document(s, now, wall_now)
            .find(R"("scope":"market:id:1 \"q\"\\\u0001)"
                  "\x7f\xc3\xa9"
                  R"(","expires_at":"2025-12-05T22:03:03Z","expires_in":0})") != std::string::npos);

  s.scope = "";
  s.expires_at = now + std::chrono::hours(24 * 365 * 200);
  CHECK(customer_token_document(s, now, wall_now) == by_json(s, now, wall_now, nullptr));
  CHECK(customer_token_document(s, now, wall_now).find(R"("expires_in":6307200000})") != std::string::npos);
}

TEST_CASE("a customer session's document refuses invalid UTF-8 as nlohmann did, wherever it is") {
  const SteadyTime now = SteadyTime{} + 1000h;
  const WallTime wall_now{std::chrono::seconds(1'764'972'184)};
  const std::string handle = "cs_\xff";
  CustomerSession s;
  s.credential = "storefront";
  s.access_token = Secret("tok\xffx");
  s.owner_id = "\xed\xa0\x80";
  // The first string in document order is the one named: the handle at login, the token on a read.
  REQUIRE_THROWS_AS(customer_token_document(s, now, wall_now, &handle), json::type_error);
  CHECK(rendered([&] { return customer_token_document(s, now, wall_now, &handle); }).error ==
        rendered([&] { return by_json(s, now, wall_now, &handle); }).error);
  const Rendered read = rendered([&] { return customer_token_document(s, now, wall_now); });
  CHECK(read.error.find("invalid UTF-8 byte at index 3: 0xFF") != std::string::npos);
  CHECK(read.error == rendered([&] { return by_json(s, now, wall_now, nullptr); }).error);
}
