// QgaService: serves the qemu-ga port beside the native one, on the same io
// thread and AgentContext (configuration, policy, limits, logs). Like the
// Supervisor: open the transport, run one QgaSession until it ends, open
// again; a failed open or a session ended by an error waits kRetry first.
#pragma once

#include <asio/steady_timer.hpp>

#include <chrono>
#include <memory>
#include <string>

#include "agent_context.h"
#include "qga/qga_session.h"
#include "transport/transport.h"

namespace qtx::agent::qga {

class QgaService {
 public:
  static constexpr std::chrono::milliseconds kRetry{1000};

  QgaService(AgentContext& agent, std::unique_ptr<Transport> transport);
  ~QgaService();

  void start();
  // Cancels the pending open and closes the current session (io thread).
  void stop();
  std::string describe() const { return transport_->describe(); }

 private:
  void open();
  void on_end(bool host_closed, const std::string& detail);

  AgentContext& agent_;
  std::unique_ptr<Transport> transport_;
  asio::steady_timer retry_timer_;
  std::shared_ptr<QgaSession> session_;
  bool stopping_ = false;
};

// Whether the agent should serve the qemu-ga port under `config`: false for
// enabled = false; for "auto", only when the transport is not a virtio port
// or that port exists now.
bool qga_wanted(const AgentConfig& config);

}  // namespace qtx::agent::qga
