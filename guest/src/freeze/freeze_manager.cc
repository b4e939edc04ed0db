#include "freeze_manager.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <asio/post.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <set>
#include <spdlog/spdlog.h>
#include <sstream>

#include "agent_context.h"
#include "exec/spawn.h"
#include "logging.h"
#include "qtx/quote.h"
#include "reply.h"
#include "system/atomic_file.h"
#include "telemetry/collector.h"

namespace qtx::agent {
namespace {

constexpr int kHookTimeoutMs = 30000;

std::int64_t now_unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Thaws `mounts`; returns the ones that failed (EINVAL = not frozen: fine).
std::vector<std::string> thaw_all(const std::vector<std::string>& mounts) {
  std::vector<std::string> failed;
  for (const auto& m : mounts) {
    int fd = ::open(m.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || (::ioctl(fd, FITHAW, 0) != 0 && errno != EINVAL)) failed.push_back(m);
    if (fd >= 0) ::close(fd);
  }
  return failed;
}

// Waits for a child with a deadline, through a pidfd (no polling).
int wait_child(pid_t pid, int timeout_ms) {
  int pfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pfd >= 0) {
    pollfd p{pfd, POLLIN, 0};
    int r = ::poll(&p, 1, timeout_ms);
    ::close(pfd);
    if (r == 0) {
      ::kill(-pid, SIGKILL);
    }
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

}  // namespace

std::string run_hooks(const std::string& dir, const std::string& arg) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return "";  // no hooks directory: nothing to run
  std::vector<std::string> hooks;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n[0] == '.') continue;
    const std::string path = dir + "/" + n;
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111)) hooks.push_back(path);
  }
  ::closedir(d);
  std::sort(hooks.begin(), hooks.end());
  for (const auto& h : hooks) {
    SpawnSpec spec;
    spec.path = h;
    spec.argv = {h, arg};
    spec.env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin"};
    spec.discard_output = true;
    Spawned p = spawn(spec);
    if (p.pid <= 0 || p.error != 0) {
      if (p.pid > 0) wait_child(p.pid, kHookTimeoutMs);
      return h + ": " + (p.error ? std::strerror(p.error) : "could not start");
    }
    p.stdin_fd.reset();
    const int status = wait_child(p.pid, kHookTimeoutMs);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
      return h + " " + arg + " failed (status " + std::to_string(status) + ")";
  }
  return "";
}

FreezeManager::FreezeManager(AgentContext& agent) : agent_(agent), auto_thaw_(agent.io) {}

std::string FreezeManager::state_path() const { return agent_.config.state_dir + "/freeze.state"; }

std::vector<std::string> FreezeManager::freezable_mountpoints(const std::string& mounts_text) {
  std::istringstream in(mounts_text);
  std::string line;
  std::vector<std::string> out;
  std::set<std::string> devices;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string dev, mnt, type, opts;
    if (!(ls >> dev >> mnt >> type >> opts)) continue;
    if (!TelemetryCollector::is_real_filesystem(type) || TelemetryCollector::is_network_filesystem(type)) continue;
    if (opts == "ro" || opts.rfind("ro,", 0) == 0) continue;
    if (!devices.insert(dev).second) continue;
    out.push_back(mnt);
  }
  std::reverse(out.begin(), out.end());
  return out;
}

void FreezeManager::restore() {
  const std::string text = read_small_file(state_path());
  if (text.empty()) return;
  std::istringstream in(text);
  std::string line;
  std::vector<std::string> mounts;
  std::int64_t deadline = 0;
  while (std::getline(in, line)) {
    if (line.rfind("deadline ", 0) == 0) deadline = std::strtoll(line.c_str() + 9, nullptr, 10);
    if (line.rfind("mount ", 0) == 0) mounts.push_back(line.substr(6));
  }
  if (mounts.empty()) return;
  frozen_ = mounts;
  set_log_hold(true);
  spdlog::warn("filesystems were frozen by an earlier agent; resuming the frozen state ({} mountpoints)",
               mounts.size());
  arm_auto_thaw(deadline);
}

void FreezeManager::arm_auto_thaw(std::int64_t deadline_unix_ms) {
  deadline_unix_ms_ = deadline_unix_ms;
  const std::int64_t left = std::max<std::int64_t>(0, deadline_unix_ms - now_unix_ms());
  auto_thaw_.expires_after(std::chrono::milliseconds(left));
  auto_thaw_.async_wait([this](const asio::error_code& ec) {
    if (ec || frozen_.empty()) return;
    thaw("auto-thaw", [](v1::Response) {});
  });
}

void FreezeManager::notify(bool frozen, const std::string& reason) {
  if (!sink_) return;
  v1::FreezeStateChanged ev;
  ev.set_frozen(frozen);
  for (const auto& m : frozen_) ev.add_mountpoints(m);
  ev.set_reason(reason);
  sink_(ev);
}

void FreezeManager::freeze(std::vector<std::string> mountpoints, std::uint32_t timeout_ms, Done done) {
  if (frozen()) {
    return done(error_response(v1::ERROR_CODE_FAILED_PRECONDITION,
                               "filesystems are already frozen (or a freeze/thaw is running)"));
  }
  for (const auto& m : mountpoints) {
    if (m.empty() || m[0] != '/') {
      return done(error_response(v1::ERROR_CODE_INVALID_ARGUMENT, "mountpoints must be absolute: " + printable(m)));
    }
    // The state file holds one mountpoint a line, and open(2) stops at a NUL.
    if (m.find_first_of(std::string("\n\0", 2)) != std::string::npos) {
      return done(error_response(v1::ERROR_CODE_INVALID_ARGUMENT,
                                 "a mountpoint cannot contain a newline or NUL: " + printable(m)));
    }
  }
  if (timeout_ms > agent_.config.freeze_max_timeout_ms) {
    return done(error_response(v1::ERROR_CODE_INVALID_ARGUMENT,
                               "freeze timeout " + std::to_string(timeout_ms) + " ms is above the guest's limit of " +
                                   std::to_string(agent_.config.freeze_max_timeout_ms) +
                                   " ms (freeze.max_timeout_ms)"));
  }
  busy_ = true;
  const std::uint32_t timeout = timeout_ms ? timeout_ms : agent_.config.freeze_timeout_ms;
  const std::string hooks = agent_.config.freeze_hooks_dir;
  const std::string state = state_path();
  const std::string state_dir = agent_.config.state_dir;
  asio::post(agent_.workers,
             [this, mountpoints = std::move(mountpoints), timeout, hooks, state, state_dir, done]() mutable {
               std::vector<std::string> mounts =
                   mountpoints.empty() ? freezable_mountpoints(read_small_file("/proc/mounts")) : mountpoints;
               v1::Response result;
               std::vector<std::string> frozen;
               const std::int64_t deadline = now_unix_ms() + timeout;
               std::string failure = run_hooks(hooks, "freeze");
               if (!failure.empty()) {
                 run_hooks(hooks, "thaw");
                 result = error_response(v1::ERROR_CODE_FAILED_PRECONDITION, "freeze hook: " + failure);
               } else {
                 std::string text = "deadline " + std::to_string(deadline) + "\n";
                 for (const auto& m : mounts) text += "mount " + m + "\n";
                 ::mkdir(state_dir.c_str(), 0700);
                 int err = replace_file(state, text, 0600, 0, 0);
                 if (err != 0) {
                   run_hooks(hooks, "thaw");
                   result = errno_response("recording the freeze in " + state, err);
                 } else {
                   set_log_hold(true);  // from here on, nothing is written to disk by the logger
                   for (const auto& m : mounts) {
                     int fd = ::open(m.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                     const int rc = fd < 0 ? -1 : ::ioctl(fd, FIFREEZE, 0);
                     const int e = errno;
                     if (fd >= 0) ::close(fd);
                     if (rc != 0) {
                       thaw_all(frozen);
                       ::unlink(state.c_str());
                       set_log_hold(false);
                       run_hooks(hooks, "thaw");
                       result = errno_response("freezing " + m, e);
                       frozen.clear();
                       break;
                     }
                     frozen.push_back(m);
                   }
                   if (!frozen.empty() || mounts.empty()) {
                     for (const auto& m : frozen) result.mutable_freeze()->add_frozen(m);
                     if (mounts.empty()) {
                       ::unlink(state.c_str());
                       set_log_hold(false);
                       result.mutable_freeze();
                     }
                   }
                 }
               }
               asio::post(agent_.io, [this, result = std::move(result), frozen, deadline, done]() mutable {
                 busy_ = false;
                 if (!frozen.empty()) {
                   frozen_ = frozen;
                   arm_auto_thaw(deadline);
                   notify(true, "request");
                 }
                 done(std::move(result));
               });
             });
}

void FreezeManager::thaw(const std::string& reason, Done done) {
  if (busy_) return done(error_response(v1::ERROR_CODE_BUSY, "a freeze or thaw is running"));
  if (frozen_.empty()) return done(done_response());
  busy_ = true;
  auto_thaw_.cancel();
  const auto mounts = frozen_;
  const std::string hooks = agent_.config.freeze_hooks_dir;
  const std::string state = state_path();
  asio::post(agent_.workers, [this, mounts, hooks, state, reason, done] {
    std::vector<std::string> failed = thaw_all(mounts);
    v1::Response r;
    if (failed.empty()) {
      ::unlink(state.c_str());
      set_log_hold(false);  // held lines are written now
      std::string hook_failure = run_hooks(hooks, "thaw");
      if (!hook_failure.empty()) spdlog::warn("thaw hook: {}", hook_failure);
      r = done_response();
    } else {
      r = error_response(v1::ERROR_CODE_IO, "could not thaw " + failed.front());
    }
    asio::post(agent_.io, [this, r = std::move(r), failed, reason, done]() mutable {
      busy_ = false;
      if (failed.empty()) {
        spdlog::info("audit: filesystems thawed ({})", reason);
        notify(false, reason);
        frozen_.clear();
      }
      done(std::move(r));
    });
  });
}

v1::FreezeStatusResponse FreezeManager::status() const {
  v1::FreezeStatusResponse s;
  s.set_frozen(!frozen_.empty());
  for (const auto& m : frozen_) s.add_mountpoints(m);
  if (!frozen_.empty()) s.set_auto_thaw_unix_ms(deadline_unix_ms_);
  return s;
}

}  // namespace qtx::agent
