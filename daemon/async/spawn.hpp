#pragma once
// What every coroutine the daemon starts shares: the completion handler given to
// co_spawn, and the completion token for operations whose failure is an expected outcome.
#include <exception>
#include <string>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace cltoken {

/// co_await op(..., use_tuple): the error comes back as a value instead of an exception.
inline constexpr auto use_tuple = boost::asio::as_tuple(boost::asio::use_awaitable);

/// A co_spawn completion handler: a task that ends with an exception is logged as an
/// error naming `what` (and, when given, what the daemon does without it); nothing is
/// swallowed silently and nothing else happens.
struct LogFailure {
  std::string what;
  std::string then;
  void operator()(std::exception_ptr p) const;
  /// For a task with a result nobody reads.
  template <class T>
  void operator()(std::exception_ptr p, T&&) const {
    (*this)(p);
  }
};
[[nodiscard]] inline LogFailure log_failure(std::string what, std::string then = {}) {
  return LogFailure{std::move(what), std::move(then)};
}

/// A co_spawn completion handler for tasks the daemon cannot run without (the scheduler,
/// the signal handler): the exception ends io_context::run(), and with it the daemon,
/// rather than leave a process that looks healthy and does nothing.
struct Rethrow {
  std::string what;
  void operator()(std::exception_ptr p) const;
};

} // namespace cltoken
