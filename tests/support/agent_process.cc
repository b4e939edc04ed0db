#include "agent_process.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace qtx::testing {

std::string AgentProcess::agent_binary() {
  const char* given = std::getenv("QTX_AGENT_BINARY");
  return given != nullptr && *given != '\0' ? given : QTX_AGENT_BINARY;
}

AgentProcess::AgentProcess(const std::string& socket_path, const std::string& config_toml, const std::string& log_level,
                           bool own_uts_namespace) {
  char tmpl[] = "/tmp/qtx-agent-test.XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
  dir_ = tmpl;
  const std::string conf = dir_ + "/agent.conf";
  std::ofstream(conf) << config_toml;
  log_path_ = dir_ + "/agent.log";
  const bool is_spec = socket_path.rfind("unix-listen:", 0) == 0 || socket_path.rfind("unix-connect:", 0) == 0;
  const std::string transport = is_spec ? socket_path : "unix-connect:" + socket_path;
  pid_ = ::fork();
  if (pid_ == 0) {
    int log = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(log, 2);
    if (own_uts_namespace && ::unshare(CLONE_NEWUTS) != 0) _exit(126);
    ::execl(agent_binary().c_str(), "qtx-agent", "--config", conf.c_str(), "--transport", transport.c_str(),
            "--log-level", log_level.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
}

AgentProcess::~AgentProcess() {
  if (pid_ > 0 && running()) signal_and_wait(SIGKILL);
  std::string cmd = "rm -rf '" + dir_ + "'";
  (void)std::system(cmd.c_str());
}

bool AgentProcess::running() {
  if (pid_ <= 0) return false;
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    pid_ = -1;
    return false;
  }
  return true;
}

int AgentProcess::Waiter::wait(int timeout_ms) {
  // A pidfd becomes readable when the process exits: a real wait, no polling.
  int pfd = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
  if (pfd < 0) return -1;
  pollfd p{pfd, POLLIN, 0};
  int r = ::poll(&p, 1, timeout_ms);
  ::close(pfd);
  if (r <= 0) return -1;
  int status = 0;
  if (::waitpid(pid_, &status, 0) != pid_) return -1;
  return status;
}

int AgentProcess::wait_exit(int timeout_ms) {
  int status = Waiter(pid_).wait(timeout_ms);
  if (status != -1) pid_ = -1;
  return status;
}

int AgentProcess::signal_and_wait(int sig, int timeout_ms) {
  if (pid_ <= 0) return -1;
  ::kill(pid_, sig);
  int status = wait_exit(timeout_ms);
  if (status == -1 && pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  return status;
}

int AgentProcess::open_fds() const {
  int n = 0;
  std::string path = "/proc/" + std::to_string(pid_) + "/fd";
  if (DIR* d = ::opendir(path.c_str())) {
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] != '.') ++n;
    }
    ::closedir(d);
  }
  return n;
}

std::string AgentProcess::describe_fds() const {
  std::string out;
  std::string path = "/proc/" + std::to_string(pid_) + "/fd";
  if (DIR* d = ::opendir(path.c_str())) {
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] == '.') continue;
      char target[256] = {};
      ssize_t n = ::readlink((path + "/" + e->d_name).c_str(), target, sizeof(target) - 1);
      out += std::string(e->d_name) + " -> " + (n > 0 ? std::string(target, static_cast<std::size_t>(n)) : "?") + "\n";
    }
    ::closedir(d);
  }
  return out;
}

long AgentProcess::rss_kib() const {
  std::ifstream f("/proc/" + std::to_string(pid_) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return -1;
}

std::string AgentProcess::log() const {
  std::ifstream f(log_path_);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace qtx::testing
