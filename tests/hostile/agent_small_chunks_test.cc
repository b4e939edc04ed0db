// A hostile host sending its credit as millions of tiny messages: 1-byte and
// empty file_write chunks, 1-byte and empty exec stdin pieces. Only data
// bytes count against a window, so the agent must hold what it queues by
// bytes, not by message: its memory stays within the window plus a
// constant, whatever the message sizes.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "hostile/peak_rss.h"
#include "qtx/wire/envelope_codec.h"
#include "qtx/wire/sha256.h"
#include "support/agent_fixture.h"

namespace qtx::testing {
namespace {

// 1 MiB of 1-byte messages, each followed by an empty one: 2 Mi messages.
constexpr std::uint64_t kTinyMessages = 1024 * 1024;
// Frames sent per send_raw write.
constexpr std::uint64_t kBatch = 64 * 1024;
// Measured 4 MiB (write) and 6 MiB (exec); before, 105 MiB and 37 MiB.
constexpr std::uint64_t kPeakBoundMiB = 16;

class AgentSmallChunks : public AgentFixture {
 protected:
  void SetUp() override { dir_ = scratch_dir(); }

  static void append_frame(const v1::Envelope& env, std::string* out) {
    ASSERT_TRUE(wire::append_envelope_frame(env, out).ok());
  }

  void expect_peak_below(std::uint64_t bound_mib) { expect_peak_rss_below(agent_->pid(), bound_mib); }

  static std::string data_byte(std::uint64_t i) { return std::string(1, static_cast<char>('a' + i % 26)); }

  std::string dir_;
};

// 1 Mi 1-byte chunks, each followed by an empty one, all within the write's
// first grant (4 MiB), then an empty last chunk. The write completes with
// exactly those bytes; empty chunks are never answered with a Credit of 0.
TEST_F(AgentSmallChunks, TinyAndEmptyWriteChunksAreHeldByBytesNotByMessage) {
  start();
  const std::string path = dir_ + "/tiny";
  v1::Envelope open;
  open.set_id(2);
  open.mutable_request()->mutable_file_write()->set_path(path);
  conn_->send(open);
  auto credit = conn_->recv_until([](const v1::Envelope& e) { return e.id() == 2; });
  ASSERT_TRUE(credit && credit->has_credit()) << agent_->log();
  ASSERT_GE(credit->credit().bytes(), kTinyMessages);

  std::string expected;
  std::string batch;
  v1::Envelope chunk;
  chunk.set_id(2);
  auto* c = chunk.mutable_progress()->mutable_file_chunk();
  for (std::uint64_t i = 0; i < kTinyMessages; ++i) {
    c->set_offset(i);
    c->set_data(data_byte(i));
    expected += c->data();
    append_frame(chunk, &batch);
    c->set_offset(i + 1);
    c->clear_data();
    append_frame(chunk, &batch);
    if ((i + 1) % kBatch == 0) {
      conn_->send_raw(batch);
      batch.clear();
    }
  }
  c->set_offset(kTinyMessages);
  c->set_last(true);
  append_frame(chunk, &batch);
  conn_->send_raw(batch);

  std::optional<v1::Envelope> r;
  std::uint64_t credited = 0;
  std::size_t credits = 0, empty_credits = 0;
  while (!r) {
    auto e = conn_->recv_until([](const v1::Envelope& x) { return x.id() == 2; }, Millis(60000));
    ASSERT_TRUE(e) << agent_->log();
    if (e->has_credit()) {
      if (e->credit().bytes() == 0) ++empty_credits;
      credited += e->credit().bytes();
      ++credits;
    } else if (e->has_response()) {
      r = e;
    }
  }
  ASSERT_TRUE(r->response().has_file_write()) << describe(r->response());
  EXPECT_EQ(r->response().file_write().bytes(), kTinyMessages);
  EXPECT_EQ(r->response().file_write().sha256(), wire::Sha256::bytes(wire::Sha256::of(expected)));
  EXPECT_EQ(empty_credits, 0u);
  // Credit comes back per queued buffer, not per message.
  EXPECT_LE(credited, kTinyMessages);
  EXPECT_LT(credits, kTinyMessages / 64);
  std::printf("%zu Credit messages for %llu bytes\n", credits, static_cast<unsigned long long>(credited));
  std::ifstream in(path, std::ios::binary);
  std::stringstream got;
  got << in.rdbuf();
  EXPECT_EQ(got.str(), expected);
  expect_peak_below(kPeakBoundMiB);
}

// An exec whose program never reads stdin, sent its whole stdin window (1 MiB)
// as 1-byte pieces, each followed by an empty one. All of it is held within
// the bound; the next byte is beyond the credit and fails the exec.
TEST_F(AgentSmallChunks, TinyAndEmptyStdinPiecesAreHeldByBytesNotByMessage) {
  start();
  v1::Envelope env;
  env.set_id(2);
  auto* req = env.mutable_request()->mutable_exec();
  for (const char* a : {"/bin/sh", "-c", "echo ready; exec sleep 60"}) req->add_argv(a);
  req->set_stdin_stream(true);
  conn_->send(env);
  auto ready = conn_->recv_until([](const v1::Envelope& e) { return e.id() == 2 && e.has_progress(); });
  ASSERT_TRUE(ready) << agent_->log();
  EXPECT_EQ(ready->progress().exec_output().data(), "ready\n");

  v1::Envelope piece;
  piece.set_id(2);
  std::string one, empty;
  piece.mutable_progress()->mutable_exec_input()->set_data("x");
  append_frame(piece, &one);
  piece.mutable_progress()->mutable_exec_input()->clear_data();
  append_frame(piece, &empty);
  std::string batch;
  for (std::uint64_t i = 0; i < kBatch; ++i) batch += one + empty;
  // The program never reads: the agent can pass at most one pipe buffer
  // (64 KiB) on, and credits back only what the pipe took.
  for (std::uint64_t i = 0; i < kTinyMessages / kBatch; ++i) conn_->send_raw(batch);
  expect_ping_answers(3, Millis(60000));
  if (HasFatalFailure()) return;
  std::uint64_t credited = 0;
  for (const auto& e : conn_->skipped) EXPECT_NE(e.id(), 2u) << describe(e.response());
  for (const auto& e : conn_->progress) {
    if (e.id() != 2 || !e.has_credit()) continue;
    EXPECT_GT(e.credit().bytes(), 0u);
    credited += e.credit().bytes();
  }
  std::printf("stdin credited back: %llu bytes\n", static_cast<unsigned long long>(credited));
  EXPECT_LE(credited, 64u * 1024);
  expect_peak_below(kPeakBoundMiB);

  // The rest of the credit, byte by byte, is taken; one byte more is not.
  std::string rest;
  for (std::uint64_t i = 0; i < credited; ++i) rest += one;
  rest += one;
  conn_->send_raw(rest);
  auto r = conn_->recv_until([](const v1::Envelope& e) { return e.id() == 2 && e.has_response(); });
  ASSERT_TRUE(r) << agent_->log();
  ASSERT_TRUE(r->response().has_error()) << describe(r->response());
  EXPECT_EQ(r->response().error().code(), v1::ERROR_CODE_INVALID_ARGUMENT);
  EXPECT_EQ(r->response().error().message(),
            "exec stdin: 1 bytes sent beyond the granted credit (0 bytes left of a 1048576-byte window; wait "
            "for the agent's Credit): the program was killed");
  expect_peak_below(kPeakBoundMiB);
}

}  // namespace
}  // namespace qtx::testing
