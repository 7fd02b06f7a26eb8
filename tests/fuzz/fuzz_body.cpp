// Fuzzes the JSON bodies a peer sends: POST /v1/customers/{name}/sessions and
// POST /v1/tokens/{name}/invalidate, as large as a raised server.max_body_bytes
// lets them be (run.sh tries inputs up to 256 KiB; 100,000 nested arrays once
// overflowed the stack). Input: the first byte picks the body's route (even:
// session, odd: invalidate); the rest is the body.
//
// Besides memory errors and stack overflow (ASan/UBSan), these are findings: an
// exception out of the parser (the connection would lose its answer), a body
// not wiped after parsing (it may hold a password), or an error sentence
// quoting the body.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <variant>

#include "core/invalidate_request.hpp"
#include "core/session_request.hpp"
#include "finding.hpp"

using namespace cltoken;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const bool session = data[0] % 2 == 0;
  std::string body(reinterpret_cast<const char*>(data + 1), size - 1);
  const std::string sent = body;
  if (session) {
    auto parsed = parse_session_request(body);
    if (auto* error = std::get_if<std::string>(&parsed);
        error != nullptr && sent.size() >= 8 && error->find(sent) != std::string::npos)
      finding("the error quotes the body");
  } else {
    (void)parse_invalidate_request(body);
  }
  if (!body.empty()) finding("the body was not wiped");
  return 0;
}
