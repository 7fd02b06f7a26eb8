#pragma once
// The HTTP/1.1 request parser of a connection: Beast's basic_parser (framing, limits,
// keep-alive) filling a Request directly. No header field is kept: the daemon reads none
// beyond those the parser itself needs for framing, so the fields cost no allocation.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <boost/beast/http/basic_parser.hpp>

#include "server/handler.hpp"

namespace cltoken {

class RequestReader : public boost::beast::http::basic_parser<true> {
public:
  RequestReader(std::size_t max_header_bytes, std::size_t max_body_bytes);
  RequestReader(RequestReader&&) = default;

  /// Feeds what `bytes` holds; returns how many were used. `ec` is need_more while the
  /// request is not whole yet.
  std::size_t feed(std::string_view bytes, boost::beast::error_code& ec);
  /// The request, once is_done().
  [[nodiscard]] Request& request() { return request_; }
  [[nodiscard]] bool head() const { return method_ == boost::beast::http::verb::head; }

private:
  using string_view = boost::beast::string_view;
  using error_code = boost::beast::error_code;
  void on_request_impl(boost::beast::http::verb method, string_view method_str, string_view target, int version,
                       error_code& ec) override;
  void on_response_impl(int, string_view, int, error_code&) override {}
  void on_field_impl(boost::beast::http::field, string_view, string_view, error_code&) override {}
  void on_header_impl(error_code&) override {}
  void on_body_init_impl(const boost::optional<std::uint64_t>& content_length, error_code& ec) override;
  std::size_t on_body_impl(string_view body, error_code& ec) override;
  void on_chunk_header_impl(std::uint64_t, string_view, error_code&) override {}
  std::size_t on_chunk_body_impl(std::uint64_t, string_view body, error_code& ec) override;
  void on_finish_impl(error_code&) override {}

  Request request_;
  boost::beast::http::verb method_ = boost::beast::http::verb::unknown;
};

} // namespace cltoken
