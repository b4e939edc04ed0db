#include "session.h"

#include <spdlog/spdlog.h>

#include <asio/post.hpp>
#include <asio/write.hpp>

#include "dispatcher.h"
#include "handlers/handlers.h"
#include "qtx/wire/envelope_codec.h"
#include "reply.h"
#include "telemetry/collector.h"

namespace qtx::agent {
namespace {

constexpr std::size_t kReadSize = 256 * 1024;
constexpr std::size_t kMaxBatchBytes = 1 << 20;
constexpr std::size_t kMaxBatchFrames = 64;

const char* end_name(Session::End e) {
  switch (e) {
    case Session::End::kHostClosed: return "host closed the connection";
    case Session::End::kReadError: return "read error";
    case Session::End::kWriteTimeout: return "write timed out (the host stopped reading)";
    case Session::End::kWriteError: return "write error";
    case Session::End::kOutboxOverflow: return "outbox overflow";
    case Session::End::kShutdown: return "shutdown";
  }
  return "unknown";
}

// A stream socket's peer closing with data unread (reset) or before our
// write (broken pipe): the host left, as with an end of file, so the next
// host is waited for at once. Errors of a port itself keep the backoff.
bool host_went_away(const asio::error_code& ec) {
  return ec == asio::error::connection_reset || ec == asio::error::broken_pipe;
}

}  // namespace

Session::Session(AgentContext& agent, int fd, EndHandler on_end)
    : agent_(agent),
      port_(agent.io, fd),
      on_end_(std::move(on_end)),
      decoder_(this, wire::FrameDecoder::Options{.max_payload = agent.config.max_message}),
      read_buf_(new char[kReadSize]),
      stall_timer_(agent.io),
      write_timer_(agent.io),
      telemetry_timer_(agent.io),
      drain_timer_(agent.io),
      soft_limit_(agent.config.outbox_bytes),
      stream_limit_(agent.config.outbox_bytes / 2),
      hard_limit_(2 * agent.config.outbox_bytes + agent.config.max_message) {}

Session::~Session() = default;

void Session::start() {
  agent_.counters.sessions++;
  // A unix socket or a port opened O_NONBLOCK: Asio drives it either way.
  asio::error_code ignored;
  port_.non_blocking(true, ignored);
  // The one unprompted message before a hello: who is here now. A host
  // whose connection outlived the previous session learns from it that
  // its calls in flight are gone.
  v1::Envelope started;
  fill_identity(*this, started.mutable_event()->mutable_agent_started()->mutable_agent());
  send(started);
  do_read();
}

void Session::stop(End why, std::string detail) {
  if (stopped_) return;
  stopped_ = true;
  ended_.store(true);
  stall_timer_.cancel();
  write_timer_.cancel();
  telemetry_timer_.cancel();
  drain_timer_.cancel();
  auto ops = std::move(ops_);
  ops_.clear();
  for (auto& [id, op] : ops) op->cancel();
  asio::error_code ignored;
  port_.close(ignored);
  for (auto& fn : after_flush_) asio::post(agent_.io, std::move(fn));
  after_flush_.clear();
  const auto& st = decoder_.stats();
  agent_.counters.bytes_dropped += st.dropped_total();
  Outcome outcome{why, detail.empty() ? end_name(why) : std::string(end_name(why)) + ": " + detail, handshaken_,
                  bytes_in_};
  asio::post(agent_.io, [cb = on_end_, outcome] { cb(outcome); });
}

void Session::drain_and_stop(unsigned deadline_ms) {
  if (stopped_ || draining_) return;
  draining_ = true;
  telemetry_timer_.cancel();
  auto ops = std::move(ops_);
  ops_.clear();
  for (auto& [id, op] : ops) op->cancel();
  if (outbox_.empty()) return stop(End::kShutdown, "");
  drain_timer_.expires_after(std::chrono::milliseconds(deadline_ms));
  drain_timer_.async_wait([self = shared_from_this()](const asio::error_code& ec) {
    if (!ec) self->stop(End::kShutdown, "outbox not drained in time");
  });
}

// --- reading -----------------------------------------------------------------

void Session::do_read() {
  if (stopped_ || draining_ || reading_) return;
  reading_ = true;
  // The idle time of a partial frame counts only while we listen: a pause of
  // our own (the outbox is full) is not the host going quiet.
  arm_stall_timer();
  port_.async_read_some(asio::buffer(read_buf_.get(), kReadSize),
                        [self = shared_from_this()](const asio::error_code& ec, std::size_t n) {
                          self->reading_ = false;
                          if (self->stopped_ || self->draining_) return;
                          if (ec == asio::error::eof) return self->stop(End::kHostClosed, "");
                          if (host_went_away(ec)) return self->stop(End::kHostClosed, ec.message());
                          if (ec) return self->stop(End::kReadError, ec.message());
                          self->bytes_in_ += n;
                          self->decoder_.feed(self->read_buf_.get(), n);
                          if (self->stopped_) return;
                          if (self->outbox_bytes_ < self->soft_limit_) {
                            self->do_read();
                          } else {
                            self->disarm_stall_timer();  // paused: resumed by after_write()
                          }
                        });
}

// Only the latest arming may flush. Cancelling (or re-arming) a timer whose
// expiry is already queued does not stop its handler, which then runs with
// success: when the io thread gets no CPU for the idle time (a loaded
// machine), the read that ends the wait and the expiry complete in the same
// poll, the read runs first and re-arms, and the stale expiry would then
// drop the partial frame just fed - a whole message of the host's, silently
// (an exec's stdin piece, say). The generation tells that handler apart.
void Session::arm_stall_timer() {
  if (decoder_.idle()) return disarm_stall_timer();
  const std::uint64_t generation = ++stall_generation_;
  stall_timer_.expires_after(std::chrono::milliseconds(wire::kDefaultStallTimeoutMs));
  stall_timer_.async_wait([self = shared_from_this(), generation](const asio::error_code& ec) {
    if (ec || self->stopped_ || generation != self->stall_generation_) return;
    // A host that paused inside a frame (descheduled, stopped) would lose
    // that whole message to a flush, silently: its stream goes on after
    // it. Only bytes that come after the partial frame (a new host's, on a
    // port that outlived the old one) are worth a flush; the next read
    // arms the timer again.
    if (self->decoder_.only_a_partial_frame()) return;
    self->decoder_.stall_flush();
  });
}

void Session::disarm_stall_timer() {
  ++stall_generation_;
  stall_timer_.cancel();
}

bool Session::on_frame(std::string_view payload, std::uint64_t) {
  if (!wire::parse_sealed_envelope(payload, &inbound_)) return false;
  if (!acceptable(inbound_)) {
    spdlog::warn("request with id 0 refused: requests need a non-zero id");
    return false;
  }
  dispatch(inbound_);
  return true;
}

void Session::on_drop(const wire::Drop& d) {
  spdlog::warn("dropped {} bytes at offset {} from the host: {}", d.bytes, d.offset, wire::drop_reason_name(d.reason));
}

void Session::dispatch(v1::Envelope& env) {
  const std::uint64_t id = env.id();
  switch (env.body_case()) {
    case v1::Envelope::kRequest:
      if (draining_) {
        respond(id, error_response(v1::ERROR_CODE_CANCELLED, "the agent is shutting down"));
        return;
      }
      dispatch_request(*this, id, env.request());
      return;
    case v1::Envelope::kProgress:
    case v1::Envelope::kCredit:
    case v1::Envelope::kCancel: {
      auto it = ops_.find(id);
      if (it == ops_.end()) {
        // Normal after an operation ended (late credit, late cancel).
        spdlog::debug("message for finished operation {} ignored", id);
        return;
      }
      auto op = it->second;  // keep it alive through the call
      if (env.has_progress()) {
        op->on_progress(env.progress());
      } else if (env.has_credit()) {
        op->on_credit(env.credit().bytes());
      } else {
        op->cancel();  // its answer frees the id (respond() forgets the operation)
      }
      return;
    }
    case v1::Envelope::kResponse:
    case v1::Envelope::kEvent:
      spdlog::warn("host sent a {} (id {}); only the agent sends those: ignored",
                   env.has_response() ? "response" : "event", id);
      return;
    case v1::Envelope::BODY_NOT_SET: return;  // parse_sealed_envelope refuses these
  }
}

// --- writing -----------------------------------------------------------------

void Session::respond(std::uint64_t id, v1::Response response) {
  ops_.erase(id);
  send_response(id, std::move(response));
}

void Session::refuse_duplicate(std::uint64_t id, v1::Response response) { send_response(id, std::move(response)); }

void Session::send_response(std::uint64_t id, v1::Response response) {
  if (stopped_) return;
  v1::Envelope env;
  env.set_id(id);
  *env.mutable_response() = std::move(response);
  send(env);
}

void Session::send(v1::Envelope& env) {
  if (stopped_) return;
  std::string frame;
  Status s = wire::append_envelope_frame(env, &frame, agent_.config.max_message);
  if (!s) {
    // Our own message is too big: answer with an error instead, never drop.
    spdlog::error("message for request {} not sent: {}", env.id(), s.to_string());
    if (env.has_response()) {
      v1::Envelope err;
      err.set_id(env.id());
      *err.mutable_response() = error_response(v1::ERROR_CODE_INTERNAL, "response too large: " + s.message());
      frame.clear();
      if (!wire::append_envelope_frame(err, &frame, agent_.config.max_message)) return;
    } else {
      return;
    }
  }
  enqueue(std::move(frame));
}

bool Session::send_droppable(v1::Envelope& env) {
  if (stopped_ || outbox_bytes_ >= soft_limit_) return false;
  send(env);
  return true;
}

void Session::enqueue(std::string frame) {
  outbox_bytes_ += frame.size();
  outbox_.push_back(std::move(frame));
  if (outbox_bytes_ > hard_limit_) {
    return stop(End::kOutboxOverflow, std::to_string(outbox_bytes_) + " bytes queued");
  }
  write_next();
}

void Session::write_next() {
  if (stopped_ || writing_frames_ != 0 || outbox_.empty()) return;
  write_batch_.clear();
  std::size_t bytes = 0;
  for (const auto& f : outbox_) {
    if (writing_frames_ == kMaxBatchFrames || (bytes != 0 && bytes + f.size() > kMaxBatchBytes)) break;
    write_batch_.emplace_back(asio::buffer(f));
    bytes += f.size();
    ++writing_frames_;
  }
  write_timer_.expires_after(std::chrono::milliseconds(agent_.config.write_timeout_ms));
  write_timer_.async_wait([self = shared_from_this()](const asio::error_code& ec) {
    if (ec || self->stopped_) return;
    self->stop(End::kWriteTimeout, std::to_string(self->agent_.config.write_timeout_ms) + " ms");
  });
  asio::async_write(port_, write_batch_, [self = shared_from_this()](const asio::error_code& ec, std::size_t) {
    if (self->stopped_) return;
    self->write_timer_.cancel();
    if (host_went_away(ec)) return self->stop(End::kHostClosed, ec.message());
    if (ec) return self->stop(End::kWriteError, ec.message());
    self->after_write();
  });
}

void Session::after_write() {
  for (; writing_frames_ > 0; --writing_frames_) {
    outbox_bytes_ -= outbox_.front().size();
    outbox_.pop_front();
  }
  if (outbox_.empty() && !after_flush_.empty()) {
    for (auto& fn : after_flush_) asio::post(agent_.io, std::move(fn));
    after_flush_.clear();
  }
  if (draining_ && outbox_.empty()) return stop(End::kShutdown, "");
  write_next();
  if (outbox_bytes_ < soft_limit_) do_read();  // resumes a paused reader
  notify_stream_room();
}

void Session::notify_stream_room() {
  if (stopped_ || !stream_may_send() || ops_.empty()) return;
  stream_waiting_ = false;
  std::vector<std::shared_ptr<Operation>> ops;
  ops.reserve(ops_.size());
  for (auto& [id, op] : ops_) ops.push_back(op);
  for (auto& op : ops) {
    if (stopped_ || !stream_may_send()) break;
    op->on_outbox_room();
  }
}

bool Session::reserve_stream(std::size_t bytes) {
  const bool room = outbox_bytes_ < stream_limit_ &&
                    (stream_reserved_ == 0 || outbox_bytes_ + stream_reserved_ + bytes <= stream_limit_);
  if (!room) {
    stream_waiting_ = true;
    return false;
  }
  stream_reserved_ += bytes;
  return true;
}

void Session::release_stream(std::size_t bytes) {
  stream_reserved_ -= std::min(bytes, stream_reserved_);
  // The releaser usually queues a frame, whose write tells everyone; a
  // reservation given up without one must not leave a stream waiting.
  if (!stream_waiting_) return;
  asio::post(agent_.io, [self = shared_from_this()] {
    if (self->stream_waiting_) self->notify_stream_room();
  });
}

// --- operations and telemetry --------------------------------------------------

void Session::add_operation(std::uint64_t id, std::shared_ptr<Operation> op) { ops_[id] = std::move(op); }

void Session::after_flush(std::function<void()> fn) {
  if (stopped_ || outbox_.empty()) {
    asio::post(agent_.io, std::move(fn));
    return;
  }
  after_flush_.push_back(std::move(fn));
}

void Session::mark_handshaken() {
  if (handshaken_) return;
  handshaken_ = true;
  sample_telemetry_now();
  reschedule_telemetry();
}

void Session::reschedule_telemetry() {
  if (stopped_ || draining_ || !handshaken_) return;
  telemetry_timer_.expires_after(std::chrono::milliseconds(agent_.telemetry_interval_ms));
  telemetry_timer_.async_wait([self = shared_from_this()](const asio::error_code& ec) {
    if (ec || self->stopped_) return;
    self->telemetry_tick();
  });
}

void Session::telemetry_tick() {
  collect_telemetry();
  reschedule_telemetry();
}

void Session::sample_telemetry_now() { collect_telemetry(); }

void Session::collect_telemetry() {
  if (stopped_ || draining_) return;
  if (collecting_) {  // one collection at a time; ask for another when it ends
    sample_again_ = true;
    return;
  }
  collecting_ = true;
  const bool per_cpu = agent_.config.telemetry_per_cpu;
  // The job hands its reference back to the io thread (moved into the
  // post): the session is never destroyed on a worker.
  asio::post(agent_.workers, [self = shared_from_this(), per_cpu]() mutable {
    auto sample = std::make_shared<v1::TelemetrySample>();
    auto& io = self->agent_.io;
    if (!self->agent_.telemetry->collect_unless(self->ended_, per_cpu, sample.get())) {
      asio::post(io, [self = std::move(self)] { self->collecting_ = false; });
      return;
    }
    asio::post(io, [self = std::move(self), sample] {
      self->collecting_ = false;
      if (self->stopped_ || self->draining_) return;
      sample->set_dropped_before(self->telemetry_dropped_since_sent_);
      v1::Envelope env;
      *env.mutable_event()->mutable_telemetry() = std::move(*sample);
      if (self->send_droppable(env)) {
        self->agent_.counters.telemetry_sent++;
        self->telemetry_dropped_since_sent_ = 0;
      } else {
        self->agent_.counters.telemetry_dropped++;
        self->telemetry_dropped_since_sent_++;
      }
      if (self->sample_again_) {
        self->sample_again_ = false;
        self->collect_telemetry();
      }
    });
  });
}

}  // namespace qtx::agent
