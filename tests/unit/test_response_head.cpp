// The answer head the connection formats itself, byte for byte against what Beast's
// serializer writes for the same answer (how answers were sent before), and the request
// reader against Beast's own parser limits.
#include <catch2/catch.hpp>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/http.hpp>

#include "server/request_reader.hpp"
#include "server/response_head.hpp"

using namespace cltoken;
namespace http = boost::beast::http;

namespace {

/// The answer as Beast serialises it: the reference.
std::string beast_answer(const Response& r, bool keep_alive) {
  http::response<http::string_body> res{static_cast<http::status>(r.status), 11};
  res.set(http::field::server, "cl-tokend");
  res.set(http::field::content_type, r.content_type);
  res.set(http::field::cache_control, "no-store");
  if (r.retry_after) res.set(http::field::retry_after, std::to_string(*r.retry_after));
  if (r.status == 405)
    res.set(http::field::allow, r.allow.empty() ? (r.body.find("POST") != std::string::npos ? "POST" : "GET") : r.allow);
  res.keep_alive(keep_alive);
  res.body() = r.body;
  res.prepare_payload();
  http::serializer<false, http::string_body> sr{res};
  std::string out;
  boost::beast::error_code ec;
  while (!sr.is_done()) {
    sr.next(ec, [&](boost::beast::error_code&, const auto& buffers) {
      out += boost::beast::buffers_to_string(buffers);
      sr.consume(boost::asio::buffer_size(buffers));
    });
    REQUIRE_FALSE(ec);
  }
  return out;
}

std::string ours(const Response& r, bool keep_alive) {
  return std::string(ResponseHead(r, keep_alive).bytes()) + r.body + r.held.joined();
}

} // namespace

TEST_CASE("answer heads are the bytes Beast's serializer wrote") {
  std::vector<Response> answers;
  answers.push_back(json_response(R"({"credential":"backoffice","access_token":"eyJ.x.y"})"));
  answers.push_back(json_response(R"({"session":"abc"})", 201));
  for (unsigned code : {400u, 401u, 403u, 404u, 408u, 409u, 413u, 429u, 500u, 502u, 503u})
    answers.push_back(error_response(code, "some_code", "a sentence"));
  Response limited = error_response(429, "rate_limited", "wait");
  limited.retry_after = 7;
  answers.push_back(limited);
  Response unavailable = error_response(503, "upstream_unavailable", "later");
  unavailable.retry_after = 12345;
  answers.push_back(unavailable);
  Response allow = error_response(405, "method_not_allowed", "use GET, DELETE for this endpoint");
  allow.allow = "GET, DELETE";
  answers.push_back(allow);
  answers.push_back(error_response(405, "method_not_allowed", "use POST for this endpoint"));
  answers.push_back(error_response(405, "method_not_allowed", "use GET for this endpoint"));
  Response metrics;
  metrics.content_type = "text/plain; version=0.0.4; charset=utf-8";
  metrics.body = std::string(100000, 'm');
  answers.push_back(metrics);
  answers.push_back(json_response(""));
  for (const auto& r : answers)
    for (bool keep_alive : {true, false}) {
      INFO("status " << r.status << " keep_alive " << keep_alive);
      CHECK(ours(r, keep_alive) == beast_answer(r, keep_alive));
    }
}

TEST_CASE("a body sent as held pieces has the head of the same body sent whole") {
  const std::string before = R"({"credential":"backoffice","kind":"integration","access_token":")";
  const std::string token = "eyJhbGciOiJSUzUxMiJ9.eyJzdWIiOiJ4In0.c2ln";
  const std::string after = R"(","token_type":"bearer","scope":"market:id:1","expires_in":7199})";
  Response held;
  held.held = HeldBody{{before, token, after}};
  const Response whole = json_response(before + token + after);
  for (bool keep_alive : {true, false}) {
    INFO("keep_alive " << keep_alive);
    CHECK(ours(held, keep_alive) == beast_answer(whole, keep_alive));
  }
}

TEST_CASE("the request reader takes a whole request in one feed") {
  RequestReader reader(8192, 1024);
  boost::beast::error_code ec;
  const std::string bytes = "POST /v1/verify HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\n\r\n";
  const auto used = reader.feed(bytes, ec);
  REQUIRE_FALSE(ec);
  REQUIRE(reader.is_done());
  CHECK(used == bytes.find("GET"));
  CHECK(reader.request().method == "POST");
  CHECK(reader.request().target == "/v1/verify");
  CHECK(reader.request().body == "hello");
  CHECK(reader.keep_alive());
  CHECK_FALSE(reader.head());
}

TEST_CASE("the request reader asks for more of a split request and keeps HTTP's framing") {
  const std::string whole =
      "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
  for (std::size_t cut = 1; cut < whole.size(); ++cut) {
    RequestReader reader(8192, 1024);
    boost::beast::error_code ec;
    const auto used = reader.feed(std::string_view(whole).substr(0, cut), ec);
    REQUIRE(ec == http::error::need_more);
    ec = {};
    reader.feed(std::string_view(whole).substr(used), ec);
    REQUIRE_FALSE(ec);
    REQUIRE(reader.is_done());
    CHECK(reader.request().body == "abcde");
    CHECK_FALSE(reader.keep_alive());
  }
  RequestReader head(8192, 1024);
  boost::beast::error_code ec;
  head.feed("HEAD /v1/health HTTP/1.1\r\n\r\n", ec);
  CHECK(head.head());
}

TEST_CASE("the request reader refuses what is over the limits") {
  boost::beast::error_code ec;
  RequestReader small_head(64, 1024);
  small_head.feed("GET /" + std::string(100, 'a') + " HTTP/1.1\r\n\r\n", ec);
  CHECK(ec == http::error::header_limit);
  ec = {};
  RequestReader small_body(8192, 4);
  small_body.feed("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", ec);
  CHECK(ec == http::error::body_limit);
  ec = {};
  RequestReader chunked(8192, 4);
  chunked.feed("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", ec);
  CHECK(ec == http::error::body_limit);
}
