#include "support/host_fixture.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

namespace qtx::testing {

void answer_hello(AgentConnection& peer, const std::string& instance) {
  auto hello = peer.recv_until([](const v1::Envelope& e) { return e.has_request() && e.request().has_hello(); });
  ASSERT_TRUE(hello) << "no hello from the host";
  v1::AgentIdentity agent;
  agent.set_instance_id(instance);
  peer.send(*session_answer(*hello, agent));
}

void HostFixture::SetUp() {
  char tmpl[] = "/tmp/qtx-host-test.XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  dir_ = tmpl;
}

void HostFixture::TearDown() {
  manager_.reset();  // closes every agent first: the agent sees its host leave
  if (agent_ && agent_->running()) {
    int status = agent_->signal_and_wait(SIGTERM);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << agent_->log();
  }
  agent_.reset();
  (void)std::system(("rm -rf '" + dir_ + "'").c_str());
}

void HostFixture::start_agent(const std::string& config, bool own_uts_namespace) {
  agent_ = std::make_unique<AgentProcess>("unix-listen:" + socket_path(), config, "info", own_uts_namespace);
}

host::AgentOptions HostFixture::options() {
  host::AgentOptions o;
  o.endpoint = host::Endpoint::connect(socket_path());
  o.reconnect_min = std::chrono::milliseconds(10);
  o.reconnect_max = std::chrono::milliseconds(200);
  return o;
}

std::shared_ptr<host::Agent> HostFixture::connect(host::AgentOptions o) {
  auto added = manager_->add(std::move(o));
  if (!added) {
    ADD_FAILURE() << added.error().to_string();
    return nullptr;
  }
  auto ready = added.value()->wait_ready(std::chrono::milliseconds(10000));
  EXPECT_TRUE(ready.ok()) << (ready ? "" : ready.error().to_string()) << "\nagent log:\n"
                          << (agent_ ? agent_->log() : "");
  return added.value();
}

}  // namespace qtx::testing
