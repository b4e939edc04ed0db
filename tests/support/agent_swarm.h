// AgentSwarm: many simulated agents served by one child process, for
// measuring the host library at thousands of connections on a small machine.
//
// Each connection is a real AF_UNIX stream socket (a socketpair): the host
// library adopts its end (Endpoint::adopt) and keeps all of its usual
// per-connection state; the other end is passed to the server process over
// a control socket (SCM_RIGHTS) and closed here, so each process holds one
// descriptor per connection. The server runs one epoll loop with one frame
// decoder per socket (no thread per socket) and answers hello and ping as
// qtx-agent does (session_answer()), with the identity it was given (take
// a real agent's, so the host stores what it would: capabilities and all)
// and an instance id of its own per connection; it ignores every other
// request.
//
// The server is forked when the swarm is constructed: construct it before
// the process starts threads of its own (a Manager, a test's helpers).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <vector>

#include "qtx/agent/v1/envelope.pb.h"

namespace qtx::testing {

class AgentSwarm {
 public:
  explicit AgentSwarm(const agent::v1::AgentIdentity& identity);
  // Closes the control socket: the server closes every connection (the
  // host sees the other end close) and exits; waits for it.
  ~AgentSwarm();
  AgentSwarm(const AgentSwarm&) = delete;
  AgentSwarm& operator=(const AgentSwarm&) = delete;

  // `n` new connections, each already served by the server: the host's ends
  // (close-on-exec), owned by the caller. Exits the process on failure
  // (descriptors exhausted): a setup error of the test or benchmark.
  std::vector<int> connect(std::size_t n);

  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int control_ = -1;
};

}  // namespace qtx::testing
