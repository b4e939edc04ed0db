#include "agent_context.h"

#include <sys/random.h>

#include <cstdio>

#include "exec/child_reaper.h"
#include "freeze/freeze_manager.h"
#include "telemetry/collector.h"

namespace qtx::agent {
namespace {

// Blocking work is short (a file chunk, a /proc read, a spawn); a few threads
// keep a slow command from delaying the others.
constexpr int kWorkers = 4;
// Jobs queued or running beyond which new requests are answered BUSY
// (docs/agent.md, "Workers"): a few waiting per thread.
constexpr std::size_t kMaxWorkerJobs = 4 * kWorkers;

}  // namespace

AgentContext::AgentContext(asio::io_context& io_context, AgentConfig cfg, AgentIdentity id)
    : io(io_context),
      workers(kWorkers, kMaxWorkerJobs),
      config(std::move(cfg)),
      identity(std::move(id)),
      telemetry(std::make_unique<TelemetryCollector>()),
      reaper(std::make_unique<ChildReaper>(io_context)),
      freeze(std::make_unique<FreezeManager>(*this)),
      telemetry_interval_ms(config.telemetry_interval_ms) {}

AgentContext::~AgentContext() {
  workers.stop();
  workers.join();
}

WorkerPool::~WorkerPool() {
  stop();
  join();
  shutdown();
}

bool WorkerPool::wait_idle_for(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(idle_mutex_);
  return idle_.wait_for(lock, timeout, [this] { return jobs_.load() == 0; });
}

void WorkerPool::job_done() {
  if (jobs_.fetch_sub(1) == 1) {
    std::lock_guard<std::mutex> lock(idle_mutex_);  // no wakeup lost between a waiter's check and its wait
    idle_.notify_all();
  }
}

std::string random_instance_id() {
  unsigned char b[16] = {};
  std::size_t got = 0;
  while (got < sizeof(b)) {
    ssize_t n = ::getrandom(b + got, sizeof(b) - got, 0);
    if (n > 0) got += static_cast<std::size_t>(n);
  }
  char hex[33];
  for (int i = 0; i < 16; ++i) std::snprintf(hex + 2 * i, 3, "%02x", b[i]);
  return std::string(hex, 32);
}

std::string read_boot_id() {
  std::string id = read_small_file("/proc/sys/kernel/random/boot_id");
  while (!id.empty() && (id.back() == '\n' || id.back() == ' ')) id.pop_back();
  return id;
}

}  // namespace qtx::agent
