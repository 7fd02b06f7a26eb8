#include "server/response_head.hpp"

#include <iterator>

#include <boost/beast/http/status.hpp>

namespace cltoken {

ResponseHead::ResponseHead(const Response& r, bool keep_alive) {
  namespace http = boost::beast::http;
  const auto reason = http::obsolete_reason(static_cast<http::status>(r.status));
  auto out = std::back_inserter(buffer_);
  fmt::format_to(out, "HTTP/1.1 {} {}\r\nServer: cl-tokend\r\nContent-Type: {}\r\n", r.status,
                 std::string_view(reason.data(), reason.size()), r.content_type);
  // Tokens must not be cached by anything in between.
  fmt::format_to(out, "Cache-Control: no-store\r\n");
  if (r.retry_after) fmt::format_to(out, "Retry-After: {}\r\n", *r.retry_after);
  if (r.status == 405)
    fmt::format_to(out, "Allow: {}\r\n",
                   !r.allow.empty()                           ? std::string_view(r.allow)
                   : r.body.find("POST") != std::string::npos ? "POST"
                                                              : "GET");
  if (!keep_alive) fmt::format_to(out, "Connection: close\r\n");
  fmt::format_to(out, "Content-Length: {}\r\n\r\n", r.body.size());
}

} // namespace cltoken
