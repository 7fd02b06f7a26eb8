// Fuzzes the JSON bodies a peer sends: POST /v1/customers/{name}/sessions and
// POST /v1/tokens/{name}/invalidate, as large as a raised server.max_body_bytes
// lets them be (run.sh tries inputs up to 256 KiB; 100,000 nested arrays once
// overflowed the stack). Input: the first byte picks the body's route (even:
// session, odd: invalidate); the rest is the body.
//
// Besides memory errors and stack overflow (ASan/UBSan), these are findings: an
// exception out of the parser (the connection would lose its answer), a body
// not wiped after parsing (it may hold a password), or an error sentence other
// than the fixed ones (one that could quote the body).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <variant>

#include "core/invalidate_request.hpp"
#include "core/session_request.hpp"
#include "finding.hpp"

using namespace cltoken;

namespace {

std::string error_for(std::string body) {
  auto parsed = parse_session_request(body);
  return std::get<std::string>(parsed);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const bool session = data[0] % 2 == 0;
  std::string body(reinterpret_cast<const char*>(data + 1), size - 1);
  if (session) {
    // The error is one of the fixed sentences, whatever the body: it never quotes it.
    static const std::string forms = error_for("{}");
    static const std::string too_long = error_for(R"({"access_token":")" + std::string(5000, 'a') + R"("})");
    auto parsed = parse_session_request(body);
    if (auto* error = std::get_if<std::string>(&parsed); error != nullptr && *error != forms && *error != too_long)
      finding("an error sentence that depends on the body");
  } else {
    (void)parse_invalidate_request(body);
  }
  if (!body.empty()) finding("the body was not wiped");
  return 0;
}
