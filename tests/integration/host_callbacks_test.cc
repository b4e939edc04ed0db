// Callbacks that throw (qtx/host/agent.h, "Callbacks that throw"), against
// the real qtx-agent: the exception stops where the library called the
// callback, is counted in AgentStats::callback_exceptions, and leaves the
// agent, its other calls and the Manager's other agents working; a stream
// callback that throws ends its own call with kLocal and the guest stops it.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "support/host_fixture.h"

namespace qtx::testing {
namespace {

using namespace std::chrono_literals;
using host::ErrorKind;

v1::ExecRequest shell(const std::string& script) {
  v1::ExecRequest r;
  r.add_argv("/bin/sh");
  r.add_argv("-c");
  r.add_argv(script);
  return r;
}

class HostCallbacks : public HostFixture {
 protected:
  // A round trip through the I/O thread: when it returns, every handler
  // queued before it (and the counting after a callback threw) has run.
  static void round_trip(host::Agent& agent) {
    auto r = agent.ping({});
    ASSERT_TRUE(r.ok()) << r.error().to_string();
  }
};

TEST_F(HostCallbacks, AgentCallbacksThatThrowAreCountedAndEveryAgentCarriesOn) {
  start_agent("[telemetry]\ninterval_ms = 3600000\n");
  std::atomic<int> state_throws{0}, telemetry_throws{0}, event_throws{0};
  Mailbox<std::uint64_t> samples;
  auto o = options();
  o.callbacks.on_state = [&](host::State, const host::Error*) {
    ++state_throws;
    throw std::runtime_error("on_state fails");
  };
  o.callbacks.on_telemetry = [&](const v1::TelemetrySample& s) {
    samples.post(s.seq());
    ++telemetry_throws;
    throw std::runtime_error("on_telemetry fails");
  };
  o.callbacks.on_event = [&](const v1::Event&) {
    ++event_throws;
    throw 42;  // not a std::exception
  };
  auto agent = connect(o);  // on_state threw for connecting, handshaking and ready
  ASSERT_TRUE(agent);

  // A second agent of the same Manager, with callbacks that behave.
  AgentProcess other("unix-listen:" + dir() + "/other.sock", "", "info");
  auto oo = options();
  oo.endpoint = host::Endpoint::connect(dir() + "/other.sock");
  Mailbox<host::State> other_states;
  oo.callbacks.on_state = [&other_states](host::State s, const host::Error*) { other_states.post(s); };
  auto second = connect(oo);
  ASSERT_TRUE(second);

  v1::TelemetryConfigRequest cfg;
  cfg.set_sample_now(true);
  cfg.set_interval_ms(3600000);
  auto r = agent->telemetry_config(cfg);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  // The sample after the handshake and the one asked for: both recorded
  // before on_telemetry threw.
  EXPECT_EQ(samples.take().value_or(0), 1u);
  EXPECT_EQ(samples.take().value_or(0), 2u);
  round_trip(*agent);
  const host::AgentStats stats = agent->stats();
  EXPECT_EQ(stats.telemetry_samples, 2u);
  ASSERT_TRUE(agent->latest_telemetry());
  EXPECT_EQ(agent->latest_telemetry()->seq(), 2u);
  EXPECT_EQ(agent->state(), host::State::kReady);
  // Connecting, handshaking, ready (and more if the first connect came
  // before the agent listened); 2 samples, and on_event for each.
  EXPECT_GE(state_throws.load(), 3);
  EXPECT_EQ(telemetry_throws.load(), 2);
  EXPECT_EQ(event_throws.load(), 2);
  EXPECT_EQ(stats.callback_exceptions,
            static_cast<std::uint64_t>(state_throws.load() + telemetry_throws.load() + event_throws.load()));

  round_trip(*second);
  EXPECT_EQ(second->stats().callback_exceptions, 0u);
  EXPECT_EQ(other_states.take([](host::State s) { return s == host::State::kReady; }).value_or(host::State::kClosed),
            host::State::kReady);
  manager_->remove(second);
  second.reset();
  EXPECT_EQ(other.signal_and_wait(SIGTERM), 0) << other.log();
}

TEST_F(HostCallbacks, CompletionCallbacksThatThrowLeaveTheOtherCallsWorking) {
  start_agent();
  auto agent = connect();
  ASSERT_TRUE(agent);
  constexpr int kCalls = 20;
  Mailbox<bool> answered;
  for (int i = 0; i < kCalls; ++i) {
    agent->ping({}, {}, [&answered, i](host::Result<v1::PingResponse> r) {
      answered.post(r.ok());
      if (i % 2 == 0) throw std::runtime_error("completion fails");
    });
  }
  for (int i = 0; i < kCalls; ++i) EXPECT_EQ(answered.take(), std::optional<bool>(true)) << i;
  round_trip(*agent);
  EXPECT_EQ(agent->stats().callback_exceptions, static_cast<std::uint64_t>(kCalls / 2));
  auto info = agent->info({});
  EXPECT_TRUE(info.ok()) << info.error().to_string();
}

TEST_F(HostCallbacks, AStreamCallbackThatThrowsEndsItsCallWithLocalAndTheGuestStopsIt) {
  start_agent();
  auto agent = connect();
  ASSERT_TRUE(agent);
  const std::string pidfile = dir() + "/pid";
  host::ExecStreams streams;
  streams.on_stdout = [](std::string_view) { throw std::runtime_error("no room for output"); };
  auto r = agent->exec(shell("echo $$ > " + pidfile + ".tmp; mv " + pidfile + ".tmp " + pidfile +
                             "; echo hello; exec sleep 60"),
                       std::move(streams), {.timeout = 30s});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind(), ErrorKind::kLocal) << r.error().to_string();
  EXPECT_NE(r.error().message().find("no room for output"), std::string::npos) << r.error().message();
  EXPECT_EQ(agent->stats().callback_exceptions, 1u);

  // The agent was told to stop the command: it kills the process.
  std::ifstream f(pidfile);
  std::string pid;
  ASSERT_TRUE(std::getline(f, pid));
  auto gone = agent->exec(shell("while kill -0 " + pid + " 2>/dev/null; do sleep 0.01; done"), {}, {.timeout = 10s});
  EXPECT_TRUE(gone.ok()) << gone.error().to_string();

  // A progress callback that throws ends its upload the same way.
  host::TransferOptions t;
  t.on_progress = [](const host::TransferProgress&) { throw std::runtime_error("progress fails"); };
  v1::FileWriteRequest w;
  w.set_path(dir() + "/up");
  auto up = agent->upload_bytes(std::string(1000, 'x'), w, t, {.timeout = 30s});
  ASSERT_FALSE(up.ok());
  EXPECT_EQ(up.error().kind(), ErrorKind::kLocal) << up.error().to_string();
  EXPECT_EQ(agent->stats().callback_exceptions, 2u);

  auto again = agent->exec(shell("echo again"), {}, {.timeout = 30s});
  ASSERT_TRUE(again.ok()) << again.error().to_string();
  EXPECT_EQ(again->stdout_data, "again\n");
}

TEST_F(HostCallbacks, OnStateThatThrowsAtADropStillFailsTheCallsAndReconnects) {
  start_agent();
  std::atomic<int> thrown{0};
  Mailbox<std::string> restarts;
  auto o = options();
  o.callbacks.on_state = [&thrown](host::State, const host::Error*) {
    ++thrown;
    throw std::runtime_error("on_state fails");
  };
  o.callbacks.on_agent_restarted = [&](const v1::AgentIdentity& now, const v1::AgentIdentity&) {
    restarts.post(now.instance_id());
    ++thrown;
    throw std::runtime_error("on_agent_restarted fails");
  };
  auto agent = connect(o);
  ASSERT_TRUE(agent);
  const std::string first_instance = agent->identity().value().instance_id();

  Mailbox<host::Result<host::ExecOutcome>> done;
  agent->exec(shell("exec sleep 5"), {}, {.timeout = 0ms},
              [&done](host::Result<host::ExecOutcome> r) { done.post(std::move(r)); });
  round_trip(*agent);  // the exec is in flight
  // Killed, so that the connection just drops (on SIGTERM the agent would
  // answer the exec itself); the orphaned sleep ends by itself.
  agent_->signal_and_wait(SIGKILL);

  // on_state(kDisconnected) threw, and still the call in flight failed.
  auto failed = done.take();
  ASSERT_TRUE(failed);
  ASSERT_FALSE(failed->ok());
  EXPECT_EQ(failed->error().kind(), ErrorKind::kDisconnected) << failed->error().to_string();

  // And the agent is reconnected once a new one listens.
  start_agent();
  auto ready = agent->wait_ready(10s);
  ASSERT_TRUE(ready.ok()) << ready.error().to_string();
  auto seen = restarts.take();
  ASSERT_TRUE(seen);
  EXPECT_NE(*seen, first_instance);
  EXPECT_EQ(agent->identity().value().instance_id(), *seen);
  round_trip(*agent);
  const host::AgentStats stats = agent->stats();
  EXPECT_EQ(stats.restarts_seen, 1u);
  EXPECT_EQ(stats.callback_exceptions, static_cast<std::uint64_t>(thrown.load()));
  // At least: connecting, handshaking, ready; disconnected; ready again; the restart.
  EXPECT_GE(thrown.load(), 6);
}

}  // namespace
}  // namespace qtx::testing
