// FreezeManager: filesystem freeze and thaw for consistent snapshots.
//
//   freeze: freeze hooks ("freeze") -> state file -> FIFREEZE each mountpoint
//   thaw:   FITHAW each -> state file removed -> thaw hooks ("thaw")
//
// The state file (STATE_DIR/freeze.state) is written before the first
// FIFREEZE, because afterwards its own filesystem may be frozen. An agent
// that starts and finds it resumes the frozen state (status, thaw and the
// automatic thaw at the recorded deadline all work). While frozen, log lines
// are held in memory and written after the thaw, so the agent never blocks
// on a frozen filesystem; the file-changing commands answer
// FAILED_PRECONDITION. FIFREEZE/FITHAW and hooks run on a worker.
#pragma once

#include <asio/steady_timer.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "qtx/agent/v1/envelope.pb.h"

namespace qtx::agent {

struct AgentContext;

class FreezeManager {
 public:
  using Done = std::function<void(::qtx::agent::v1::Response)>;
  using EventSink = std::function<void(const ::qtx::agent::v1::FreezeStateChanged&)>;

  explicit FreezeManager(AgentContext& agent);

  // Resumes a freeze recorded by an earlier agent (call once at start).
  void restore();
  // io thread. `done` gets the response (FreezeResponse or an error).
  // `timeout_ms` 0 means freeze.timeout_ms; above freeze.max_timeout_ms, or
  // with a mountpoint that is relative or holds a newline or NUL, the answer
  // is INVALID_ARGUMENT and nothing runs.
  void freeze(std::vector<std::string> mountpoints, std::uint32_t timeout_ms, Done done);
  void thaw(const std::string& reason, Done done);
  ::qtx::agent::v1::FreezeStatusResponse status() const;
  bool frozen() const { return !frozen_.empty() || busy_; }

  void set_event_sink(EventSink sink) { sink_ = std::move(sink); }

  // Mountpoints FIFREEZE applies to when none are named: real, local,
  // writable filesystems, each device once, in reverse mount order.
  static std::vector<std::string> freezable_mountpoints(const std::string& mounts_text);

 private:
  void arm_auto_thaw(std::int64_t deadline_unix_ms);
  void notify(bool frozen, const std::string& reason);
  std::string state_path() const;

  AgentContext& agent_;
  asio::steady_timer auto_thaw_;
  std::vector<std::string> frozen_;
  std::int64_t deadline_unix_ms_ = 0;
  bool busy_ = false;  // a freeze or thaw is running on a worker
  EventSink sink_;
};

// Runs every executable in `dir` (sorted by name) with `arg`, each with a
// time limit; returns the first failure as text ("" when all succeeded).
std::string run_hooks(const std::string& dir, const std::string& arg);

}  // namespace qtx::agent
