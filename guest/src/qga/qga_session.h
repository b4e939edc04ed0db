// QgaSession: one connection on the qemu-ga port. Reads into a QgaProtocol
// and writes its answers, in order, on the agent's io thread.
//
// Commands run through run_command() with the agent and the service's
// QgaState; an asynchronous command's reply that comes after the session
// stopped is dropped (qemu-ga too loses the answer of a client that left).
// Bounds: reading pauses while more than kSoftLimit bytes of answers wait
// (a host that does not read cannot make the agent buffer without limit:
// one read of kReadSize bytes adds at most a bounded multiple of it), and
// while a command runs (the protocol's backlog then holds at most one read);
// a
// write that cannot finish within the configured write_timeout_ms ends the
// session. Nothing a peer sends can end the session except closing it.
#pragma once

#include <asio/posix/stream_descriptor.hpp>
#include <asio/steady_timer.hpp>

#include <deque>
#include <functional>
#include <memory>
#include <string>

#include "agent_context.h"
#include "qga/qga_protocol.h"
#include "qga/qga_state.h"

namespace qtx::agent::qga {

class QgaSession : public std::enable_shared_from_this<QgaSession> {
 public:
  static constexpr std::size_t kReadSize = 64 * 1024;
  static constexpr std::size_t kSoftLimit = 1u << 20;

  // Takes ownership of `fd`. `on_end(host_closed, detail)` is posted once, after stop().
  QgaSession(AgentContext& agent, std::shared_ptr<QgaState> state, int fd,
             std::function<void(bool host_closed, std::string detail)> on_end);

  void start();
  void stop(bool host_closed, std::string detail);
  bool stopped() const { return stopped_; }

 private:
  void do_read();
  void run(const std::string& name, const Json& args, Reply reply);
  void enqueue(std::string answer);
  void write_next();

  AgentContext& agent_;
  CommandEnv env_;
  asio::posix::stream_descriptor port_;
  std::function<void(bool, std::string)> on_end_;
  QgaProtocol protocol_;
  std::unique_ptr<char[]> read_buf_;
  asio::steady_timer write_timer_;
  std::deque<std::string> outbox_;
  std::size_t outbox_bytes_ = 0;
  bool writing_ = false;
  bool reading_ = false;
  bool stopped_ = false;
};

}  // namespace qtx::agent::qga
