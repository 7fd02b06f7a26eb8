#include "server/request_reader.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>

namespace cltoken {

namespace http = boost::beast::http;

RequestReader::RequestReader(std::size_t max_header_bytes, std::size_t max_body_bytes) {
  header_limit(static_cast<std::uint32_t>(max_header_bytes));
  body_limit(max_body_bytes);
  eager(true); // header and body in one feed when both are there
}

std::size_t RequestReader::feed(std::string_view bytes, boost::beast::error_code& ec) {
  std::size_t used = 0;
  while (!is_done()) {
    const std::size_t n = put(boost::asio::const_buffer(bytes.data() + used, bytes.size() - used), ec);
    used += n;
    if (ec) break;
    if (n == 0) {
      ec = http::error::need_more;
      break;
    }
  }
  return used;
}

void RequestReader::on_request_impl(http::verb method, string_view method_str, string_view target, int, error_code&) {
  method_ = method;
  request_.method.assign(method_str.data(), method_str.size());
  request_.target.assign(target.data(), target.size());
}

void RequestReader::on_body_init_impl(const boost::optional<std::uint64_t>& content_length, error_code&) {
  // Bounded: the parser refused a length over body_limit before this.
  if (content_length) request_.body.reserve(static_cast<std::size_t>(*content_length));
}

std::size_t RequestReader::on_body_impl(string_view body, error_code&) {
  request_.body.append(body.data(), body.size());
  return body.size();
}

std::size_t RequestReader::on_chunk_body_impl(std::uint64_t, string_view body, error_code&) {
  request_.body.append(body.data(), body.size());
  return body.size();
}

} // namespace cltoken
