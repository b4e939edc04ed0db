// ChildReaper: learns when the agent's child processes exit.
//
// SIGCHLD arrives through Asio's signal_set on the io thread; every exited
// child is reaped with waitpid(-1, WNOHANG). A child that exits before
// anyone watches it (a fast /bin/true) is kept as unclaimed until watch()
// asks for it, so no exit is ever missed. Works on kernels without pidfd.
#pragma once

#include <sys/types.h>

#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <functional>
#include <unordered_map>

namespace qtx::agent {

class ChildReaper {
 public:
  explicit ChildReaper(asio::io_context& io);

  // `on_exit(wait_status)` runs on the io thread once `pid` has exited.
  void watch(pid_t pid, std::function<void(int)> on_exit);
  std::size_t watched() const { return watchers_.size(); }

 private:
  void arm();
  void reap();

  asio::signal_set sigchld_;
  std::unordered_map<pid_t, std::function<void(int)>> watchers_;
  std::unordered_map<pid_t, int> unclaimed_;
};

}  // namespace qtx::agent
