// A blocking test client for qtx-agent: listens on a unix socket (the agent
// runs with unix-connect:PATH), accepts the agent, and exchanges Envelopes.
// Timeouts here only bound a failing test; they never stand in for
// synchronisation.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "qtx/agent/v1/envelope.pb.h"
#include "qtx/wire/decoder.h"

namespace qtx::testing {

namespace v1 = ::qtx::agent::v1;
using Millis = std::chrono::milliseconds;

// The listening side.
class HostListener {
 public:
  explicit HostListener(std::string path);
  ~HostListener();
  const std::string& path() const { return path_; }
  // Accepts one connection; -1 on timeout.
  int accept(Millis timeout);

 private:
  std::string path_;
  int fd_ = -1;
};

// One connection to the agent.
class AgentConnection : private wire::FrameDecoder::Handler {
 public:
  explicit AgentConnection(int fd);
  ~AgentConnection() override;

  void send(const v1::Envelope& env);
  void send_raw(const std::string& bytes);
  // Next envelope of any kind, or nullopt on timeout or EOF (see eof()).
  std::optional<v1::Envelope> recv(Millis timeout = Millis(10000));
  // Next envelope for which `pred` holds; others are kept in `skipped`.
  std::optional<v1::Envelope> recv_until(const std::function<bool(const v1::Envelope&)>& pred,
                                         Millis timeout = Millis(10000));

  // Sends request `id` and returns its final response (progress and events
  // arriving meanwhile go to `progress` and `events`).
  std::optional<v1::Response> call(std::uint64_t id, const v1::Request& req, Millis timeout = Millis(10000));
  // hello with `nonce`; returns the response.
  std::optional<v1::Response> hello(std::uint64_t nonce = 0x1234, std::uint64_t id = 1);

  bool eof() const { return eof_; }
  void close();
  int fd() const { return fd_; }

  std::vector<v1::Envelope> progress;
  std::vector<v1::Envelope> events;
  std::vector<v1::Envelope> skipped;
  std::vector<v1::Envelope> announcements;  // Event.agent_started, kept out of the inbox
  std::uint64_t dropped_bytes = 0;

 private:
  bool on_frame(std::string_view payload, std::uint64_t offset) override;
  void on_drop(const wire::Drop& d) override;
  bool fill(Millis timeout);

  int fd_;
  bool eof_ = false;
  wire::FrameDecoder decoder_;
  std::deque<v1::Envelope> inbox_;
};

// What qtx-agent answers to a hello or a ping request `req` (the session
// layer's handle_hello / handle_ping): the hello's nonce and protocol
// version 1 with `agent` as the identity; the ping's payload echoed. Any
// other envelope: nullopt (a simulated agent that only keeps connections).
std::optional<v1::Envelope> session_answer(const v1::Envelope& req, const v1::AgentIdentity& agent);

// A response for failure messages (the lite runtime has no DebugString):
// "error CODE: message", or the kind of result.
std::string describe(const std::optional<v1::Response>& r);

}  // namespace qtx::testing
