#pragma once
// The io_context with the two halves of its destruction apart. Asio's own destructor first
// destroys every handler still queued (suspended coroutines among them: their frames hold
// timers and references to the objects they work for), then its services. finish() does
// the first half early, while those objects still exist; the services, which the objects'
// timers and sockets use until they are destroyed, go with the context itself.
#include <boost/asio/io_context.hpp>

namespace cltoken {

class Context : public boost::asio::io_context {
public:
  using boost::asio::io_context::io_context;
  /// Destroys every suspended coroutine and queued handler without running it.
  void finish() { shutdown(); }
};

/// finish()es the context when it goes out of scope: declared after the objects the
/// coroutines use, it runs before they are destroyed, on every way out of the scope.
class FinishFirst {
public:
  explicit FinishFirst(Context& ctx) : ctx_(ctx) {}
  ~FinishFirst() { ctx_.finish(); }
  FinishFirst(const FinishFirst&) = delete;
  FinishFirst& operator=(const FinishFirst&) = delete;

private:
  Context& ctx_;
};

} // namespace cltoken
