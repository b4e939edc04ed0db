#include "agent_commands.h"

#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include "envelope_json.h"
#include "qtx/host/manager.h"
#include "qtx/host/vm.h"
#include "qtx/quote.h"

namespace qtx::cli {

using host::json::EnvelopeJson;
namespace {

namespace v1 = ::qtx::agent::v1;
using host::Error;
using host::ErrorKind;
using namespace std::chrono_literals;

constexpr int kExitOk = 0, kExitFailed = 1, kExitNoAgent = 3, kExitRefused = 4, kExitTimeout = 5;

int exit_code_for(const Error& e) {
  switch (e.kind()) {
    case ErrorKind::kDisconnected:
    case ErrorKind::kClosed:
    case ErrorKind::kAlreadyExists: return e.guest_code() ? kExitFailed : kExitNoAgent;
    case ErrorKind::kDenied:
    case ErrorKind::kUnsupported: return kExitRefused;
    case ErrorKind::kTimeout: return e.guest_code() ? kExitFailed : kExitTimeout;
    default: return kExitFailed;
  }
}

std::chrono::milliseconds millis(double seconds) {
  return std::chrono::milliseconds(static_cast<long long>(seconds * 1000));
}

// Default deadlines of the commands (docs/cli.md): a call answered at once
// by a healthy agent; freeze and thaw, which wait for the guest's hooks and
// for sync; cp, by the size it moves (1 s per MiB, far below any port).
constexpr auto kCallDeadline = 30s;
constexpr auto kFreezeDeadline = 120s;
constexpr auto kCopyBaseDeadline = 60s;
constexpr auto kCopyDeadlinePerMiB = 1s;
// exec --timeout S: the agent kills the command after S; the host waits
// this much longer for the answer before giving up on it.
constexpr auto kExecGrace = 30s;

// The deadline of one command, from when it is made (once connected: the
// handshake has --connect-timeout): --timeout when given, else the
// command's default; every call of the command gets what is left of it.
class Deadline {
 public:
  using Clock = std::chrono::steady_clock;
  Deadline(const GlobalOptions& g, std::chrono::milliseconds fallback)
      : budget_(g.timeout > 0    ? std::max(millis(g.timeout), std::chrono::milliseconds(1))
                : g.timeout == 0 ? 0ms
                                 : fallback),
        end_(Clock::now() + budget_) {}

  bool none() const { return budget_.count() == 0; }
  // What is left, as a call's options: none when there is no deadline, and
  // at least 1 ms otherwise (a passed deadline fails the call at once).
  host::CallOptions call() const { return {.timeout = none() ? 0ms : std::max(left(), std::chrono::milliseconds(1))}; }
  std::chrono::milliseconds left() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(end_ - Clock::now());
  }
  Clock::time_point end() const { return end_; }
  std::chrono::milliseconds budget() const { return budget_; }

 private:
  std::chrono::milliseconds budget_;
  Clock::time_point end_;
};

std::string seconds_text(std::chrono::milliseconds d) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g s", static_cast<double>(d.count()) / 1000.0);
  return buf;
}

// `what` did not happen within the command's deadline `d`.
Error deadline_error(const Deadline& d, const std::string& what = "no answer") {
  return Error(ErrorKind::kTimeout, what + " within the command's deadline of " + seconds_text(d.budget()) +
                                        " (qtx --timeout S changes it)");
}

// A call's failure under `d`: the host's own timeout is the deadline
// passing (a guest's timeout error stays as it is).
Error explain(const Error& e, const Deadline& d) {
  return e.kind() == ErrorKind::kTimeout && e.guest_code() == 0 ? deadline_error(d) : e;
}

// Output of one command: a JSON document or human lines on stdout, one-line
// errors on stderr ("qtx: ..."), and the exit code.
class Output {
 public:
  explicit Output(bool json) : json_(json) {}
  bool json() const { return json_; }

  int fail(const Error& e) {
    if (json_) {
      std::printf("{\"error\":{\"kind\":%s,\"message\":%s}}\n", json_quote(host::error_kind_name(e.kind())).c_str(),
                  json_quote(e.message()).c_str());
    }
    std::fprintf(stderr, "qtx: %s\n", e.message().c_str());
    return exit_code_for(e);
  }
  // The failure of a call made under `d` (see explain).
  int fail_call(const Error& e, const Deadline& d) { return fail(explain(e, d)); }
  // A message of the schema as the JSON document.
  int print_message(const google::protobuf::MessageLite& m) {
    std::printf("%s\n", message_json(m).c_str());
    return kExitOk;
  }
  std::string message_json(const google::protobuf::MessageLite& m) {
    std::string s;
    if (!json_codec().message_to_json(m, &s)) s = "{}";
    return s;
  }

 private:
  EnvelopeJson& json_codec() {
    if (!codec_) codec_ = std::make_unique<EnvelopeJson>();
    return *codec_;
  }
  bool json_;
  std::unique_ptr<EnvelopeJson> codec_;
};

// A connected agent for the duration of one command.
class Connection {
 public:
  // Connects and waits for the handshake; on failure prints the reason
  // and returns the exit code in *code.
  static std::unique_ptr<Connection> open(const GlobalOptions& g, Output& out, int* code,
                                          host::AgentCallbacks callbacks = {}) {
    if (g.socket.empty()) {
      *code = 2;
      std::fprintf(stderr, "qtx: no socket given: use --socket PATH or set QTX_SOCKET\n");
      return nullptr;
    }
    auto c = std::unique_ptr<Connection>(new Connection);
    host::AgentOptions o;
    o.endpoint = g.listen ? host::Endpoint::listen(g.socket) : host::Endpoint::connect(g.socket);
    o.handshake_timeout = millis(g.connect_timeout);
    o.reconnect_max = 1s;
    o.client_name = "qtx";
    o.callbacks = std::move(callbacks);
    auto added = c->manager.add(o);
    if (!added) {
      out.fail(added.error());
      *code = added.error().kind() == ErrorKind::kLocal ? kExitFailed : kExitNoAgent;
      return nullptr;
    }
    c->agent = added.value();
    auto ready = c->agent->wait_ready(millis(g.connect_timeout) + 500ms);
    if (!ready) {
      // The reason the connection failed says more than "not ready in time".
      // Whatever kept the agent away, it is "no agent" (exit 3).
      auto last = c->agent->last_error();
      out.fail(last && ready.error().kind() == ErrorKind::kTimeout ? *last : ready.error());
      *code = kExitNoAgent;
      return nullptr;
    }
    return c;
  }

  host::Manager manager;
  std::shared_ptr<host::Agent> agent;
};

// What SIGINT/SIGTERM do while a command runs: by default end the process
// (exit 128+N); inside an InterruptScope, call its function with the
// signal's number instead (cancel the exec, stop watching, end a copy
// cleanly). The signals are delivered to one thread only (see
// start_signal_thread), which calls the function under the lock, so a
// scope never ends while its function runs.
std::mutex g_interrupt_mu;
std::function<void(int)>* g_on_interrupt = nullptr;

class InterruptScope {
 public:
  explicit InterruptScope(std::function<void(int)> fn) : fn_(std::move(fn)) {
    std::lock_guard<std::mutex> lock(g_interrupt_mu);
    g_on_interrupt = &fn_;
  }
  ~InterruptScope() {
    std::lock_guard<std::mutex> lock(g_interrupt_mu);
    g_on_interrupt = nullptr;
  }

 private:
  std::function<void(int)> fn_;
};

// A one-line progress bar on stderr, when it is a terminal.
class ProgressBar {
 public:
  explicit ProgressBar(bool enabled) : enabled_(enabled && ::isatty(2)), start_(std::chrono::steady_clock::now()) {}
  void update(const host::TransferProgress& p) {
    if (!enabled_) return;
    auto now = std::chrono::steady_clock::now();
    if (now - last_ < 100ms && p.bytes != p.total) return;
    last_ = now;
    double secs = std::chrono::duration<double>(now - start_).count();
    double rate = secs > 0 ? static_cast<double>(p.bytes) / secs / 1e6 : 0;
    if (p.total) {
      std::fprintf(stderr, "\r%8.1f / %.1f MiB %3d%% %7.1f MB/s", static_cast<double>(p.bytes) / 1048576.0,
                   static_cast<double>(p.total) / 1048576.0, static_cast<int>(p.bytes * 100 / p.total), rate);
    } else {
      std::fprintf(stderr, "\r%8.1f MiB %7.1f MB/s", static_cast<double>(p.bytes) / 1048576.0, rate);
    }
    shown_ = true;
  }
  void finish() {
    if (shown_) std::fprintf(stderr, "\n");
  }

 private:
  bool enabled_;
  bool shown_ = false;
  std::chrono::steady_clock::time_point start_, last_;
};

std::string human_bytes(std::uint64_t b) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f MiB", static_cast<double>(b) / 1048576.0);
  return buf;
}

// --- commands ------------------------------------------------------------------------

using AgentCommand = std::function<int(host::Agent&, Output&, const Deadline&)>;

// Connects and runs `fn(agent, out, deadline)`; the deadline (--timeout, or
// `fallback`) starts once connected.
int with_agent(const GlobalOptions& g, std::chrono::milliseconds fallback, const AgentCommand& fn) {
  Output out(g.json);
  int code = 0;
  auto c = Connection::open(g, out, &code);
  if (!c) return code;
  return fn(*c->agent, out, Deadline(g, fallback));
}

int cmd_ping(const GlobalOptions& g, host::Agent& agent, Output& out, const Deadline& d) {
  auto t0 = std::chrono::steady_clock::now();
  auto r = agent.ping({}, d.call());
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count();
  if (!r) return out.fail_call(r.error(), d);
  if (g.json) {
    std::printf("{\"rtt_us\":%lld}\n", static_cast<long long>(us));
  } else {
    std::printf("pong from %s in %lld us\n", g.socket.c_str(), static_cast<long long>(us));
  }
  return kExitOk;
}

int cmd_wait_ready(const GlobalOptions& g, host::Agent& agent, Output& out) {
  auto id = agent.identity();
  if (g.json) return out.print_message(*id);
  std::printf("ready: qtx-agent %s, instance %s\n", guest_text(id->version()).c_str(),
              guest_text(id->instance_id()).c_str());
  return kExitOk;
}

int cmd_info(const GlobalOptions& g, host::Agent& agent, Output& out, const Deadline& d) {
  auto r = agent.info({}, d.call());
  if (!r) return out.fail_call(r.error(), d);
  if (g.json) return out.print_message(*r);
  const auto& a = r->agent();
  std::printf("agent         qtx-agent %s\n", guest_text(a.version()).c_str());
  std::printf("instance      %s\n", guest_text(a.instance_id()).c_str());
  std::printf("boot id       %s\n", guest_text(a.boot_id()).c_str());
  std::printf("os            %s\n",
              guest_text(r->os().pretty_name().empty() ? r->os().name() : r->os().pretty_name()).c_str());
  std::printf("kernel        %s %s\n", guest_text(r->kernel_release()).c_str(), guest_text(r->arch()).c_str());
  std::printf("hostname      %s\n", guest_text(r->hostname()).c_str());
  std::printf("timezone      %s\n", guest_text(r->timezone()).c_str());
  std::string allowed, denied;
  for (const auto& cap : a.capabilities()) (cap.allowed() ? allowed : denied) += " " + guest_text(cap.name());
  std::printf("allowed      %s\n", allowed.c_str());
  if (!denied.empty()) std::printf("denied       %s\n", denied.c_str());
  std::string roots;
  for (const auto& root : r->policy().file_roots()) roots += " " + guest_text(root);
  std::printf("file roots   %s\n", roots.empty() ? " (anywhere)" : roots.c_str());
  const auto& c = r->session();
  std::printf(
      "this session  %llu bytes and %llu frames from the host, %llu bytes dropped (%llu since the agent started)\n",
      static_cast<unsigned long long>(c.bytes_received()), static_cast<unsigned long long>(c.frames_received()),
      static_cast<unsigned long long>(c.bytes_dropped()),
      static_cast<unsigned long long>(c.bytes_dropped_since_start()));
  return kExitOk;
}

struct ExecOptions {
  std::vector<std::string> argv;
  double timeout = 0;
  bool stdin_data = false;
  std::string cwd, user;
  std::vector<std::string> env;
};

// exec's default deadline: none, or the agent's kill timeout and a grace.
std::chrono::milliseconds exec_deadline(const ExecOptions& o) {
  return o.timeout > 0 ? millis(o.timeout) + std::chrono::milliseconds(kExecGrace) : 0ms;
}

// The command's stdout and stderr are the data the user asked for and pass
// unchanged (raw in human output, JSON-quoted with --json).
int cmd_exec(const GlobalOptions& g, const ExecOptions& o, host::Agent& agent, Output& out, const Deadline& d) {
  v1::ExecRequest req;
  for (const auto& a : o.argv) req.add_argv(a);
  for (const auto& e : o.env) req.add_env(e);
  req.set_cwd(o.cwd);
  req.set_user(o.user);
  req.set_timeout_ms(static_cast<std::uint32_t>(o.timeout * 1000));
  if (o.stdin_data) {
    std::string in((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    req.set_stdin(in);
  }
  host::ExecStreams streams;
  if (!g.json) {
    streams.on_stdout = [](std::string_view data) {
      std::fwrite(data.data(), 1, data.size(), stdout);
      std::fflush(stdout);
    };
    streams.on_stderr = [](std::string_view data) {
      std::fwrite(data.data(), 1, data.size(), stderr);
      std::fflush(stderr);
    };
  }
  std::mutex mu;
  std::condition_variable cv;
  std::optional<host::Result<host::ExecOutcome>> result;
  host::CallId id = agent.exec(req, streams, d.call(), [&](host::Result<host::ExecOutcome> r) {
    std::lock_guard<std::mutex> lock(mu);
    result.emplace(std::move(r));
    cv.notify_all();
  });
  {
    InterruptScope interrupt([&](int) { agent.cancel(id); });
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return result.has_value(); });
  }
  if (!*result) return out.fail_call(result->error(), d);
  const auto& x = result->value().result;
  if (g.json) {
    std::printf("{\"result\":%s,\"stdout\":%s,\"stderr\":%s}\n", out.message_json(x).c_str(),
                json_quote(result->value().stdout_data).c_str(), json_quote(result->value().stderr_data).c_str());
  }
  if (x.timed_out()) return 124;
  if (x.has_signal()) return 128 + x.signal();
  return x.exit_code();
}

struct CopyOptions {
  std::string from, to;
  bool no_atomic = false, parents = false, no_sha256 = false;
  std::string mode;
  std::string max_size;  // --max-size as given; empty: not given
};

// A download whose size the guest does not announce (stat says 0 bytes or
// not a regular file) stops here unless --max-size says otherwise.
constexpr std::uint64_t kUnannouncedDownloadMax = 64u * 1024 * 1024;

// cp's default deadline for moving `bytes`.
std::chrono::milliseconds copy_deadline(std::uint64_t bytes) {
  const std::uint64_t mib = (bytes + (1u << 20) - 1) >> 20;
  return kCopyBaseDeadline + kCopyDeadlinePerMiB * static_cast<std::int64_t>(mib);
}

int run_copy(const GlobalOptions& g, const CopyOptions& o, bool upload, std::uint64_t max_size, host::Agent& agent,
             Output& out, const Deadline& d);

// Checks the arguments before connecting: a usage error needs no agent.
int cmd_cp(const GlobalOptions& g, const CopyOptions& o) {
  const bool upload = !o.to.empty() && o.to[0] == ':';
  const bool download = !o.from.empty() && o.from[0] == ':';
  if (!o.mode.empty() && o.mode.find_first_not_of("01234567") != std::string::npos) {
    std::fprintf(stderr, "qtx: cp: --mode takes an octal mode such as 0644, not '%s'\n", o.mode.c_str());
    return 2;
  }
  if (upload == download) {
    std::fprintf(
        stderr,
        "qtx: cp: exactly one side must be a guest path, written :PATH (cp LOCAL :REMOTE or cp :REMOTE LOCAL)\n");
    return 2;
  }
  std::uint64_t max_size = 0;
  if (!o.max_size.empty()) {
    auto parsed = host::vm::parse_size(o.max_size);
    if (!parsed || *parsed == 0) {
      std::fprintf(stderr, "qtx: cp: --max-size takes a size such as 512M or 4096, not '%s'\n", o.max_size.c_str());
      return 2;
    }
    if (upload) {
      std::fprintf(stderr, "qtx: cp: --max-size bounds a download (cp :REMOTE LOCAL)\n");
      return 2;
    }
    max_size = *parsed;
  }
  // The stat before a download has a call's deadline; each transfer gets
  // one by its size unless --timeout bounds the whole command.
  return with_agent(g, kCallDeadline, [&](host::Agent& agent, Output& out, const Deadline& d) {
    return run_copy(g, o, upload, max_size, agent, out, d);
  });
}

// Where a download goes: LOCAL, or the guest file's name in LOCAL when that
// is a directory.
std::string download_target(const CopyOptions& o) {
  const std::string remote = o.from.substr(1);
  std::string local = o.to;
  struct stat st;
  if (::stat(local.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
    local += "/" + remote.substr(remote.find_last_of('/') + 1);
  return local;
}

// The download's bound: the size the guest announced (the read asks for
// exactly that many bytes; the library fails a guest that sends more), or
// max_bytes when it announced none. A bigger announced size than
// --max-size is refused before reading. download_file writes through a
// temporary beside LOCAL, so a failure leaves LOCAL as it was.
host::Result<host::TransferResult> run_download(const GlobalOptions& g, const CopyOptions& o, std::uint64_t max_size,
                                                host::Agent& agent, const Deadline& d, host::TransferOptions t) {
  v1::FileReadRequest rd;
  rd.set_path(o.from.substr(1));
  const std::string local = download_target(o);
  v1::FileStatRequest sr;
  sr.set_path(rd.path());
  sr.set_follow_symlinks(true);
  auto s = agent.file_stat(sr, d.call());
  // A policy that denies stat but allows reading: no size announced.
  if (!s && s.error().kind() != ErrorKind::kDenied && s.error().kind() != ErrorKind::kUnsupported) {
    return explain(s.error(), d);
  }
  const bool announced = s && s->type() == v1::FILE_TYPE_REGULAR && s->size() > 0;
  std::uint64_t bound = max_size ? max_size : kUnannouncedDownloadMax;
  if (announced) {
    if (max_size && s->size() > max_size) {
      return Error(ErrorKind::kLocal, "cp: " + o.from + " is " + std::to_string(s->size()) +
                                          " bytes, more than --max-size " + std::to_string(max_size));
    }
    bound = s->size();
    rd.set_length(bound);
    t.expected_total = bound;
  } else {
    t.max_bytes = bound;
  }
  const Deadline transfer = g.timeout < 0 ? Deadline(g, copy_deadline(bound)) : d;
  auto r = agent.download_file(rd, local, std::move(t), transfer.call());
  if (r) return r;
  const Error e = explain(r.error(), transfer);
  return Error(e.kind(), e.message() + "; " + local + " was not written", e.guest_code(), e.os_errno());
}

int run_copy(const GlobalOptions& g, const CopyOptions& o, bool upload, std::uint64_t max_size, host::Agent& agent,
             Output& out, const Deadline& d) {
  ProgressBar bar(!g.json);
  host::TransferOptions t;
  t.on_progress = [&bar](const host::TransferProgress& p) { bar.update(p); };
  t.verify_sha256 = !o.no_sha256;
  // SIGINT/SIGTERM end the transfer through close(), which tells the guest
  // to stop and fails the call, so that no partial download is left behind;
  // then qtx exits 128+N.
  std::atomic<int> interrupted{0};
  InterruptScope interrupt([&](int sig) {
    interrupted = sig;
    agent.close();
  });
  host::Result<host::TransferResult> r = Error(ErrorKind::kLocal, "");
  if (upload) {
    v1::FileWriteRequest w;
    w.set_path(o.to.substr(1));
    w.set_atomic(!o.no_atomic);
    w.set_create_parents(o.parents);
    if (!o.mode.empty()) w.set_mode(static_cast<std::uint32_t>(std::stoul(o.mode, nullptr, 8)));
    struct stat st;
    const std::uint64_t size = ::stat(o.from.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
    const Deadline transfer = g.timeout < 0 ? Deadline(g, copy_deadline(size)) : d;
    r = agent.upload_file(o.from, w, t, transfer.call());
    if (!r) r = explain(r.error(), transfer);
  } else {
    r = run_download(g, o, max_size, agent, d, t);
  }
  bar.finish();
  if (int sig = interrupted.load(); sig != 0 && !r) {
    out.fail(Error(ErrorKind::kCancelled, upload ? std::string("cp: interrupted")
                                                 : "cp: interrupted; " + download_target(o) + " was not written"));
    return 128 + sig;
  }
  if (!r) return out.fail(r.error());
  if (g.json) {
    std::printf("{\"bytes\":%llu,\"sha256\":\"%s\"}\n", static_cast<unsigned long long>(r->bytes),
                r->sha256_hex.c_str());
  } else if (o.no_sha256) {
    std::printf("%llu bytes (each chunk crc32c-checked; no sha256)\n", static_cast<unsigned long long>(r->bytes));
  } else {
    std::printf("%llu bytes, sha256 %s (verified)\n", static_cast<unsigned long long>(r->bytes), r->sha256_hex.c_str());
  }
  return kExitOk;
}

void print_sample(Output& out, const v1::TelemetrySample& s) {
  if (out.json()) {
    out.print_message(s);
  } else {
    const auto& m = s.memory();
    std::printf("#%llu cpu %5.1f%%  mem %s used of %s  load %.2f %.2f %.2f  procs %u  uptime %llus\n",
                static_cast<unsigned long long>(s.seq()), s.cpu().busy_pct(),
                human_bytes(m.total_bytes() - m.available_bytes()).c_str(), human_bytes(m.total_bytes()).c_str(),
                s.load().one(), s.load().five(), s.load().fifteen(), s.process_count(),
                static_cast<unsigned long long>(s.uptime_ms() / 1000));
  }
  std::fflush(stdout);
}

int cmd_telemetry(const GlobalOptions& g, bool watch, double interval, int count) {
  Output out(g.json);
  std::mutex mu;
  std::condition_variable cv;
  std::deque<v1::TelemetrySample> samples;
  host::AgentCallbacks cb;
  cb.on_telemetry = [&](const v1::TelemetrySample& s) {
    std::lock_guard<std::mutex> lock(mu);
    samples.push_back(s);
    cv.notify_all();
  };
  int code = 0;
  auto c = Connection::open(g, out, &code, cb);
  if (!c) return code;
  // --watch runs until interrupted or --count by default; each sample must
  // still come within three intervals.
  const Deadline d(g, watch ? 0ms : std::chrono::milliseconds(kCallDeadline));
  v1::TelemetryConfigRequest cfg;
  cfg.set_sample_now(true);
  if (interval > 0) cfg.set_interval_ms(static_cast<std::uint32_t>(interval * 1000));
  auto r = c->agent->telemetry_config(cfg, d.call());
  if (!r) return out.fail_call(r.error(), d);
  const int wanted = watch ? count : 1;
  std::atomic<bool> stop{false};
  InterruptScope interrupt([&](int) {
    std::lock_guard<std::mutex> lock(mu);
    stop = true;
    cv.notify_all();
  });
  for (int shown = 0; wanted == 0 || shown < wanted; ++shown) {
    std::unique_lock<std::mutex> lock(mu);
    // A sample is due within the interval; a silent agent is reported.
    const auto silence = std::chrono::milliseconds(std::max<std::uint32_t>(r->interval_ms(), 1000)) * 3;
    const auto limit = Deadline::Clock::now() + silence;
    const bool deadline_first = !d.none() && d.end() < limit;
    if (!cv.wait_until(lock, deadline_first ? d.end() : limit, [&] { return stop || !samples.empty(); })) {
      if (deadline_first) {
        return out.fail(deadline_error(d, "no telemetry sample"));
      }
      return out.fail(Error(ErrorKind::kTimeout, "no telemetry sample arrived"));
    }
    if (stop) break;
    auto s = std::move(samples.front());
    samples.pop_front();
    lock.unlock();
    print_sample(out, s);
  }
  return kExitOk;
}

template <class Resp>
int print_result(Output& out, const Deadline& d, const host::Result<Resp>& r, const std::string& human) {
  if (!r) return out.fail_call(r.error(), d);
  if (out.json()) return out.print_message(*r);
  if (!human.empty()) std::printf("%s\n", human.c_str());
  return kExitOk;
}

// Guest strings for one human line, each escaped, separated by `sep`.
std::string join_guest_text(const google::protobuf::RepeatedPtrField<std::string>& v, const char* sep = " ") {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : sep) + guest_text(x);
  return s;
}

// --- registrars: one per command, each binding a named options struct ----------------

// What every registrar gets: the App to add its subcommand to, the global
// options (filled by the parse, read when the command runs) and where to put
// the chosen command.
struct Registry {
  CLI::App& app;
  GlobalOptions& g;
  std::function<int()>* run;

  // `sub` is a command of one connection: `fn(agent, out, deadline)` under
  // `fallback` (or --timeout).
  void on_agent(CLI::App* sub, std::chrono::milliseconds fallback, AgentCommand fn) const {
    GlobalOptions* g_ptr = &g;
    std::function<int()>* out = run;
    sub->callback(
        [g_ptr, out, fallback, fn] { *out = [g_ptr, fallback, fn] { return with_agent(*g_ptr, fallback, fn); }; });
  }
};

void add_ping_command(const Registry& r) {
  GlobalOptions& g = r.g;
  r.on_agent(r.app.add_subcommand("ping", "Round trip to the agent"), kCallDeadline,
             [&g](host::Agent& a, Output& out, const Deadline& d) { return cmd_ping(g, a, out, d); });
}

void add_info_command(const Registry& r) {
  GlobalOptions& g = r.g;
  r.on_agent(r.app.add_subcommand("info", "The agent's identity, OS, kernel, hostname and policy"), kCallDeadline,
             [&g](host::Agent& a, Output& out, const Deadline& d) { return cmd_info(g, a, out, d); });
}

// wait-ready's --timeout is the handshake wait, global --connect-timeout.
void add_wait_ready_command(const Registry& r) {
  GlobalOptions& g = r.g;
  auto* wait =
      r.app.add_subcommand("wait-ready", "Wait until the agent answers the handshake (exit 0), or time out (exit 3)");
  wait->add_option("--timeout", g.connect_timeout, "Seconds to wait (default 5)")->check(CLI::PositiveNumber);
  wait->callback([&g, run = r.run] {
    // The handshake is the whole command: qtx --timeout S sets its wait too.
    if (g.timeout > 0) g.connect_timeout = g.timeout;
    *run = [&g] {
      return with_agent(g, 0ms,
                        [&](host::Agent& a, Output& out, const Deadline&) { return cmd_wait_ready(g, a, out); });
    };
  });
}

void add_exec_command(const Registry& r) {
  GlobalOptions& g = r.g;
  auto o = std::make_shared<ExecOptions>();
  auto* exec =
      r.app.add_subcommand("exec", "Run a program in the guest, streaming its output; exits with its exit code");
  exec->add_option("--timeout", o->timeout,
                   "Seconds before the agent kills it (default: the guest's policy); qtx then waits 30 s more for "
                   "the answer unless qtx --timeout says otherwise")
      ->check(CLI::NonNegativeNumber);
  exec->add_flag("--stdin", o->stdin_data, "Send this program's standard input to it");
  exec->add_option("--cwd", o->cwd, "Working directory in the guest");
  exec->add_option("--user", o->user, "Run as this guest user");
  exec->add_option("--env", o->env, "NAME=value (replaces the environment; repeatable)")->allow_extra_args(false);
  exec->add_option("command", o->argv, "Program and arguments (after --)")->required();
  exec->callback([&g, run = r.run, o] {
    *run = [&g, o] {
      return with_agent(g, exec_deadline(*o),
                        [&](host::Agent& a, Output& out, const Deadline& d) { return cmd_exec(g, *o, a, out, d); });
    };
  });
}

void add_cp_command(const Registry& r) {
  GlobalOptions& g = r.g;
  auto o = std::make_shared<CopyOptions>();
  auto* cp = r.app.add_subcommand("cp", "Copy a file in (cp LOCAL :REMOTE) or out (cp :REMOTE LOCAL), sha256-verified");
  cp->add_option("from", o->from, "Source: a local path or :GUEST_PATH")->required();
  cp->add_option("to", o->to, "Destination: a local path or :GUEST_PATH")->required();
  cp->add_flag("--no-atomic", o->no_atomic, "Upload: write in place instead of replacing atomically");
  cp->add_flag("-p,--parents", o->parents, "Upload: create missing parent directories");
  cp->add_option("--mode", o->mode, "Upload: octal mode of a new file (default 0644)");
  cp->add_option("--max-size", o->max_size,
                 "Download: the largest file accepted (512M, 4G, bytes). The size the guest announces bounds the "
                 "download anyway; for a file announced as empty or not regular the default is 64M");
  cp->add_flag(
      "--no-sha256", o->no_sha256,
      "Skip the end-to-end sha256 (chunks are still crc32c-checked): faster where the guest lacks SHA instructions");
  cp->callback([&g, run = r.run, o] { *run = [&g, o] { return cmd_cp(g, *o); }; });
}

struct TelemetryOptions {
  bool watch = false;
  double interval = 0;  // seconds; 0: leave the agent's interval
  int count = 0;        // with --watch: samples to print; 0: until interrupted
};

void add_telemetry_command(const Registry& r) {
  GlobalOptions& g = r.g;
  auto o = std::make_shared<TelemetryOptions>();
  auto* telemetry = r.app.add_subcommand("telemetry", "Print a telemetry sample, or keep printing them with --watch");
  telemetry->add_flag("-w,--watch", o->watch, "Print every sample until interrupted");
  telemetry->add_option("--interval", o->interval, "Seconds between samples (changes the agent's interval)")
      ->check(CLI::PositiveNumber);
  telemetry->add_option("--count", o->count, "With --watch: stop after this many samples")->check(CLI::PositiveNumber);
  telemetry->callback(
      [&g, run = r.run, o] { *run = [&g, o] { return cmd_telemetry(g, o->watch, o->interval, o->count); }; });
}

struct FreezeOptions {
  std::vector<std::string> mountpoints;  // empty: every freezable one
  double timeout = 0;                    // seconds before the agent thaws by itself; 0: the guest's
};

// freeze, thaw and freeze-status.
void add_freeze_commands(const Registry& r) {
  auto o = std::make_shared<FreezeOptions>();
  auto* freeze = r.app.add_subcommand("freeze", "Freeze the guest's filesystems (all, or the mountpoints given)");
  freeze->add_option("mountpoints", o->mountpoints, "Mountpoints (default: every freezable one)");
  freeze->add_option("--timeout", o->timeout, "Seconds before the agent thaws by itself (default: the guest's)")
      ->check(CLI::NonNegativeNumber);
  r.on_agent(freeze, kFreezeDeadline, [o](host::Agent& a, Output& out, const Deadline& d) {
    v1::FreezeRequest req;
    for (const auto& m : o->mountpoints) req.add_mountpoints(m);
    req.set_timeout_ms(static_cast<std::uint32_t>(o->timeout * 1000));
    auto res = a.freeze(req, d.call());
    return print_result(out, d, res, res ? "frozen: " + join_guest_text(res->frozen()) : "");
  });
  r.on_agent(r.app.add_subcommand("thaw", "Thaw the guest's filesystems"), kFreezeDeadline,
             [](host::Agent& a, Output& out, const Deadline& d) {
               return print_result(out, d, a.thaw({}, d.call()), "thawed");
             });
  r.on_agent(r.app.add_subcommand("freeze-status", "Whether the guest's filesystems are frozen"), kCallDeadline,
             [](host::Agent& a, Output& out, const Deadline& d) {
               auto res = a.freeze_status({}, d.call());
               return print_result(out, d, res,
                                   res ? (res->frozen() ? "frozen: " + join_guest_text(res->mountpoints())
                                                        : std::string("thawed"))
                                       : "");
             });
}

struct PowerOptions {
  double delay = 0;  // seconds to wait first
};

// shutdown and reboot.
void add_power_commands(const Registry& r) {
  for (const bool reboot : {false, true}) {
    auto o = std::make_shared<PowerOptions>();
    auto* p = r.app.add_subcommand(reboot ? "reboot" : "shutdown", reboot ? "Reboot the guest" : "Power the guest off");
    p->add_option("--delay", o->delay, "Seconds to wait first")->check(CLI::NonNegativeNumber);
    r.on_agent(p, kCallDeadline, [o, reboot](host::Agent& a, Output& out, const Deadline& d) {
      v1::PowerRequest req;
      req.set_action(reboot ? v1::PowerRequest::ACTION_REBOOT : v1::PowerRequest::ACTION_POWEROFF);
      req.set_delay_ms(static_cast<std::uint32_t>(o->delay * 1000));
      return print_result(out, d, a.power(req, d.call()), reboot ? "rebooting" : "powering off");
    });
  }
}

struct SetPasswordOptions {
  std::string user;
  bool crypted = false;  // the input is already a crypt(3) hash
};

void add_set_password_command(const Registry& r) {
  GlobalOptions& g = r.g;
  auto o = std::make_shared<SetPasswordOptions>();
  auto* setpw = r.app.add_subcommand("set-password", "Set a guest user's password, read from the first line of stdin");
  setpw->add_option("user", o->user, "The guest user")->required();
  setpw->add_flag("--crypted", o->crypted, "The input is already a crypt(3) hash");
  setpw->callback([&g, run = r.run, o] {
    *run = [&g, o] {
      std::string password;
      if (!std::getline(std::cin, password)) {
        std::fprintf(stderr, "qtx: set-password: no password on standard input\n");
        return 2;
      }
      return with_agent(g, kCallDeadline, [&](host::Agent& a, Output& out, const Deadline& d) {
        v1::SetPasswordRequest req;
        req.set_user(o->user);
        req.set_password(password);
        req.set_crypted(o->crypted);
        return print_result(out, d, a.set_password(req, d.call()), "password set for " + guest_text(o->user));
      });
    };
  });
}

struct SshKeyOptions {
  std::string user;
  std::vector<std::string> keys;  // add and remove: authorized_keys lines
};

// ssh-key list|add|remove.
void add_ssh_key_command(const Registry& r) {
  auto* ssh = r.app.add_subcommand("ssh-key", "List, add or remove a guest user's authorized SSH keys");
  ssh->require_subcommand(1);
  const std::pair<const char*, v1::SshKeysRequest::Action> verbs[] = {{"list", v1::SshKeysRequest::ACTION_LIST},
                                                                      {"add", v1::SshKeysRequest::ACTION_ADD},
                                                                      {"remove", v1::SshKeysRequest::ACTION_REMOVE}};
  for (const auto& [verb, action] : verbs) {
    auto o = std::make_shared<SshKeyOptions>();
    auto* s = ssh->add_subcommand(verb, std::string(verb) + " keys");
    s->add_option("user", o->user, "The guest user")->required();
    if (action != v1::SshKeysRequest::ACTION_LIST) s->add_option("keys", o->keys, "authorized_keys lines")->required();
    r.on_agent(s, kCallDeadline, [o, action = action](host::Agent& a, Output& out, const Deadline& d) {
      v1::SshKeysRequest req;
      req.set_action(action);
      req.set_user(o->user);
      for (const auto& k : o->keys) req.add_keys(k);
      auto res = a.ssh_keys(req, d.call());
      // One key per line: a key holding a newline cannot forge another.
      return print_result(out, d, res, res ? join_guest_text(res->keys(), "\n") : "");
    });
  }
}

struct TimeSyncOptions {
  bool hwclock = false;  // also write the guest's RTC
};

// time sync|get.
void add_time_command(const Registry& r) {
  auto* time = r.app.add_subcommand("time", "The guest's clock");
  time->require_subcommand(1);
  auto o = std::make_shared<TimeSyncOptions>();
  auto* sync = time->add_subcommand("sync", "Set the guest's clock to this host's");
  sync->add_flag("--hwclock", o->hwclock, "Also write the guest's RTC");
  r.on_agent(sync, kCallDeadline, [o](host::Agent& a, Output& out, const Deadline& d) {
    return print_result(out, d, a.time_sync(o->hwclock, d.call()), "guest clock set");
  });
  r.on_agent(time->add_subcommand("get", "Print the guest's clock"), kCallDeadline,
             [](host::Agent& a, Output& out, const Deadline& d) {
               auto res = a.time_get({}, d.call());
               return print_result(out, d, res,
                                   res ? std::to_string(res->unix_time_ns() / 1000000000) + "." +
                                             std::to_string(res->unix_time_ns() % 1000000000 / 1000000 + 1000).substr(1)
                                       : "");
             });
}

}  // namespace

void start_signal_thread() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::thread([set] {
    for (;;) {
      int sig = 0;
      if (sigwait(&set, &sig) != 0) continue;
      std::lock_guard<std::mutex> lock(g_interrupt_mu);
      if (g_on_interrupt == nullptr) std::_Exit(128 + sig);
      (*g_on_interrupt)(sig);
    }
  }).detach();
}

void add_agent_commands(CLI::App& app, GlobalOptions& g, std::function<int()>* run) {
  const Registry r{app, g, run};
  add_ping_command(r);
  add_info_command(r);
  add_wait_ready_command(r);
  add_exec_command(r);
  add_cp_command(r);
  add_telemetry_command(r);
  add_freeze_commands(r);
  add_power_commands(r);
  add_set_password_command(r);
  add_ssh_key_command(r);
  add_time_command(r);
}

}  // namespace qtx::cli
