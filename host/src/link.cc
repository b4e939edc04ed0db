#include "link.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <asio/write.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <exception>
#include <future>
#include <iterator>

#include "calls.h"
#include "qtx/quote.h"
#include "qtx/wire/envelope_codec.h"
#include "qtx/wire/format.h"

namespace qtx::host::detail {
namespace {

namespace v1 = ::qtx::agent::v1;
using Clock = std::chrono::steady_clock;
using asio::local::stream_protocol;

// Stream data (uploads) waits while this much is queued for the socket, and
// resumes below half of it: enough to keep the port busy, little to hold.
constexpr std::size_t kStreamHighWater = 2 * 1024 * 1024;
// One gathered write carries at most this much.
constexpr std::size_t kMaxWriteBatch = 4 * 1024 * 1024;

std::string seconds(std::chrono::milliseconds ms) {
  if (ms.count() % 1000 == 0) return std::to_string(ms.count() / 1000) + " s";
  return std::to_string(ms.count()) + " ms";
}

std::string default_name(const Endpoint& e) {
  return e.kind == Endpoint::Kind::kAdopt ? "fd " + std::to_string(e.fd) : e.path;
}

Error open_error(const Endpoint& e, const asio::error_code& ec) {
  if (e.kind == Endpoint::Kind::kConnect) {
    if (ec == asio::error::connection_refused) {
      return Error(ErrorKind::kDisconnected, "no agent on " + e.path + ": connection refused", 0, ec.value());
    }
    if (ec == asio::error::not_found || ec.value() == ENOENT) {
      return Error(ErrorKind::kDisconnected, "no agent on " + e.path + ": no such socket (is the VM running?)", 0,
                   ec.value());
    }
    return Error(ErrorKind::kDisconnected, "connecting to " + e.path + ": " + ec.message(), 0, ec.value());
  }
  return Error(ErrorKind::kLocal, "listening on " + e.path + ": " + ec.message(), 0, ec.value());
}

}  // namespace

Link::Link(std::shared_ptr<IoThread> io, AgentOptions options, OwnerLock lock)
    : io_(std::move(io)),
      options_(std::move(options)),
      name_(options_.name.empty() ? default_name(options_.endpoint) : options_.name),
      owner_lock_(std::move(lock)),
      socket_(io_->io()),
      phase_timer_(io_->io()),
      stall_timer_(io_->io()),
      write_timer_(io_->io()),
      decoder_(this, wire::DecoderOptions{options_.max_message}),
      backoff_(options_.reconnect_min) {}

Link::~Link() = default;

// --- user code ------------------------------------------------------------------

template <class Fn>
void Link::notify(const char* what, Fn&& fn) noexcept {
  try {
    fn();
  } catch (const std::exception& e) {
    note_exception(what, e.what());
  } catch (...) {
    note_exception(what, "an exception of unknown type");
  }
}

template <class Fn>
void Link::step(CallId id, Fn&& fn) {
  std::optional<Error> outcome;
  try {
    outcome = fn();
  } catch (const std::exception& e) {
    note_exception("a stream callback", e.what());
    outcome = Error(ErrorKind::kLocal,
                    std::string("a stream callback of this call threw (") + e.what() + "): the call was cancelled");
  } catch (...) {
    note_exception("a stream callback", "an exception of unknown type");
    outcome = Error(ErrorKind::kLocal, "a stream callback of this call threw: the call was cancelled");
  }
  check(id, std::move(outcome));
}

void Link::note_exception(const char* what, const char* why) noexcept {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.callback_exceptions;
  }
  std::fprintf(stderr, "libqtx-host: %s: %s threw: %s\n", name_.c_str(), what, why);
}

void Link::start() {
  io_->post([self = shared_from_this()] { self->open(); });
}

// --- connection lifecycle ----------------------------------------------------

void Link::open() {
  if (closed_) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.connect_attempts;
  }
  set_state(State::kConnecting, nullptr);
  const Endpoint& e = options_.endpoint;
  auto handler = [self = shared_from_this(), epoch = epoch_](const asio::error_code& ec) {
    if (self->closed_ || epoch != self->epoch_) return;
    self->on_open(ec);
  };
  switch (e.kind) {
    case Endpoint::Kind::kConnect: socket_.async_connect(stream_protocol::endpoint(e.path), handler); return;
    case Endpoint::Kind::kListen: {
      if (!acceptor_) acceptor_ = std::make_unique<stream_protocol::acceptor>(io_->io());
      if (!acceptor_->is_open()) {
        asio::error_code ec;
        struct stat st;
        if (::lstat(e.path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
          // A socket file left by an owner that exited: remove it, unless
          // something still listens there.
          stream_protocol::socket probe(io_->io());
          probe.connect(stream_protocol::endpoint(e.path), ec);
          if (!ec) {
            Error err(ErrorKind::kAlreadyExists, "something already listens on " + e.path);
            return drop(err);
          }
          ::unlink(e.path.c_str());
        }
        acceptor_->open(stream_protocol(), ec);
        if (!ec) acceptor_->bind(stream_protocol::endpoint(e.path), ec);
        if (!ec) acceptor_->listen(1, ec);
        if (ec) {
          asio::error_code ignored;
          acceptor_->close(ignored);
          return drop(open_error(e, ec));
        }
      }
      acceptor_->async_accept(socket_, handler);
      return;
    }
    case Endpoint::Kind::kAdopt: {
      asio::error_code ec;
      if (!adopted_used_) {
        adopted_used_ = true;
        socket_.assign(stream_protocol(), e.fd, ec);
      } else {
        ec = asio::error::not_connected;
      }
      if (ec) {
        return drop(
            Error(ErrorKind::kLocal, "adopting fd " + std::to_string(e.fd) + ": " + ec.message(), 0, ec.value()));
      }
      return on_open(ec);
    }
  }
}

void Link::on_open(const asio::error_code& ec) {
  if (ec) return drop(open_error(options_.endpoint, ec));
  begin_handshake();
}

void Link::begin_handshake() {
  asio::error_code ec;
  socket_.non_blocking(true, ec);
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.connects;
  }
  set_state(State::kHandshaking, nullptr);
  last_rx_ = Clock::now();
  wait_readable();

  nonce_ = io_->random64();
  hello_id_ = next_id_++;
  v1::Envelope env;
  env.set_id(hello_id_);
  auto* hello = env.mutable_request()->mutable_hello();
  hello->set_nonce(nonce_);
  hello->set_protocol_version(v1::PROTOCOL_VERSION_1);
  hello->set_client(options_.client_name);
  send(env);

  phase_timer_.expires_after(options_.handshake_timeout);
  phase_timer_.async_wait([self = shared_from_this(), epoch = epoch_](const asio::error_code& tec) {
    if (tec || self->closed_ || epoch != self->epoch_) return;
    self->drop(Error(ErrorKind::kTimeout, "the agent on " + self->name_ + " did not answer the handshake within " +
                                              seconds(self->options_.handshake_timeout)));
  });
}

void Link::become_ready(const v1::HelloResponse& hello) {
  phase_timer_.cancel();  // the handshake deadline; arm_keepalive() may reuse the timer
  backoff_ = options_.reconnect_min;
  const v1::AgentIdentity& now = hello.agent();
  const bool restarted = !last_instance_.empty() && last_instance_ != now.instance_id();
  auto serialized = std::make_shared<const std::string>(now.SerializeAsString());
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.handshakes;
    if (restarted) ++stats_.restarts_seen;
    identity_ = serialized;
  }
  record_state(State::kReady, nullptr);
  std::optional<v1::AgentIdentity> before;
  if (restarted && last_identity_) {
    before.emplace();
    before->ParseFromString(*last_identity_);
  }
  last_instance_ = now.instance_id();
  last_identity_ = std::move(serialized);
  arm_keepalive();
  // The Link is ready in every respect before user code hears of it.
  announce_state(State::kReady, nullptr);
  if (before && options_.callbacks.on_agent_restarted) {
    notify("on_agent_restarted", [&] { options_.callbacks.on_agent_restarted(now, *before); });
  }
}

void Link::drop(const Error& cause) {
  if (closed_) return;
  ++epoch_;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (state_ == State::kHandshaking || state_ == State::kReady) ++stats_.disconnects;
  }
  asio::error_code ignored;
  phase_timer_.cancel();
  stall_timer_.cancel();
  write_timer_.cancel();
  stall_armed_ = false;
  ping_outstanding_ = false;
  socket_.close(ignored);
  decoder_.reset();
  outbox_.clear();
  outbox_bytes_ = 0;
  writing_frames_ = 0;
  room_waiters_.clear();
  // Everything is recorded (the state, the calls out of the table, the
  // next connection scheduled) before user code runs. The state is told
  // before the calls fail, so a caller that reacts to kDisconnected by
  // waiting for ready waits for the next connection.
  const Error lost(ErrorKind::kDisconnected, "connection to " + name_ + " lost: " + cause.message(), 0,
                   cause.os_errno());
  auto calls = take_calls();
  State next = State::kDisconnected;
  if (options_.endpoint.kind == Endpoint::Kind::kAdopt) {
    // An adopted socket cannot be reopened: this is the end.
    closed_ = true;
    next = State::kClosed;
    record_state(next, &cause);
    io_->remove(this);
  } else {
    record_state(next, &cause);
    schedule_reopen();
  }
  announce_state(next, &cause);
  fail_calls(calls, lost);
}

void Link::schedule_reopen() {
  phase_timer_.expires_after(backoff_);
  backoff_ = std::min(backoff_ * 2, options_.reconnect_max);
  phase_timer_.async_wait([self = shared_from_this(), epoch = epoch_](const asio::error_code& ec) {
    if (ec || self->closed_ || epoch != self->epoch_) return;
    self->open();
  });
}

void Link::record_state(State state, const Error* cause) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    state_ = state;
    if (cause) last_error_ = *cause;
  }
  ready_cv_.notify_all();
}

void Link::announce_state(State state, const Error* cause) {
  if (options_.callbacks.on_state) notify("on_state", [&] { options_.callbacks.on_state(state, cause); });
}

void Link::close() {
  auto done = std::make_shared<std::promise<void>>();
  auto finished = done->get_future();
  bool queued = io_->post([self = shared_from_this(), done] {
    if (!self->closed_) {
      self->closed_ = true;
      ++self->epoch_;
      asio::error_code ignored;
      self->phase_timer_.cancel();
      self->stall_timer_.cancel();
      self->write_timer_.cancel();
      self->socket_.close(ignored);
      if (self->acceptor_ && self->acceptor_->is_open()) {
        self->acceptor_->close(ignored);
        ::unlink(self->options_.endpoint.path.c_str());
      }
      self->outbox_.clear();
      self->room_waiters_.clear();
      self->owner_lock_ = OwnerLock();
      auto calls = self->take_calls();
      self->record_state(State::kClosed, nullptr);
      self->io_->remove(self.get());
      self->announce_state(State::kClosed, nullptr);  // first, as in drop()
      self->fail_calls(calls, Error(ErrorKind::kClosed, self->name_ + " was closed"));
    }
    done->set_value();
  });
  // Off the I/O thread, wait: once close() returns no callback of this
  // agent runs any more. On it (from a callback) the close is queued.
  if (queued && !io_->on_thread()) finished.wait();
}

// --- reader --------------------------------------------------------------------

void Link::wait_readable() {
  socket_.async_wait(stream_protocol::socket::wait_read,
                     [self = shared_from_this(), epoch = epoch_](const asio::error_code& ec) {
                       self->on_readable(epoch, ec);
                     });
}

void Link::on_readable(std::uint64_t epoch, const asio::error_code& ec) {
  if (closed_ || epoch != epoch_) return;
  if (ec) return drop(Error(ErrorKind::kDisconnected, "reading: " + ec.message(), 0, ec.value()));
  asio::error_code rec;
  std::size_t n = socket_.read_some(asio::buffer(io_->read_buffer(), IoThread::kReadBufferSize), rec);
  if (rec == asio::error::would_block || rec == asio::error::try_again) return wait_readable();
  if (rec == asio::error::eof) return drop(Error(ErrorKind::kDisconnected, "the other end closed the connection"));
  if (rec) return drop(Error(ErrorKind::kDisconnected, "reading: " + rec.message(), 0, rec.value()));
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.bytes_in += n;
  }
  last_rx_ = Clock::now();
  // Frames are dispatched inside feed(); a handler that must end the
  // connection posts its drop, so the decoder is never reset from inside.
  decoder_.feed(io_->read_buffer(), n);
  note_decoder_work();
  if (closed_ || epoch != epoch_) return;
  arm_stall();
  wait_readable();
}

void Link::arm_stall() {
  if (stall_armed_ || decoder_.idle()) return;
  stall_armed_ = true;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stall_mark_ = stats_.bytes_in;
  }
  stall_timer_.expires_after(options_.stall_timeout);
  stall_timer_.async_wait([self = shared_from_this(), epoch = epoch_](const asio::error_code& ec) {
    if (ec || self->closed_ || epoch != self->epoch_) return;
    self->stall_armed_ = false;
    std::uint64_t in;
    {
      std::lock_guard<std::mutex> lock(self->mu_);
      in = self->stats_.bytes_in;
    }
    if (in != self->stall_mark_) return self->arm_stall();  // bytes came: measure again from now
    // An agent that paused inside a frame (descheduled, stopped) would lose
    // that whole message to a flush while its stream goes on: flush only
    // once other bytes came after it. The next read arms the timer again.
    if (self->decoder_.only_a_partial_frame()) return;
    self->decoder_.stall_flush();
    self->note_decoder_work();
  });
}

void Link::note_decoder_work() {
  std::lock_guard<std::mutex> lock(mu_);
  stats_.decoder_bytes_hashed = decoder_.stats().bytes_hashed;
}

bool Link::on_frame(std::string_view payload, std::uint64_t /*offset*/) {
  v1::Envelope env;
  if (!wire::parse_sealed_envelope(payload, &env)) return false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.frames_in;
  }
  dispatch(env);
  return true;
}

void Link::on_drop(const wire::Drop& drop) {
  std::lock_guard<std::mutex> lock(mu_);
  stats_.dropped_bytes += drop.bytes;
  const auto reason = static_cast<std::size_t>(drop.reason);
  if (reason < stats_.dropped_bytes_by_reason.size()) stats_.dropped_bytes_by_reason[reason] += drop.bytes;
}

void Link::dispatch(v1::Envelope& env) {
  if (closed_) return;
  auto count = [this](std::uint64_t AgentStats::*field) {
    std::lock_guard<std::mutex> lock(mu_);
    ++(stats_.*field);
  };
  const bool announcement = env.has_event() && env.event().has_agent_started();
  if (state() == State::kHandshaking) {
    if (env.has_response() && env.response().has_hello() && env.response().hello().nonce() == nonce_ &&
        env.id() == hello_id_) {
      become_ready(env.response().hello());
    } else if (!announcement) {  // the agent's own session start is expected here
      count(&AgentStats::discarded_frames);
    }
    return;
  }
  if (announcement) {
    // The agent began a new session under a connection that outlived the
    // last one (QEMU keeps ours open across agent restarts): every call in
    // flight is lost on its side. End this connection (after the decoder
    // returns) so they fail now, and handshake again.
    const std::string who = env.event().agent_started().agent().instance_id();
    Error cause(ErrorKind::kDisconnected, who == last_instance_
                                              ? "the agent started a new session"
                                              : "the agent restarted (instance " + printable(who, 64) + ")");
    asio::post(io_->io(), [self = shared_from_this(), epoch = epoch_, cause] {
      if (!self->closed_ && epoch == self->epoch_) self->drop(cause);
    });
    return;
  }
  if (env.has_event()) {
    const v1::Event& ev = env.event();
    if (ev.has_telemetry()) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        telemetry_ = ev.telemetry();
        telemetry_at_ = Clock::now();
        ++stats_.telemetry_samples;
      }
      if (options_.callbacks.on_telemetry) {
        notify("on_telemetry", [&] { options_.callbacks.on_telemetry(ev.telemetry()); });
      }
    }
    if (options_.callbacks.on_event) notify("on_event", [&] { options_.callbacks.on_event(ev); });
    return;
  }
  auto it = calls_.find(env.id());
  if (it == calls_.end()) return count(&AgentStats::stray_frames);
  const CallId id = env.id();
  switch (env.body_case()) {
    case v1::Envelope::kResponse: {
      Entry entry = std::move(it->second);
      calls_.erase(it);
      entry.deadline.reset();
      const v1::Response& r = env.response();
      note_call_end(entry, r.has_error() ? static_cast<int>(guest_error(r.error()).kind()) : 0, true);
      notify("a completion callback", [&] { entry.call->on_response(*env.mutable_response()); });
      return;
    }
    case v1::Envelope::kProgress:
      return step(id, [&] { return it->second.call->on_progress(*this, id, env.progress()); });
    case v1::Envelope::kCredit:
      return step(id, [&] { return it->second.call->on_credit(*this, id, env.credit().bytes()); });
    default: return count(&AgentStats::stray_frames);
  }
}

// --- writer ----------------------------------------------------------------------

std::size_t Link::max_piece() const { return options_.max_message - wire::kMaxPieceOverhead; }

bool Link::send(v1::Envelope& env) {
  if (closed_ || !socket_.is_open()) return false;
  std::string frame;
  if (!wire::append_envelope_frame(env, &frame, options_.max_message).ok()) return false;
  outbox_bytes_ += frame.size();
  outbox_.push_back(std::move(frame));
  write_some();
  return true;
}

bool Link::stream_room(CallId id) {
  if (outbox_bytes_ < kStreamHighWater) return true;
  if (std::find(room_waiters_.begin(), room_waiters_.end(), id) == room_waiters_.end()) room_waiters_.push_back(id);
  return false;
}

void Link::write_some() {
  if (writing_frames_ != 0 || outbox_.empty()) return;
  // First straight to the socket, without waiting: a small frame (a
  // request, a ping) is usually taken whole, with no asynchronous write,
  // write deadline or batch to make (no timer-queue work per frame). What
  // the socket does not take is written asynchronously, under the deadline.
  write_now();
  if (outbox_.empty()) return;
  // The frames being written move into the handler: nothing it points at
  // can go away before the write completes or is aborted.
  auto batch = std::make_shared<std::vector<std::string>>();
  std::size_t bytes = 0, taken = 0;
  while (taken < outbox_.size() && (taken == 0 || bytes + outbox_[taken].size() <= kMaxWriteBatch)) {
    bytes += outbox_[taken].size();
    ++taken;
  }
  // Moved, not swapped: the outbox keeps its capacity for the next frames.
  batch->assign(std::make_move_iterator(outbox_.begin()), std::make_move_iterator(outbox_.begin() + taken));
  outbox_.erase(outbox_.begin(), outbox_.begin() + taken);
  std::vector<asio::const_buffer> buffers;
  buffers.reserve(batch->size());
  for (const auto& f : *batch) buffers.push_back(asio::buffer(f));
  writing_frames_ = batch->size();

  write_timer_.expires_after(options_.write_timeout);
  write_timer_.async_wait([self = shared_from_this(), epoch = epoch_](const asio::error_code& ec) {
    if (ec || self->closed_ || epoch != self->epoch_ || self->writing_frames_ == 0) return;
    self->drop(Error(ErrorKind::kTimeout, "a write to " + self->name_ + " did not complete within " +
                                              seconds(self->options_.write_timeout) +
                                              ": the agent (or QEMU) stopped reading"));
  });
  asio::async_write(socket_, buffers,
                    [self = shared_from_this(), epoch = epoch_, batch, bytes](const asio::error_code& ec, std::size_t) {
                      if (self->closed_ || epoch != self->epoch_) return;
                      self->write_timer_.cancel();
                      if (ec)
                        return self->drop(Error(ErrorKind::kDisconnected, "writing: " + ec.message(), 0, ec.value()));
                      self->writing_frames_ = 0;
                      self->note_written(bytes, batch->size());
                      if (self->outbox_bytes_ < kStreamHighWater / 2) self->wake_room_waiters();
                      self->write_some();
                    });
}

void Link::write_now() {
  constexpr std::size_t kMaxFrames = 16;
  iovec iov[kMaxFrames];
  std::size_t frames = 0;
  for (; frames < outbox_.size() && frames < kMaxFrames; ++frames) {
    iov[frames].iov_base = outbox_[frames].data();
    iov[frames].iov_len = outbox_[frames].size();
  }
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = frames;
  ssize_t n;
  do {
    n = ::sendmsg(socket_.native_handle(), &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return;  // nothing taken; an error is the asynchronous write's to report
  auto left = static_cast<std::size_t>(n);
  std::size_t whole = 0;
  while (whole < frames && left >= outbox_[whole].size()) left -= outbox_[whole++].size();
  outbox_.erase(outbox_.begin(), outbox_.begin() + static_cast<std::ptrdiff_t>(whole));
  if (left > 0) outbox_.front().erase(0, left);  // the rest of a frame the socket took in part
  note_written(static_cast<std::size_t>(n), whole);
  if (outbox_bytes_ < kStreamHighWater / 2 && !room_waiters_.empty()) {
    // Not from here: write_some() runs inside a call's own steps (send()).
    asio::post(io_->io(), [self = shared_from_this(), epoch = epoch_] {
      if (!self->closed_ && epoch == self->epoch_ && self->outbox_bytes_ < kStreamHighWater / 2) {
        self->wake_room_waiters();
      }
    });
  }
}

void Link::note_written(std::size_t bytes, std::size_t frames) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.bytes_out += bytes;
    stats_.frames_out += frames;
  }
  outbox_bytes_ -= bytes;
}

void Link::wake_room_waiters() {
  if (room_waiters_.empty()) return;
  std::vector<CallId> waiters;
  waiters.swap(room_waiters_);
  for (CallId id : waiters) {
    auto it = calls_.find(id);
    if (it == calls_.end()) continue;
    step(id, [&] { return it->second.call->on_outbox_room(*this, id); });
  }
}

// --- keepalive ------------------------------------------------------------------

void Link::arm_keepalive() {
  if (options_.keepalive_interval.count() == 0) return;
  auto wake = last_rx_ + (ping_outstanding_ ? options_.keepalive_timeout : options_.keepalive_interval);
  phase_timer_.expires_at(wake);
  phase_timer_.async_wait([self = shared_from_this(), epoch = epoch_](const asio::error_code& ec) {
    if (ec || self->closed_ || epoch != self->epoch_) return;
    self->on_keepalive(epoch);
  });
}

void Link::on_keepalive(std::uint64_t /*epoch*/) {
  const auto now = Clock::now();
  if (ping_outstanding_ && last_rx_ > ping_sent_at_) ping_outstanding_ = false;  // the agent spoke
  const auto silent = now - last_rx_;
  if (silent >= options_.keepalive_timeout) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.keepalive_timeouts;
    }
    return drop(Error(ErrorKind::kTimeout, "the agent on " + name_ + " did not answer for " +
                                               seconds(options_.keepalive_timeout) + " (keepalive)"));
  }
  if (silent >= options_.keepalive_interval && !ping_outstanding_) {
    ping_outstanding_ = true;
    ping_sent_at_ = now;
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.keepalive_pings;
    }
    v1::Request req;
    req.mutable_ping();
    admit(next_id_++, std::make_unique<UnaryCall>(req, Callback<v1::Response>()), options_.keepalive_timeout, true);
  }
  arm_keepalive();
}

// --- calls ------------------------------------------------------------------------

CallId Link::submit(std::unique_ptr<Call> call, const CallOptions& options) {
  const CallId id = next_id_++;
  auto shared = std::make_shared<std::unique_ptr<Call>>(std::move(call));
  bool queued = io_->post([self = shared_from_this(), id, shared, timeout = options.timeout, token = options.cancel] {
    self->admit(id, std::move(*shared), timeout, false, token.get());
  });
  // Not queued: the manager is gone and this is the caller's thread, where
  // the callback's exception, if any, is the caller's own.
  if (!queued) (*shared)->fail(Error(ErrorKind::kClosed, name_ + " was closed"));
  return id;
}

void Link::admit(CallId id, std::unique_ptr<Call> call, std::chrono::milliseconds timeout, bool keepalive,
                 CancelToken* token) {
  Entry entry{nullptr, nullptr, Clock::now(), keepalive, nullptr};
  auto refuse = [&](Error error) {
    note_call_end(entry, static_cast<int>(error.kind()), false);
    notify("a completion callback", [&] { call->fail(std::move(error)); });
  };
  // A fired token refuses the call before anything else is said of it.
  if (token != nullptr) {
    // Firing posts the cancel to this thread, after the call is in the table.
    entry.cancel = token->add([weak = weak_from_this(), id] {
      if (auto self = weak.lock()) self->cancel(id);
    });
    if (!entry.cancel) return refuse(Error(ErrorKind::kCancelled, "cancelled before it started"));
  }
  if (closed_) return refuse(Error(ErrorKind::kClosed, name_ + " was closed"));
  State s = state();
  if (s != State::kReady) {
    std::string why = "the agent on " + name_ + " is not ready (" + state_name(s) + ")";
    if (auto last = last_error()) why += ": " + last->message();
    return refuse(Error(ErrorKind::kDisconnected, why));
  }
  v1::Envelope env;
  env.set_id(id);
  call->fill_request(env.mutable_request());
  std::string frame;
  if (!wire::append_envelope_frame(env, &frame, options_.max_message).ok()) {
    return refuse(Error(ErrorKind::kInvalidArgument, "the request is larger than the largest message (" +
                                                         std::to_string(options_.max_message) + " bytes)"));
  }
  outbox_bytes_ += frame.size();
  outbox_.push_back(std::move(frame));
  entry.call = std::move(call);
  if (timeout.count() > 0) {
    entry.deadline = std::make_unique<Deadline>();
    io_->set_deadline(*entry.deadline, timeout, this, id);
  }
  if (!keepalive) {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.calls_in_flight;
  }
  calls_.emplace(id, std::move(entry));
  write_some();
  auto it = calls_.find(id);
  step(id, [&] { return it->second.call->on_started(*this, id); });
}

void Link::end_call(CallId id, Error error, bool tell_agent) {
  auto it = calls_.find(id);
  if (it == calls_.end()) return;
  Entry entry = std::move(it->second);
  calls_.erase(it);
  entry.deadline.reset();
  note_call_end(entry, static_cast<int>(error.kind()), false);
  if (tell_agent && state() == State::kReady) {
    v1::Envelope env;
    env.set_id(id);
    env.mutable_cancel();
    send(env);
  }
  notify("a completion callback", [&] { entry.call->fail(std::move(error)); });
}

void Link::on_deadline(CallId id, std::chrono::milliseconds timeout) {
  if (closed_) return;
  end_call(id, Error(ErrorKind::kTimeout, "no answer within " + seconds(timeout)), true);
}

void Link::check(CallId id, std::optional<Error> outcome) {
  if (outcome) end_call(id, std::move(*outcome), true);
}

void Link::cancel(CallId id) {
  io_->post([self = shared_from_this(), id] { self->end_call(id, Error(ErrorKind::kCancelled, "cancelled"), true); });
}

void Link::resume(CallId id) {
  io_->post([self = shared_from_this(), id] {
    auto it = self->calls_.find(id);
    if (it == self->calls_.end()) return;
    self->step(id, [&] { return it->second.call->on_resume(*self, id); });
  });
}

void Link::grant(CallId id, std::uint64_t bytes) {
  io_->post([self = shared_from_this(), id, bytes] {
    auto it = self->calls_.find(id);
    if (it == self->calls_.end()) return;
    self->step(id, [&] { return it->second.call->on_grant(*self, id, bytes); });
  });
}

std::unordered_map<CallId, Link::Entry> Link::take_calls() {
  auto calls = std::move(calls_);
  calls_.clear();
  for (auto& [id, entry] : calls) {
    entry.deadline.reset();
  }
  return calls;
}

void Link::fail_calls(std::unordered_map<CallId, Entry>& calls, const Error& error) {
  for (auto& item : calls) {
    note_call_end(item.second, static_cast<int>(error.kind()), false);
    Call& call = *item.second.call;
    notify("a completion callback", [&] { call.fail(error); });
  }
}

void Link::note_call_end(const Entry& entry, int outcome, bool answered) {
  if (entry.keepalive) return;
  const double rtt = std::chrono::duration<double>(Clock::now() - entry.started).count();
  std::lock_guard<std::mutex> lock(mu_);
  // A refused call (entry.call still null) was never in flight.
  if (entry.call && stats_.calls_in_flight > 0) --stats_.calls_in_flight;
  if (outcome >= 0 && static_cast<std::size_t>(outcome) < AgentStats::kCallOutcomes) ++stats_.calls_ended[outcome];
  if (!answered) return;
  const auto& bounds = AgentStats::kRttBounds;
  const std::size_t bucket =
      static_cast<std::size_t>(std::lower_bound(bounds.begin(), bounds.end(), rtt) - bounds.begin());
  ++stats_.rtt_buckets[bucket];
  stats_.rtt_sum_seconds += rtt;
}

// --- snapshot ----------------------------------------------------------------------

State Link::state() const {
  std::lock_guard<std::mutex> lock(mu_);
  return state_;
}

std::optional<v1::AgentIdentity> Link::identity() const {
  std::shared_ptr<const std::string> serialized;
  {
    std::lock_guard<std::mutex> lock(mu_);
    serialized = identity_;
  }
  if (!serialized) return std::nullopt;
  std::optional<v1::AgentIdentity> out(std::in_place);
  out->ParseFromString(*serialized);
  return out;
}

std::optional<v1::TelemetrySample> Link::latest_telemetry() const {
  std::lock_guard<std::mutex> lock(mu_);
  return telemetry_;
}

std::optional<Error> Link::last_error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_error_;
}

AgentStats Link::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

Link::MetricsView Link::metrics_view() const {
  std::lock_guard<std::mutex> lock(mu_);
  return MetricsView{state_, stats_, telemetry_, telemetry_at_};
}

Result<v1::AgentIdentity> Link::wait_ready(std::chrono::milliseconds timeout) {
  if (io_->on_thread()) {
    return Error(ErrorKind::kInvalidArgument, "wait_ready on the I/O thread would deadlock: use on_state instead");
  }
  std::unique_lock<std::mutex> lock(mu_);
  ready_cv_.wait_for(lock, timeout, [this] { return state_ == State::kReady || state_ == State::kClosed; });
  if (state_ == State::kReady && identity_) {
    auto serialized = identity_;
    lock.unlock();
    v1::AgentIdentity out;
    out.ParseFromString(*serialized);
    return out;
  }
  if (state_ == State::kClosed) {
    return Error(ErrorKind::kClosed, name_ + " was closed" + (last_error_ ? ": " + last_error_->message() : ""));
  }
  std::string msg = "the agent on " + name_ + " was not ready within " + seconds(timeout);
  if (last_error_) msg += ": " + last_error_->message();
  return Error(ErrorKind::kTimeout, msg);
}

}  // namespace qtx::host::detail
