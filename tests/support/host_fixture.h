// A gtest fixture for libqtx-host against the real qtx-agent: the agent runs
// as a process listening on a unix socket (as QEMU's chardev would), and a
// Manager connects to it. Also a thread-safe mailbox for what callbacks
// report, so tests wait on events instead of sleeping.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "qtx/host/manager.h"
#include "support/agent_client.h"
#include "support/agent_process.h"

namespace qtx::testing {

namespace host = ::qtx::host;
namespace v1 = ::qtx::agent::v1;

// Values posted by callbacks on the I/O thread, taken by the test thread.
template <class T>
class Mailbox {
 public:
  // Notifies under the lock, so a taker that returns cannot destroy the
  // mailbox while the poster is still inside it.
  void post(T v) {
    std::lock_guard<std::mutex> lock(mu_);
    items_.push_back(std::move(v));
    cv_.notify_all();
  }
  // The first item for which `pred` holds (removed with those before it);
  // nullopt when none came within `timeout`, which only bounds a failing test.
  std::optional<T> take(const std::function<bool(const T&)>& pred,
                        std::chrono::milliseconds timeout = std::chrono::milliseconds(10000)) {
    std::unique_lock<std::mutex> lock(mu_);
    std::optional<T> found;
    cv_.wait_for(lock, timeout, [&] {
      while (!items_.empty()) {
        T v = std::move(items_.front());
        items_.pop_front();
        if (pred(v)) {
          found = std::move(v);
          return true;
        }
      }
      return false;
    });
    return found;
  }
  std::optional<T> take(std::chrono::milliseconds timeout = std::chrono::milliseconds(10000)) {
    return take([](const T&) { return true; }, timeout);
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<T> items_;
};

// Plays the agent on an accepted connection: answers the library's hello as
// agent instance `instance` (a test failure when no hello comes).
void answer_hello(AgentConnection& peer, const std::string& instance = "fake-instance");

class HostFixture : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // Starts qtx-agent listening on socket_path() with `config` (TOML); with
  // `own_uts_namespace` (root) its hostname is private.
  void start_agent(const std::string& config = "", bool own_uts_namespace = false);
  // Options connecting to socket_path() with short backoff and timeouts.
  host::AgentOptions options();
  // Adds `o` to the manager and waits until ready.
  std::shared_ptr<host::Agent> connect(host::AgentOptions o);
  std::shared_ptr<host::Agent> connect() { return connect(options()); }

  const std::string& dir() const { return dir_; }
  std::string socket_path() const { return dir_ + "/agent.sock"; }

  std::unique_ptr<host::Manager> manager_ = std::make_unique<host::Manager>();
  std::unique_ptr<AgentProcess> agent_;
  std::string dir_;
};

}  // namespace qtx::testing
