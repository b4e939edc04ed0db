// IoThread: the io_context of a Manager and the one thread that runs it,
// shared by every Link of that Manager.
//
// Links keep the IoThread alive (their Asio objects must not outlive the
// io_context), so it may outlive the Manager; shutdown() stops and joins the
// thread, after which run_or_fail() refuses new work.
#pragma once

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace qtx::host::detail {

class Link;

class IoThread {
 public:
  IoThread();
  ~IoThread();
  IoThread(const IoThread&) = delete;
  IoThread& operator=(const IoThread&) = delete;

  asio::io_context& io() { return io_; }
  bool on_thread() const { return std::this_thread::get_id() == thread_id_; }
  bool stopped() const { return stopped_.load(); }

  // Runs `fn` on the I/O thread; false (and `fn` is dropped) once stopped.
  template <class Fn>
  bool post(Fn&& fn);

  // Closes every registered link, then stops and joins the thread.
  // Idempotent; must not be called on the I/O thread.
  void shutdown();

  // The registry of live links (for Manager::agents and shutdown). remove()
  // is linear in the number of links (once per link's life); find() and
  // size() take constant time: Manager::find and Manager::size must not
  // copy the registry.
  void add(const std::shared_ptr<Link>& link);
  void remove(const Link* link);
  std::vector<std::shared_ptr<Link>> links() const;
  // The link connecting to or listening on `path` (not adopted), or null.
  std::shared_ptr<Link> find(const std::string& path) const;
  std::size_t size() const;

  // I/O thread only: the scratch buffer every link reads into (data is fed
  // to the link's decoder before the next read), so an idle connection
  // holds no read buffer of its own.
  char* read_buffer() { return read_buffer_.get(); }
  static constexpr std::size_t kReadBufferSize = 256 * 1024;

  // I/O thread only: handshake nonces.
  std::uint64_t random64() { return rng_(); }

 private:
  void run();

  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::unique_ptr<char[]> read_buffer_;
  std::mt19937_64 rng_;
  std::atomic<bool> stopped_{false};
  std::mutex post_mu_;
  mutable std::mutex mu_;
  std::vector<std::shared_ptr<Link>> links_;
  std::unordered_map<std::string, Link*> by_path_;  // links_ with a socket path
  std::thread thread_;
  std::thread::id thread_id_;
};

template <class Fn>
bool IoThread::post(Fn&& fn) {
  // Under the lock so that nothing is queued after shutdown() let the loop
  // end: such a handler would never run, and the Link it holds would keep
  // this IoThread alive in a cycle.
  std::lock_guard<std::mutex> lock(post_mu_);
  if (stopped_.load()) return false;
  asio::post(io_, std::forward<Fn>(fn));
  return true;
}

}  // namespace qtx::host::detail
