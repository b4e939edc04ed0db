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
#include <asio/steady_timer.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace qtx::host::detail {

class Link;
struct DeadlineList;
class IoThread;

// A call's deadline, owned by the call's entry in its Link (I/O thread
// only). While set, it sits in its IoThread's list for its duration;
// destroying or clear()ing it takes it out in constant time.
class Deadline {
 public:
  Deadline() = default;
  ~Deadline() { clear(); }
  Deadline(const Deadline&) = delete;
  Deadline& operator=(const Deadline&) = delete;
  void clear();

 private:
  friend class IoThread;
  DeadlineList* list_ = nullptr;  // null: not set
  Deadline* prev_ = nullptr;
  Deadline* next_ = nullptr;
  std::chrono::steady_clock::time_point at_;
  Link* link_ = nullptr;
  std::uint64_t call_ = 0;
};

// The deadlines of one duration, in the order they expire (the order they
// were set: the clock only moves forward), under one Asio timer.
struct DeadlineList {
  DeadlineList(asio::io_context& io, std::chrono::milliseconds t, IoThread* o) : timer(io), timeout(t), owner(o) {}
  asio::steady_timer timer;
  const std::chrono::milliseconds timeout;
  IoThread* const owner;
  Deadline* head = nullptr;
  Deadline* tail = nullptr;
  bool armed = false;     // a wait of `timer` is pending, for generation `gen`
  std::uint64_t gen = 0;  // of the last wait started
};

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

  // I/O thread only: sets `d` (not set) to call link->on_deadline(call,
  // timeout) once `timeout` has passed, unless cleared before. Constant
  // time whatever the number of links and calls: deadlines of one duration
  // expire in the order they were set, so each duration keeps a list and
  // one timer armed at its head (not one timer per call in Asio's heap,
  // whose cost grows with the number of timers).
  void set_deadline(Deadline& d, std::chrono::milliseconds timeout, Link* link, std::uint64_t call);
  // Lists of durations with no deadline left that may wait for their timer
  // before they go (see Deadline::clear).
  static constexpr std::size_t kIdleDeadlineLists = 8;

 private:
  friend class Deadline;
  void run();
  void arm(DeadlineList& list);
  void expire(DeadlineList& list);

  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  // By duration; few (the timeouts callers use). After io_: timers go first.
  // A list is removed once empty and its timer's handler has run (at once
  // when more than kIdleDeadlineLists lists exist: Deadline::clear cancels
  // the timer), so the map holds the durations in use and a few more.
  std::map<std::chrono::milliseconds, std::unique_ptr<DeadlineList>> deadlines_;
  bool draining_ = false;  // shutting down: cancelled lists are not re-armed
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
