// libqtx-host and the real agent through FaultShim: every write split at
// every byte boundary, with pauses, and the connection cut at every byte of
// a conversation in either direction. After a cut, only the one call in
// flight may fail, with kDisconnected; the host reconnects by itself, the
// call done again succeeds, every result is exact, and no answer is ever
// taken twice or for the wrong call.
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <string>

#include "support/fault_shim.h"
#include "support/host_fixture.h"

namespace qtx::testing {
namespace {

using namespace std::chrono_literals;
using host::ErrorKind;

// Telemetry off the wire (its timing would vary the byte counts), short waits.
constexpr const char* kAgentConfig =
    "[telemetry]\ninterval_ms = 3600000\n"
    "[agent]\nlog_level = \"warn\"\n";

class FaultInjection : public HostFixture {
 protected:
  void SetUp() override {
    HostFixture::SetUp();
    start_agent(kAgentConfig);
    // Once the agent has answered directly, it is listening: the shim's
    // first connect to it cannot be refused.
    auto direct = connect();
    ASSERT_TRUE(direct);
    manager_->remove(direct);
  }

  std::string shim_path() const { return dir() + "/shim.sock"; }

  host::AgentOptions shim_options() {
    auto o = options();
    o.endpoint = host::Endpoint::connect(shim_path());
    o.keepalive_interval = 0ms;  // no pings of its own: the conversation is the same bytes every time
    o.reconnect_min = 1ms;
    o.reconnect_max = 20ms;
    return o;
  }

  struct Conversation {
    int failures = 0;   // calls that failed (and were made again)
    std::string error;  // the first failure of another kind than kDisconnected, or a wrong result
  };

  // Runs `step` until it succeeds; a kDisconnected failure waits for the
  // next connection. Records anything else as an error.
  template <class T>
  bool retry(host::Agent& agent, Conversation* c, const char* what, const std::function<host::Result<T>()>& step,
             const std::function<std::string(const T&)>& check) {
    for (int attempt = 0; attempt < 3; ++attempt) {
      auto r = step();
      if (r) {
        const std::string wrong = check(*r);
        if (!wrong.empty() && c->error.empty()) c->error = std::string(what) + ": " + wrong;
        return wrong.empty();
      }
      ++c->failures;
      if (r.error().kind() != ErrorKind::kDisconnected) {
        if (c->error.empty()) c->error = std::string(what) + ": " + r.error().to_string();
        return false;
      }
      auto ready = agent.wait_ready(10s);
      if (!ready) {
        if (c->error.empty()) c->error = std::string(what) + ": not ready again: " + ready.error().to_string();
        return false;
      }
    }
    if (c->error.empty()) c->error = std::string(what) + ": failed three times";
    return false;
  }

  // ping, exec, upload, download: each once, in order.
  Conversation converse(host::Agent& agent) {
    Conversation c;
    const std::string data = [] {
      std::string d;
      for (int i = 0; i < 300; ++i) d += static_cast<char>('a' + i % 26);
      return d;
    }();
    const std::string path = dir() + "/up.bin";
    retry<v1::PingResponse>(
        agent, &c, "ping", [&] { return agent.ping({}); }, [](const v1::PingResponse&) { return std::string(); });
    retry<host::ExecOutcome>(
        agent, &c, "exec",
        [&] {
          v1::ExecRequest e;
          e.add_argv("/bin/echo");
          e.add_argv("through the shim");
          return agent.exec(e);
        },
        [](const host::ExecOutcome& o) {
          if (o.stdout_data != "through the shim\n") return "stdout \"" + o.stdout_data + "\"";
          if (!o.result.has_exit_code() || o.result.exit_code() != 0) return std::string("exit status");
          return std::string();
        });
    retry<host::TransferResult>(
        agent, &c, "upload",
        [&] {
          v1::FileWriteRequest w;
          w.set_path(path);
          w.set_atomic(true);
          return agent.upload_bytes(data, w);
        },
        [&](const host::TransferResult& t) {
          return t.bytes == data.size() ? std::string() : "uploaded " + std::to_string(t.bytes);
        });
    std::string back;
    retry<host::TransferResult>(
        agent, &c, "download",
        [&] {
          back.clear();
          v1::FileReadRequest rd;
          rd.set_path(path);
          return agent.download_bytes(rd, &back);
        },
        [&](const host::TransferResult& t) {
          return t.bytes == data.size() && back == data ? std::string() : "downloaded " + std::to_string(back.size());
        });
    return c;
  }

  // One conversation through a shim with `plan`; what the shim saw.
  struct Run {
    Conversation conversation;
    host::AgentStats stats;
    int connections;
    bool cut;
    std::uint64_t bytes[2];
  };
  Run run_through(FaultShim::Plan plan) {
    FaultShim shim(shim_path(), socket_path(), plan);
    auto agent = connect(shim_options());
    Run r{};
    if (!agent) {
      r.conversation.error = "never ready";
      return r;
    }
    r.conversation = converse(*agent);
    r.stats = agent->stats();
    manager_->remove(agent);
    // The shim counts a byte after its write returns, so the host may have
    // counted it first: its counts are compared only once the host's
    // hang-up has reached it and it has closed the connection.
    if (!shim.wait_closed(10s) && r.conversation.error.empty()) r.conversation.error = "shim still connected";
    r.connections = shim.connections();
    r.cut = shim.cut();
    r.bytes[0] = shim.first_bytes(FaultShim::kToAgent);
    r.bytes[1] = shim.first_bytes(FaultShim::kToHost);
    return r;
  }

  // The first connection cut after every byte count of a whole conversation
  // in `direction`, one conversation per count.
  void cut_everywhere(FaultShim::Direction direction, const char* name) {
    const Run whole = run_through({});
    ASSERT_EQ(whole.conversation.error, "");
    const std::uint64_t total = whole.bytes[direction];
    ASSERT_GT(total, 500u);
    int tried = 0, cuts = 0, failed_calls = 0;
    // Every count in the plain build; under a sanitizer, which checks the
    // same code for memory errors or races at several times the cost, every
    // fifth.
    const std::uint64_t stride = kUnderSanitizer ? 5 : 1;
    for (std::uint64_t k = 0; k <= total; k += stride) {
      FaultShim::Plan plan;
      plan.cut_direction = direction;
      plan.cut_after = k;
      plan.split = false;  // the splitting has its own test; here it would only multiply the time
      const Run r = run_through(plan);
      ASSERT_EQ(r.conversation.error, "") << "cut after byte " << k;
      ASSERT_LE(r.conversation.failures, 1) << "cut after byte " << k;
      ASSERT_EQ(r.stats.stray_frames, 0u) << "cut after byte " << k;
      ASSERT_EQ(r.connections, r.cut ? 2 : 1) << "cut after byte " << k;
      ASSERT_EQ(r.stats.connects, static_cast<std::uint64_t>(r.connections)) << "cut after byte " << k;
      ++tried;
      cuts += r.cut;
      failed_calls += r.conversation.failures;
    }
    // The counts inside the conversation were cuts. Its length varies a
    // little from run to run in the agent's direction (the telemetry sample
    // sent after the handshake, a pid, a duration), so the last few counts
    // may fall past its end.
    EXPECT_GE(cuts, tried * 9 / 10);
    std::printf("[ figure ] %s: %d cuts of %d tried over %llu bytes, %d calls done again\n", name, cuts, tried,
                static_cast<unsigned long long>(total), failed_calls);
  }
};

TEST_F(FaultInjection, EveryByteWrittenAloneWithPausesCarriesTheWholeConversation) {
  FaultShim::Plan plan;
  plan.pause_every = 97;
  plan.pause_us = 500;
  const Run r = run_through(plan);
  EXPECT_EQ(r.conversation.error, "");
  EXPECT_EQ(r.conversation.failures, 0);
  EXPECT_EQ(r.connections, 1);
  EXPECT_FALSE(r.cut);
  EXPECT_EQ(r.stats.connects, 1u);
  EXPECT_EQ(r.stats.handshakes, 1u);
  EXPECT_EQ(r.stats.dropped_bytes, 0u);
  EXPECT_EQ(r.stats.discarded_frames, 0u);
  EXPECT_EQ(r.stats.stray_frames, 0u);
  EXPECT_EQ(r.stats.bytes_out, r.bytes[FaultShim::kToAgent]);
  EXPECT_EQ(r.stats.bytes_in, r.bytes[FaultShim::kToHost]);
}

TEST_F(FaultInjection, ACutAtEveryByteTowardsTheAgentLosesOnlyTheCallInFlight) {
  cut_everywhere(FaultShim::kToAgent, "towards the agent");
}

TEST_F(FaultInjection, ACutAtEveryByteTowardsTheHostLosesOnlyTheCallInFlight) {
  cut_everywhere(FaultShim::kToHost, "towards the host");
}

}  // namespace
}  // namespace qtx::testing
