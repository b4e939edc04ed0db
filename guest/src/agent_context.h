// AgentContext: what outlives a session - configuration, identity, the
// worker pool for blocking work, and state that must survive reconnects.
// Owned by main(); every member is used on the io thread unless noted.
#pragma once

#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/thread_pool.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "agent_config.h"

namespace qtx::agent {

class TelemetryCollector;
class ChildReaper;
class FreezeManager;
class Session;

struct AgentIdentity {
  std::string version;
  std::string instance_id;  // random, new every start
  std::string boot_id;
};

// Counters that survive sessions (reported in logs and in telemetry).
struct AgentCounters {
  std::atomic<std::uint64_t> sessions{0};
  std::atomic<std::uint64_t> telemetry_sent{0};
  std::atomic<std::uint64_t> telemetry_dropped{0};
  std::atomic<std::uint64_t> bytes_dropped{0};  // by the decoder, all reasons
};

// The threads for blocking work, counting the jobs posted to them.
//
// asio::post(pool, fn) works as with a plain asio::thread_pool; every job is
// counted from its post until it has run (or was dropped by stop()). The
// count is what bounds the queue: new requests are refused (BUSY) while
// `jobs() >= max_jobs()` (see has_room), while the jobs of operations already
// admitted (a file chunk, an exec spawn, a telemetry sample) are always
// taken, each operation having at most one in flight. Thread-safe.
class WorkerPool : public asio::thread_pool {
 public:
  class executor_type;

  WorkerPool(int threads, std::size_t max_jobs) : asio::thread_pool(threads), max_jobs_(max_jobs) {}
  // Stops the threads, waits for them, and destroys the jobs still queued
  // (uncounting each) while the count and its mutex still exist; the base
  // destructor then finds the queue empty.
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  executor_type get_executor() noexcept;

  std::size_t jobs() const { return jobs_.load(); }
  std::size_t max_jobs() const { return max_jobs_; }
  // Room for another request's job.
  bool has_room() const { return jobs() < max_jobs_; }
  // Waits until no job is queued or running, for at most `timeout`. False
  // when some job still runs then (blocked in the kernel, say).
  bool wait_idle_for(std::chrono::milliseconds timeout);

 private:
  // Counts one job from its post until it has run or was destroyed unrun.
  class JobCount {
   public:
    explicit JobCount(WorkerPool* pool) : pool_(pool) { pool_->jobs_.fetch_add(1); }
    JobCount(JobCount&& other) noexcept : pool_(std::exchange(other.pool_, nullptr)) {}
    JobCount(const JobCount&) = delete;
    JobCount& operator=(const JobCount&) = delete;
    JobCount& operator=(JobCount&&) = delete;
    ~JobCount() {
      if (pool_ != nullptr) pool_->job_done();
    }

   private:
    WorkerPool* pool_;
  };

  void job_done();
  asio::thread_pool& base() { return *this; }

  const std::size_t max_jobs_;
  std::atomic<std::size_t> jobs_{0};
  std::mutex idle_mutex_;
  std::condition_variable idle_;

 public:
  // What asio::post(pool, fn) uses: counts the job, then posts it to the threads.
  class executor_type {
   public:
    explicit executor_type(WorkerPool* pool) : pool_(pool) {}
    asio::execution_context& context() const noexcept { return *pool_; }
    template <typename Function, typename Allocator>
    void post(Function&& f, const Allocator&) const {
      asio::post(pool_->base(), [f = std::forward<Function>(f), count = JobCount(pool_)]() mutable { f(); });
    }
    bool operator==(const executor_type& other) const noexcept { return pool_ == other.pool_; }
    bool operator!=(const executor_type& other) const noexcept { return pool_ != other.pool_; }

   private:
    WorkerPool* pool_;
  };
};

inline WorkerPool::executor_type WorkerPool::get_executor() noexcept { return executor_type(this); }

struct AgentContext {
  AgentContext(asio::io_context& io_context, AgentConfig cfg, AgentIdentity id);
  ~AgentContext();

  asio::io_context& io;
  WorkerPool workers;  // blocking work: file I/O, exec spawning, freeze, /proc reads
  AgentConfig config;  // replaced on SIGHUP
  AgentIdentity identity;
  AgentCounters counters;
  std::unique_ptr<TelemetryCollector> telemetry;  // thread-safe
  std::unique_ptr<ChildReaper> reaper;            // io thread
  std::unique_ptr<FreezeManager> freeze;          // io thread
  std::weak_ptr<Session> current_session;         // for events outside a request
  std::uint32_t telemetry_interval_ms;            // current interval; the host may change it
  std::uint32_t open_transfers = 0;               // file reads and writes in progress, all sessions
  std::uint32_t running_execs = 0;                // exec processes not yet reaped
};

// A fresh random id (32 hex digits) from getrandom(2).
std::string random_instance_id();

// /proc/sys/kernel/random/boot_id, or "" where absent.
std::string read_boot_id();

}  // namespace qtx::agent
