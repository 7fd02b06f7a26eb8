// Fuzzes the upstream response parser (parse_token_response): whatever the auth server,
// a proxy in between, or a broken connection hands back must become a grant or a
// classified failure, never a crash, an exception, or a message that is not one line.
//
// Input: two bytes of HTTP status (taken modulo 600), the Retry-After value up to the
// first newline, then the body.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "core/upstream_response.hpp"
#include "finding.hpp"

using namespace cltoken;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const unsigned status = (static_cast<unsigned>(data[0]) << 8 | data[1]) % 600;
  std::string_view rest(reinterpret_cast<const char*>(data + 2), size - 2);
  const auto newline = rest.find('\n');
  const std::string_view retry_after = newline == std::string_view::npos ? std::string_view{} : rest.substr(0, newline);
  const std::string_view body = newline == std::string_view::npos ? rest : rest.substr(newline + 1);
  const WallTime now = WallTime(std::chrono::seconds(1764000000)); // a fixed "now": reproducible

  UpstreamResult result = parse_token_response(status, body, retry_after, now);
  if (auto* grant = std::get_if<TokenGrant>(&result)) {
    if (status != 200 && status != 201) finding("a grant from a status that is not 200/201");
    if (grant->access_token.empty()) finding("a grant without an access token");
    if (grant->expires_in < Seconds(1) || grant->expires_in > Seconds(31536000)) finding("a grant with an unusable lifetime");
    if (grant->token_type != "bearer") finding("a grant whose token type is not bearer");
  } else {
    const auto& f = std::get<UpstreamFailure>(result);
    if (f.message.empty()) finding("a failure without a message");
    for (char c : f.message)
      if (static_cast<unsigned char>(c) < 0x20) finding("a control character in a failure message (log injection)");
    if (f.message.size() > 512) finding("a failure message that is not bounded");
    if (f.retry_after && f.retry_after->count() < 0) finding("a negative Retry-After");
    if (status == 429 && f.kind != FailureKind::rate_limited) finding("429 not classified as rate limited");
  }
  return 0;
}
