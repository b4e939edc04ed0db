// power, time, hostname, network, processes.
#include <dirent.h>
#include <fcntl.h>
#include <linux/rtc.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <ctime>
#include <limits>
#include <spdlog/spdlog.h>
#include <sstream>

#include "exec/child_reaper.h"
#include "exec/spawn.h"
#include "freeze/freeze_manager.h"
#include "handlers.h"
#include "qtx/quote.h"
#include "reply.h"
#include "session.h"
#include "system/atomic_file.h"
#include "telemetry/collector.h"

namespace qtx::agent {
namespace {

// The command for a power action: configured, else what this system has.
std::vector<std::string> power_command(const AgentConfig& c, v1::PowerRequest::Action a) {
  const auto& configured = a == v1::PowerRequest::ACTION_POWEROFF ? c.poweroff_command
                           : a == v1::PowerRequest::ACTION_REBOOT ? c.reboot_command
                                                                  : c.halt_command;
  if (!configured.empty()) return configured;
  const char* verb = a == v1::PowerRequest::ACTION_POWEROFF ? "poweroff"
                     : a == v1::PowerRequest::ACTION_REBOOT ? "reboot"
                                                            : "halt";
  struct stat st {};
  if (::stat("/run/systemd/system", &st) == 0) return {"/bin/systemctl", verb};
  for (const char* dir : {"/sbin/", "/usr/sbin/", "/bin/", "/usr/bin/"}) {
    const std::string path = std::string(dir) + verb;
    if (::access(path.c_str(), X_OK) == 0) return {path};
  }
  return {};
}

void do_power(AgentContext& agent, v1::PowerRequest::Action a) {
  auto cmd = power_command(agent.config, a);
  spdlog::info("audit: power action {} via {}", static_cast<int>(a), cmd.empty() ? "reboot(2)" : cmd[0]);
  ::sync();
  if (cmd.empty()) {
    ::reboot(a == v1::PowerRequest::ACTION_POWEROFF ? RB_POWER_OFF
             : a == v1::PowerRequest::ACTION_REBOOT ? RB_AUTOBOOT
                                                    : RB_HALT_SYSTEM);
    spdlog::error("reboot(2) failed: {}", std::strerror(errno));
    return;
  }
  asio::post(agent.workers, [cmd, &agent] {
    SpawnSpec spec;
    spec.argv = cmd;
    spec.path = resolve_executable(cmd[0], "/usr/sbin:/usr/bin:/sbin:/bin");
    spec.env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin"};
    // Nobody reads its output: a pipe would kill it with SIGPIPE as soon as
    // it printed anything (systemctl does), before it acted.
    spec.discard_output = true;
    auto p = std::make_shared<Spawned>(spawn(spec));
    asio::post(agent.io, [p, cmd, &agent] {
      if (p->pid > 0)
        agent.reaper->watch(p->pid, [cmd](int status) {
          if (WIFSIGNALED(status)) spdlog::error("{} was killed by signal {}", cmd[0], WTERMSIG(status));
          else if (WEXITSTATUS(status) != 0) spdlog::error("{} exited with {}", cmd[0], WEXITSTATUS(status));
        });
      if (p->error != 0)
        spdlog::error("power command {} failed at {}: {}", cmd[0], p->failed_step, std::strerror(p->error));
    });
  });
}

bool valid_hostname(const std::string& h) {
  if (h.empty() || h.size() > 64) return false;  // HOST_NAME_MAX
  std::size_t label = 0;
  for (std::size_t i = 0; i < h.size(); ++i) {
    const char c = h[i];
    if (c == '.') {
      if (label == 0 || h[i - 1] == '-') return false;
      label = 0;
      continue;
    }
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-')) return false;
    if (c == '-' && label == 0) return false;
    if (++label > 63) return false;
  }
  return label > 0 && h.back() != '-';
}

// The mountpoints of a freeze for its audit line: the first few, escaped.
std::string describe_mountpoints(const v1::FreezeRequest& req) {
  constexpr int kShown = 4;
  if (req.mountpoints_size() == 0) return "all filesystems";
  std::string out;
  for (int i = 0; i < req.mountpoints_size() && i < kShown; ++i) {
    if (i > 0) out += " ";
    out += printable(req.mountpoints(i));
  }
  if (req.mountpoints_size() > kShown) out += " and " + std::to_string(req.mountpoints_size() - kShown) + " more";
  return out;
}

}  // namespace

void handle_power(Session& s, std::uint64_t id, const v1::PowerRequest& req) {
  if (req.action() == v1::PowerRequest::ACTION_UNSPECIFIED || !v1::PowerRequest::Action_IsValid(req.action())) {
    return s.respond(id, error_response(v1::ERROR_CODE_INVALID_ARGUMENT,
                                        "power needs an action: poweroff, reboot or halt"));
  }
  s.respond(id, done_response());
  auto& agent = s.agent();
  const auto action = req.action();
  const auto delay = std::chrono::milliseconds(req.delay_ms());
  // The answer goes out first; then the delay; then the action.
  s.after_flush([&agent, action, delay] {
    auto timer = std::make_shared<asio::steady_timer>(agent.io, delay);
    timer->async_wait([timer, &agent, action](const asio::error_code& ec) {
      if (!ec) do_power(agent, action);
    });
  });
}

void handle_time_get(Session& s, std::uint64_t id, const v1::TimeGetRequest&) {
  timespec rt{}, mono{};
  ::clock_gettime(CLOCK_REALTIME, &rt);
  ::clock_gettime(CLOCK_MONOTONIC, &mono);
  v1::Response r;
  r.mutable_time_get()->set_unix_time_ns(static_cast<std::int64_t>(rt.tv_sec) * 1000000000 + rt.tv_nsec);
  r.mutable_time_get()->set_monotonic_ns(static_cast<std::int64_t>(mono.tv_sec) * 1000000000 + mono.tv_nsec);
  s.respond(id, std::move(r));
}

void handle_time_set(Session& s, std::uint64_t id, const v1::TimeSetRequest& req) {
  constexpr std::int64_t kYear2000 = 946684800LL * 1000000000;
  if (req.unix_time_ns() < kYear2000) {
    return s.respond(id,
                     error_response(v1::ERROR_CODE_INVALID_ARGUMENT, "refusing to set the clock before the year 2000"));
  }
  Reply reply(s.weak(), id);
  asio::post(s.agent().workers, [reply, req] {
    timespec ts{static_cast<time_t>(req.unix_time_ns() / 1000000000),
                static_cast<long>(req.unix_time_ns() % 1000000000)};
    if (::clock_settime(CLOCK_REALTIME, &ts) != 0) return reply.send(errno_response("setting the clock", errno));
    if (req.hwclock()) {
      int fd = ::open("/dev/rtc0", O_RDONLY | O_CLOEXEC);
      if (fd < 0) fd = ::open("/dev/rtc", O_RDONLY | O_CLOEXEC);
      if (fd < 0) return reply.send(errno_response("opening the RTC", errno));
      std::tm tm{};
      ::gmtime_r(&ts.tv_sec, &tm);
      rtc_time rtc{};
      rtc.tm_sec = tm.tm_sec;
      rtc.tm_min = tm.tm_min;
      rtc.tm_hour = tm.tm_hour;
      rtc.tm_mday = tm.tm_mday;
      rtc.tm_mon = tm.tm_mon;
      rtc.tm_year = tm.tm_year;
      const int rc = ::ioctl(fd, RTC_SET_TIME, &rtc);
      const int err = errno;
      ::close(fd);
      if (rc != 0) return reply.send(errno_response("setting the RTC", err));
    }
    spdlog::info("audit: clock set to {} ns{}", req.unix_time_ns(), req.hwclock() ? " (and the RTC)" : "");
    reply.done();
  });
}

void handle_hostname_get(Session& s, std::uint64_t id, const v1::HostnameGetRequest&) {
  struct utsname u {};
  ::uname(&u);
  v1::Response r;
  r.mutable_hostname_get()->set_hostname(u.nodename);
  s.respond(id, std::move(r));
}

void handle_hostname_set(Session& s, std::uint64_t id, const v1::HostnameSetRequest& req) {
  if (!valid_hostname(req.hostname())) {
    return s.respond(id, error_response(v1::ERROR_CODE_INVALID_ARGUMENT,
                                        "not a valid hostname (letters, digits, '-', dot-separated labels, at most 64 "
                                        "characters): \"" +
                                            req.hostname() + "\""));
  }
  Reply reply(s.weak(), id);
  const std::string file = s.agent().config.hostname_file;
  asio::post(s.agent().workers, [reply, req, file] {
    if (::sethostname(req.hostname().data(), req.hostname().size()) != 0) {
      return reply.send(errno_response("sethostname", errno));
    }
    if (req.persist()) {
      if (int err = replace_file(file, req.hostname() + "\n", 0644, 0, 0)) {
        return reply.send(errno_response("writing " + file, err));
      }
    }
    spdlog::info("audit: hostname set to {}{}", printable(req.hostname()), req.persist() ? " (persisted)" : "");
    reply.done();
  });
}

void handle_network(Session& s, std::uint64_t id, const v1::NetworkRequest&) {
  Reply reply(s.weak(), id);
  asio::post(s.agent().workers, [reply] {
    v1::Response r;
    collect_interfaces("/sys", r.mutable_network()->mutable_interfaces());
    reply.send(std::move(r));
  });
}

void handle_process_list(Session& s, std::uint64_t id, const v1::ProcessListRequest&) {
  Reply reply(s.weak(), id);
  asio::post(s.agent().workers, [reply] {
    v1::Response r;
    auto* list = r.mutable_process_list();
    const long ticks = ::sysconf(_SC_CLK_TCK);
    const long page = ::sysconf(_SC_PAGESIZE);
    DIR* d = ::opendir("/proc");
    if (d == nullptr) return reply.send(errno_response("/proc", errno));
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
      const std::string base = std::string("/proc/") + e->d_name;
      const std::string stat = read_small_file(base + "/stat");
      // pid (comm) state ppid ... : comm may hold spaces and parentheses.
      const auto open = stat.find('('), close = stat.rfind(')');
      if (open == std::string::npos || close == std::string::npos || close + 2 >= stat.size()) continue;
      auto* p = list->add_processes();
      p->set_pid(static_cast<std::uint32_t>(std::strtoul(e->d_name, nullptr, 10)));
      p->set_name(stat.substr(open + 1, close - open - 1));
      std::istringstream rest(stat.substr(close + 2));
      std::string state;
      long ppid = 0;
      rest >> state >> ppid;
      std::string skip;
      for (int i = 0; i < 9; ++i) rest >> skip;  // pgrp .. cmajflt
      unsigned long long utime = 0, stime = 0;
      rest >> utime >> stime;
      for (int i = 0; i < 8; ++i) rest >> skip;  // cutime .. vsize
      long long rss_pages = 0;
      rest >> rss_pages;
      p->set_state(state);
      p->set_ppid(static_cast<std::uint32_t>(ppid));
      p->set_cpu_time_ms(ticks > 0 ? (utime + stime) * 1000 / static_cast<unsigned long long>(ticks) : 0);
      p->set_rss_bytes(static_cast<std::uint64_t>(rss_pages > 0 ? rss_pages * page : 0));
      std::string cmdline = read_small_file(base + "/cmdline");
      std::size_t i = 0;
      while (i < cmdline.size()) {
        std::size_t j = cmdline.find('\0', i);
        if (j == std::string::npos) j = cmdline.size();
        p->add_cmdline(cmdline.substr(i, j - i));
        i = j + 1;
      }
      struct stat st {};
      if (::stat(base.c_str(), &st) == 0) p->set_uid(st.st_uid);
    }
    ::closedir(d);
    reply.send(std::move(r));
  });
}

namespace {

// The Tgid line of /proc/PID/status: the process a task belongs to; -1 when
// there is no such task.
long thread_group_of(std::uint32_t pid) {
  const std::string status = read_small_file("/proc/" + std::to_string(pid) + "/status");
  const std::size_t at = status.find("\nTgid:");
  if (at == std::string::npos) return -1;
  return std::strtol(status.c_str() + at + 6, nullptr, 10);
}

bool is_agent_task(std::uint32_t pid) {
  struct stat st {};
  return ::stat(("/proc/self/task/" + std::to_string(pid)).c_str(), &st) == 0;
}

// Closes a pidfd.
struct FdCloser {
  int fd = -1;
  ~FdCloser() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

void handle_process_kill(Session& s, std::uint64_t id, const v1::ProcessKillRequest& req) {
  // kill(2) takes a pid_t: 0 is the agent's own process group, and a value
  // above INT_MAX would wrap to a negative pid_t, a process group or, for
  // 4294967295, every process. Only a single process may be named.
  const std::uint32_t pid = req.pid();
  const int sig = req.signal() ? req.signal() : SIGTERM;
  if (pid == 0 || pid > static_cast<std::uint32_t>(std::numeric_limits<pid_t>::max())) {
    return s.respond(id, error_response(v1::ERROR_CODE_INVALID_ARGUMENT,
                                        "not a process id: " + std::to_string(pid) + " (1 to " +
                                            std::to_string(std::numeric_limits<pid_t>::max()) + ")"));
  }
  if (pid == 1 && !s.agent().config.process_kill_init) {
    return s.respond(id, error_response(v1::ERROR_CODE_INVALID_ARGUMENT,
                                        "refusing to signal pid 1 (init): policy.process_kill_init is off"));
  }
  if (pid == static_cast<std::uint32_t>(::getpid())) {
    return s.respond(id, error_response(v1::ERROR_CODE_INVALID_ARGUMENT, "refusing to signal the agent itself"));
  }
  if (sig < 1 || sig >= NSIG) {
    return s.respond(id,
                     error_response(v1::ERROR_CODE_INVALID_ARGUMENT, "no such signal: " + std::to_string(sig) +
                                                                         " (1 to " + std::to_string(NSIG - 1) + ")"));
  }
  // kill(2) given a thread id signals that thread's whole process, so only a
  // process's main thread may be named: never a task of the agent, nor a
  // thread of pid 1 or of any other process. The pidfd pins the process whose
  // pid was checked: if it exits and the pid is reused before the signal,
  // pidfd_send_signal fails with ESRCH rather than reaching the newcomer.
  // pidfd_open itself refuses a pid that is not a thread-group leader (EINVAL
  // before Linux 6.9, ENOENT since); /proc then says whose thread it is.
  const auto not_found = [&](int e) {
    s.respond(id, error_response(v1::ERROR_CODE_NOT_FOUND, "no process " + std::to_string(pid), e));
  };
  FdCloser pidfd{static_cast<int>(::syscall(SYS_pidfd_open, static_cast<pid_t>(pid), 0u))};
  const int open_errno = pidfd.fd < 0 ? errno : 0;
  const bool not_leader = open_errno == EINVAL || open_errno == ENOENT;
  if (open_errno == ESRCH) return not_found(open_errno);
  if (open_errno != 0 && open_errno != ENOSYS && !not_leader) {
    return s.respond(id, errno_response("pidfd_open", open_errno));
  }
  if (is_agent_task(pid)) {
    return s.respond(id, error_response(v1::ERROR_CODE_INVALID_ARGUMENT,
                                        "refusing to signal the agent itself: " + std::to_string(pid) +
                                            " is one of its threads"));
  }
  const long tgid = thread_group_of(pid);
  if (tgid < 0) return not_found(ESRCH);
  if (not_leader || tgid != static_cast<long>(pid)) {
    return s.respond(id, error_response(v1::ERROR_CODE_INVALID_ARGUMENT,
                                        "not a process id: " + std::to_string(pid) + " is a thread of process " +
                                            std::to_string(tgid) + "; name the process"));
  }
  const int rc = pidfd.fd >= 0 ? static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd.fd, sig, nullptr, 0u))
                               : ::kill(static_cast<pid_t>(pid), sig);
  if (rc != 0) {
    const int e = errno;
    if (e == ESRCH) return not_found(e);
    return s.respond(id, errno_response(pidfd.fd >= 0 ? "pidfd_send_signal" : "kill", e));
  }
  s.respond(id, done_response());
}

}  // namespace qtx::agent

namespace qtx::agent {

void handle_freeze(Session& s, std::uint64_t id, const v1::FreezeRequest& req) {
  Reply reply(s.weak(), id);
  spdlog::info("audit: freeze (id {}) {}, timeout {} ms", id, describe_mountpoints(req),
               req.timeout_ms() ? req.timeout_ms() : s.agent().config.freeze_timeout_ms);
  s.agent().freeze->freeze({req.mountpoints().begin(), req.mountpoints().end()}, req.timeout_ms(),
                           [reply](v1::Response r) { reply.send(std::move(r)); });
}

void handle_thaw(Session& s, std::uint64_t id, const v1::ThawRequest&) {
  Reply reply(s.weak(), id);
  s.agent().freeze->thaw("request", [reply](v1::Response r) { reply.send(std::move(r)); });
}

void handle_freeze_status(Session& s, std::uint64_t id, const v1::FreezeStatusRequest&) {
  v1::Response r;
  *r.mutable_freeze_status() = s.agent().freeze->status();
  s.respond(id, std::move(r));
}

}  // namespace qtx::agent
