// libqtx-host while the host's wall clock jumps a year forward and back in
// the middle of calls: deadlines, keepalive and the handshake run on the
// monotonic clock, so no call fails early, none waits late, and the
// connection stays up. The wall clock is moved for this process only, by
// libfaketime (Debian package faketime): main() re-executes the test with it
// preloaded, offsets read from a file at every call, the monotonic clock
// left alone. The agent runs without it.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <future>
#include <string>

#include "support/host_fixture.h"

namespace qtx::testing {
namespace {

using namespace std::chrono_literals;
using host::ErrorKind;

constexpr const char* kFakeTime = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
const char* offset_file() { return std::getenv("FAKETIME_TIMESTAMP_FILE"); }

// Moves this process's wall clock to real time + `offset` ("+365d", "-365d").
void set_wall_clock_offset(const std::string& offset) {
  const std::string tmp = std::string(offset_file()) + ".tmp";
  std::ofstream(tmp) << offset << "\n";
  ASSERT_EQ(std::rename(tmp.c_str(), offset_file()), 0);
}

double wall_days_from_now(std::chrono::system_clock::time_point real) {
  return std::chrono::duration<double, std::ratio<86400>>(std::chrono::system_clock::now() - real).count();
}

class ClockJump : public HostFixture {
 protected:
  void SetUp() override {
    HostFixture::SetUp();
    if (kUnderSanitizer) {
      // libfaketime allocates while the sanitizer's allocator starts up and
      // the two deadlock: the plain build runs these tests.
      GTEST_SKIP() << "libfaketime cannot be preloaded into a sanitized program";
    }
    ASSERT_NE(offset_file(), nullptr)
        << "not running under libfaketime: install the faketime package (scripts/setup.sh)";
    set_wall_clock_offset("+0");
    start_agent();
  }
  void TearDown() override {
    if (offset_file() != nullptr) set_wall_clock_offset("+0");
    HostFixture::TearDown();
  }

  host::AgentOptions jumpy_options() {
    auto o = options();
    o.handshake_timeout = 2s;
    o.keepalive_interval = 300ms;
    o.keepalive_timeout = 3s;
    return o;
  }

  // Starts `sh -c script` with `deadline`; returns once it printed
  // "started", with its result to come in *done (shared with the callback,
  // which may outlive a failed assertion).
  using Done = std::shared_ptr<std::promise<host::Result<host::ExecOutcome>>>;
  bool start_exec(host::Agent& agent, const std::string& script, std::chrono::milliseconds deadline, const Done& done) {
    host::ExecStreams streams;
    streams.on_stdout = [this](std::string_view d) { out_.post(std::string(d)); };
    v1::ExecRequest e;
    e.add_argv("/bin/sh");
    e.add_argv("-c");
    e.add_argv(script);
    agent.exec(e, streams, {.timeout = deadline},
               [done](host::Result<host::ExecOutcome> r) { done->set_value(std::move(r)); });
    return out_.take([](const std::string& s) { return s.find("started") != std::string::npos; }).has_value();
  }

  Mailbox<std::string> out_;
};

TEST_F(ClockJump, AYearForwardInTheMiddleOfACallFailsNothing) {
  auto agent = connect(jumpy_options());
  ASSERT_TRUE(agent);
  auto done = std::make_shared<std::promise<host::Result<host::ExecOutcome>>>();
  ASSERT_TRUE(start_exec(*agent, "echo started; sleep 1.5; echo finished", 10s, done));

  const auto real = std::chrono::system_clock::now();
  set_wall_clock_offset("+365d");
  ASSERT_GT(wall_days_from_now(real), 364.0) << "libfaketime did not move the wall clock";

  auto result = done->get_future();
  ASSERT_EQ(result.wait_for(10s), std::future_status::ready);
  auto r = result.get();
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->result.exit_code(), 0);
  // Keepalive pinged through the sleep across the jump; nothing reconnected.
  EXPECT_TRUE(agent->ping({}).ok());
  EXPECT_EQ(agent->stats().connects, 1u);
  EXPECT_EQ(agent->state(), host::State::kReady);
}

TEST_F(ClockJump, AYearBackDelaysNoDeadline) {
  auto agent = connect(jumpy_options());
  ASSERT_TRUE(agent);
  auto done = std::make_shared<std::promise<host::Result<host::ExecOutcome>>>();
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(start_exec(*agent, "echo started; exec sleep 30", 1s, done));

  const auto real = std::chrono::system_clock::now();
  set_wall_clock_offset("-365d");
  ASSERT_LT(wall_days_from_now(real), -364.0) << "libfaketime did not move the wall clock";

  // The 1 s deadline still ends the call, a second or so after it began.
  auto result = done->get_future();
  ASSERT_EQ(result.wait_for(10s), std::future_status::ready) << "the deadline waited for the wall clock";
  auto r = result.get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind(), ErrorKind::kTimeout);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  // The connection lives on, and keepalive still runs on time.
  EXPECT_TRUE(agent->ping({}).ok());
  EXPECT_EQ(agent->stats().connects, 1u);
}

}  // namespace
}  // namespace qtx::testing

// Re-executes this program with libfaketime preloaded (once; never in a
// sanitized build), then runs the tests with LD_PRELOAD cleared, so the
// agent the tests start runs on the real clock.
int main(int argc, char** argv) {
  if (!qtx::testing::kUnderSanitizer && std::getenv("FAKETIME_TIMESTAMP_FILE") == nullptr &&
      ::access(qtx::testing::kFakeTime, R_OK) == 0) {
    char tmpl[] = "/tmp/qtx-faketime.XXXXXX";
    const int fd = ::mkstemp(tmpl);
    if (fd >= 0) {
      (void)!::write(fd, "+0\n", 3);
      ::close(fd);
      ::setenv("LD_PRELOAD", qtx::testing::kFakeTime, 1);
      ::setenv("FAKETIME_TIMESTAMP_FILE", tmpl, 1);
      ::setenv("FAKETIME_NO_CACHE", "1", 1);
      ::setenv("FAKETIME_DONT_FAKE_MONOTONIC", "1", 1);  // and its older name:
      ::setenv("DONT_FAKE_MONOTONIC", "1", 1);
      ::execv("/proc/self/exe", argv);
      std::perror("re-executing under libfaketime");
      return 1;
    }
  }
  ::unsetenv("LD_PRELOAD");
  ::testing::InitGoogleTest(&argc, argv);
  const int rc = RUN_ALL_TESTS();
  if (const char* f = std::getenv("FAKETIME_TIMESTAMP_FILE")) ::unlink(f);
  return rc;
}
