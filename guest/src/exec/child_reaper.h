// ChildReaper: learns when the agent's watched child processes exit.
//
// SIGCHLD arrives through Asio's signal_set on the io thread; each watched
// pid is then checked with waitpid(pid, WNOHANG). Only watched pids are
// reaped: children that a worker waits for itself (freeze hooks) keep their
// exit status for that worker. A child that exits before watch() stays a
// zombie until watch() reaps it, so no exit is ever missed. Works on kernels
// without pidfd.
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
};

}  // namespace qtx::agent
