#include "spawn.h"

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>

namespace qtx::agent {
namespace {

// Child side of a failed step: report errno and the step through the status
// pipe, then exit. Only async-signal-safe calls from here on.
[[noreturn]] void child_fail(int status_fd, unsigned char step) {
  int err = errno;
  unsigned char msg[1 + sizeof(int)];
  msg[0] = step;
  std::memcpy(msg + 1, &err, sizeof(int));
  ssize_t ignored = ::write(status_fd, msg, sizeof(msg));
  (void)ignored;
  _exit(127);
}

void close_from(int first, int keep) {
  // close_range(2) where the kernel has it (5.9+), else one by one.
  if (keep > first) {
    if (::syscall(SYS_close_range, first, keep - 1, 0) != 0) {
      for (int fd = first; fd < keep; ++fd) ::close(fd);
    }
  }
  if (::syscall(SYS_close_range, keep + 1, ~0U, 0) != 0) {
    for (int fd = keep + 1; fd < 4096; ++fd) ::close(fd);
  }
}

const char* kSteps[] = {"fork", "setpgid", "dup2", "chdir", "setgroups", "setgid", "setuid", "execve", "pipe"};

}  // namespace

std::string resolve_executable(const std::string& argv0, const std::string& path_var) {
  if (argv0.find('/') != std::string::npos) return argv0;
  std::size_t i = 0;
  while (i <= path_var.size()) {
    std::size_t j = path_var.find(':', i);
    if (j == std::string::npos) j = path_var.size();
    std::string dir = path_var.substr(i, j - i);
    if (dir.empty()) dir = ".";
    const std::string candidate = dir + "/" + argv0;
    struct stat st {};
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
    i = j + 1;
  }
  return "";
}

Spawned spawn(const SpawnSpec& spec) {
  Spawned out;
  int in[2], outp[2] = {-1, -1}, errp[2] = {-1, -1}, status[2];
  const bool pipes = !spec.discard_output;
  if (!pipes) {
    outp[1] = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  }
  if (::pipe2(in, O_CLOEXEC) != 0 || (pipes && ::pipe2(outp, O_CLOEXEC) != 0) || outp[1] < 0 ||
      (pipes && !spec.merge_stderr && ::pipe2(errp, O_CLOEXEC) != 0) || ::pipe2(status, O_CLOEXEC) != 0) {
    out.error = errno;
    out.failed_step = "pipe";
    return out;
  }
  std::vector<char*> argv;
  for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& e : spec.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  pid_t pid = ::fork();
  if (pid == 0) {
    const int sfd = status[1];
    if (::setpgid(0, 0) != 0) child_fail(sfd, 1);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &dfl, nullptr);  // SIGPIPE was ignored
    if (::dup2(in[0], 0) < 0 || ::dup2(outp[1], 1) < 0 ||
        ::dup2(spec.merge_stderr || errp[1] < 0 ? outp[1] : errp[1], 2) < 0) {
      child_fail(sfd, 2);
    }
    // Only 0, 1, 2 and the status pipe stay (it closes itself at exec). The
    // agent keeps 0-2 open from its start, so the status pipe is above them.
    const int keep = sfd;
    close_from(3, keep);
    if (!spec.cwd.empty() && ::chdir(spec.cwd.c_str()) != 0) child_fail(keep, 3);
    if (spec.set_user) {
      if (::setgroups(spec.groups.size(), spec.groups.data()) != 0) child_fail(keep, 4);
      if (::setgid(spec.gid) != 0) child_fail(keep, 5);
      if (::setuid(spec.uid) != 0) child_fail(keep, 6);
    }
    ::execve(spec.path.c_str(), argv.data(), envp.data());
    child_fail(keep, 7);
  }
  ::close(in[0]);
  ::close(outp[1]);
  if (errp[1] >= 0) ::close(errp[1]);
  ::close(status[1]);
  if (pid < 0) {
    out.error = errno;
    out.failed_step = "fork";
    ::close(in[1]);
    if (outp[0] >= 0) ::close(outp[0]);
    if (errp[0] >= 0) ::close(errp[0]);
    ::close(status[0]);
    return out;
  }
  out.pid = pid;
  // EOF: the exec happened (the pipe closed on exec). Otherwise the step and errno.
  unsigned char msg[1 + sizeof(int)];
  ssize_t n;
  do {
    n = ::read(status[0], msg, sizeof(msg));
  } while (n < 0 && errno == EINTR);
  ::close(status[0]);
  out.stdin_fd.reset(in[1]);
  if (outp[0] >= 0) out.stdout_fd.reset(outp[0]);
  if (errp[0] >= 0) out.stderr_fd.reset(errp[0]);
  if (n == static_cast<ssize_t>(sizeof(msg))) {
    std::memcpy(&out.error, msg + 1, sizeof(int));
    out.failed_step = msg[0] < sizeof(kSteps) / sizeof(kSteps[0]) ? kSteps[msg[0]] : "exec";
  }
  return out;
}

}  // namespace qtx::agent
