#include "server/response_head.hpp"

#include <boost/beast/http/status.hpp>

namespace cltoken {

namespace {

void put(fmt::basic_memory_buffer<char, 256>& out, std::string_view s) { out.append(s.data(), s.data() + s.size()); }

template <typename Int>
void put_number(fmt::basic_memory_buffer<char, 256>& out, Int n) {
  const fmt::format_int digits(n);
  out.append(digits.data(), digits.data() + digits.size());
}

} // namespace

ResponseHead::ResponseHead(const Response& r, bool keep_alive) {
  namespace http = boost::beast::http;
  // Appended piece by piece rather than through a format string: this runs for every
  // answer, and parsing the format was most of its cost.
  if (r.status == 200 && r.content_type == "application/json") {
    // The answer to nearly every request, a token: its first lines as one piece.
    put(buffer_, "HTTP/1.1 200 OK\r\nServer: cl-tokend\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n");
  } else {
    const auto reason = http::obsolete_reason(static_cast<http::status>(r.status));
    put(buffer_, "HTTP/1.1 ");
    put_number(buffer_, r.status);
    put(buffer_, " ");
    put(buffer_, std::string_view(reason.data(), reason.size()));
    put(buffer_, "\r\nServer: cl-tokend\r\nContent-Type: ");
    put(buffer_, r.content_type);
    // Tokens must not be cached by anything in between.
    put(buffer_, "\r\nCache-Control: no-store\r\n");
  }
  if (r.retry_after) {
    put(buffer_, "Retry-After: ");
    put_number(buffer_, *r.retry_after);
    put(buffer_, "\r\n");
  }
  if (r.status == 405) {
    put(buffer_, "Allow: ");
    put(buffer_, !r.allow.empty() ? std::string_view(r.allow) : r.body.find("POST") != std::string::npos ? "POST" : "GET");
    put(buffer_, "\r\n");
  }
  if (!keep_alive) put(buffer_, "Connection: close\r\n");
  put(buffer_, "Content-Length: ");
  put_number(buffer_, r.body.size() + r.held.size());
  put(buffer_, "\r\n\r\n");
}

} // namespace cltoken
