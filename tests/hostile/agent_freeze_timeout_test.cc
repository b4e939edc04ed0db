// A host that asks for a freeze lasting up to 2^32-1 ms (49 days): every
// writer in the guest would block that long. freeze.max_timeout_ms bounds
// it; a longer request is refused before any hook runs or anything freezes.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "support/agent_fixture.h"

namespace qtx::testing {
namespace {

class FreezeTimeoutAttack : public AgentFixture {
 protected:
  void SetUp() override {
    dir_ = scratch_dir();
    ASSERT_EQ(::mkdir((dir_ + "/hooks").c_str(), 0755), 0);
    // A hook that leaves a trace: a refused freeze must not run it.
    std::ofstream(dir_ + "/hooks/10-log") << "#!/bin/sh\necho \"$1\" >> " << dir_ << "/hook.log\n";
    ::chmod((dir_ + "/hooks/10-log").c_str(), 0755);
  }
  std::string config(const std::string& freeze_keys) const {
    return "[agent]\nstate_dir = \"" + dir_ + "/state\"\n[freeze]\nhooks_dir = \"" + dir_ + "/hooks\"\n" + freeze_keys;
  }
  std::optional<v1::Response> freeze(std::uint64_t id, std::uint32_t timeout_ms) {
    v1::Request f;
    // Absent: were the limit not checked, the freeze would fail at open(2)
    // instead of freezing the filesystem the test's directory is on.
    f.mutable_freeze()->add_mountpoints(dir_ + "/absent");
    f.mutable_freeze()->set_timeout_ms(timeout_ms);
    return conn_->call(id, f);
  }
  void expect_nothing_ran() {
    struct stat st {};
    EXPECT_NE(::stat((dir_ + "/hook.log").c_str(), &st), 0) << "a hook ran";
    EXPECT_NE(::stat((dir_ + "/state/freeze.state").c_str(), &st), 0) << "a freeze was recorded";
    v1::Request status;
    status.mutable_freeze_status();
    auto r = conn_->call(99, status);
    ASSERT_TRUE(r && r->has_freeze_status()) << describe(r);
    EXPECT_FALSE(r->freeze_status().frozen());
  }
  std::string dir_;
};

TEST_F(FreezeTimeoutAttack, ATimeoutAboveTheDefaultLimitIsRefused) {
  start(config(""));
  for (const std::uint32_t timeout : {0xffffffffu, 600001u}) {
    auto r = freeze(2, timeout);
    ASSERT_TRUE(r && r->has_error()) << describe(r);
    EXPECT_EQ(r->error().code(), v1::ERROR_CODE_INVALID_ARGUMENT);
    EXPECT_EQ(r->error().message(), "freeze timeout " + std::to_string(timeout) +
                                        " ms is above the guest's limit of 600000 ms (freeze.max_timeout_ms)");
  }
  expect_nothing_ran();
}

TEST_F(FreezeTimeoutAttack, TheConfiguredLimitBoundsTheRequest) {
  start(config("timeout_ms = 2000\nmax_timeout_ms = 5000\n"));
  auto r = freeze(2, 5001);
  ASSERT_TRUE(r && r->has_error()) << describe(r);
  EXPECT_EQ(r->error().code(), v1::ERROR_CODE_INVALID_ARGUMENT);
  EXPECT_EQ(r->error().message(),
            "freeze timeout 5001 ms is above the guest's limit of 5000 ms (freeze.max_timeout_ms)");
  expect_nothing_ran();
  EXPECT_NE(agent_->log().find("audit: freeze (id 2) " + dir_ + "/absent, timeout 5001 ms\n"), std::string::npos)
      << agent_->log();
}

}  // namespace
}  // namespace qtx::testing
