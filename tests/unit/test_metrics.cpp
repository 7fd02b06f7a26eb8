// /metrics rendered from fixed status views with a hand-moved clock: values, the overdue
// rule, histograms and label escaping. The exposition's syntax is checked by promtool in
// tests/integration/test_observability_metrics.py against a live daemon.
#include <catch2/catch.hpp>

#include <map>
#include <sstream>

#include <fmt/format.h>

#include "core/metrics.hpp"
#include "fake_clock.hpp"

using namespace cltoken;
using namespace std::chrono_literals;

namespace {

/// The samples of an exposition: "name{labels}" -> value text. Comments are skipped.
std::map<std::string, std::string> samples(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const auto space = line.rfind(' ');
    REQUIRE(space != std::string::npos);
    out[line.substr(0, space)] = line.substr(space + 1);
  }
  return out;
}

StatusView view_at(const test::FakeClock& clock) {
  StatusView s;
  s.version = "0.1.0";
  s.started_at = clock.wall_now();
  s.started_steady = clock.now();
  s.auth_url = "https://auth.example";
  s.budget_per_minute = 25;
  return s;
}

CredentialView credential(std::string name, CredentialStatus state) {
  CredentialView c;
  c.name = std::move(name);
  c.state = state;
  return c;
}

} // namespace

TEST_CASE("metrics: gauges follow the clock, counters the view") {
  test::FakeClock clock;
  StatusView s = view_at(clock);
  CredentialView c = credential("backoffice", CredentialStatus::fresh);
  c.expires_at = clock.now() + 7200s;
  c.last_refresh_at = clock.now();
  c.counters.served = 3;
  c.counters.outcomes = {2, 0, 0, 1, 0};
  s.credentials.push_back(c);
  s.requests_last_minute = 3;

  clock.advance(100s);
  auto m = samples(Metrics{}.render(s, clock.now(), 22));
  CHECK(m.at("cl_tokend_token_expiry_seconds{credential=\"backoffice\"}") == "7100.000");
  CHECK(m.at("cl_tokend_last_refresh_age_seconds{credential=\"backoffice\"}") == "100.000");
  CHECK(m.at("cl_tokend_uptime_seconds") == "100.000");
  CHECK(m.at("cl_tokend_tokens_served_total{credential=\"backoffice\"}") == "3");
  CHECK(m.at("cl_tokend_upstream_requests_total{credential=\"backoffice\",outcome=\"ok\"}") == "2");
  CHECK(m.at("cl_tokend_upstream_requests_total{credential=\"backoffice\",outcome=\"server_error\"}") == "1");
  CHECK(m.at("cl_tokend_upstream_requests_total{credential=\"backoffice\",outcome=\"rate_limited\"}") == "0");
  CHECK(m.at("cl_tokend_upstream_budget_remaining") == "22");
  CHECK(m.at("cl_tokend_upstream_budget_per_minute") == "25");
  CHECK(m.at("cl_tokend_upstream_rate_limited") == "0");
  CHECK(m.at("cl_tokend_token_valid{credential=\"backoffice\"}") == "1");
  CHECK(m.at("cl_tokend_build_info{version=\"0.1.0\"}") == "1");

  clock.advance(7200s); // past expiry: the gauge goes negative and the token is no longer valid
  m = samples(Metrics{}.render(s, clock.now(), 25));
  CHECK(m.at("cl_tokend_token_expiry_seconds{credential=\"backoffice\"}") == "-100.000");
  CHECK(m.at("cl_tokend_token_valid{credential=\"backoffice\"}") == "0");
}

TEST_CASE("metrics: one state per credential is 1, the others 0") {
  test::FakeClock clock;
  StatusView s = view_at(clock);
  s.credentials.push_back(credential("a", CredentialStatus::failing));
  s.credentials.push_back(credential("b", CredentialStatus::fresh));
  auto m = samples(Metrics{}.render(s, clock.now(), 25));
  int ones = 0;
  for (const char* state : {"empty", "fetching", "fresh", "refreshing", "stale", "expired", "failing"}) {
    for (const char* name : {"a", "b"}) {
      const auto& v = m.at(std::string("cl_tokend_credential_state{credential=\"") + name + "\",state=\"" + state + "\"}");
      if (v == "1") ++ones;
    }
  }
  CHECK(ones == 2);
  CHECK(m.at("cl_tokend_credential_state{credential=\"a\",state=\"failing\"}") == "1");
  CHECK(m.at("cl_tokend_credential_state{credential=\"b\",state=\"fresh\"}") == "1");
}

TEST_CASE("metrics: a credential without a token has no expiry sample and is not valid") {
  test::FakeClock clock;
  StatusView s = view_at(clock);
  s.credentials.push_back(credential("new", CredentialStatus::fetching));
  const auto text = Metrics{}.render(s, clock.now(), 25);
  auto m = samples(text);
  CHECK(m.count("cl_tokend_token_expiry_seconds{credential=\"new\"}") == 0);
  CHECK(m.count("cl_tokend_last_refresh_age_seconds{credential=\"new\"}") == 0);
  CHECK(m.at("cl_tokend_token_valid{credential=\"new\"}") == "0");
  CHECK(m.at("cl_tokend_refresh_overdue{credential=\"new\"}") == "0");
  // The family is still declared, so its type is known from the first scrape.
  CHECK_THAT(text, Catch::Contains("# TYPE cl_tokend_token_expiry_seconds gauge\n"));
}

TEST_CASE("metrics: refresh_overdue is 1 through a run of failed refreshes, 0 for a normal one") {
  test::FakeClock clock;
  CredentialView c = credential("x", CredentialStatus::fresh);
  c.expires_at = clock.now() + 600s;
  CHECK_FALSE(refresh_overdue(c, clock.now()));
  c.state = CredentialStatus::refreshing; // the first attempt: on time, not overdue
  CHECK_FALSE(refresh_overdue(c, clock.now()));
  c.state = CredentialStatus::stale; // it failed; waiting for the retry
  c.last_error = "auth server error (500)";
  CHECK(refresh_overdue(c, clock.now()));
  c.state = CredentialStatus::refreshing; // the retry is in flight: still overdue
  CHECK(refresh_overdue(c, clock.now()));
  c.state = CredentialStatus::failing; // rejected while the old token is still valid
  CHECK(refresh_overdue(c, clock.now()));
  clock.advance(600s); // expired: nothing left to be overdue with (token_valid says 0)
  CHECK_FALSE(refresh_overdue(c, clock.now()));
  c.state = CredentialStatus::expired;
  CHECK_FALSE(refresh_overdue(c, clock.now()));
}

TEST_CASE("metrics: rate-limit pause shows as a gauge") {
  test::FakeClock clock;
  StatusView s = view_at(clock);
  s.rate_limited_until = clock.now() + 30s;
  CHECK(samples(Metrics{}.render(s, clock.now(), 0)).at("cl_tokend_upstream_rate_limited") == "1");
}

TEST_CASE("metrics: histograms are cumulative with +Inf, sum and count") {
  test::FakeClock clock;
  Metrics metrics;
  metrics.observe_request("token", 200, 0.00005);
  metrics.observe_request("token", 200, 0.003);
  metrics.observe_request("token", 503, 12.0); // beyond the last bound: only +Inf
  metrics.observe_upstream(0.07);
  metrics.observe_upstream(0.07);
  auto m = samples(metrics.render(view_at(clock), clock.now(), 25));
  CHECK(m.at("cl_tokend_request_duration_seconds_bucket{le=\"0.0001\"}") == "1");
  CHECK(m.at("cl_tokend_request_duration_seconds_bucket{le=\"0.0025\"}") == "1");
  CHECK(m.at("cl_tokend_request_duration_seconds_bucket{le=\"0.005\"}") == "2");
  CHECK(m.at("cl_tokend_request_duration_seconds_bucket{le=\"10\"}") == "2");
  CHECK(m.at("cl_tokend_request_duration_seconds_bucket{le=\"+Inf\"}") == "3");
  CHECK(m.at("cl_tokend_request_duration_seconds_count") == "3");
  CHECK(m.at("cl_tokend_request_duration_seconds_sum") == "12.003050");
  CHECK(m.at("cl_tokend_requests_total{route=\"token\",code=\"200\"}") == "2");
  CHECK(m.at("cl_tokend_requests_total{route=\"token\",code=\"503\"}") == "1");
  CHECK(m.at("cl_tokend_upstream_request_duration_seconds_bucket{le=\"0.05\"}") == "0");
  CHECK(m.at("cl_tokend_upstream_request_duration_seconds_bucket{le=\"0.1\"}") == "2");
  CHECK(m.at("cl_tokend_upstream_request_duration_seconds_count") == "2");
  // Bucket counts never decrease along le: that is what "cumulative" means to Prometheus.
  std::uint64_t previous = 0;
  for (double le : Metrics::request_buckets) {
    const auto n = std::stoull(m.at(fmt::format("cl_tokend_request_duration_seconds_bucket{{le=\"{}\"}}", le)));
    CHECK(n >= previous);
    previous = n;
  }
}

TEST_CASE("metrics: label values are escaped") {
  CHECK(escape_label_value("plain-name.1") == "plain-name.1");
  CHECK(escape_label_value("a\"b\\c\nd") == "a\\\"b\\\\c\\nd");
  test::FakeClock clock;
  StatusView s = view_at(clock);
  s.credentials.push_back(credential("we\"ird", CredentialStatus::empty));
  CHECK_THAT(Metrics{}.render(s, clock.now(), 25), Catch::Contains("cl_tokend_token_valid{credential=\"we\\\"ird\"} 0\n"));
}

TEST_CASE("metrics: every family has HELP and TYPE, once, before its samples") {
  test::FakeClock clock;
  StatusView s = view_at(clock);
  s.credentials.push_back(credential("a", CredentialStatus::fresh));
  Metrics metrics;
  metrics.observe_request("status", 200, 0.001);
  std::istringstream in(metrics.render(s, clock.now(), 25));
  std::map<std::string, int> typed;
  std::string line;
  std::string current;
  while (std::getline(in, line)) {
    if (line.rfind("# TYPE ", 0) == 0) {
      current = line.substr(7, line.find(' ', 7) - 7);
      CHECK(++typed[current] == 1);
      continue;
    }
    if (line.rfind("# ", 0) == 0) continue;
    const std::string name = line.substr(0, line.find_first_of("{ "));
    INFO(line);
    CHECK(name.rfind(current, 0) == 0); // a sample of the family declared last (or its _bucket/_sum/_count)
  }
  for (const char* family : {"cl_tokend_tokens_served_total", "cl_tokend_upstream_requests_total",
                             "cl_tokend_token_expiry_seconds", "cl_tokend_refresh_overdue", "cl_tokend_upstream_budget_remaining",
                             "cl_tokend_connections", "cl_tokend_requests_total", "cl_tokend_request_duration_seconds"})
    CHECK(typed.count(family) == 1);
}

TEST_CASE("metrics: a peer without detail gets states per credential and totals of the rest") {
  test::FakeClock clock;
  StatusView s = view_at(clock);
  for (const char* name : {"backoffice", "storefront-eu"}) {
    CredentialView c = credential(name, CredentialStatus::fresh);
    c.expires_at = clock.now() + 7200s;
    c.last_refresh_at = clock.now();
    c.counters.served = 3;
    c.counters.outcomes = {2, 0, 1, 0, 0};
    s.credentials.push_back(c);
  }
  const std::string text = Metrics{}.render(s, clock.now(), 25, /*detailed=*/false);
  const auto m = samples(text);
  CHECK(m.at("cl_tokend_tokens_served_total") == "6");
  CHECK(m.at("cl_tokend_upstream_requests_total{outcome=\"ok\"}") == "4");
  CHECK(m.at("cl_tokend_upstream_requests_total{outcome=\"rejected\"}") == "2");
  CHECK_THAT(text, !Catch::Contains("cl_tokend_tokens_served_total{"));
  CHECK_THAT(text, !Catch::Contains("cl_tokend_upstream_requests_total{credential="));
  CHECK_THAT(text, !Catch::Contains("last_refresh_age_seconds"));
  // What /v1/status shows every peer stays per credential: the alerts on it keep working.
  CHECK(m.at("cl_tokend_token_valid{credential=\"storefront-eu\"}") == "1");
  CHECK(m.at("cl_tokend_refresh_overdue{credential=\"backoffice\"}") == "0");
  CHECK(m.count("cl_tokend_credential_state{credential=\"backoffice\",state=\"fresh\"}") == 1);

  const auto detailed = samples(Metrics{}.render(s, clock.now(), 25, /*detailed=*/true));
  CHECK(detailed.at("cl_tokend_tokens_served_total{credential=\"storefront-eu\"}") == "3");
  CHECK(detailed.count("cl_tokend_tokens_served_total") == 0);
}

TEST_CASE("metrics: verification shows keys held and tokens accepted unchecked") {
  test::FakeClock clock;
  StatusView s = view_at(clock);
  CHECK_THAT(Metrics{}.render(s, clock.now(), 25), !Catch::Contains("signing_keys"));
  s.verification = VerificationView{"when_available", 0, 2, "the auth server's key set could not be fetched: HTTP 503"};
  auto m = samples(Metrics{}.render(s, clock.now(), 25, false));
  CHECK(m.at("cl_tokend_signing_keys") == "0");
  CHECK(m.at("cl_tokend_unverified_tokens_total") == "2");
}
