// Waiting for a VM's agent, and saying how far the wait got.
#include <sys/stat.h>

#include <algorithm>
#include <memory>
#include <mutex>

#include "qtx/host/manager.h"
#include "qtx/host/vm.h"

namespace qtx::host::vm {

const char* seen_name(ReadyReport::Seen seen) {
  switch (seen) {
    case ReadyReport::Seen::kSocketAbsent: return "socket_absent";
    case ReadyReport::Seen::kNoConnection: return "no_connection";
    case ReadyReport::Seen::kNoHandshake: return "no_handshake";
    case ReadyReport::Seen::kReady: return "ready";
  }
  return "unknown";
}

Result<ReadyReport> wait_ready(const std::string& socket, std::chrono::milliseconds timeout) {
  if (socket.empty()) return Error(ErrorKind::kInvalidArgument, "no socket path given");
  const auto start = std::chrono::steady_clock::now();
  // Progress as the I/O thread sees it: the furthest stage, and the last
  // failure. Written by callbacks, read here once the wait is over.
  struct Progress {
    std::mutex mu;
    ReadyReport::Seen seen = ReadyReport::Seen::kSocketAbsent;
    std::string last_error;
  };
  auto progress = std::make_shared<Progress>();
  const auto socket_exists = [&socket] {
    struct stat st {};
    return ::stat(socket.c_str(), &st) == 0;
  };
  const auto reach = [progress](ReadyReport::Seen seen) {
    std::lock_guard<std::mutex> lock(progress->mu);
    if (static_cast<int>(seen) > static_cast<int>(progress->seen)) progress->seen = seen;
  };

  AgentOptions o;
  o.endpoint = Endpoint::connect(socket);
  o.client_name = "libqtx-host wait-ready";
  o.reconnect_min = std::chrono::milliseconds(100);
  o.reconnect_max = std::chrono::milliseconds(500);
  o.keepalive_interval = std::chrono::milliseconds(0);
  o.handshake_timeout = std::min<std::chrono::milliseconds>(timeout, std::chrono::milliseconds(5000));
  o.callbacks.on_state = [progress, reach, socket_exists](State state, const Error* cause) {
    if (state == State::kHandshaking) reach(ReadyReport::Seen::kNoHandshake);
    if (socket_exists()) reach(ReadyReport::Seen::kNoConnection);
    if (cause != nullptr) {
      std::lock_guard<std::mutex> lock(progress->mu);
      progress->last_error = cause->to_string();
    }
  };

  ReadyReport report;
  {
    Manager manager;
    auto added = manager.add(o);
    if (!added) return added.error();
    auto ready = added.value()->wait_ready(timeout);
    if (ready) {
      report.seen = ReadyReport::Seen::kReady;
      report.agent_version = ready->version();
      report.instance_id = ready->instance_id();
    } else if (ready.error().kind() != ErrorKind::kTimeout) {
      std::lock_guard<std::mutex> lock(progress->mu);
      progress->last_error = ready.error().to_string();
    }
  }  // the Manager is gone: no callback runs any more
  report.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
  if (report.seen != ReadyReport::Seen::kReady) {
    if (socket_exists()) reach(ReadyReport::Seen::kNoConnection);
    report.seen = progress->seen;
    report.last_error = progress->last_error;
  }
  return report;
}

}  // namespace qtx::host::vm
