// SPDX-License-Identifier: MIT
#include "server.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <stdexcept>

#include "http1.hpp"
#include "read_buffer.hpp"

namespace conpool::proxy {

using clients::read_buffer;
using clock = std::chrono::steady_clock;

namespace {

constexpr std::size_t buffer_bytes = 16 * 1024;
constexpr std::size_t max_response_head = 64 * 1024;
// How often the shard looks for waits past their deadline: one walk over its clients, no
// timer per read.
constexpr auto sweep_every = std::chrono::milliseconds(100);

clock::duration span(double seconds) {
  return std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(seconds));
}

bool equal_ignoring_case(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

bool stale_error(std::error_code e) {
  return e == errc::end_of_stream || e == std::errc::connection_reset ||
         e == std::errc::broken_pipe || e == std::errc::connection_aborted;
}

// The status a failed acquisition (an open included) is answered with.
int acquire_status(std::error_code e) {
  if (e == errc::acquire_timeout || e == errc::pool_closed || e == errc::circuit_open) return 503;
  if (e == errc::connect_timeout || e == errc::timed_out) return 504;
  return 502;
}

}  // namespace

// A client connection: its socket, and what the shard's sweep needs to end a wait past its
// deadline. Listed by the shard while it lives.
struct shard_server::client {
  shard_server& server;
  flow conn;
  std::string peer;
  clock::time_point deadline = clock::time_point::max();
  int upstream_fd = -1;    // waiting on an upstream: its socket (the sweep cuts that wait)
  bool reading = true;     // a client wait is a read (a late 408 can still be written)
  bool idle = false;       // waiting for a request head with nothing of it read yet
  bool timed_out = false;  // the sweep cut the current wait short
  request_head req;        // the current request's head, and its response's: reused, so
  response_head resp;      //   their field lists cost no allocation a request
  client* prev = nullptr;
  client* next = nullptr;

  client(shard_server& s, flow f, std::string who)
      : server(s), conn(std::move(f)), peer(std::move(who)) {
    next = s.clients_;
    if (next != nullptr) next->prev = this;
    s.clients_ = this;
    s.stats_.add(s.stats_.clients_open);
    s.stats_.add(s.stats_.clients_total);
  }
  ~client() {
    (prev != nullptr ? prev->next : server.clients_) = next;
    if (next != nullptr) next->prev = prev;
    server.stats_.add(server.stats_.clients_open, -1);
  }
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  /// The next wait (on the upstream's socket `fd`, or the client's when -1: a read, or a
  /// write when `!read`) may last `seconds`. Call it before every wait, and with no fd before
  /// the upstream connection goes back or closes (its number may be another socket's next).
  void waits(double seconds, int fd = -1, bool read = true) {
    deadline = shard::now() + span(seconds);  // the loop's time: no clock read a wait
    upstream_fd = fd;
    reading = read;
    timed_out = false;
  }
};

shard_server::shard_server(shared_state& shared, unsigned index)
    : shared_(shared), index_(index), stats_(shared.stats.part(index)),
      in_flight_(shared.upstreams.size(), 0) {}

void shard_server::stop() noexcept {
  if (stopping_) return;
  stopping_ = true;
  if (accepting_ != nullptr) accepting_->cancel();
  // Clients between requests go now; those in the middle of one finish it, then go.
  for (client* c = clients_; c != nullptr; c = c->next) {
    if (c->idle) ::shutdown(c->conn.native_handle(), SHUT_RD);
  }
}

void shard_server::sweep() noexcept {
  const clock::time_point now = clock::now();
  for (client* c = clients_; c != nullptr; c = c->next) {
    if (now < c->deadline) continue;
    c->deadline = clock::time_point::max();
    c->timed_out = true;
    // The wait ends: the upstream's read or write (then 504), or the client's: a read ends
    // with its receiving side only (a 408 can still go out), a write with both.
    if (c->upstream_fd >= 0) {
      ::shutdown(c->upstream_fd, SHUT_RDWR);
    } else {
      ::shutdown(c->conn.native_handle(), c->reading ? SHUT_RD : SHUT_RDWR);
    }
  }
}

task<void> shard_server::run() {
  for (const upstream& u : shared_.upstreams) {
    handles_.push_back(shared_.upstream_pool.handle(u.ep));
  }
  result<listener> l = listener::open(shared_.opts.listen, 1024, true);
  if (!l) {
    throw std::runtime_error("--listen " + shared_.opts.listen.to_string() + ": " +
                             l.error().message());
  }
  listener_.emplace(std::move(*l));
  co_await scoped([this](scope& clients) -> task<void> {
    co_await scoped([this, &clients](scope& acc) -> task<void> {
      accepting_ = &acc;
      if (stopping_) acc.cancel();  // stopped before it began
      acc.spawn(accept_loop(clients));
      acc.spawn(sweeper(*this));
      co_await acc.join();
    });
    accepting_ = nullptr;
    listener_.reset();  // new connections are refused from now on
    // Draining: the clients finish their requests within --drain-timeout, or are cancelled.
    co_await scoped([this, &clients](scope& guard) -> task<void> {
      guard.spawn(drain_deadline(clients));
      guard.spawn(sweeper(*this));
      co_await clients.join();
    });
  });
}

// g++ 12 pitfall: written as `if (!co_await sleep_for(...)) co_return;` this coroutine was
// miscompiled: its ramp placed the frame 8 bytes after the allocation while its resume
// function read the resume index where the ramp had not written it, and the body never ran.
// The awaited value is bound to a variable first.
task<void> shard_server::sweeper(shard_server& s) {
  for (;;) {
    result<void> slept = co_await sleep_for(sweep_every);
    if (!slept) co_return;  // cancelled
    s.sweep();
  }
}

task<void> shard_server::drain_deadline(scope& clients) {
  const auto d = std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::duration<double>(shared_.opts.drain_timeout));
  if (co_await sleep_for(d)) clients.cancel();
}

task<void> shard_server::accept_loop(scope& clients) {
  while (!stopping_) {
    result<flow> f = co_await listener_->accept();
    if (!f) {
      if (f.error() == std::errc::operation_canceled) co_return;
      if (f.error() == std::errc::too_many_files_open ||
          f.error() == std::errc::too_many_files_open_in_system) {
        // Out of descriptors: the connection stays queued; pause rather than spin.
        result<void> paused = co_await sleep_for(std::chrono::milliseconds(50));
        if (!paused) co_return;
      }
      continue;  // a client gone before its accept
    }
    std::string peer = "unknown";
    if (result<socket_address> a = socket_address::peer_of(f->native_handle())) peer = a->host();
    clients.spawn(serve(std::move(*f), std::move(peer)));
  }
}

std::size_t shard_server::choose() noexcept {
  const std::size_t n = in_flight_.size();
  const std::size_t turn = next_++ % n;
  if (shared_.opts.choice == balance::round_robin) return turn;
  // Least loaded as this shard sees it (its requests in flight), ties taken in turn.
  std::size_t best = turn;
  for (std::size_t k = 1; k < n; ++k) {
    const std::size_t i = (turn + k) % n;
    if (in_flight_[i] < in_flight_[best]) best = i;
  }
  return best;
}

task<shard_server::body_result> shard_server::move_body(client& me, read_buffer& buf, flow& src,
                                                        bool from_upstream, flow& dst,
                                                        body_framing how, std::string& prefix) {
  body_result res;
  chunked_scanner scan;
  std::uint64_t left = how.length;
  std::uint64_t carried = 0;
  bool done = how.kind == framing::none;
  for (;;) {
    const std::string_view avail = buf.data();
    std::size_t take = 0;
    if (!done) {
      switch (how.kind) {
        case framing::length:
          take = static_cast<std::size_t>(std::min<std::uint64_t>(left, avail.size()));
          left -= take;
          done = left == 0;
          break;
        case framing::chunked:
          take = scan.feed(avail);
          if (scan.status() == chunked_scanner::state::bad) {
            res.failed = res.source_failed = res.malformed = true;
            co_return res;
          }
          done = scan.status() == chunked_scanner::state::done;
          break;
        case framing::until_close:
          take = avail.size();
          break;
        case framing::none:
          break;
      }
    }
    carried += take;
    if (carried > how.limit) {
      res.failed = res.source_failed = res.too_large = true;
      co_return res;
    }
    // The head goes out with the body's first bytes: one send for a small message. The write
    // has a deadline of its own: a peer that stops reading is cut, not waited for.
    me.waits(from_upstream ? shared_.opts.client_timeout : shared_.opts.response_timeout,
             from_upstream ? -1 : dst.native_handle(), false);
    result<void> w = result<void>{};
    if (!prefix.empty()) {
      prefix.append(avail.substr(0, take));
      w = co_await dst.write_all(prefix);
      prefix.clear();
    } else if (take > 0) {
      w = co_await dst.write_all(avail.substr(0, take));
    }
    if (!w || me.timed_out) {
      res.failed = true;  // the sink
      res.error = w ? make_error_code(errc::timed_out) : w.error();
      co_return res;
    }
    buf.consume(take);
    if (done) co_return res;
    me.waits(from_upstream ? shared_.opts.response_timeout : shared_.opts.client_timeout,
             from_upstream ? src.native_handle() : -1);
    result<void> r = co_await buf.fill(src);
    if (!r) {
      if (how.kind == framing::until_close && r.error() == errc::end_of_stream && !me.timed_out) {
        co_return res;  // the server's close ends such a body
      }
      res.failed = res.source_failed = true;
      res.error = me.timed_out ? make_error_code(errc::timed_out) : r.error();
      co_return res;
    }
  }
}

task<bool> shard_server::answer(client& me, int status, std::string_view detail, bool keep) {
  stats_.answered(status);
  me.waits(shared_.opts.client_timeout, -1, false);
  // Named, not a temporary in the co_await: g++ 12 destroys such temporaries twice.
  const std::string text = error_response(status, detail, keep);
  const bool sent = static_cast<bool>(co_await me.conn.write_all(text));
  co_return sent && keep;
}

task<void> shard_server::serve(flow conn, std::string peer) {
  client me(*this, std::move(conn), std::move(peer));
  read_buffer in(buffer_bytes);  // the client's bytes
  read_buffer up(buffer_bytes);  // an upstream's bytes
  std::string out;   // the next head to send
  std::string head;  // the request head as sent (kept for a retry)
  out.reserve(1024);
  head.reserve(1024);
  const options& o = shared_.opts;
  for (;;) {
    // ---- the request head ----
    request_head& req = me.req;
    req.reset();
    me.idle = in.data().empty();
    me.waits(o.client_timeout);
    parse_status st = parse_request(in.data(), o.max_header_bytes, req);
    while (st == parse_status::incomplete) {
      if (stopping_ && in.data().empty()) co_return;
      result<void> r = co_await in.fill(me.conn);
      if (!r) {
        if (me.timed_out && !in.data().empty()) {
          (void)co_await answer(me, 408, "no complete request head in time", false);
        }
        co_return;
      }
      me.idle = false;
      st = parse_request(in.data(), o.max_header_bytes, req);
    }
    me.idle = false;
    if (st != parse_status::done) {
      const bool malformed = st == parse_status::bad;
      const std::string why = malformed ? req.why : "the request head is over the limit";
      (void)co_await answer(me, malformed ? 400 : 431, why, false);
      co_return;
    }
    if (req.body == framing::length && req.length > o.max_body_bytes) {
      (void)co_await answer(me, 413, "the request body is over the limit", false);
      co_return;
    }
    if (req.method == "CONNECT") {
      (void)co_await answer(me, 405, "CONNECT: this is a reverse proxy", false);
      co_return;
    }
    const std::string_view expect = find_field(req.fields, "expect");
    const bool continue_expected = equal_ignoring_case(expect, "100-continue");
    if (!expect.empty() && !continue_expected) {
      (void)co_await answer(me, 417, "only Expect: 100-continue is understood", false);
      co_return;
    }
    exchange x;
    x.head_request = req.method == "HEAD";
    x.may_retry = req.idempotent() && req.body == framing::none;
    x.keep = req.keep_alive;
    x.continue_first = req.minor == 1 && req.body != framing::none && continue_expected;
    x.client_minor = req.minor;
    x.body = {req.body, req.length, o.max_body_bytes};
    x.which = choose();
    out.clear();
    write_upstream_request(req, me.peer, shared_.upstreams[x.which].authority, out);
    in.consume(req.head_size);  // `req` points into these bytes: not used past here
    // Bound to a name first (a g++ 12 pitfall: see `sweeper`).
    const bool more = co_await forward(me, in, up, out, head, x);
    if (!more || stopping_) co_return;
  }
}

task<bool> shard_server::forward(client& me, read_buffer& in, read_buffer& up, std::string& out,
                                 std::string& head, const exchange& x) {
  const options& o = shared_.opts;
  const upstream& target = shared_.upstreams[x.which];
  ++in_flight_[x.which];
  struct in_flight_guard {
    std::uint32_t& n;
    ~in_flight_guard() { --n; }
  } guard{in_flight_[x.which]};
  const bool body_pending = x.body.kind != framing::none;
  // A failure before the body was read leaves the client connection unusable.
  const bool keep_if_failed = x.keep && !body_pending && !stopping_;

  // The pool's acquire_timeout bounds this wait; the sweep only backs it up (a second later).
  me.waits(o.queue_timeout + o.connect_timeout + 1);
  result<connection> c = co_await shared_.upstream_pool.acquire(handles_[x.which]);
  if (!c) {
    const std::string why = describe(c.error(), target.ep);
    co_return co_await answer(me, acquire_status(c.error()), why, keep_if_failed);
  }
  if (x.continue_first) {
    me.waits(o.client_timeout, -1, false);
    result<void> told = co_await me.conn.write_all(std::string_view("HTTP/1.1 100 Continue\r\n\r\n"));
    if (!told) {
      shared_.upstream_pool.release(std::move(*c));
      co_return false;
    }
  }

  bool retried = false;
  bool body_done = !body_pending;  // the request read whole: the client connection may go on
  response_head& resp = me.resp;
  resp.reset();
  clock::time_point sent_at;
  for (;;) {  // an attempt: at most two, the second on a new connection after a stale one
    up.clear();
    const std::uint64_t read_before = c->flow().bytes_read();
    me.waits(o.response_timeout, c->flow().native_handle(), false);
    head.assign(out);  // `out` is kept for a retry
    body_result sent;
    if (body_pending) {
      sent = co_await move_body(me, in, me.conn, false, c->flow(), x.body, head);
    } else if (result<void> w = co_await c->flow().write_all(head); !w) {
      sent.failed = true;
      sent.error = w.error();
    }
    std::error_code failure;
    if (!sent.failed) body_done = true;
    if (sent.failed) {
      if (sent.too_large || sent.malformed || sent.source_failed) {
        me.waits(o.client_timeout);
        shared_.upstream_pool.close(std::move(*c));
        if (sent.too_large) co_return co_await answer(me, 413, "the request body is over the limit", false);
        if (sent.malformed) co_return co_await answer(me, 400, "a malformed chunked body", false);
        co_return false;  // the client went away (or stalled) mid-body
      }
      failure = sent.error;  // the upstream failed while taking the request
    } else {
      // ---- the response head ----
      sent_at = shard::now();
      me.waits(o.response_timeout, c->flow().native_handle());
      for (;;) {
        const parse_status st = parse_response(up.data(), max_response_head, x.head_request, resp);
        if (st == parse_status::done && resp.status == 101) {
          // The upstream switched protocols: nothing this proxy can carry (Upgrade is dropped).
          me.waits(o.client_timeout);
          shared_.upstream_pool.close(std::move(*c));
          co_return co_await answer(me, 502, "the upstream switched protocols (101)", false);
        }
        if (st == parse_status::done && resp.status >= 100 && resp.status < 200) {
          // An interim response: passed on to an HTTP/1.1 client, then the final one.
          if (x.client_minor == 1 && resp.status != 100) {
            me.waits(o.client_timeout, -1, false);
            (void)co_await me.conn.write_all(up.data().substr(0, resp.head_size));
            me.waits(o.response_timeout, c->flow().native_handle());
          }
          up.consume(resp.head_size);
          resp.reset();
          continue;
        }
        if (st == parse_status::done && x.client_minor == 0 && resp.body == framing::chunked) {
          // Chunked in answer to an HTTP/1.0 request (sent as such): the client could not
          // decode it, and the upstream broke RFC 9112 §6.1 to send it.
          me.waits(o.client_timeout);
          shared_.upstream_pool.close(std::move(*c));
          const std::string why = "a chunked response from " + target.ep.to_string() +
                                  " to an HTTP/1.0 request";
          co_return co_await answer(me, 502, why, false);
        }
        if (st == parse_status::done) break;
        if (st != parse_status::incomplete) {
          me.waits(o.client_timeout);
          shared_.upstream_pool.close(std::move(*c));
          const std::string why = "a malformed response from " + target.ep.to_string() + ": " + resp.why;
          co_return co_await answer(me, 502, why, x.keep && !stopping_);
        }
        result<void> r = co_await up.fill(c->flow());
        if (!r) {
          failure = me.timed_out ? make_error_code(errc::timed_out) : r.error();
          break;
        }
      }
    }
    if (!failure) break;
    // A reused connection the upstream had closed: a request safe to send twice goes again, on
    // a new connection opened in its place (nothing of a response was read).
    if (!retried && x.may_retry && c->reused() && c->flow().bytes_read() == read_before &&
        stale_error(failure)) {
      retried = true;
      stats_.add(stats_.retries);
      me.waits(o.queue_timeout + o.connect_timeout + 1);  // the stale socket's number goes
      c = co_await shared_.upstream_pool.reopen_stale(std::move(*c), failure);
      if (!c) {
    const std::string why = describe(c.error(), target.ep);
    co_return co_await answer(me, acquire_status(c.error()), why, keep_if_failed);
  }
      continue;
    }
    me.waits(o.client_timeout);
    shared_.upstream_pool.close(std::move(*c));
    // A request whose body was not all read leaves its rest on the client connection: closed.
    const bool keep_after = x.keep && body_done && !stopping_;
    if (failure == errc::timed_out) {
      const std::string why = target.ep.to_string() + ": no response within --response-timeout";
      co_return co_await answer(me, 504, why, keep_after);
    }
    const std::string why = describe(failure, target.ep);
    co_return co_await answer(me, 502, why, keep_after);
  }
  stats_.upstream_took(shard::now() - sent_at);

  // ---- the response: head and body, streamed ----
  const bool keep = x.keep && resp.body != framing::until_close && !stopping_;
  out.clear();
  write_client_response(resp, keep, x.client_minor, out);
  up.consume(resp.head_size);
  const int status = resp.status;
  const bool upstream_keeps = resp.keep_alive;
  body_result moved =
      co_await move_body(me, up, c->flow(), true, me.conn, {resp.body, resp.length, UINT64_MAX}, out);
  const bool cut = me.timed_out;  // a wait of the body was cut: the upstream socket is shut
  me.waits(o.client_timeout);
  stats_.answered(status);
  if (moved.failed) {
    shared_.upstream_pool.close(std::move(*c));
    co_return false;  // the head went out already: the client connection is all we can close
  }
  if (upstream_keeps && up.data().empty() && !cut) {
    shared_.upstream_pool.release(std::move(*c));
  } else {
    shared_.upstream_pool.close(std::move(*c));
  }
  co_return keep;
}

}  // namespace conpool::proxy
