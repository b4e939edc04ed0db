// A hostile host against the agent's streams and transfer limits: exec
// stdin pushed without credit, a burst of transfers in one write, and
// concurrent reads asking for the largest chunks. Each case bounds what the
// attack costs the agent (its answers, counts, VmHWM) and checks that the
// session keeps being served.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <set>
#include <string>

#include "hostile/peak_rss.h"
#include "qtx/wire/envelope_codec.h"
#include "support/agent_fixture.h"

namespace qtx::testing {
namespace {

constexpr std::uint64_t kMiB = 1024 * 1024;

class AgentStreams : public AgentFixture {
 protected:
  void SetUp() override { dir_ = scratch_dir(); }

  // A file of `size` bytes (sparse: reading it costs no disk).
  std::string sparse_file(const std::string& name, std::uint64_t size) {
    const std::string path = dir_ + "/" + name;
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(::ftruncate(fd, static_cast<off_t>(size)), 0);
    ::close(fd);
    return path;
  }

  static void append_frame(const v1::Envelope& env, std::string* out) {
    ASSERT_TRUE(wire::append_envelope_frame(env, out).ok());
  }

  void expect_peak_below(std::uint64_t bound_mib) { expect_peak_rss_below(agent_->pid(), bound_mib); }

  std::string dir_;
};

// Finding 2: a program that never reads, and stdin pushed without pause.
// The agent held every byte (2.1 GB in 4 s; the OOM killer took it). Now the
// host may send one window (1 MiB) ahead; the first byte beyond the credit
// fails the exec, and nothing more is held.
TEST_F(AgentStreams, StdinPushedBeyondTheCreditFailsTheExecAndIsNeverBuffered) {
  start();
  v1::ExecRequest req;
  for (const char* a : {"/bin/sh", "-c", "echo ready; exec sleep 60"}) req.add_argv(a);
  req.set_stdin_stream(true);
  v1::Envelope env;
  env.set_id(2);
  *env.mutable_request()->mutable_exec() = req;
  conn_->send(env);
  // The exec is running (not still being spawned) once it speaks.
  auto ready = conn_->recv_until([](const v1::Envelope& e) { return e.id() == 2 && e.has_progress(); });
  ASSERT_TRUE(ready) << agent_->log();
  EXPECT_EQ(ready->progress().exec_output().data(), "ready\n");

  // 256 MiB of stdin in 512 KiB messages, written as fast as the agent reads.
  v1::Envelope in;
  in.set_id(2);
  in.mutable_progress()->mutable_exec_input()->set_data(std::string(512 * 1024, 'x'));
  std::string burst;
  append_frame(in, &burst);
  for (int i = 0; i < 512; ++i) conn_->send_raw(burst);
  // Everything sent was read (the ping behind it is answered) and none of it kept.
  expect_ping_answers(3);
  // Measured 5.5 MiB; before, the agent held all 256 MiB (VmHWM 263 MiB).
  expect_peak_below(48);

  // The exec's answer came before the ping's (the call above set it aside).
  std::optional<v1::Envelope> r;
  for (const auto& e : conn_->skipped) {
    if (e.id() == 2 && e.has_response()) r = e;
  }
  ASSERT_TRUE(r) << agent_->log();
  ASSERT_TRUE(r->response().has_error()) << describe(r->response());
  EXPECT_EQ(r->response().error().code(), v1::ERROR_CODE_INVALID_ARGUMENT);
  // Two messages fill the window (the program reads nothing, so none of it
  // is credited back); the third is beyond it.
  EXPECT_EQ(r->response().error().message(),
            "exec stdin: 524288 bytes sent beyond the granted credit (0 bytes left of a 1048576-byte window; wait "
            "for the agent's Credit): the program was killed");
  // The slot of the killed exec is free again: another exec runs.
  auto run = exec(4, [] {
    v1::ExecRequest r2;
    r2.add_argv("/bin/echo");
    r2.add_argv("next");
    return r2;
  }());
  ASSERT_TRUE(run.response && run.response->has_exec()) << describe(run.response);
  EXPECT_EQ(run.out, "next\n");
}

// The same flood before the program exists (the spawn is on a worker): what
// waits for the exec is bounded by the same window.
TEST_F(AgentStreams, StdinPushedWhileTheExecIsSpawnedIsBoundedByTheSameWindow) {
  start();
  v1::Envelope env;
  env.set_id(2);
  auto* req = env.mutable_request()->mutable_exec();
  req->add_argv("/bin/sleep");
  req->add_argv("60");
  req->set_stdin_stream(true);
  std::string burst;
  append_frame(env, &burst);
  v1::Envelope in;
  in.set_id(2);
  in.mutable_progress()->mutable_exec_input()->set_data(std::string(2 * kMiB, 'x'));
  append_frame(in, &burst);
  conn_->send_raw(burst);
  auto r = conn_->recv_until([](const v1::Envelope& e) { return e.id() == 2 && e.has_response(); });
  ASSERT_TRUE(r && r->response().has_error()) << describe(r ? std::optional(r->response()) : std::nullopt);
  EXPECT_EQ(r->response().error().code(), v1::ERROR_CODE_INVALID_ARGUMENT);
  EXPECT_NE(r->response().error().message().find("beyond the granted credit"), std::string::npos)
      << r->response().error().message();
  expect_ping_answers(3);
}

// Finding 5: 200 reads in one write all opened against a limit of 8 (the
// limit was checked before the slot was taken, on a worker). Now the slot is
// taken at dispatch: exactly 8 open, 192 are answered BUSY.
TEST_F(AgentStreams, ABurstOfReadsOpensExactlyTheLimit) {
  start("[limits]\nmax_open_transfers = 8\n");
  const std::string path = sparse_file("r", kMiB);
  std::string burst;
  for (std::uint64_t id = 100; id < 300; ++id) {
    v1::Envelope env;
    env.set_id(id);
    auto* r = env.mutable_request()->mutable_file_read();
    r->set_path(path);
    r->set_window(1024);  // stalls after 1 KiB, keeping its slot
    r->set_chunk_size(1024);
    append_frame(env, &burst);
  }
  conn_->send_raw(burst);
  std::set<std::uint64_t> busy, streaming;
  while (busy.size() + streaming.size() < 200) {
    auto e = conn_->recv_until([](const v1::Envelope& x) { return x.id() >= 100 && x.id() < 300; });
    ASSERT_TRUE(e) << busy.size() << " busy, " << streaming.size() << " streaming; agent log:\n" << agent_->log();
    if (e->has_response()) {
      ASSERT_TRUE(e->response().has_error()) << describe(e->response());
      EXPECT_EQ(e->response().error().code(), v1::ERROR_CODE_BUSY);
      EXPECT_EQ(e->response().error().message(), "too many open transfers (limit 8)");
      EXPECT_TRUE(busy.insert(e->id()).second);
    } else if (e->has_progress()) {
      EXPECT_TRUE(streaming.insert(e->id()).second);
    }
  }
  EXPECT_EQ(busy.size(), 192u);
  ASSERT_EQ(streaming.size(), 8u);
  // The 8 complete once credited.
  for (std::uint64_t id : streaming) {
    v1::Envelope credit;
    credit.set_id(id);
    credit.mutable_credit()->set_bytes(kMiB);
    conn_->send(credit);
  }
  for (std::size_t done = 0; done < 8;) {
    auto e = conn_->recv_until([&](const v1::Envelope& x) { return streaming.count(x.id()) != 0; });
    ASSERT_TRUE(e) << agent_->log();
    if (e->has_response()) {
      ASSERT_TRUE(e->response().has_file_read()) << describe(e->response());
      EXPECT_EQ(e->response().file_read().bytes(), kMiB);
      ++done;
    }
  }
  // Every slot is back: a new read opens.
  v1::FileReadRequest again;
  again.set_path(path);
  auto run = read_file(400, again);
  ASSERT_TRUE(run.response && run.response->has_file_read()) << describe(run.response);
  EXPECT_EQ(run.data.size(), kMiB);
}

// Finding 5, writes: 8 are granted credit, 192 answered BUSY.
TEST_F(AgentStreams, ABurstOfWritesOpensExactlyTheLimit) {
  start("[limits]\nmax_open_transfers = 8\n");
  std::string burst;
  for (std::uint64_t id = 100; id < 300; ++id) {
    v1::Envelope env;
    env.set_id(id);
    env.mutable_request()->mutable_file_write()->set_path(dir_ + "/w" + std::to_string(id));
    append_frame(env, &burst);
  }
  conn_->send_raw(burst);
  std::set<std::uint64_t> busy, granted;
  while (busy.size() + granted.size() < 200) {
    auto e = conn_->recv_until([](const v1::Envelope& x) { return x.id() >= 100 && x.id() < 300; });
    ASSERT_TRUE(e) << busy.size() << " busy, " << granted.size() << " granted; agent log:\n" << agent_->log();
    if (e->has_response()) {
      ASSERT_TRUE(e->response().has_error()) << describe(e->response());
      EXPECT_EQ(e->response().error().code(), v1::ERROR_CODE_BUSY);
      EXPECT_TRUE(busy.insert(e->id()).second);
    } else if (e->has_credit()) {
      EXPECT_TRUE(granted.insert(e->id()).second);
      // A write's window is its share of all writes' memory: 32 MiB / 8.
      EXPECT_EQ(e->credit().bytes(), 4 * kMiB);
    }
  }
  EXPECT_EQ(busy.size(), 192u);
  ASSERT_EQ(granted.size(), 8u);
  for (std::uint64_t id : granted) {
    v1::Envelope chunk;
    chunk.set_id(id);
    chunk.mutable_progress()->mutable_file_chunk()->set_data("data");
    chunk.mutable_progress()->mutable_file_chunk()->set_last(true);
    conn_->send(chunk);
  }
  for (std::size_t done = 0; done < 8;) {
    auto e = conn_->recv_until([&](const v1::Envelope& x) { return granted.count(x.id()) != 0 && x.has_response(); });
    ASSERT_TRUE(e) << agent_->log();
    ASSERT_TRUE(e->response().has_file_write()) << describe(e->response());
    EXPECT_EQ(e->response().file_write().bytes(), 4u);
    ++done;
  }
  expect_ping_answers(3);
}

// Finding 6: 8 concurrent reads asking for 16 MiB chunks with credit for
// everything took the agent to 346 MB. Now a chunk is at most half the
// outbox (4 MiB by default), and all reads together hold at most half the
// outbox plus one chunk.
TEST_F(AgentStreams, ConcurrentReadsWithHugeChunksStayWithinTheStreamRoom) {
  start();
  const std::uint64_t size = 16 * kMiB;
  const std::string path = sparse_file("big", size);
  std::string burst;
  for (std::uint64_t id = 10; id < 18; ++id) {
    v1::Envelope env;
    env.set_id(id);
    auto* r = env.mutable_request()->mutable_file_read();
    r->set_path(path);
    r->set_chunk_size(16 * kMiB);
    r->set_window(1024 * kMiB);
    r->set_skip_sha256(true);
    append_frame(env, &burst);
  }
  conn_->send_raw(burst);
  std::map<std::uint64_t, std::uint64_t> got;
  std::size_t largest = 0;
  for (std::size_t done = 0; done < 8;) {
    auto e = conn_->recv_until([](const v1::Envelope& x) { return x.id() >= 10 && x.id() < 18; }, Millis(60000));
    ASSERT_TRUE(e) << "agent VmHWM " << peak_rss_kib(agent_->pid()) << " KiB; its log:\n" << agent_->log();
    if (e->has_progress()) {
      const auto& c = e->progress().file_chunk();
      EXPECT_EQ(c.offset(), got[e->id()]);
      got[e->id()] += c.data().size();
      largest = std::max(largest, c.data().size());
    } else {
      ASSERT_TRUE(e->response().has_file_read()) << describe(e->response());
      EXPECT_EQ(e->response().file_read().bytes(), size);
      ++done;
    }
  }
  for (const auto& [id, n] : got) EXPECT_EQ(n, size) << "read " << id;
  EXPECT_EQ(largest, 4 * kMiB);  // outbox_bytes / 2
  expect_ping_answers(3);
  // Measured 27 MiB; before, the session ended on its outbox overflowing
  // after VmHWM passed 150 MiB.
  expect_peak_below(48);
}

}  // namespace
}  // namespace qtx::testing
