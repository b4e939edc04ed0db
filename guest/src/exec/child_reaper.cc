#include "child_reaper.h"

#include <signal.h>
#include <sys/wait.h>

namespace qtx::agent {

ChildReaper::ChildReaper(asio::io_context& io) : sigchld_(io, SIGCHLD) { arm(); }

void ChildReaper::arm() {
  sigchld_.async_wait([this](const asio::error_code& ec, int) {
    if (ec) return;
    reap();
    arm();
  });
}

void ChildReaper::reap() {
  for (;;) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) return;
    auto it = watchers_.find(pid);
    if (it == watchers_.end()) {
      unclaimed_[pid] = status;
      continue;
    }
    auto cb = std::move(it->second);
    watchers_.erase(it);
    cb(status);
  }
}

void ChildReaper::watch(pid_t pid, std::function<void(int)> on_exit) {
  auto it = unclaimed_.find(pid);
  if (it != unclaimed_.end()) {
    int status = it->second;
    unclaimed_.erase(it);
    on_exit(status);
    return;
  }
  watchers_[pid] = std::move(on_exit);
  reap();  // it may have exited between the spawn and now, before its SIGCHLD was handled
}

}  // namespace qtx::agent
