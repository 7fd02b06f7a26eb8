// A tiny stand-in for cl-tokend: a Unix socket in a fresh temporary folder, served by one
// thread that records each request and answers with a canned response, or never answers.
#pragma once

#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace ctl_test {

class FakeDaemon {
public:
  enum class Behaviour {
    answer,       ///< Reply with the canned response, then close.
    never_answer, ///< Read the request and hold the connection open until destroyed.
    hang_up,      ///< Read the request and close without a byte.
  };

  /// `response` is sent verbatim: status line, headers and body.
  explicit FakeDaemon(std::string response, Behaviour behaviour = Behaviour::answer);
  ~FakeDaemon();
  FakeDaemon(const FakeDaemon&) = delete;
  FakeDaemon& operator=(const FakeDaemon&) = delete;

  [[nodiscard]] const std::string& socket_path() const { return socket_path_; }
  /// A path in the same folder where nothing listens.
  [[nodiscard]] std::string missing_socket_path() const { return directory_ + "/absent.sock"; }

  /// Every request received so far, raw (request line, headers, body).
  [[nodiscard]] std::vector<std::string> requests() const;

private:
  void serve();
  void handle(int connection);

  std::string response_;
  Behaviour behaviour_;
  std::string directory_;
  std::string socket_path_;
  int listener_ = -1;
  int stop_[2] = {-1, -1}; ///< A pipe: closing the write end wakes and stops the thread.
  mutable std::mutex mutex_;
  std::vector<std::string> requests_;
  std::thread thread_;
};

/// "HTTP/1.1 <status> X\r\nContent-Type: application/json\r\nContent-Length: N\r\n<extra>\r\n<body>".
std::string http_response(int status, const std::string& body, const std::string& extra_headers = "");

} // namespace ctl_test
