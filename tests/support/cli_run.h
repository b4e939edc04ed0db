// Runs the qtx tool as users do: a process with arguments and standard
// input, checked by exit code, stdout and stderr. Header-only, so that any
// test program given QTX_CLI_BINARY can use it.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <vector>

namespace qtx::testing {

struct CliRun {
  int code = -1;  // exit code, or 128+N when killed by signal N
  std::string out, err;
};

// Runs `binary` with `args`, feeding `input` on stdin, and waits for it to
// exit; `started`, when given, gets the process id first (to signal it). A
// run that produces nothing for 30 s is cut off there (its result is then
// whatever was read; only a failing test takes that long).
inline CliRun run_cli(const char* binary, const std::vector<std::string>& args, const std::string& input = "",
                      const std::function<void(pid_t)>& started = {}) {
  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) return {};
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(binary));
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(binary, argv.data());
    _exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  if (started) started(pid);
  std::size_t fed = 0;
  while (fed < input.size()) {
    ssize_t n = ::write(in[1], input.data() + fed, input.size() - fed);
    if (n <= 0) break;
    fed += static_cast<std::size_t>(n);
  }
  ::close(in[1]);
  CliRun r;
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  int open_fds = 2;
  while (open_fds > 0) {
    if (::poll(fds, 2, 30000) <= 0) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buf[65536];
      ssize_t n = ::read(fds[i].fd, buf, sizeof(buf));
      if (n <= 0) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      } else {
        (i == 0 ? r.out : r.err).append(buf, static_cast<std::size_t>(n));
      }
    }
  }
  for (auto& f : fds) {
    if (f.fd >= 0) ::close(f.fd);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

}  // namespace qtx::testing
