// A hostile host against the agent's worker pool: requests flooding in while
// every worker is blocked, and a stop while they are.
//
// The workers are blocked the way a busy system blocks them: set_password
// waits for the passwd lock (<dir of shadow_file>/.pwd.lock, flock), which
// the test holds like another passwd tool would.
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>

#include "hostile/peak_rss.h"
#include "support/agent_fixture.h"

namespace qtx::testing {
namespace {

constexpr int kWorkers = 4;         // the agent's worker threads (guest/src/agent_context.cc)
constexpr int kMaxWorkerJobs = 16;  // jobs queued or running before BUSY (docs/agent.md, "Workers")

class WorkerPoolTest : public AgentFixture {
 protected:
  void SetUp() override {
    dir_ = scratch_dir();
    std::ofstream(dir_ + "/passwd")
        << "root:x:0:0:root:/root:/bin/sh\nalice:x:65534:65534:Alice:/nonexistent:/bin/sh\n";
    std::ofstream(dir_ + "/group") << "root:x:0:\nnogroup:x:65534:\n";
    std::ofstream(dir_ + "/shadow") << "root:*:19000:0:99999:7:::\nalice:!:19000:0:99999:7:::\n";
    lock_fd_ = ::open((dir_ + "/.pwd.lock").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    ASSERT_GE(lock_fd_, 0);
    ASSERT_EQ(::flock(lock_fd_, LOCK_EX), 0);
    // No telemetry sample beyond the one at the handshake: it would take a job.
    start("[telemetry]\ninterval_ms = 86400000\n[system]\npasswd_file = \"" + dir_ + "/passwd\"\nshadow_file = \"" +
          dir_ + "/shadow\"\ngroup_file = \"" + dir_ + "/group\"\n");
    auto sample = conn_->recv_until([](const v1::Envelope& e) { return e.has_event() && e.event().has_telemetry(); });
    ASSERT_TRUE(sample) << "no telemetry sample after the handshake";
  }
  void TearDown() override {
    release_lock();
    AgentFixture::TearDown();
  }
  void release_lock() {
    if (lock_fd_ >= 0) ::close(lock_fd_);
    lock_fd_ = -1;
  }
  // Every worker waits for the passwd lock (ids 100...).
  void block_all_workers() {
    for (int i = 0; i < kWorkers; ++i) {
      v1::Envelope env;
      env.set_id(100 + i);
      auto* pw = env.mutable_request()->mutable_set_password();
      pw->set_user("alice");
      pw->set_password("$6$abc$prehashed");
      pw->set_crypted(true);
      conn_->send(env);
    }
  }
  // A file_stat of `path` padded with an unknown field to about `bytes`.
  v1::Envelope padded_stat(std::uint64_t id, const std::string& path, std::size_t bytes) {
    v1::FileStatRequest known;
    known.set_path(path);
    std::string wire = known.SerializeAsString();
    // Field 1000, length-delimited: tag varint 0xC2 0x3E, then the length.
    wire += "\xC2\x3E";
    std::size_t len = bytes;
    while (len >= 0x80) {
      wire += static_cast<char>((len & 0x7F) | 0x80);
      len >>= 7;
    }
    wire += static_cast<char>(len);
    wire.append(bytes, 'p');
    v1::Envelope env;
    env.set_id(id);
    EXPECT_TRUE(env.mutable_request()->mutable_file_stat()->ParseFromString(wire));
    return env;
  }

  std::string dir_;
  int lock_fd_ = -1;
};

TEST_F(WorkerPoolTest, FloodAtABlockedPoolIsAnsweredBusyInBoundedMemory) {
  block_all_workers();
  ASSERT_TRUE(reset_peak_rss(agent_->pid()));
  // 40 frames of 15 MiB each: before, every one of them waited in the
  // workers' queue with its request (600 MiB here; 1.71 GB for 100 frames
  // of 16 MiB in the attack run).
  constexpr int kFlood = 40;
  constexpr std::size_t kPadding = 15u << 20;
  for (int i = 0; i < kFlood; ++i) conn_->send(padded_stat(1000 + i, dir_, kPadding));
  // Requests that need no worker are still answered; a BUSY answer is
  // sent at once, so all of them precede the ping's.
  v1::Request ping;
  ping.mutable_ping();
  auto pong = conn_->call(5, ping);
  ASSERT_TRUE(pong && pong->has_ping()) << describe(pong) << agent_->log();
  const long peak_kib = peak_rss_kib(agent_->pid());

  std::set<std::uint64_t> busy;
  for (const auto& e : conn_->skipped) {
    if (e.id() < 1000 || !e.has_response()) continue;
    ASSERT_TRUE(e.response().has_error()) << "file_stat " << e.id() << " answered before the workers were free";
    EXPECT_EQ(e.response().error().code(), v1::ERROR_CODE_BUSY);
    EXPECT_NE(e.response().error().message().find("limit " + std::to_string(kMaxWorkerJobs)), std::string::npos)
        << e.response().error().message();
    busy.insert(e.id());
  }
  conn_->skipped.clear();
  // The blocked set_passwords and the admitted file_stats fill the queue.
  // (A job counts until its thread is done with it, a moment after its
  // answer left: the handshake's telemetry sample may still count once.)
  const int admitted = kFlood - static_cast<int>(busy.size());
  EXPECT_LE(admitted, kMaxWorkerJobs - kWorkers);
  EXPECT_GE(admitted, kMaxWorkerJobs - kWorkers - 1);
  // The admitted ones are the first ones.
  for (int i = 0; i < admitted; ++i) EXPECT_EQ(busy.count(1000 + i), 0u) << "file_stat " << 1000 + i;

  if (kRssIsMeaningful) {
    // One frame in the decoder, one parsed envelope and its request: a few
    // frames' worth, whatever the number of frames.
    EXPECT_LT(peak_kib, 128 * 1024) << "VmHWM " << peak_kib << " KiB";
  }
  std::printf("flood of %d x %zu MiB file_stat at a blocked pool: %zu BUSY, %d admitted, agent VmHWM %ld KiB\n", kFlood,
              kPadding >> 20, busy.size(), admitted, peak_kib);

  // Once the lock is free, everything admitted is answered.
  release_lock();
  int stats = 0, passwords = 0;
  while (stats < admitted || passwords < kWorkers) {
    auto e = conn_->recv_until([](const v1::Envelope& x) { return x.has_response(); });
    ASSERT_TRUE(e) << "answered: " << stats << " file_stat, " << passwords << " set_password; agent log:\n"
                   << agent_->log();
    if (e->id() >= 1000) {
      EXPECT_TRUE(e->response().has_file_stat()) << describe(e->response());
      ++stats;
    } else {
      EXPECT_TRUE(e->response().has_done()) << describe(e->response());
      ++passwords;
    }
  }
  v1::Request stat;
  stat.mutable_file_stat()->set_path(dir_);
  auto r = conn_->call(7, stat);
  ASSERT_TRUE(r && r->has_file_stat()) << describe(r);
}

TEST_F(WorkerPoolTest, SigtermEndsTheAgentWhileEveryWorkerIsBlocked) {
  block_all_workers();
  for (int i = 0; i < 8; ++i) {
    v1::Envelope env;
    env.set_id(1000 + i);
    env.mutable_request()->mutable_file_stat()->set_path(dir_);
    conn_->send(env);
  }
  v1::Request ping;
  ping.mutable_ping();
  ASSERT_TRUE(conn_->call(5, ping));  // all of them dispatched
  // Before, the agent waited in the workers' join for as long as the lock
  // was held. The deadline only bounds the wait of a failing test.
  const int status = agent_->signal_and_wait(SIGTERM, 10000);
  ASSERT_NE(status, -1) << "the agent did not exit after SIGTERM; its log:\n" << agent_->log();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_NE(agent_->log().find("exiting without them"), std::string::npos) << agent_->log();
}

}  // namespace
}  // namespace qtx::testing
