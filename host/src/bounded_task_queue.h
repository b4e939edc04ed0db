// BoundedTaskQueue: the metrics server's threads, with a bound on the
// connections that wait for one.
//
// cpp-httplib's accept loop hands every accepted socket to enqueue() as a
// job that serves it and closes it. Its own ThreadPool queues without bound,
// so a scraper that opens connections and sends nothing makes the process
// (the VM manager, which holds every VM's socket) accept descriptors until
// none are left. Here enqueue() blocks the accept loop while `max_waiting`
// jobs already wait: further connections stay in the kernel's listen
// backlog, and the process holds at most threads + max_waiting + 1 accepted
// sockets. Every job enqueued runs, since only running it closes its socket.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include <httplib.h>

namespace qtx::host {

class BoundedTaskQueue : public httplib::TaskQueue {
 public:
  BoundedTaskQueue(std::size_t threads, std::size_t max_waiting);
  ~BoundedTaskQueue() override;

  // Blocks while max_waiting jobs wait (not while they run).
  void enqueue(std::function<void()> fn) override;
  // Runs every job still waiting, then joins the threads. Called once, by
  // the accept loop as it ends (or by the destructor).
  void shutdown() override;

  // Observers, for tests and metrics; thread-safe.
  std::size_t waiting() const;
  std::size_t blocked_enqueues() const;  // enqueue() calls waiting for room
  std::size_t max_waiting_seen() const;

 private:
  void work();

  const std::size_t max_waiting_;
  mutable std::mutex mutex_;
  std::condition_variable has_job_;
  std::condition_variable has_room_;
  std::deque<std::function<void()>> jobs_;
  std::size_t blocked_ = 0;
  std::size_t max_seen_ = 0;
  bool shutting_down_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace qtx::host
