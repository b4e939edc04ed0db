// QgaService: serves the qemu-ga port beside the native one, on the same io
// thread and AgentContext (configuration, policy, limits, logs). Like the
// Supervisor: open the transport, run one QgaSession until it ends, open
// again; a failed open or a session ended by an error waits first, from
// kMinRetry doubling to kMaxRetry (a port held by a qemu-ga still running
// costs one warning per kMaxRetry, not a stream of them); a session the
// host closed resets the wait.
#pragma once

#include <asio/steady_timer.hpp>

#include <chrono>
#include <memory>
#include <string>

#include "agent_context.h"
#include "qga/qga_session.h"
#include "qga/qga_state.h"
#include "transport/transport.h"

namespace qtx::agent::qga {

class QgaService {
 public:
  static constexpr std::chrono::milliseconds kMinRetry{1000};
  static constexpr std::chrono::milliseconds kMaxRetry{30000};

  QgaService(AgentContext& agent, std::unique_ptr<Transport> transport);
  ~QgaService();

  void start();
  // Cancels the pending open and closes the current session (io thread).
  void stop();
  std::string describe() const { return transport_->describe(); }

 private:
  void open();
  void on_end(bool host_closed, const std::string& detail);
  void retry_later(const std::string& why);

  AgentContext& agent_;
  std::unique_ptr<Transport> transport_;
  asio::steady_timer retry_timer_;
  std::shared_ptr<QgaState> state_ = std::make_shared<QgaState>();  // outlives sessions
  std::shared_ptr<QgaSession> session_;
  std::chrono::milliseconds retry_ = kMinRetry;
  bool stopping_ = false;
};

// Whether the agent should serve the qemu-ga port under `config`: false for
// enabled = false; for "auto", only when the transport is not a virtio port
// or that port exists now.
bool qga_wanted(const AgentConfig& config);

}  // namespace qtx::agent::qga
