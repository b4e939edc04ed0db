// AgentContext: what outlives a session - configuration, identity, the
// worker pool for blocking work, and state that must survive reconnects.
// Owned by main(); every member is used on the io thread unless noted.
#pragma once

#include <asio/io_context.hpp>
#include <asio/thread_pool.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

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

struct AgentContext {
  AgentContext(asio::io_context& io_context, AgentConfig cfg, AgentIdentity id);
  ~AgentContext();

  asio::io_context& io;
  asio::thread_pool workers;  // blocking work: file I/O, exec spawning, freeze, /proc reads
  AgentConfig config;         // replaced on SIGHUP
  AgentIdentity identity;
  AgentCounters counters;
  std::unique_ptr<TelemetryCollector> telemetry;  // thread-safe
  std::unique_ptr<ChildReaper> reaper;            // io thread
  std::unique_ptr<FreezeManager> freeze;          // io thread
  std::weak_ptr<Session> current_session;         // for events outside a request
  std::uint32_t telemetry_interval_ms;  // current interval; the host may change it
  std::uint32_t open_transfers = 0;     // file reads and writes in progress, all sessions
  std::uint32_t running_execs = 0;      // exec processes not yet reaped
};

// A fresh random id (32 hex digits) from getrandom(2).
std::string random_instance_id();

// /proc/sys/kernel/random/boot_id, or "" where absent.
std::string read_boot_id();

}  // namespace qtx::agent
