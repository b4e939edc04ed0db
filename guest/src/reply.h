// Reply: the promise to answer one request exactly once.
//
// Copyable; the copies share one state. Any thread may answer: the response
// is posted to the io thread and sent if the session is still alive (a reply
// to a session that ended is dropped with it: its host is gone). The first
// answer wins; later ones are ignored. If the last copy is destroyed without
// an answer, the host gets ERROR_CODE_INTERNAL "the agent dropped this
// request", so no request is ever left unanswered.
#pragma once

#include <memory>
#include <string>

#include "qtx/agent/v1/envelope.pb.h"

namespace qtx::agent {

class Session;

class Reply {
 public:
  Reply(std::weak_ptr<Session> session, std::uint64_t id);

  void send(v1::Response response) const;
  void error(v1::ErrorCode code, std::string message, int os_errno = 0) const;
  void done() const;  // Response.done (an Empty result)

  std::uint64_t id() const;
  bool answered() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

v1::Response error_response(v1::ErrorCode code, std::string message, int os_errno = 0);

// Response.done: the result of a request that returns nothing.
v1::Response done_response();

// An error for a failed system call: NOT_FOUND for ENOENT, DENIED-like
// permission errors stay IO with their errno, and so on.
v1::Response errno_response(const std::string& what, int err);

}  // namespace qtx::agent
