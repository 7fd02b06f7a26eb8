// The STATUS= line that `systemctl status cl-tokend` shows.
#include <catch2/catch.hpp>

#include "fake_clock.hpp"
#include "systemd/status_line.hpp"

using namespace cltoken;
using namespace std::chrono_literals;

namespace {

CredentialView credential(std::string name, CredentialStatus state, bool rejected = false) {
  CredentialView c;
  c.name = std::move(name);
  c.state = state;
  c.rejected = rejected;
  return c;
}

StatusView with(std::vector<CredentialView> creds) {
  StatusView s;
  s.credentials = std::move(creds);
  return s;
}

} // namespace

TEST_CASE("every credential in one good state reads as N/N") {
  test::FakeClock clock;
  auto s = with({credential("a", CredentialStatus::fresh), credential("b", CredentialStatus::fresh),
                 credential("c", CredentialStatus::fresh)});
  CHECK(systemd::status_line(s, clock.now()) == "3/3 credentials fresh");
  s = with({credential("a", CredentialStatus::fetching)});
  CHECK(systemd::status_line(s, clock.now()) == "1/1 credentials fetching");
}

TEST_CASE("failing credentials come first, named, with whether the auth server rejects them") {
  test::FakeClock clock;
  auto s = with({credential("storefront", CredentialStatus::fresh), credential("backoffice", CredentialStatus::failing, true),
                 credential("erp", CredentialStatus::fresh), credential("eu", CredentialStatus::failing, false)});
  CHECK(systemd::status_line(s, clock.now()) == "2 failing: backoffice rejected, eu retrying; 2 fresh");
}

TEST_CASE("a single failing credential is still named") {
  test::FakeClock clock;
  auto s = with({credential("backoffice", CredentialStatus::failing, true)});
  CHECK(systemd::status_line(s, clock.now()) == "1 failing: backoffice rejected");
}

TEST_CASE("expired credentials are named, healthy states only counted, worst first") {
  test::FakeClock clock;
  auto s = with({credential("a", CredentialStatus::refreshing), credential("b", CredentialStatus::expired),
                 credential("c", CredentialStatus::stale), credential("d", CredentialStatus::fresh)});
  CHECK(systemd::status_line(s, clock.now()) == "1 expired: b; 1 stale; 1 refreshing; 1 fresh");
}

TEST_CASE("a running rate-limit pause and a note are appended") {
  test::FakeClock clock;
  auto s = with({credential("a", CredentialStatus::fresh)});
  s.rate_limited_until = clock.now() + 10s;
  CHECK(systemd::status_line(s, clock.now()) == "1/1 credentials fresh; upstream rate limit hit, requests paused");
  clock.advance(11s);
  CHECK(systemd::status_line(s, clock.now(), "last reload refused: x") == "1/1 credentials fresh; last reload refused: x");
}

TEST_CASE("the line stays one line whatever the note holds") {
  test::FakeClock clock;
  auto line = systemd::status_line(with({}), clock.now(), "bad\nSTATUS=forged\rx");
  CHECK(line == "no credentials configured; bad STATUS=forged x");
}
