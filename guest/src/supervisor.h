// Supervisor: the agent's main loop. Opens the transport, runs one Session
// until it ends, and opens again - forever, until shutdown().
//
//   open --ok--> session --ended--> open
//     \--error--> backoff (100 ms doubling to 30 s) --> open
//
// A session that ends because the host left is followed by an immediate
// open: the transport's wait for the next host is edge-driven, so there is
// nothing to spin on and a new host is noticed at once. Errors (failed opens,
// write timeouts, read errors) back off; a session that completed its
// handshake resets the backoff.
#pragma once

#include <asio/steady_timer.hpp>

#include <chrono>
#include <functional>
#include <memory>

#include "agent_context.h"
#include "session.h"
#include "transport/transport.h"

namespace qtx::agent {

class Supervisor {
 public:
  static constexpr std::chrono::milliseconds kMinBackoff{100};
  static constexpr std::chrono::milliseconds kMaxBackoff{30000};

  Supervisor(AgentContext& agent, Transport& transport);

  void start();
  // Graceful stop: cancels the pending open or drains the current session
  // (up to `drain_ms`), then calls `done` on the io thread.
  void shutdown(unsigned drain_ms, std::function<void()> done);

  std::chrono::milliseconds backoff() const { return backoff_; }

 private:
  void open();
  void on_open(Status status, int fd);
  void on_session_end(const Session::Outcome& outcome);
  void retry_later(const std::string& why);

  AgentContext& agent_;
  Transport& transport_;
  asio::steady_timer backoff_timer_;
  std::shared_ptr<Session> session_;
  std::chrono::milliseconds backoff_ = kMinBackoff;
  bool stopping_ = false;
  std::function<void()> on_stopped_;
};

}  // namespace qtx::agent
