#pragma once
// The status line and header fields of an answer, formatted straight into a small inline
// buffer, so that the head and the body go out together in one sendmsg without a
// serializer in between. The bytes are those Beast's serializer wrote for the same
// answer (tests/unit/test_response_head.cpp holds them side by side).
#include <string_view>

#include <fmt/format.h>

#include "core/router.hpp"

namespace cltoken {

class ResponseHead {
public:
  /// Head of `r` with Content-Length r.body.size(); `keep_alive` false adds Connection: close.
  ResponseHead(const Response& r, bool keep_alive);
  [[nodiscard]] std::string_view bytes() const { return {buffer_.data(), buffer_.size()}; }

private:
  fmt::basic_memory_buffer<char, 256> buffer_; ///< every head the daemon sends fits inline
};

} // namespace cltoken
