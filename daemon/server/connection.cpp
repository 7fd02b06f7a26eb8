#include "server/connection.hpp"

#include <openssl/crypto.h>

#include <algorithm>
#include <array>
#include <memory>
#include <span>
#include <tuple>
#include <variant>

#include "async/clock_timer.hpp"
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/spdlog.h>

#include "async/spawn.hpp"
#include "core/secret.hpp"
#include "server/request_reader.hpp"
#include "server/response_head.hpp"

namespace cltoken {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using Stream = asio::local::stream_protocol::socket;

namespace {

/// The deadline of one request's reads and writes. When it passes, the socket's pending
/// operations are cancelled but the socket stays open (beast::basic_stream's timeout
/// closes it), so a slow sender still gets its 408. Lives in the frame of one request.
class Deadline {
public:
  Deadline(Stream& stream, Millis after) : stream_(stream), timer_(stream.get_executor(), after) {
    // The timer's handler may run after this frame is gone (it had already fired): it
    // touches the socket only while this object lives.
    timer_.async_wait([&stream = stream_, alive = std::weak_ptr<bool>(expired_)](const boost::system::error_code& ec) {
      auto expired = alive.lock();
      if (ec || !expired) return;
      *expired = true;
      boost::system::error_code ignored;
      stream.cancel(ignored);
    });
  }
  Deadline(const Deadline&) = delete;
  Deadline& operator=(const Deadline&) = delete;
  [[nodiscard]] bool expired() const { return *expired_; }

private:
  Stream& stream_;
  ClockTimer timer_;
  std::shared_ptr<bool> expired_ = std::make_shared<bool>(false);
};

/// The answer to a request that could not be read, or nullopt to close without one (the
/// peer went away, or sent nothing worth answering).
std::optional<Response> read_failure(const beast::error_code& ec, const ServerConfig& config) {
  // The contract ties each code to one status: too_large is always 413, headers included.
  if (ec == http::error::header_limit)
    return error_response(413, "too_large",
                          "request line and headers exceed " + std::to_string(config.max_header_bytes) + " bytes");
  if (ec == http::error::body_limit || ec == http::error::buffer_overflow)
    return error_response(413, "too_large", "request body exceeds " + std::to_string(config.max_body_bytes) + " bytes");
  if (ec == beast::error::timeout) return error_response(408, "timeout", "request not received within the deadline");
  if (ec == http::error::end_of_stream || ec == http::error::partial_message) return std::nullopt;
  if (ec.category() == http::make_error_code(http::error::bad_target).category())
    return error_response(400, "bad_request", "malformed HTTP request: " + ec.message());
  return std::nullopt; // reset, cancelled at shutdown: nobody to answer
}

/// Overwrites the buffer's unused capacity, where the bytes of requests already handled
/// linger. prepare() first moves any unread bytes (a pipelined request) to the front.
void wipe_spare(beast::flat_buffer& buffer) {
  auto spare = buffer.prepare(std::min(buffer.capacity(), buffer.max_size()) - buffer.size());
  OPENSSL_cleanse(spare.data(), spare.size());
}

using Slot = RequestSlots::Slot;

/// What serving a request came to: whether the connection may serve another, or the
/// coroutine that finishes the request (to be awaited at once). The fast path is the
/// first: the request had arrived whole, the handler answered it without waiting and the
/// socket took the answer in one sendmsg, all within the event that read it.
using Served = std::variant<bool, asio::awaitable<bool>>;

asio::awaitable<bool> finish(Served served) {
  if (auto* later = std::get_if<asio::awaitable<bool>>(&served)) co_return co_await std::move(*later);
  co_return std::get<bool>(served);
}

/// The part of an answer the socket did not take at once, written within the request
/// deadline (a slow reader: the only write that can wait, and the only one with a timer).
asio::awaitable<bool> write_rest(Stream& stream, std::string rest, bool keep_alive, [[maybe_unused]] std::optional<Slot> slot,
                                 Millis timeout) {
  Deadline deadline(stream, timeout);
  auto [ec, n] = co_await asio::async_write(stream, asio::buffer(rest), use_tuple);
  wipe(rest); // may hold a token
  co_return !ec && keep_alive;
}

/// Sends `response`, head and body in one sendmsg, and wipes it (it may hold a token).
/// `slot`, the request's place among its uid's requests in progress, is held until the
/// answer is written.
Served send(Stream& stream, Response& response, bool keep_alive, bool head, std::optional<Slot> slot,
            const ServerConfig& config) {
  const ResponseHead head_bytes(response, keep_alive);
  if (head) { // HEAD: the length of the body, not the body
    wipe(response.body);
    response.held = {};
  }
  const auto& held = response.held.parts;
  // Only the pieces that hold bytes: each one is an iovec the kernel walks.
  std::array<asio::const_buffer, 5> pieces{asio::buffer(head_bytes.bytes())};
  std::size_t count = 1;
  for (const std::string_view piece : {std::string_view(response.body), held[0], held[1], held[2]})
    if (!piece.empty()) pieces[count++] = asio::buffer(piece);
  const std::span<const asio::const_buffer> all(pieces.data(), count);
  beast::error_code ec;
  const std::size_t sent = stream.send(all, 0, ec); // non-blocking: never waits
  if (ec == asio::error::would_block || (!ec && sent < asio::buffer_size(all))) {
    // The rest is copied: what `held` views may change once this event ends.
    std::string rest;
    rest.reserve(asio::buffer_size(all) - std::min(sent, asio::buffer_size(all)));
    std::size_t skip = ec ? 0 : sent;
    for (const auto& b : all) {
      const std::string_view piece(static_cast<const char*>(b.data()), b.size());
      rest.append(piece.substr(std::min(skip, piece.size())));
      skip -= std::min(skip, piece.size());
    }
    wipe(response.body);
    return write_rest(stream, std::move(rest), keep_alive, std::move(slot), config.request_timeout);
  }
  wipe(response.body);
  return !ec && keep_alive;
}

/// Sends a last answer and closes.
asio::awaitable<void> send_final(Stream& stream, Response response, const ServerConfig& config) {
  co_await finish(send(stream, response, false, false, std::nullopt, config));
}

asio::awaitable<bool> answer_later(Stream& stream, asio::awaitable<Response> handling, bool keep_alive, bool head, Slot slot,
                                   const ServerConfig& config) {
  Response response = co_await std::move(handling);
  co_return co_await finish(send(stream, response, keep_alive, head, std::move(slot), config));
}

/// The request `reader` read, handed to the handler (read at `now`; every wait it makes
/// ends by `deadline`) and answered.
Served answer(Stream& stream, RequestReader& reader, Slot slot, SteadyTime now, SteadyTime deadline, const PeerIdentity& peer,
              const ServerConfig& config, Handler& handler, ConnectionControl& control) {
  const bool keep_alive = reader.keep_alive() && !control.stopping;
  const bool head = reader.head();
  auto handled = handler.handle(std::move(reader.request()), peer, now, deadline);
  if (auto* later = std::get_if<asio::awaitable<Response>>(&handled))
    return answer_later(stream, std::move(*later), keep_alive, head, std::move(slot), config);
  return send(stream, std::get<Response>(handled), keep_alive, head, std::move(slot), config);
}

/// A request that had not arrived whole (or that breaks a limit): read within the request
/// deadline, then answered, or refused.
asio::awaitable<bool> read_then_answer(Stream& stream, beast::flat_buffer& buffer, Slot slot, SteadyTime deadline,
                                       const PeerIdentity& peer, const ServerConfig& config, Handler& handler, const Clock& clock,
                                       ConnectionControl& control) {
  RequestReader reader(config.max_header_bytes, config.max_body_bytes);
  beast::error_code rec;
  {
    Deadline read_deadline(stream, config.request_timeout);
    std::tie(rec, std::ignore) = co_await http::async_read(stream, buffer, reader, use_tuple);
    if (rec && read_deadline.expired()) rec = beast::error::timeout;
  }
  wipe_spare(buffer); // the request's bytes, consumed by the parser, linger there
  if (rec) {
    if (auto refusal = read_failure(rec, config)) {
      handler.count_refused(refusal->status);
      co_await send_final(stream, std::move(*refusal), config);
    }
    co_return false;
  }
  co_return co_await finish(answer(stream, reader, std::move(slot), clock.now(), deadline, peer, config, handler, control));
}

/// A request over its uid's max_requests_per_peer: 429, and the connection closes.
asio::awaitable<bool> refuse_busy(Stream& stream, const PeerIdentity& peer, const ServerConfig& config, Handler& handler,
                                  const Clock& clock, ConnectionControl& control) {
  auto v = control.refusals.admit(peer.uid, clock.now());
  if (v.suppressed > 0) spdlog::warn("{} further refused requests of uid {} were not logged", v.suppressed, peer.uid);
  if (v.log)
    spdlog::warn("request refused: uid={} pid={} already has {} requests in progress (server.max_requests_per_peer)", peer.uid,
                 peer.pid, control.slots.limit());
  Response r =
      error_response(429, "rate_limited", "too many requests in progress for this user; wait for an answer before sending more");
  r.retry_after = 1;
  handler.count_refused(r.status);
  co_await send_final(stream, std::move(r), config);
  co_return false;
}

/// Appends `bytes` to `buffer` (bounded by its maximum: never more than one read).
void keep_in(beast::flat_buffer& buffer, std::string_view bytes) {
  buffer.commit(asio::buffer_copy(buffer.prepare(bytes.size()), asio::buffer(bytes.data(), bytes.size())));
}

/// One request, from its first bytes (`landed`, or when that is empty, `buffer`) to its
/// answer written. Plain code while nothing has to wait; what must wait (the rest of a
/// request, a token being fetched, a slow reader) continues in a coroutine whose frame
/// exists only while it does: the frame of run_connection is what each idle keep-alive
/// connection keeps (1,000 idle connections: docs/performance.md). What `landed` holds
/// beyond this request (a pipelined one) is moved to `buffer`.
Served serve(Stream& stream, beast::flat_buffer& buffer, std::string_view landed, const PeerIdentity& peer,
             const ServerConfig& config, Handler& handler, const Clock& clock, ConnectionControl& control) {
  // A request has started: it holds one of its uid's slots until the answer is written.
  auto slot = control.slots.acquire(peer.uid);
  if (!slot) return refuse_busy(stream, peer, config, handler, clock, control);
  const SteadyTime now = clock.now();
  const SteadyTime deadline = now + config.request_timeout;
  RequestReader reader(config.max_header_bytes, config.max_body_bytes);
  beast::error_code ec;
  const auto buffered = buffer.data();
  const std::string_view bytes =
      !landed.empty() ? landed : std::string_view(static_cast<const char*>(buffered.data()), buffered.size());
  const std::size_t used = reader.feed(bytes, ec);
  // The rest of what landed (none, usually) joins the buffer, ahead of anything read later.
  if (!landed.empty()) keep_in(buffer, landed.substr(reader.is_done() ? used : 0));
  // Not whole (or over a limit): the slow path parses it again from the start, reading
  // the rest with a deadline.
  if (!reader.is_done())
    return read_then_answer(stream, buffer, std::move(*slot), deadline, peer, config, handler, clock, control);
  if (landed.empty()) {
    OPENSSL_cleanse(buffer.data().data(), used); // the request's bytes, now in `reader`; a pipelined one stays
    buffer.consume(used);
  }
  return answer(stream, reader, std::move(*slot), now, deadline, peer, config, handler, control);
}

/// Reads what has already arrived of a request into `buffer`, without waiting;
/// would_block when nothing has.
void read_arrived(Stream& stream, beast::flat_buffer& buffer, beast::error_code& ec) {
  // A POST of a token to verify or report (about 1.2 KB) whole in one read: a request not
  // whole after it takes the slow path (a coroutine and a timer).
  constexpr std::size_t more = 4096;
  const std::size_t room = std::min(more, buffer.max_size() - buffer.size());
  buffer.commit(stream.receive(buffer.prepare(room), 0, ec));
}

} // namespace

asio::awaitable<void> run_connection(asio::local::stream_protocol::socket socket, PeerIdentity peer, const ServerConfig& config,
                                     Handler& handler, const Clock& clock, ConnectionControl& control) {
  // Non-blocking, so read_arrived() and the first try of a send return at once.
  boost::system::error_code nb;
  socket.non_blocking(true, nb);
  Stream stream(std::move(socket));
  // The buffer's maximum bounds what one connection can make the daemon hold, whatever
  // the peer sends: a header or body over its limit fails the parse, never grows memory.
  // It allocates nothing up front and grows as a request needs; it is kept from one
  // request to the next while the client keeps sending, and freed when the connection
  // waits.
  beast::flat_buffer buffer(config.max_header_bytes + config.max_body_bytes);
  const auto landing = asio::buffer(control.landing.data(), std::min(control.landing.size(), buffer.max_size()));
  unsigned in_a_row = 0; // requests served since this connection last waited for its socket
  for (bool first = true;; first = false) {
    if (control.stopping && !first) break;
    // The next request's first bytes, read into control.landing (shared: nothing waits
    // between the read and the parse), or none when they are in `buffer`.
    std::string_view landed;
    if (buffer.size() == 0) {
      buffer.shrink_to_fit();
      if (!first) {
        // A busy client's next request is on its way while the others' answers are
        // written: looked for after the events already queued, it is usually there, and
        // one recv takes it, with no wait and no epoll_ctl. (A new connection's first
        // request usually came with it.)
        co_await asio::post(stream.get_executor(), asio::use_awaitable);
        if (control.stopping) break;
      }
      beast::error_code ec;
      std::size_t n = stream.receive(landing, 0, ec);
      while (ec == asio::error::would_block) { // again after a wakeup with nothing to read
        // Wait holding no buffer and no timer, only an entry in control.idle (whose one
        // timer closes the connection after idle_timeout_ms; a stop closes it at once,
        // unless it is new: its client just connected and its first request may be on its
        // way, and the shutdown grace bounds that wait).
        const auto id = control.idle.add(clock.now(), first, [&stream] {
          boost::system::error_code ignored;
          stream.cancel(ignored);
        });
        std::tie(ec) = co_await stream.async_wait(asio::socket_base::wait_read, use_tuple);
        control.idle.remove(id);
        if (!ec) n = stream.receive(landing, 0, ec);
      }
      if (ec) break; // idle timeout, a stop, or the peer closed: nobody to answer
      in_a_row = 0;
      landed = {control.landing.data(), n};
      if (n == landing.size()) {
        // It may go on: the request continues in the buffer, with what else has arrived.
        keep_in(buffer, landed);
        OPENSSL_cleanse(control.landing.data(), n);
        landed = {};
        beast::error_code more;
        read_arrived(stream, buffer, more); // would_block, or an error the next read meets again
      }
    } else if (in_a_row == max_served_in_a_row) {
      // Its next request was there each time: serving it at once again and again would
      // keep every other connection's request waiting behind a client that keeps this one
      // fed (pipelined, or answering faster than the daemon reads). Behind the events
      // already queued, once per max_served_in_a_row requests: no syscall of its own.
      in_a_row = 0;
      co_await asio::post(stream.get_executor(), asio::use_awaitable);
      if (control.stopping) break;
    }
    ++in_a_row;
    Served served = serve(stream, buffer, landed, peer, config, handler, clock, control);
    // The request's bytes are in the reader now (a login's password too), or in `buffer`.
    OPENSSL_cleanse(control.landing.data(), landed.size());
    const bool more = std::holds_alternative<bool>(served) ? std::get<bool>(served)
                                                           : co_await std::move(std::get<asio::awaitable<bool>>(served));
    if (!more) break;
  }
  // A request that ended the connection (refused, too large, timed out) may still be in
  // the buffer, and a login carries a password: wipe it before it is freed.
  buffer.consume(buffer.size());
  wipe_spare(buffer);
  beast::error_code ignored;
  stream.shutdown(asio::local::stream_protocol::socket::shutdown_both, ignored);
}

} // namespace cltoken
