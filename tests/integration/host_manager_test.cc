// The many-VM manager: 200 real agents on one Manager (one I/O thread),
// all calls in flight at once, and one agent's failure staying its own.
#include <gtest/gtest.h>
#include <signal.h>

#include <condition_variable>
#include <mutex>
#include <set>
#include <vector>

#include "support/host_fixture.h"

namespace qtx::testing {
namespace {

using namespace std::chrono_literals;

// Each agent is a process; under ASan each is several times larger.
constexpr int kAgents = kUnderAsan ? 50 : 200;

class HostManager : public HostFixture {
 protected:
  std::string path(int i) const { return dir() + "/vm-" + std::to_string(i) + ".sock"; }
  void TearDown() override {
    manager_.reset();
    for (auto& a : agents_) {
      int status = a->signal_and_wait(SIGTERM);
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << a->log();
    }
    agents_.clear();
    HostFixture::TearDown();
  }
  std::vector<std::unique_ptr<AgentProcess>> agents_;
};

TEST_F(HostManager, TwoHundredAgentsOnOneThread) {
  Mailbox<std::string> restarted;  // outlives the agents whose callbacks post to it
  std::vector<std::shared_ptr<host::Agent>> vms;
  for (int i = 0; i < kAgents; ++i) {
    agents_.push_back(std::make_unique<AgentProcess>("unix-listen:" + path(i), "", "warn"));
    host::AgentOptions o = options();
    o.endpoint = host::Endpoint::connect(path(i));
    o.name = "vm-" + std::to_string(i);
    o.callbacks.on_agent_restarted = [&restarted, name = o.name](const v1::AgentIdentity&, const v1::AgentIdentity&) {
      restarted.post(name);
    };
    auto added = manager_->add(o);
    ASSERT_TRUE(added.ok()) << added.error().to_string();
    vms.push_back(added.value());
  }
  EXPECT_EQ(manager_->size(), static_cast<std::size_t>(kAgents));
  EXPECT_EQ(manager_->agents().size(), static_cast<std::size_t>(kAgents));
  for (auto& vm : vms) ASSERT_TRUE(vm->wait_ready(30s).ok()) << vm->name();

  // Every agent's instance is its own.
  std::set<std::string> instances;
  for (auto& vm : vms) instances.insert(vm->identity()->instance_id());
  EXPECT_EQ(instances.size(), static_cast<std::size_t>(kAgents));

  // One ping to each, all in flight at once; each answer names its VM.
  std::mutex mu;
  std::condition_variable cv;
  int answered = 0, matched = 0;
  for (int i = 0; i < kAgents; ++i) {
    v1::PingRequest p;
    p.set_payload(vms[i]->name());
    vms[i]->ping(p, {}, [&, name = vms[i]->name()](host::Result<v1::PingResponse> r) {
      std::lock_guard<std::mutex> lock(mu);
      ++answered;
      if (r.ok() && r->payload() == name) ++matched;
      cv.notify_all();
    });
  }
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, 30s, [&] { return answered == kAgents; }));
  }
  EXPECT_EQ(matched, kAgents);

  // VMs are found and removed by socket path.
  EXPECT_EQ(manager_->find(path(3)), vms[3]);
  EXPECT_EQ(manager_->find(dir() + "/nope.sock"), nullptr);
  EXPECT_TRUE(manager_->remove(path(3)));
  EXPECT_FALSE(manager_->remove(path(3)));
  EXPECT_EQ(vms[3]->state(), host::State::kClosed);
  EXPECT_EQ(manager_->size(), static_cast<std::size_t>(kAgents - 1));

  // One agent dies and comes back: only its VM notices.
  const int victim = kAgents / 2;
  ASSERT_EQ(agents_[victim]->signal_and_wait(SIGKILL) & 0x7f, SIGKILL);
  agents_[victim] = std::make_unique<AgentProcess>("unix-listen:" + path(victim), "", "warn");
  auto who = restarted.take(30s);
  ASSERT_TRUE(who);
  EXPECT_EQ(*who, "vm-" + std::to_string(victim));
  ASSERT_TRUE(vms[victim]->wait_ready(30s).ok());
  for (int i = 0; i < kAgents; ++i) {
    EXPECT_EQ(vms[i]->stats().connects, i == victim ? 2u : 1u) << i;
    EXPECT_EQ(vms[i]->state(), i == 3 ? host::State::kClosed : host::State::kReady) << i;
  }
  EXPECT_FALSE(restarted.take(0ms));
}

}  // namespace
}  // namespace qtx::testing
