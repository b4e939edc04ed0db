// A gtest fixture running qtx-agent as a process connected to a HostListener,
// with helpers for streamed operations (exec output, file transfers) that
// follow the credit protocol like a real host.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <memory>
#include <string>

#include "support/agent_client.h"
#include "support/agent_process.h"

namespace qtx::testing {

class AgentFixture : public ::testing::Test {
 protected:
  void start(const std::string& config = "", const std::string& name = "f", bool own_uts_namespace = false);
  // A directory for this test under /tmp, made on first use and removed with
  // everything in it by TearDown, after the agent has stopped.
  const std::string& scratch_dir();
  // The agent still answers a ping (request `id`) on this session, within
  // `timeout` (which only bounds a failing test).
  void expect_ping_answers(std::uint64_t id, Millis timeout = Millis(10000));
  std::unique_ptr<AgentConnection> accept_next();
  void TearDown() override;

  // Runs exec to completion, granting `window` more credit whenever the
  // unacknowledged output reaches it. Fails the test if the agent ever sends
  // more than it was granted.
  struct ExecRun {
    std::optional<v1::Response> response;
    std::string out, err;
    std::uint32_t pid = 0;
  };
  ExecRun exec(std::uint64_t id, v1::ExecRequest req, std::uint64_t window = 1 << 20);

  // Writes `data` in `chunk`-sized pieces within the agent's credit.
  std::optional<v1::Response> write_file(std::uint64_t id, v1::FileWriteRequest req, const std::string& data,
                                         std::size_t chunk = 64 * 1024);
  // Reads with `window` of credit, granted again as data arrives.
  struct ReadRun {
    std::optional<v1::Response> response;
    std::string data;
  };
  ReadRun read_file(std::uint64_t id, v1::FileReadRequest req, std::uint64_t window = 1 << 20);

  void account_stream(std::uint64_t id, std::size_t bytes, std::uint64_t window, std::uint64_t* unacked);

  std::unique_ptr<HostListener> listener_;
  std::unique_ptr<AgentProcess> agent_;
  std::unique_ptr<AgentConnection> conn_;

 private:
  std::string scratch_dir_;
};

}  // namespace qtx::testing
