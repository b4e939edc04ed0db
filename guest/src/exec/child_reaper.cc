#include "child_reaper.h"

#include <signal.h>
#include <sys/wait.h>

#include <vector>

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
  std::vector<std::pair<std::function<void(int)>, int>> exited;
  for (auto it = watchers_.begin(); it != watchers_.end();) {
    int status = 0;
    if (::waitpid(it->first, &status, WNOHANG) == it->first) {
      exited.emplace_back(std::move(it->second), status);
      it = watchers_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto& [cb, status] : exited) cb(status);  // after the walk: a callback may watch() again
}

void ChildReaper::watch(pid_t pid, std::function<void(int)> on_exit) {
  watchers_[pid] = std::move(on_exit);
  reap();  // it may have exited before now, its SIGCHLD already handled
}

}  // namespace qtx::agent
