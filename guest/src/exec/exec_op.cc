#include "exec_op.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <optional>
#include <spdlog/spdlog.h>
#include <utility>

#include "dispatcher.h"
#include "exec/child_reaper.h"
#include "exec/spawn.h"
#include "operation.h"
#include "qtx/quote.h"
#include "reply.h"
#include "session.h"
#include "system/accounts.h"

extern char** environ;

namespace qtx::agent {
namespace {

constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
// An output piece whose envelope fits in any peer's max_message.
constexpr std::size_t kReadChunk = wire::kMinMaxPayload - wire::kMaxPieceOverhead;
constexpr std::size_t kStdinCoalesceBelow = 64 * 1024;
constexpr auto kPipeGrace = std::chrono::seconds(1);

// One of the agent's max_concurrent_execs slots (AgentContext::running_execs),
// held from the request until its process is reaped, or until the spawn
// fails. The destructor gives the slot back; it must run on the io thread,
// like every use of running_execs, so a slot is moved, never shared, across
// the worker thread that spawns.
class ExecSlot {
 public:
  explicit ExecSlot(AgentContext& agent) : agent_(&agent) { ++agent.running_execs; }
  ExecSlot(ExecSlot&& other) noexcept : agent_(std::exchange(other.agent_, nullptr)) {}
  ExecSlot(const ExecSlot&) = delete;
  ExecSlot& operator=(const ExecSlot&) = delete;
  ExecSlot& operator=(ExecSlot&&) = delete;
  ~ExecSlot() {
    if (agent_ != nullptr) --agent_->running_execs;
  }

 private:
  AgentContext* agent_;
};

// Holds `slot` until the reaper has collected `pid` (the reaper's callbacks
// are copyable, hence the shared_ptr; it is called and dropped on the io
// thread).
void release_when_reaped(AgentContext& agent, pid_t pid, ExecSlot slot) {
  auto held = std::make_shared<std::optional<ExecSlot>>(std::move(slot));
  agent.reaper->watch(pid, [held](int) { held->reset(); });
}

class ExecOp : public Operation, public std::enable_shared_from_this<ExecOp> {
 public:
  ExecOp(Session& s, std::uint64_t id, const v1::ExecRequest& req, Spawned& p, ExecSlot slot)
      : slot_(std::move(slot)),
        session_(s.weak()),
        agent_(s.agent()),
        id_(id),
        pid_(p.pid),
        stdin_(s.agent().io, p.stdin_fd.release()),
        stdout_(s.agent().io, p.stdout_fd.release()),
        stderr_(s.agent().io),
        timer_(s.agent().io),
        grace_(s.agent().io),
        credit_(req.output_window() ? req.output_window() : kDefaultOutputWindow),
        limit_(std::min<std::uint64_t>(req.output_limit() ? req.output_limit() : s.agent().config.max_exec_output,
                                       s.agent().config.max_exec_output)),
        stdin_stream_(req.stdin_stream()),
        stdin_from_request_(req.stdin().size()),
        started_(std::chrono::steady_clock::now()) {
    if (p.stderr_fd.valid()) {
      stderr_.assign(p.stderr_fd.release());
    } else {
      stderr_done_ = true;
    }
    // Reads are tried at once and waited for only when the pipe is empty
    // (see read()): they must never block the io thread.
    asio::error_code ignored;
    stdout_.non_blocking(true, ignored);
    if (stderr_.is_open()) stderr_.non_blocking(true, ignored);
    if (!req.stdin().empty()) stdin_queue_.push_back(req.stdin());
    stdin_eof_ = !stdin_stream_;
  }

  void start(std::uint32_t timeout_ms) {
    auto self = shared_from_this();
    agent_.reaper->watch(pid_, [self](int status) { self->on_exit(status); });
    timer_.expires_after(std::chrono::milliseconds(timeout_ms));
    timer_.async_wait([self](const asio::error_code& ec) {
      if (ec || self->exited_) return;
      self->timed_out_ = true;
      self->kill_group();
    });
    read(stdout_, v1::ExecOutput::STREAM_STDOUT);
    read(stderr_, v1::ExecOutput::STREAM_STDERR);
    write_stdin();
  }

  void on_progress(const v1::Progress& p) override {
    if (answered_ || !p.has_exec_input() || !stdin_stream_ || stdin_eof_) return;
    const v1::ExecInput& in = p.exec_input();
    if (in.data().size() > stdin_credit_) {
      spdlog::warn("exec (id {}): {} bytes of stdin with {} bytes of credit left: exec failed", id_, in.data().size(),
                   stdin_credit_);
      return end_with(error_response(v1::ERROR_CODE_INVALID_ARGUMENT,
                                     "exec stdin: " + std::to_string(in.data().size()) +
                                         " bytes sent beyond the granted credit (" + std::to_string(stdin_credit_) +
                                         " bytes left of a " + std::to_string(kStdinWindow) +
                                         "-byte window; wait for the agent's Credit): the program was killed"));
    }
    stdin_credit_ -= in.data().size();
    // Once the program closed its stdin the data has nowhere to go: dropped.
    // Small pieces join the last queued buffer, so the queue holds at most
    // kStdinWindow / kStdinCoalesceBelow + 2 buffers whatever the message
    // sizes.
    if (!in.data().empty() && stdin_.is_open()) {
      if (!stdin_queue_.empty() && stdin_queue_.back().size() < kStdinCoalesceBelow) {
        stdin_queue_.back().append(in.data());
      } else {
        stdin_queue_.push_back(in.data());
      }
    }
    if (in.eof()) stdin_eof_ = true;
    write_stdin();
  }

  void on_credit(std::uint64_t bytes) override {
    credit_ += bytes;
    resume();
  }
  void on_outbox_room() override { resume(); }

  void cancel() override { end_with(error_response(v1::ERROR_CODE_CANCELLED, "exec cancelled")); }

 private:
  using Stream = v1::ExecOutput::Stream;

  // Answers `answer` now, kills the process group and releases the pipes
  // and the stdin held; the reaper still collects the process.
  void end_with(v1::Response answer) {
    if (answered_) return;
    answered_ = true;
    kill_group();
    close_pipes();
    std::deque<std::string>().swap(stdin_queue_);
    timer_.cancel();
    if (auto s = session_.lock()) s->respond(id_, std::move(answer));
  }

  bool may_send() {
    auto s = session_.lock();
    return s && !s->stopped() && (truncated_ || (credit_ > 0 && s->stream_may_send()));
  }

  void resume() {
    if (stdout_paused_) {
      stdout_paused_ = false;
      read(stdout_, v1::ExecOutput::STREAM_STDOUT);
    }
    if (stderr_paused_) {
      stderr_paused_ = false;
      read(stderr_, v1::ExecOutput::STREAM_STDERR);
    }
  }

  // Reads what the credit allows once the pipe has something: at once when
  // it already does (a posted try, as Asio's own speculative read, so a busy
  // pipe neither recurses nor starves the loop), else after a readiness wait.
  // No credit is set aside while waiting: a stream that stays silent (stderr,
  // mostly) must not hold the window the other one needs, or both sides
  // would wait for each other (the host grants only for data it received).
  void read(asio::posix::stream_descriptor& pipe, Stream stream) {
    bool& done = stream == v1::ExecOutput::STREAM_STDOUT ? stdout_done_ : stderr_done_;
    bool& paused = stream == v1::ExecOutput::STREAM_STDOUT ? stdout_paused_ : stderr_paused_;
    if (done || answered_ || !pipe.is_open()) return;
    if (!may_send()) {
      paused = true;  // the program blocks on a full pipe until credit comes
      return;
    }
    asio::post(agent_.io, [self = shared_from_this(), &pipe, stream] { self->try_read(pipe, stream, {}); });
  }

  void wait_readable(asio::posix::stream_descriptor& pipe, Stream stream) {
    pipe.async_wait(asio::posix::stream_descriptor::wait_read,
                    [self = shared_from_this(), &pipe, stream](const asio::error_code& ec) {
                      self->try_read(pipe, stream, ec);
                    });
  }

  void try_read(asio::posix::stream_descriptor& pipe, Stream stream, const asio::error_code& ec) {
    if (answered_ || !pipe.is_open()) return;
    if (!ec && !may_send()) {  // the other stream used the credit meanwhile
      (stream == v1::ExecOutput::STREAM_STDOUT ? stdout_paused_ : stderr_paused_) = true;
      return;
    }
    // Within the credit, which the host holds us to. Once truncated, output
    // is read and discarded, in any amount.
    const std::size_t want =
        truncated_ ? kReadChunk : static_cast<std::size_t>(std::min<std::uint64_t>(kReadChunk, credit_));
    asio::error_code rec = ec;
    std::size_t n = 0;
    if (!rec) n = pipe.read_some(asio::buffer(read_buffer_.data(), want), rec);
    if (rec == asio::error::would_block || rec == asio::error::try_again) return wait_readable(pipe, stream);
    on_output(pipe, stream, rec, n);
  }

  // The n bytes at the front of read_buffer_ (or the end of the stream):
  // sent within the limit, and what is sent is taken from the credit.
  void on_output(asio::posix::stream_descriptor& pipe, Stream stream, const asio::error_code& ec, std::size_t n) {
    if (answered_) return;
    if (ec) {
      (stream == v1::ExecOutput::STREAM_STDOUT ? stdout_done_ : stderr_done_) = true;
      asio::error_code ignored;
      pipe.close(ignored);
      return maybe_finish();
    }
    std::uint64_t& counted = stream == v1::ExecOutput::STREAM_STDOUT ? stdout_bytes_ : stderr_bytes_;
    counted += n;
    // keep <= credit_: before truncation n <= want <= credit_; after it
    // sent_ == limit_ and keep is 0.
    std::size_t keep = n;
    if (sent_ + n > limit_) {
      keep = static_cast<std::size_t>(limit_ - sent_);
      truncated_ = true;
    }
    if (keep > 0) {
      auto s = session_.lock();
      if (!s) return;
      v1::Envelope env;
      env.set_id(id_);
      auto* out = env.mutable_progress()->mutable_exec_output();
      out->set_stream(stream);
      out->set_data(read_buffer_.data(), keep);
      if (!pid_sent_) {
        out->set_pid(static_cast<std::uint32_t>(pid_));
        pid_sent_ = true;
      }
      s->send(env);
      sent_ += keep;
      credit_ -= keep;
    }
    read(pipe, stream);
    resume();  // once truncated, output is read without credit: a stream paused on it goes on
  }

  void write_stdin() {
    if (stdin_writing_ || !stdin_.is_open()) return;
    if (stdin_queue_.empty()) {
      if (stdin_eof_) {
        asio::error_code ignored;
        stdin_.close(ignored);  // the program sees EOF
      }
      return;
    }
    stdin_writing_ = true;
    auto data = std::make_shared<std::string>(std::move(stdin_queue_.front()));
    stdin_queue_.pop_front();
    asio::async_write(stdin_, asio::buffer(*data),
                      [self = shared_from_this(), data](const asio::error_code& ec, std::size_t) {
                        self->stdin_writing_ = false;
                        if (self->answered_) return;
                        if (ec) {  // the program closed its stdin: drop the rest
                          std::deque<std::string>().swap(self->stdin_queue_);
                          asio::error_code ignored;
                          self->stdin_.close(ignored);
                          return;
                        }
                        self->stdin_consumed(data->size());
                        self->write_stdin();
                      });
  }

  // The program took `n` more bytes of stdin: credit them back to the host,
  // in batches of a quarter window, or at once when nothing is left queued
  // (a host waiting for credit must not wait on bytes already consumed).
  // The request's own `stdin` field was never credit and is not granted.
  void stdin_consumed(std::size_t n) {
    const std::size_t from_request = std::min(n, stdin_from_request_);
    stdin_from_request_ -= from_request;
    stdin_ungranted_ += n - from_request;
    if (!stdin_stream_ || stdin_eof_ || stdin_ungranted_ == 0) return;
    if (stdin_ungranted_ < kStdinWindow / 4 && !stdin_queue_.empty()) return;
    auto s = session_.lock();
    if (!s) return;
    v1::Envelope env;
    env.set_id(id_);
    env.mutable_credit()->set_bytes(stdin_ungranted_);
    s->send(env);
    stdin_credit_ += stdin_ungranted_;
    stdin_ungranted_ = 0;
  }

  void on_exit(int status) {
    exited_ = true;
    status_ = status;
    slot_.reset();  // reaped: the slot is free, whatever the pipes still hold
    timer_.cancel();
    if (answered_) return;
    // Pipes still open now belong to the program's own children: 1 s more.
    grace_.expires_after(kPipeGrace);
    grace_.async_wait([self = shared_from_this()](const asio::error_code& ec) {
      if (ec || self->answered_) return;
      self->close_pipes();
      self->stdout_done_ = self->stderr_done_ = true;
      self->maybe_finish();
    });
    maybe_finish();
  }

  void maybe_finish() {
    if (answered_ || !exited_ || !stdout_done_ || !stderr_done_) return;
    answered_ = true;
    grace_.cancel();
    close_pipes();
    v1::Response r;
    auto* res = r.mutable_exec();
    res->set_pid(static_cast<std::uint32_t>(pid_));
    if (WIFEXITED(status_)) res->set_exit_code(WEXITSTATUS(status_));
    if (WIFSIGNALED(status_)) res->set_signal(WTERMSIG(status_));
    res->set_timed_out(timed_out_);
    res->set_truncated(truncated_);
    res->set_stdout_bytes(stdout_bytes_);
    res->set_stderr_bytes(stderr_bytes_);
    res->set_duration_ms(static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started_).count()));
    if (auto s = session_.lock()) s->respond(id_, std::move(r));
  }

  void kill_group() {
    if (!exited_) ::kill(-pid_, SIGKILL);
  }

  void close_pipes() {
    asio::error_code ignored;
    stdin_.close(ignored);
    stdout_.close(ignored);
    stderr_.close(ignored);
  }

  std::optional<ExecSlot> slot_;  // until on_exit
  std::weak_ptr<Session> session_;
  AgentContext& agent_;
  std::uint64_t id_;
  pid_t pid_;
  asio::posix::stream_descriptor stdin_, stdout_, stderr_;
  asio::steady_timer timer_, grace_;
  std::uint64_t credit_;
  std::uint64_t limit_;
  // Both pipes read into it; each read is sent (copied into the envelope)
  // before the handler returns, so nothing in it outlives one read.
  std::array<char, kReadChunk> read_buffer_;
  std::uint64_t sent_ = 0, stdout_bytes_ = 0, stderr_bytes_ = 0;
  std::deque<std::string> stdin_queue_;        // at most kStdinWindow streamed bytes, plus the request's stdin
  std::uint64_t stdin_credit_ = kStdinWindow;  // stdin bytes the host may still send
  std::uint64_t stdin_ungranted_ = 0;          // consumed by the program, not yet credited back
  bool stdin_stream_;
  std::size_t stdin_from_request_;  // bytes of the request's stdin field not yet written
  bool stdin_eof_ = false, stdin_writing_ = false;
  bool stdout_done_ = false, stderr_done_ = false, stdout_paused_ = false, stderr_paused_ = false;
  bool exited_ = false, timed_out_ = false, truncated_ = false, answered_ = false, pid_sent_ = false;
  int status_ = 0;
  std::chrono::steady_clock::time_point started_;
};

std::string env_value(const std::vector<std::string>& env, const std::string& name) {
  for (const auto& e : env) {
    if (e.rfind(name + "=", 0) == 0) return e.substr(name.size() + 1);
  }
  return "";
}

}  // namespace

void start_exec(Session& s, std::uint64_t id, const v1::ExecRequest& req) {
  auto& agent = s.agent();
  if (req.argv().empty() || req.argv(0).empty()) {
    return s.respond(id, error_response(v1::ERROR_CODE_INVALID_ARGUMENT, "exec needs a program: argv is empty"));
  }
  for (const auto& a : req.argv()) {
    if (a.find('\0') != std::string::npos) {
      return s.respond(id, error_response(v1::ERROR_CODE_INVALID_ARGUMENT, "exec arguments may not contain NUL bytes"));
    }
  }
  for (const auto& e : req.env()) {
    if (e.find('=') == std::string::npos || e.find('\0') != std::string::npos) {
      return s.respond(id, error_response(v1::ERROR_CODE_INVALID_ARGUMENT, "exec env entries must be NAME=value"));
    }
  }
  if (agent.running_execs >= agent.config.max_concurrent_execs) {
    return s.respond(id,
                     error_response(v1::ERROR_CODE_BUSY, "too many running execs (limit " +
                                                             std::to_string(agent.config.max_concurrent_execs) + ")"));
  }
  ExecSlot slot(agent);  // until reaped (or the spawn fails)
  spdlog::info("audit: exec (id {}) {}{}", id, printable(req.argv(0)),
               req.user().empty() ? "" : " as " + printable(req.user()));
  const std::uint32_t timeout_ms = req.timeout_ms() ? req.timeout_ms() : agent.config.exec_default_timeout_ms;
  auto weak = s.weak();
  auto pending = std::make_shared<PendingOperation>(weak, id, req.stdin_stream() ? kStdinWindow : 0);
  s.add_operation(id, pending);
  const AccountFiles accounts = account_files(agent.config);
  asio::post(agent.workers, [weak, id, req, timeout_ms, pending, accounts, &agent, slot = std::move(slot)]() mutable {
    SpawnSpec spec;
    spec.argv.assign(req.argv().begin(), req.argv().end());
    spec.env.assign(req.env().begin(), req.env().end());
    spec.cwd = req.cwd();
    spec.merge_stderr = req.merge_stderr();
    v1::Response error;
    bool failed = false;
    if (!req.user().empty()) {
      auto u = find_user(req.user(), accounts);
      if (!u) {
        error = error_response(v1::ERROR_CODE_NOT_FOUND, "no such user: " + req.user());
        failed = true;
      } else {
        spec.set_user = true;
        spec.uid = u->uid;
        spec.gid = u->gid;
        spec.groups = groups_of(u->name, u->gid, accounts);
        if (spec.env.empty()) {
          spec.env = {std::string("PATH=") + kDefaultPath, "HOME=" + u->home, "USER=" + u->name, "LOGNAME=" + u->name,
                      "SHELL=" + (u->shell.empty() ? "/bin/sh" : u->shell)};
        }
        struct stat home {};
        if (spec.cwd.empty()) spec.cwd = ::stat(u->home.c_str(), &home) == 0 && S_ISDIR(home.st_mode) ? u->home : "/";
      }
    }
    if (!failed && spec.env.empty()) {
      for (char** e = environ; *e != nullptr; ++e) spec.env.emplace_back(*e);
    }
    if (!failed) {
      std::string path_var = env_value(spec.env, "PATH");
      spec.path = resolve_executable(spec.argv[0], path_var.empty() ? kDefaultPath : path_var);
      if (spec.path.empty()) {
        error = error_response(v1::ERROR_CODE_NOT_FOUND, "command not found: " + spec.argv[0], ENOENT);
        failed = true;
      }
    }
    auto spawned = std::make_shared<Spawned>();
    if (!failed) *spawned = spawn(spec);
    asio::post(agent.io,
               [weak, id, req, timeout_ms, spawned, failed, error, pending, &agent, slot = std::move(slot)]() mutable {
                 if (spawned->pid > 0 && spawned->error != 0) {
                   // The child exists but its exec failed: reap it, report why.
                   release_when_reaped(agent, spawned->pid, std::move(slot));
                   error = errno_response(spawned->failed_step + " " + req.argv(0), spawned->error);
                   failed = true;
                 } else if (!failed && spawned->pid <= 0) {
                   error = errno_response(spawned->failed_step, spawned->error);
                   failed = true;
                 }
                 auto live = weak.lock();
                 if (failed) {
                   // No process, or one given to the reaper: a slot still held here
                   // is released when this handler ends.
                   if (live && !pending->cancelled()) live->respond(id, std::move(error));
                   return;
                 }
                 if (!live || live->stopped() || pending->cancelled()) {
                   ::kill(-spawned->pid, SIGKILL);  // nobody to report to
                   release_when_reaped(agent, spawned->pid, std::move(slot));
                   return;
                 }
                 auto op = std::make_shared<ExecOp>(*live, id, req, *spawned, std::move(slot));
                 live->add_operation(id, op);
                 op->start(timeout_ms);
                 pending->hand_over(*op);
               });
  });
}

}  // namespace qtx::agent
