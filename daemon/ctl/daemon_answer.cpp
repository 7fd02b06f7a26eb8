#include "daemon_answer.hpp"

#include <cctype>
#include <nlohmann/json.hpp>

#include "ctl_error.hpp"
#include "duration_format.hpp"
#include "terminal_text.hpp"

namespace cltoken::ctl {
namespace {

[[noreturn]] void protocol_error(const std::string& what) { throw CtlError(ExitCode::unreachable, what); }

std::string http_status_text(int status) { return "cl-tokend answered HTTP " + std::to_string(status); }

/// Retry-After is delta-seconds or an HTTP-date (RFC 9110 10.2.3); the daemon sends seconds.
std::string retry_hint(const std::optional<std::string>& retry_after) {
  if (!retry_after || retry_after->empty()) return {};
  const std::string& value = *retry_after;
  const bool digits = value.size() <= 9 && value.find_first_not_of("0123456789") == std::string::npos;
  if (digits) return " (retry in " + format_duration(std::stoll(value)) + ")";
  return " (retry after " + one_line(value) + ")";
}

} // namespace

Document parse_document(const Response& response) {
  auto document = Document::parse(response.body, nullptr, /*allow_exceptions=*/false);
  if (document.is_discarded()) protocol_error(http_status_text(response.status) + " with a body that is not JSON");
  if (!document.is_object()) protocol_error(http_status_text(response.status) + " with JSON that is not an object");
  return document;
}

Document expect_success(const Response& response) {
  const ExitCode code = exit_code_for_http_status(response.status);
  if (code != ExitCode::ok) throw CtlError(code, refusal_message(response));
  return parse_document(response);
}

std::string refusal_message(const Response& response) {
  std::string message;
  if (response.body.empty()) {
    message = http_status_text(response.status);
  } else {
    const auto document = parse_document(response);
    const auto error = document.find("error");
    const bool has_error = error != document.end() && error->is_object();
    if (has_error && error->contains("message") && (*error)["message"].is_string() &&
        !(*error)["message"].get_ref<const std::string&>().empty()) {
      message = one_line((*error)["message"].get_ref<const std::string&>());
    } else if (has_error && error->contains("code") && (*error)["code"].is_string()) {
      message = http_status_text(response.status) + " (" + one_line((*error)["code"].get_ref<const std::string&>()) + ")";
    } else {
      message = http_status_text(response.status);
    }
  }
  return message + retry_hint(response.retry_after);
}

std::string expect_opaque_string(const Document& document, const char* field) {
  const auto found = document.find(field);
  if (found == document.end() || !found->is_string() || found->get_ref<const std::string&>().empty()) {
    protocol_error(std::string("the answer of cl-tokend has no ") + field);
  }
  const auto& value = found->get_ref<const std::string&>();
  for (const char c : value) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte <= 0x20 || byte >= 0x7F) {
      protocol_error(std::string("the ") + field + " from cl-tokend holds characters a token never has");
    }
  }
  return value;
}

} // namespace cltoken::ctl
