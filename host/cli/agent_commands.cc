#include "agent_commands.h"

#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

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

namespace qtx::cli {

using json::EnvelopeJson;
using json::json_quote;
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
    case ErrorKind::kAlreadyExists:
      return e.guest_code() ? kExitFailed : kExitNoAgent;
    case ErrorKind::kDenied:
    case ErrorKind::kUnsupported:
      return kExitRefused;
    case ErrorKind::kTimeout:
      return e.guest_code() ? kExitFailed : kExitTimeout;
    default:
      return kExitFailed;
  }
}

std::chrono::milliseconds millis(double seconds) {
  return std::chrono::milliseconds(static_cast<long long>(seconds * 1000));
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
// (exit 130); inside an InterruptScope, call its function instead (cancel
// the exec, stop watching). The signals are delivered to one thread only
// (see start_signal_thread), which calls the function under the lock, so a
// scope never ends while its function runs.
std::mutex g_interrupt_mu;
std::function<void()>* g_on_interrupt = nullptr;

class InterruptScope {
 public:
  explicit InterruptScope(std::function<void()> fn) : fn_(std::move(fn)) {
    std::lock_guard<std::mutex> lock(g_interrupt_mu);
    g_on_interrupt = &fn_;
  }
  ~InterruptScope() {
    std::lock_guard<std::mutex> lock(g_interrupt_mu);
    g_on_interrupt = nullptr;
  }

 private:
  std::function<void()> fn_;
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

// Connects and runs `fn(agent, out)`.
int with_agent(const GlobalOptions& g, const std::function<int(host::Agent&, Output&)>& fn) {
  Output out(g.json);
  int code = 0;
  auto c = Connection::open(g, out, &code);
  if (!c) return code;
  return fn(*c->agent, out);
}


int cmd_ping(const GlobalOptions& g, host::Agent& agent, Output& out) {
  auto t0 = std::chrono::steady_clock::now();
  auto r = agent.ping({});
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count();
  if (!r) return out.fail(r.error());
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
  std::printf("ready: qtx-agent %s, instance %s\n", id->version().c_str(), id->instance_id().c_str());
  return kExitOk;
}

int cmd_info(const GlobalOptions& g, host::Agent& agent, Output& out) {
  auto r = agent.info({});
  if (!r) return out.fail(r.error());
  if (g.json) return out.print_message(*r);
  const auto& a = r->agent();
  std::printf("agent         qtx-agent %s\n", a.version().c_str());
  std::printf("instance      %s\n", a.instance_id().c_str());
  std::printf("boot id       %s\n", a.boot_id().c_str());
  std::printf("os            %s\n", r->os().pretty_name().empty() ? r->os().name().c_str() : r->os().pretty_name().c_str());
  std::printf("kernel        %s %s\n", r->kernel_release().c_str(), r->arch().c_str());
  std::printf("hostname      %s\n", r->hostname().c_str());
  std::printf("timezone      %s\n", r->timezone().c_str());
  std::string allowed, denied;
  for (const auto& cap : a.capabilities()) (cap.allowed() ? allowed : denied) += " " + cap.name();
  std::printf("allowed      %s\n", allowed.c_str());
  if (!denied.empty()) std::printf("denied       %s\n", denied.c_str());
  std::string roots;
  for (const auto& root : r->policy().file_roots()) roots += " " + root;
  std::printf("file roots   %s\n", roots.empty() ? " (anywhere)" : roots.c_str());
  const auto& c = r->session();
  std::printf("this session  %llu bytes and %llu frames from the host, %llu bytes dropped (%llu since the agent started)\n",
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

int cmd_exec(const GlobalOptions& g, const ExecOptions& o, host::Agent& agent, Output& out) {
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
    streams.on_stdout = [](std::string_view d) {
      std::fwrite(d.data(), 1, d.size(), stdout);
      std::fflush(stdout);
    };
    streams.on_stderr = [](std::string_view d) {
      std::fwrite(d.data(), 1, d.size(), stderr);
      std::fflush(stderr);
    };
  }
  std::mutex mu;
  std::condition_variable cv;
  std::optional<host::Result<host::ExecOutcome>> result;
  host::CallId id = agent.exec(req, streams, {.timeout = 0ms}, [&](host::Result<host::ExecOutcome> r) {
    std::lock_guard<std::mutex> lock(mu);
    result.emplace(std::move(r));
    cv.notify_all();
  });
  {
    InterruptScope interrupt([&] { agent.cancel(id); });
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return result.has_value(); });
  }
  if (!*result) return out.fail(result->error());
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
};

int run_copy(const GlobalOptions& g, const CopyOptions& o, bool upload, host::Agent& agent, Output& out);

// Checks the arguments before connecting: a usage error needs no agent.
int cmd_cp(const GlobalOptions& g, const CopyOptions& o) {
  const bool upload = !o.to.empty() && o.to[0] == ':';
  const bool download = !o.from.empty() && o.from[0] == ':';
  if (!o.mode.empty() && o.mode.find_first_not_of("01234567") != std::string::npos) {
    std::fprintf(stderr, "qtx: cp: --mode takes an octal mode such as 0644, not '%s'\n", o.mode.c_str());
    return 2;
  }
  if (upload == download) {
    std::fprintf(stderr, "qtx: cp: exactly one side must be a guest path, written :PATH (cp LOCAL :REMOTE or cp :REMOTE LOCAL)\n");
    return 2;
  }
  return with_agent(g, [&](host::Agent& agent, Output& out) { return run_copy(g, o, upload, agent, out); });
}

int run_copy(const GlobalOptions& g, const CopyOptions& o, bool upload, host::Agent& agent, Output& out) {
  ProgressBar bar(!g.json);
  host::TransferOptions t;
  t.on_progress = [&bar](const host::TransferProgress& p) { bar.update(p); };
  t.verify_sha256 = !o.no_sha256;
  host::Result<host::TransferResult> r = Error(ErrorKind::kLocal, "");
  if (upload) {
    v1::FileWriteRequest w;
    w.set_path(o.to.substr(1));
    w.set_atomic(!o.no_atomic);
    w.set_create_parents(o.parents);
    if (!o.mode.empty()) w.set_mode(static_cast<std::uint32_t>(std::stoul(o.mode, nullptr, 8)));
    r = agent.upload_file(o.from, w, t);
  } else {
    v1::FileReadRequest rd;
    rd.set_path(o.from.substr(1));
    std::string local = o.to;
    struct stat st;
    if (::stat(local.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      local += "/" + rd.path().substr(rd.path().find_last_of('/') + 1);
    }
    v1::FileStatRequest sr;
    sr.set_path(rd.path());
    sr.set_follow_symlinks(true);
    if (auto s = agent.file_stat(sr); s) t.expected_total = s->size();
    r = agent.download_file(rd, local, t);
  }
  bar.finish();
  if (!r) return out.fail(r.error());
  if (g.json) {
    std::printf("{\"bytes\":%llu,\"sha256\":\"%s\"}\n", static_cast<unsigned long long>(r->bytes), r->sha256_hex.c_str());
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
  v1::TelemetryConfigRequest cfg;
  cfg.set_sample_now(true);
  if (interval > 0) cfg.set_interval_ms(static_cast<std::uint32_t>(interval * 1000));
  auto r = c->agent->telemetry_config(cfg);
  if (!r) return out.fail(r.error());
  const int wanted = watch ? count : 1;
  std::atomic<bool> stop{false};
  InterruptScope interrupt([&] {
    std::lock_guard<std::mutex> lock(mu);
    stop = true;
    cv.notify_all();
  });
  for (int shown = 0; wanted == 0 || shown < wanted; ++shown) {
    std::unique_lock<std::mutex> lock(mu);
    // A sample is due within the interval; a silent agent is reported.
    const auto limit = std::chrono::milliseconds(std::max<std::uint32_t>(r->interval_ms(), 1000)) * 3;
    if (!cv.wait_for(lock, limit, [&] { return stop || !samples.empty(); })) {
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
int print_result(Output& out, const host::Result<Resp>& r, const std::string& human) {
  if (!r) return out.fail(r.error());
  if (out.json()) return out.print_message(*r);
  if (!human.empty()) std::printf("%s\n", human.c_str());
  return kExitOk;
}

std::string join(const google::protobuf::RepeatedPtrField<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : " ") + x;
  return s;
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
      (*g_on_interrupt)();
    }
  }).detach();
}

void add_agent_commands(CLI::App& app, GlobalOptions& g, std::function<int()>* run) {
  app.add_option("-s,--socket", g.socket, "The VM's channel socket (QEMU chardev); default $QTX_SOCKET")
      ->envname("QTX_SOCKET");
  app.add_flag("--listen", g.listen, "Listen on the socket and let QEMU connect (chardev server=off)");
  app.add_flag("--json", g.json, "Machine-readable output: one JSON document on stdout");
  app.add_option("--connect-timeout", g.connect_timeout, "Seconds to wait for the agent's handshake (default 5)")
      ->check(CLI::PositiveNumber);

  app.add_subcommand("ping", "Round trip to the agent")->callback([&g, run] {
    *run = [&g] { return with_agent(g, [&](host::Agent& a, Output& out) { return cmd_ping(g, a, out); }); };
  });
  app.add_subcommand("info", "The agent's identity, OS, kernel, hostname and policy")
      ->callback([&g, run] {
        *run = [&g] { return with_agent(g, [&](host::Agent& a, Output& out) { return cmd_info(g, a, out); }); };
      });
  auto* wait = app.add_subcommand("wait-ready", "Wait until the agent answers the handshake (exit 0), or time out (exit 3)");
  wait->add_option("--timeout", g.connect_timeout, "Seconds to wait (default 5)")->check(CLI::PositiveNumber);
  wait->callback([&g, run] {
    *run = [&g] { return with_agent(g, [&](host::Agent& a, Output& out) { return cmd_wait_ready(g, a, out); }); };
  });

  auto exec_opts = std::make_shared<ExecOptions>();
  auto* exec = app.add_subcommand("exec", "Run a program in the guest, streaming its output; exits with its exit code");
  exec->add_option("--timeout", exec_opts->timeout, "Seconds before the agent kills it (default: the guest's policy)")
      ->check(CLI::NonNegativeNumber);
  exec->add_flag("--stdin", exec_opts->stdin_data, "Send this program's standard input to it");
  exec->add_option("--cwd", exec_opts->cwd, "Working directory in the guest");
  exec->add_option("--user", exec_opts->user, "Run as this guest user");
  exec->add_option("--env", exec_opts->env, "NAME=value (replaces the environment; repeatable)")
      ->allow_extra_args(false);
  exec->add_option("command", exec_opts->argv, "Program and arguments (after --)")->required();
  exec->callback([&g, run, exec_opts] {
    *run = [&g, exec_opts] {
      return with_agent(g, [&](host::Agent& a, Output& out) { return cmd_exec(g, *exec_opts, a, out); });
    };
  });

  auto cp_opts = std::make_shared<CopyOptions>();
  auto* cp = app.add_subcommand("cp", "Copy a file in (cp LOCAL :REMOTE) or out (cp :REMOTE LOCAL), sha256-verified");
  cp->add_option("from", cp_opts->from, "Source: a local path or :GUEST_PATH")->required();
  cp->add_option("to", cp_opts->to, "Destination: a local path or :GUEST_PATH")->required();
  cp->add_flag("--no-atomic", cp_opts->no_atomic, "Upload: write in place instead of replacing atomically");
  cp->add_flag("-p,--parents", cp_opts->parents, "Upload: create missing parent directories");
  cp->add_option("--mode", cp_opts->mode, "Upload: octal mode of a new file (default 0644)");
  cp->add_flag("--no-sha256", cp_opts->no_sha256,
               "Skip the end-to-end sha256 (chunks are still crc32c-checked): faster where the guest lacks SHA instructions");
  cp->callback([&g, run, cp_opts] { *run = [&g, cp_opts] { return cmd_cp(g, *cp_opts); }; });

  auto tel = std::make_shared<std::tuple<bool, double, int>>(false, 0.0, 0);
  auto* telemetry = app.add_subcommand("telemetry", "Print a telemetry sample, or keep printing them with --watch");
  telemetry->add_flag("-w,--watch", std::get<0>(*tel), "Print every sample until interrupted");
  telemetry->add_option("--interval", std::get<1>(*tel), "Seconds between samples (changes the agent's interval)")
      ->check(CLI::PositiveNumber);
  telemetry->add_option("--count", std::get<2>(*tel), "With --watch: stop after this many samples")
      ->check(CLI::PositiveNumber);
  telemetry->callback([&g, run, tel] {
    *run = [&g, tel] { return cmd_telemetry(g, std::get<0>(*tel), std::get<1>(*tel), std::get<2>(*tel)); };
  });

  auto freeze_opts = std::make_shared<std::pair<std::vector<std::string>, double>>();
  auto* freeze = app.add_subcommand("freeze", "Freeze the guest's filesystems (all, or the mountpoints given)");
  freeze->add_option("mountpoints", freeze_opts->first, "Mountpoints (default: every freezable one)");
  freeze->add_option("--timeout", freeze_opts->second, "Seconds before the agent thaws by itself (default: the guest's)")
      ->check(CLI::NonNegativeNumber);
  freeze->callback([&g, run, freeze_opts] {
    *run = [&g, freeze_opts] {
      return with_agent(g, [&](host::Agent& a, Output& out) {
        v1::FreezeRequest req;
        for (const auto& m : freeze_opts->first) req.add_mountpoints(m);
        req.set_timeout_ms(static_cast<std::uint32_t>(freeze_opts->second * 1000));
        auto r = a.freeze(req, {.timeout = 120s});
        return print_result(out, r, r ? "frozen: " + join(r->frozen()) : "");
      });
    };
  });
  app.add_subcommand("thaw", "Thaw the guest's filesystems")->callback([&g, run] {
    *run = [&g] {
      return with_agent(g, [](host::Agent& a, Output& out) { return print_result(out, a.thaw({}, {.timeout = 120s}), "thawed"); });
    };
  });
  app.add_subcommand("freeze-status", "Whether the guest's filesystems are frozen")->callback([&g, run] {
    *run = [&g] {
      return with_agent(g, [](host::Agent& a, Output& out) {
        auto r = a.freeze_status({});
        return print_result(out, r, r ? (r->frozen() ? "frozen: " + join(r->mountpoints()) : std::string("thawed")) : "");
      });
    };
  });

  for (const char* name : {"shutdown", "reboot"}) {
    auto delay = std::make_shared<double>(0);
    const bool reboot = std::string(name) == "reboot";
    auto* p = app.add_subcommand(name, reboot ? "Reboot the guest" : "Power the guest off");
    p->add_option("--delay", *delay, "Seconds to wait first")->check(CLI::NonNegativeNumber);
    p->callback([&g, run, delay, reboot] {
      *run = [&g, delay, reboot] {
        return with_agent(g, [&](host::Agent& a, Output& out) {
          v1::PowerRequest req;
          req.set_action(reboot ? v1::PowerRequest::ACTION_REBOOT : v1::PowerRequest::ACTION_POWEROFF);
          req.set_delay_ms(static_cast<std::uint32_t>(*delay * 1000));
          return print_result(out, a.power(req), reboot ? "rebooting" : "powering off");
        });
      };
    });
  }

  auto pw = std::make_shared<std::pair<std::string, bool>>();
  auto* setpw = app.add_subcommand("set-password", "Set a guest user's password, read from the first line of stdin");
  setpw->add_option("user", pw->first, "The guest user")->required();
  setpw->add_flag("--crypted", pw->second, "The input is already a crypt(3) hash");
  setpw->callback([&g, run, pw] {
    *run = [&g, pw] {
      std::string password;
      if (!std::getline(std::cin, password)) {
        std::fprintf(stderr, "qtx: set-password: no password on standard input\n");
        return 2;
      }
      return with_agent(g, [&](host::Agent& a, Output& out) {
        v1::SetPasswordRequest req;
        req.set_user(pw->first);
        req.set_password(password);
        req.set_crypted(pw->second);
        return print_result(out, a.set_password(req), "password set for " + pw->first);
      });
    };
  });

  auto* ssh = app.add_subcommand("ssh-key", "List, add or remove a guest user's authorized SSH keys");
  ssh->require_subcommand(1);
  for (const char* verb : {"list", "add", "remove"}) {
    auto args = std::make_shared<std::pair<std::string, std::vector<std::string>>>();
    auto* s = ssh->add_subcommand(verb, std::string(verb) + " keys");
    s->add_option("user", args->first, "The guest user")->required();
    if (std::string(verb) != "list") s->add_option("keys", args->second, "authorized_keys lines")->required();
    const auto action = std::string(verb) == "list"  ? v1::SshKeysRequest::ACTION_LIST
                        : std::string(verb) == "add" ? v1::SshKeysRequest::ACTION_ADD
                                                     : v1::SshKeysRequest::ACTION_REMOVE;
    s->callback([&g, run, args, action] {
      *run = [&g, args, action] {
        return with_agent(g, [&](host::Agent& a, Output& out) {
          v1::SshKeysRequest req;
          req.set_action(action);
          req.set_user(args->first);
          for (const auto& k : args->second) req.add_keys(k);
          auto r = a.ssh_keys(req);
          std::string keys;
          if (r) {
            for (const auto& k : r->keys()) keys += (keys.empty() ? "" : "\n") + k;
          }
          return print_result(out, r, keys);
        });
      };
    });
  }

  auto* time = app.add_subcommand("time", "The guest's clock");
  time->require_subcommand(1);
  auto hw = std::make_shared<bool>(false);
  auto* sync = time->add_subcommand("sync", "Set the guest's clock to this host's");
  sync->add_flag("--hwclock", *hw, "Also write the guest's RTC");
  sync->callback([&g, run, hw] {
    *run = [&g, hw] {
      return with_agent(g, [&](host::Agent& a, Output& out) { return print_result(out, a.time_sync(*hw), "guest clock set"); });
    };
  });
  time->add_subcommand("get", "Print the guest's clock")->callback([&g, run] {
    *run = [&g] {
      return with_agent(g, [](host::Agent& a, Output& out) {
        auto r = a.time_get({});
        return print_result(out, r, r ? std::to_string(r->unix_time_ns() / 1000000000) + "." +
                                            std::to_string(r->unix_time_ns() % 1000000000 / 1000000 + 1000).substr(1)
                                      : "");
      });
    };
  });
}

}  // namespace qtx::cli
