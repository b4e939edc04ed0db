// The C API's 0.2 calls against the real agent: cancellation tokens,
// requests with options, asynchronous requests, stats, events, and exec and
// transfer handles fed and drained by the caller.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "qtx/host.h"
#include "support/host_fixture.h"

namespace qtx::testing {
namespace {

class CApiStreams : public HostFixture {
 protected:
  void TearDown() override {
    if (agent_c_) qtx_agent_free(agent_c_);
    if (manager_c_) qtx_manager_free(manager_c_);
    HostFixture::TearDown();
  }
  // A ready agent through the C API, with the callbacks of `o`.
  qtx_agent* ready(qtx_agent_options o) {
    manager_c_ = qtx_manager_new();
    const std::string path = socket_path();
    o.socket_path = path.c_str();
    qtx_error err;
    agent_c_ = qtx_agent_add(manager_c_, &o, &err);
    EXPECT_NE(agent_c_, nullptr) << err.message;
    if (agent_c_ == nullptr) return nullptr;
    EXPECT_EQ(qtx_agent_wait_ready(agent_c_, 10000, &err), QTX_OK) << err.message;
    return agent_c_;
  }
  qtx_agent* ready() {
    qtx_agent_options o;
    qtx_agent_options_init(&o);
    return ready(o);
  }
  std::string stats() {
    char* json = nullptr;
    qtx_error err;
    EXPECT_EQ(qtx_agent_stats_json(agent_c_, &json, &err), QTX_OK) << err.message;
    std::string s = json ? json : "";
    qtx_free(json);
    return s;
  }
  std::string read_all(qtx_exec* e, int stream, int* rc) {
    std::string out;
    char buf[4096];
    qtx_error err;
    for (;;) {
      size_t n = 0;
      *rc = qtx_exec_read(e, stream, buf, sizeof(buf), &n, &err);
      if (*rc != QTX_OK || n == 0) return out;
      out.append(buf, n);
    }
  }
  qtx_manager* manager_c_ = nullptr;
  qtx_agent* agent_c_ = nullptr;
};

std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + i / 4096) & 0xff);
  return s;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST_F(CApiStreams, ATokenCancelsTheCallsGivenItAndRefusesLaterOnes) {
  start_agent();
  auto* a = ready();
  ASSERT_TRUE(a);
  qtx_cancel* token = qtx_cancel_new();
  ASSERT_NE(token, nullptr);
  EXPECT_EQ(qtx_cancel_fired(token), 0);

  qtx_exec_options eo;
  qtx_exec_options_init(&eo);
  eo.cancel = token;
  qtx_error err;
  qtx_exec* e = qtx_agent_exec_start(a, "{\"argv\":[\"/bin/sleep\",\"30\"]}", &eo, &err);
  ASSERT_NE(e, nullptr) << err.message;
  // Fired from another thread while this one waits.
  std::thread firer([token] { qtx_cancel_fire(token); });
  EXPECT_EQ(qtx_exec_wait(e, nullptr, &err), QTX_ERR_CANCELLED) << err.message;
  firer.join();
  EXPECT_EQ(qtx_cancel_fired(token), 1);
  qtx_exec_free(e);

  qtx_call_options co;
  qtx_call_options_init(&co);
  co.cancel = token;
  char* json = nullptr;
  EXPECT_EQ(qtx_agent_request_json(a, "{\"ping\":{}}", &co, &json, &err), QTX_ERR_CANCELLED);
  EXPECT_STREQ(err.message, "cancelled before it started");
  EXPECT_EQ(json, nullptr);
  qtx_cancel_fire(token);  // idempotent
  qtx_cancel_free(token);

  // The agent killed the command: the next one runs at once.
  ASSERT_EQ(qtx_agent_request_json(a, "{\"ping\":{}}", nullptr, &json, &err), QTX_OK) << err.message;
  qtx_free(json);
  EXPECT_NE(stats().find("\"calls_in_flight\":0,"), std::string::npos) << stats();
}

TEST_F(CApiStreams, AnExecHandleEndsAtItsDeadline) {
  start_agent();
  auto* a = ready();
  ASSERT_TRUE(a);
  qtx_exec_options eo;
  qtx_exec_options_init(&eo);
  eo.timeout_ms = 200;
  qtx_error err;
  qtx_exec* e = qtx_agent_exec_start(a, "{\"argv\":[\"/bin/sleep\",\"30\"]}", &eo, &err);
  ASSERT_NE(e, nullptr) << err.message;
  int rc = 0;
  EXPECT_EQ(read_all(e, 1, &rc), "");
  EXPECT_EQ(rc, QTX_ERR_TIMEOUT);
  EXPECT_EQ(qtx_exec_wait(e, nullptr, &err), QTX_ERR_TIMEOUT);
  qtx_exec_free(e);
}

TEST_F(CApiStreams, AThousandAsynchronousRequestsInFlightEachAnsweredOnce) {
  start_agent();
  auto* a = ready();
  ASSERT_TRUE(a);
  struct Tally {
    std::mutex mu;
    std::condition_variable cv;
    int ok = 0, failed = 0;
  } tally;
  constexpr int kCalls = 1000;
  qtx_error err;
  for (int i = 0; i < kCalls; ++i) {
    uint64_t id = 0;
    ASSERT_EQ(qtx_agent_request_json_async(
                  a, "{\"ping\":{}}", nullptr,
                  [](void* user, const char* json, const qtx_error* e) {
                    auto* t = static_cast<Tally*>(user);
                    std::lock_guard<std::mutex> lock(t->mu);
                    if (e == nullptr && json != nullptr && std::string(json).rfind("{\"ping\":", 0) == 0) {
                      ++t->ok;
                    } else {
                      ++t->failed;
                    }
                    t->cv.notify_all();
                  },
                  &tally, &id, &err),
              QTX_OK)
        << err.message;
    EXPECT_NE(id, 0u);
  }
  {
    std::unique_lock<std::mutex> lock(tally.mu);
    ASSERT_TRUE(tally.cv.wait_for(lock, std::chrono::seconds(60), [&] { return tally.ok + tally.failed == kCalls; }));
    EXPECT_EQ(tally.ok, kCalls);
    EXPECT_EQ(tally.failed, 0);
  }
  const std::string s = stats();
  EXPECT_NE(s.find("\"calls_in_flight\":0,"), std::string::npos) << s;
  EXPECT_NE(s.find("\"calls_ended\":[" + std::to_string(kCalls) + ","), std::string::npos) << s;

  // Refused before submission: no callback, an error at once.
  EXPECT_EQ(qtx_agent_request_json_async(
                a, "{\"ping\":", nullptr, [](void*, const char*, const qtx_error*) { ADD_FAILURE() << "called"; },
                nullptr, nullptr, &err),
            QTX_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(qtx_agent_request_json_async(a, "{\"ping\":{}}", nullptr, nullptr, nullptr, nullptr, &err),
            QTX_ERR_INVALID_ARGUMENT);
}

TEST_F(CApiStreams, AnAsynchronousCallCancelledByIdEndsCancelled) {
  start_agent();
  auto* a = ready();
  ASSERT_TRUE(a);
  Mailbox<int> done;
  uint64_t id = 0;
  qtx_error err;
  // A freeze of a path that takes long is not portable; an exec is refused
  // here (streamed), so cancel a ping before its answer can be seen: the
  // outcome is kCancelled or ok, never both, and exactly one callback.
  ASSERT_EQ(qtx_agent_request_json_async(
                a, "{\"ping\":{}}", nullptr,
                [](void* user, const char*, const qtx_error* e) {
                  static_cast<Mailbox<int>*>(user)->post(e ? e->kind : QTX_OK);
                },
                &done, &id, &err),
            QTX_OK);
  qtx_agent_cancel_call(a, id);
  auto kind = done.take();
  ASSERT_TRUE(kind);
  EXPECT_TRUE(*kind == QTX_OK || *kind == QTX_ERR_CANCELLED) << *kind;
  EXPECT_FALSE(done.take(std::chrono::milliseconds(0)));
}

TEST_F(CApiStreams, StdinFedInPiecesReachesTheProgramWhole) {
  start_agent();
  auto* a = ready();
  ASSERT_TRUE(a);
  qtx_exec_options eo;
  qtx_exec_options_init(&eo);
  eo.stdin_stream = 1;
  qtx_error err;
  qtx_exec* e = qtx_agent_exec_start(a, "{\"argv\":[\"/usr/bin/md5sum\"],\"stdin\":\"aGVhZA==\"}", &eo, &err);
  ASSERT_NE(e, nullptr) << err.message;
  // 4 MiB, more than the handle buffers (256 KiB) and the agent's stdin
  // credit: the writes block until the program reads.
  const std::string data = pattern(4 << 20);
  std::thread writer([&] {
    qtx_error werr;
    for (std::size_t off = 0; off < data.size(); off += 100000) {
      const std::size_t n = std::min<std::size_t>(100000, data.size() - off);
      ASSERT_EQ(qtx_exec_write_stdin(e, data.data() + off, n, &werr), QTX_OK) << werr.message;
    }
    ASSERT_EQ(qtx_exec_close_stdin(e, &werr), QTX_OK) << werr.message;
    EXPECT_EQ(qtx_exec_write_stdin(e, "x", 1, &werr), QTX_ERR_CLOSED);
  });
  int rc = 0;
  const std::string out = read_all(e, 1, &rc);
  writer.join();
  EXPECT_EQ(rc, QTX_OK);
  // The request's own stdin bytes ("head") come first.
  std::ofstream(dir() + "/expected", std::ios::binary) << "head" << data;
  FILE* p = ::popen(("md5sum < " + dir() + "/expected").c_str(), "r");
  char want[128] = {};
  ASSERT_NE(std::fgets(want, sizeof(want), p), nullptr);
  ::pclose(p);
  EXPECT_EQ(out, want);
  char* result = nullptr;
  ASSERT_EQ(qtx_exec_wait(e, &result, &err), QTX_OK) << err.message;
  EXPECT_NE(std::string(result).find("\"exit_code\":0"), std::string::npos) << result;
  qtx_free(result);
  qtx_exec_free(e);
}

TEST_F(CApiStreams, OutputIsReadPerStreamAndUnreadOutputNeverHoldsTheCommand) {
  start_agent();
  auto* a = ready();
  ASSERT_TRUE(a);
  qtx_error err;
  // 6 MiB on stdout, well past the 1 MiB window: it arrives only as it is
  // read. Then a line on stderr.
  qtx_exec* e = qtx_agent_exec_start(a, "{\"argv\":[\"/bin/sh\",\"-c\",\"head -c 6291456 /dev/zero; echo bye >&2\"]}",
                                     nullptr, &err);
  ASSERT_NE(e, nullptr) << err.message;
  int rc = 0;
  const std::string out = read_all(e, 1, &rc);
  EXPECT_EQ(rc, QTX_OK);
  EXPECT_EQ(out.size(), 6291456u);
  EXPECT_EQ(out.find_first_not_of('\0'), std::string::npos);
  EXPECT_EQ(read_all(e, 2, &rc), "bye\n");
  EXPECT_EQ(rc, QTX_OK);
  ASSERT_EQ(qtx_exec_wait(e, nullptr, &err), QTX_OK) << err.message;
  qtx_exec_free(e);

  // Never read: wait() gives the credit back and the command completes.
  e = qtx_agent_exec_start(a, "{\"argv\":[\"/bin/sh\",\"-c\",\"head -c 6291456 /dev/zero; exit 4\"]}", nullptr, &err);
  ASSERT_NE(e, nullptr) << err.message;
  char* result = nullptr;
  ASSERT_EQ(qtx_exec_wait(e, &result, &err), QTX_OK) << err.message;
  EXPECT_NE(std::string(result).find("\"exit_code\":4"), std::string::npos) << result;
  qtx_free(result);
  qtx_exec_free(e);
}

std::uint64_t stat_field(const std::string& json, const std::string& name) {
  const auto at = json.find("\"" + name + "\":");
  if (at == std::string::npos) return ~0ull;
  return std::stoull(json.substr(at + name.size() + 3));
}

// The cost of a reader that stops: what reaches the host stays within one
// output window (1 MiB) beyond what was read, whatever the command prints.
TEST_F(CApiStreams, AReaderThatStopsHoldsTheCommandBackWithinOneWindow) {
  start_agent();
  auto* a = ready();
  ASSERT_TRUE(a);
  constexpr std::uint64_t kWindow = 1 << 20, kSlack = 64 << 10;  // slack: frame headers
  const std::uint64_t base = stat_field(stats(), "bytes_in");
  qtx_error err;
  qtx_exec* e =
      qtx_agent_exec_start(a, "{\"argv\":[\"/usr/bin/head\",\"-c\",\"8388608\",\"/dev/zero\"]}", nullptr, &err);
  ASSERT_NE(e, nullptr) << err.message;
  std::uint64_t consumed = 0;
  std::vector<char> buf(kWindow);
  for (int round = 0; round < 4; ++round) {
    // Wait until the agent has filled its window; then three round trips
    // through the agent's loop, each a chance to send more if it could,
    // before checking that it did not.
    std::uint64_t in = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while ((in = stat_field(stats(), "bytes_in") - base) < consumed + kWindow &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::yield();
    }
    ASSERT_GE(in, consumed + kWindow);
    for (int i = 0; i < 3; ++i) {
      char* json = nullptr;
      ASSERT_EQ(qtx_agent_request_json(a, "{\"ping\":{}}", nullptr, &json, &err), QTX_OK) << err.message;
      qtx_free(json);
    }
    in = stat_field(stats(), "bytes_in") - base;
    EXPECT_LE(in, consumed + kWindow + kSlack) << "round " << round;
    // Read one window's worth.
    std::uint64_t taken = 0;
    while (taken < kWindow) {
      size_t n = 0;
      ASSERT_EQ(qtx_exec_read(e, 1, buf.data(), kWindow - taken, &n, &err), QTX_OK) << err.message;
      ASSERT_GT(n, 0u);
      taken += n;
    }
    consumed += taken;
  }
  int rc = 0;
  EXPECT_EQ(read_all(e, 1, &rc).size() + consumed, 8388608u);
  EXPECT_EQ(rc, QTX_OK);
  ASSERT_EQ(qtx_exec_wait(e, nullptr, &err), QTX_OK) << err.message;
  qtx_exec_free(e);
}

TEST_F(CApiStreams, HandlesRefuseWhatTheyCannotDo) {
  start_agent();
  auto* a = ready();
  ASSERT_TRUE(a);
  qtx_error err;
  EXPECT_EQ(qtx_agent_exec_start(a, "{\"cwd\":\"/\"}", nullptr, &err), nullptr);
  EXPECT_STREQ(err.message, "qtx_agent_exec_start: argv is empty");
  qtx_exec_options eo;
  std::memset(&eo, 0, sizeof(eo));  // struct_size 0: not initialised
  EXPECT_EQ(qtx_agent_exec_start(a, "{\"argv\":[\"/bin/true\"]}", &eo, &err), nullptr);
  EXPECT_EQ(err.kind, QTX_ERR_INVALID_ARGUMENT);

  qtx_exec_options_init(&eo);
  eo.on_output = [](void*, int, const char*, size_t) {};
  qtx_exec* e = qtx_agent_exec_start(a, "{\"argv\":[\"/bin/true\"]}", &eo, &err);
  ASSERT_NE(e, nullptr) << err.message;
  char buf[8];
  size_t n = 0;
  EXPECT_EQ(qtx_exec_read(e, 1, buf, sizeof(buf), &n, &err), QTX_ERR_INVALID_ARGUMENT);
  // No stdin stream: its stdin is closed already.
  EXPECT_EQ(qtx_exec_write_stdin(e, "x", 1, &err), QTX_ERR_CLOSED);
  ASSERT_EQ(qtx_exec_wait(e, nullptr, &err), QTX_OK) << err.message;
  qtx_exec_free(e);

  qtx_transfer* t = qtx_agent_download_start(a, (dir() + "/absent").c_str(), nullptr, &err);
  ASSERT_NE(t, nullptr) << err.message;
  EXPECT_EQ(qtx_transfer_write(t, "x", 1, &err), QTX_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(qtx_transfer_read(t, buf, sizeof(buf), &n, &err), QTX_ERR_NOT_FOUND);
  EXPECT_EQ(qtx_transfer_wait(t, nullptr, nullptr, &err), QTX_ERR_NOT_FOUND);
  qtx_transfer_free(t);
}

TEST_F(CApiStreams, ClosingStdinWakesAWriterBlockedOnAFullBuffer) {
  start_agent();
  auto* a = ready();
  ASSERT_TRUE(a);
  qtx_exec_options eo;
  qtx_exec_options_init(&eo);
  eo.stdin_stream = 1;
  qtx_error err;
  // sleep never reads: 8 MiB cannot all be taken, so the writer blocks.
  qtx_exec* e = qtx_agent_exec_start(a, "{\"argv\":[\"/bin/sleep\",\"30\"]}", &eo, &err);
  ASSERT_NE(e, nullptr) << err.message;
  const std::string data(8 << 20, 'x');
  int rc = -1;
  qtx_error werr;
  std::thread writer([&] { rc = qtx_exec_write_stdin(e, data.data(), data.size(), &werr); });
  ASSERT_EQ(qtx_exec_close_stdin(e, &err), QTX_OK);
  writer.join();  // without the wake-up, only when sleep ends
  EXPECT_EQ(rc, QTX_ERR_CLOSED);
  EXPECT_STREQ(werr.message, "exec stdin: the input was closed");
  qtx_exec_free(e);
}

TEST_F(CApiStreams, WhatCannotWorkIsRefusedAtOnce) {
  start_agent();
  auto* a = ready();
  ASSERT_TRUE(a);
  qtx_error err;
  // A streamed stdin nobody could feed.
  EXPECT_EQ(qtx_agent_exec_start(a, "{\"argv\":[\"/bin/cat\"],\"stdin_stream\":true}", nullptr, &err), nullptr);
  EXPECT_EQ(err.kind, QTX_ERR_INVALID_ARGUMENT);
  // Streamed kinds have handles, not asynchronous requests.
  EXPECT_EQ(qtx_agent_request_json_async(
                a, "{\"exec\":{\"argv\":[\"/bin/true\"]}}", nullptr,
                [](void*, const char*, const qtx_error*) { ADD_FAILURE() << "called"; }, nullptr, nullptr, &err),
            QTX_ERR_INVALID_ARGUMENT);

  // A blocking handle function inside a callback would block the I/O
  // thread for good: refused there.
  qtx_exec* e = qtx_agent_exec_start(a, "{\"argv\":[\"/bin/true\"]}", nullptr, &err);
  ASSERT_NE(e, nullptr) << err.message;
  struct Ctx {
    qtx_exec* exec;
    Mailbox<int> rc;
  } ctx{e, {}};
  ASSERT_EQ(qtx_agent_request_json_async(
                a, "{\"ping\":{}}", nullptr,
                [](void* user, const char*, const qtx_error*) {
                  auto* c = static_cast<Ctx*>(user);
                  qtx_error inner;
                  c->rc.post(qtx_exec_wait(c->exec, nullptr, &inner));
                },
                &ctx, nullptr, &err),
            QTX_OK);
  auto rc = ctx.rc.take();
  ASSERT_TRUE(rc);
  EXPECT_EQ(*rc, QTX_ERR_INVALID_ARGUMENT);

  // Output discarded by a wait is not mistaken for its end.
  ASSERT_EQ(qtx_exec_wait(e, nullptr, &err), QTX_OK);
  qtx_exec_free(e);
  e = qtx_agent_exec_start(a, "{\"argv\":[\"/bin/echo\",\"unread\"]}", nullptr, &err);
  ASSERT_NE(e, nullptr) << err.message;
  ASSERT_EQ(qtx_exec_wait(e, nullptr, &err), QTX_OK);
  char buf[16];
  size_t n = 1;
  EXPECT_EQ(qtx_exec_read(e, 1, buf, sizeof(buf), &n, &err), QTX_ERR_CLOSED);
  EXPECT_EQ(n, 0u);
  qtx_exec_free(e);
}

TEST_F(CApiStreams, AFiredTokenSaysCancelledEvenWhenTheAgentIsAway) {
  // No agent runs: every call would fail with QTX_ERR_DISCONNECTED.
  manager_c_ = qtx_manager_new();
  const std::string path = socket_path();
  qtx_agent_options o;
  qtx_agent_options_init(&o);
  o.socket_path = path.c_str();
  qtx_error err;
  agent_c_ = qtx_agent_add(manager_c_, &o, &err);
  ASSERT_NE(agent_c_, nullptr) << err.message;
  char* json = nullptr;
  EXPECT_EQ(qtx_agent_request_json(agent_c_, "{\"ping\":{}}", nullptr, &json, &err), QTX_ERR_DISCONNECTED);
  qtx_cancel* token = qtx_cancel_new();
  qtx_cancel_fire(token);
  qtx_call_options co;
  qtx_call_options_init(&co);
  co.cancel = token;
  EXPECT_EQ(qtx_agent_request_json(agent_c_, "{\"ping\":{}}", &co, &json, &err), QTX_ERR_CANCELLED);
  qtx_cancel_free(token);
}

TEST_F(CApiStreams, FreeingARunningExecCancelsItAndWaitsForItsEnd) {
  start_agent();
  auto* a = ready();
  ASSERT_TRUE(a);
  qtx_error err;
  qtx_exec_options eo;
  qtx_exec_options_init(&eo);
  eo.stdin_stream = 1;
  qtx_exec* e = qtx_agent_exec_start(a, "{\"argv\":[\"/bin/cat\"]}", &eo, &err);
  ASSERT_NE(e, nullptr) << err.message;
  ASSERT_EQ(qtx_exec_write_stdin(e, "abc", 3, &err), QTX_OK);
  char buf[8];
  size_t n = 0;
  ASSERT_EQ(qtx_exec_read(e, 1, buf, sizeof(buf), &n, &err), QTX_OK);
  EXPECT_EQ(std::string(buf, n), "abc");
  qtx_exec_free(e);  // cat still waits for stdin
  const std::string s = stats();
  EXPECT_NE(s.find("\"calls_in_flight\":0,"), std::string::npos) << s;
}

TEST_F(CApiStreams, UploadFedByTheCallerAndDownloadDrainedByItAgree) {
  start_agent();
  auto* a = ready();
  ASSERT_TRUE(a);
  struct Progress {
    std::atomic<uint64_t> last{0};
  } progress;
  qtx_transfer_options to;
  qtx_transfer_options_init(&to);
  to.mode = 0600;
  to.user = &progress;
  to.on_progress = [](void* user, uint64_t bytes, uint64_t) { static_cast<Progress*>(user)->last = bytes; };
  qtx_error err;
  const std::string path = dir() + "/uploaded.bin";
  qtx_transfer* up = qtx_agent_upload_start(a, path.c_str(), &to, &err);
  ASSERT_NE(up, nullptr) << err.message;
  // 3 MiB + 7 in odd pieces: more than the handle buffers (1 MiB).
  const std::string data = pattern((3 << 20) + 7);
  for (std::size_t off = 0; off < data.size(); off += 70001) {
    ASSERT_EQ(qtx_transfer_write(up, data.data() + off, std::min<std::size_t>(70001, data.size() - off), &err), QTX_OK)
        << err.message;
  }
  ASSERT_EQ(qtx_transfer_close_write(up, &err), QTX_OK);
  uint64_t bytes = 0;
  char up_sha[65] = {};
  ASSERT_EQ(qtx_transfer_wait(up, &bytes, up_sha, &err), QTX_OK) << err.message;
  qtx_transfer_free(up);
  EXPECT_EQ(bytes, data.size());
  EXPECT_EQ(progress.last.load(), data.size());
  EXPECT_EQ(std::string(up_sha).size(), 64u);
  EXPECT_EQ(slurp(path), data);

  qtx_transfer* down = qtx_agent_download_start(a, path.c_str(), nullptr, &err);
  ASSERT_NE(down, nullptr) << err.message;
  std::string back;
  char buf[65536];
  for (;;) {
    size_t n = 0;
    ASSERT_EQ(qtx_transfer_read(down, buf, sizeof(buf), &n, &err), QTX_OK) << err.message;
    if (n == 0) break;
    back.append(buf, n);
  }
  char down_sha[65] = {};
  ASSERT_EQ(qtx_transfer_wait(down, &bytes, down_sha, &err), QTX_OK) << err.message;
  qtx_transfer_free(down);
  EXPECT_EQ(back, data);
  EXPECT_STREQ(down_sha, up_sha);

  // By path, without sha256: the digest is empty.
  qtx_transfer_options_init(&to);
  to.skip_sha256 = 1;
  char sha[65] = "unchanged";
  ASSERT_EQ(qtx_agent_download_file(a, path.c_str(), (dir() + "/local.bin").c_str(), &to, &bytes, sha, &err), QTX_OK)
      << err.message;
  EXPECT_EQ(bytes, data.size());
  EXPECT_STREQ(sha, "");
  EXPECT_EQ(slurp(dir() + "/local.bin"), data);
  ASSERT_EQ(qtx_agent_upload_file(a, (dir() + "/local.bin").c_str(), (dir() + "/again.bin").c_str(), nullptr, &bytes,
                                  sha, &err),
            QTX_OK)
      << err.message;
  EXPECT_STREQ(sha, up_sha);
}

TEST_F(CApiStreams, AnUploadCancelledMidwayLeavesNothingBehind) {
  start_agent();
  auto* a = ready();
  ASSERT_TRUE(a);
  qtx_cancel* token = qtx_cancel_new();
  qtx_transfer_options to;
  qtx_transfer_options_init(&to);
  to.cancel = token;
  qtx_error err;
  const std::string path = dir() + "/partial.bin";
  qtx_transfer* up = qtx_agent_upload_start(a, path.c_str(), &to, &err);
  ASSERT_NE(up, nullptr) << err.message;
  const std::string data = pattern(1 << 20);
  ASSERT_EQ(qtx_transfer_write(up, data.data(), data.size(), &err), QTX_OK) << err.message;
  qtx_cancel_fire(token);
  EXPECT_EQ(qtx_transfer_wait(up, nullptr, nullptr, &err), QTX_ERR_CANCELLED);
  EXPECT_EQ(qtx_transfer_write(up, "x", 1, &err), QTX_ERR_CANCELLED);
  qtx_transfer_free(up);
  qtx_cancel_free(token);
  // The agent abandons the temporary file; a ping after it proves the
  // cancel was handled (frames are in order).
  char* json = nullptr;
  ASSERT_EQ(qtx_agent_request_json(a, "{\"ping\":{}}", nullptr, &json, &err), QTX_OK);
  qtx_free(json);
  EXPECT_FALSE(std::ifstream(path).good());
}

TEST_F(CApiStreams, EventsArriveAsJson) {
  start_agent("[telemetry]\ninterval_ms = 100\n");
  Mailbox<std::string> events;
  qtx_agent_options o;
  qtx_agent_options_init(&o);
  o.user = &events;
  o.on_event_json = [](void* user, const char* json) { static_cast<Mailbox<std::string>*>(user)->post(json); };
  auto* a = ready(o);
  ASSERT_TRUE(a);
  auto e = events.take([](const std::string& j) { return j.rfind("{\"telemetry\":{", 0) == 0; });
  ASSERT_TRUE(e);
}

}  // namespace
}  // namespace qtx::testing

namespace qtx::testing {
namespace {

// Paced calls grant through their CallId: the forms that give none, or
// collect the output themselves, would stop after one window. Refused.
TEST_F(HostFixture, PacedCallsWithoutAWayToGrantAreRefused) {
  start_agent();
  auto agent = connect();
  v1::ExecRequest req;
  req.add_argv("/bin/true");
  host::ExecStreams streams;
  streams.paced_output = true;
  auto blocking = agent->exec(req, streams);
  ASSERT_FALSE(blocking);
  EXPECT_EQ(blocking.error().kind(), host::ErrorKind::kInvalidArgument);
  Mailbox<host::Result<host::ExecOutcome>> done;
  agent->exec(req, streams, {}, [&](host::Result<host::ExecOutcome> r) { done.post(std::move(r)); });
  auto collected = done.take();
  ASSERT_TRUE(collected);
  ASSERT_FALSE(*collected);
  EXPECT_EQ(collected->error().kind(), host::ErrorKind::kInvalidArgument);

  host::TransferOptions paced;
  paced.paced = true;
  v1::FileReadRequest rd;
  rd.set_path(dir() + "/agent.conf");
  std::string out;
  auto bytes = agent->download_bytes(rd, &out, paced);
  ASSERT_FALSE(bytes);
  EXPECT_EQ(bytes.error().kind(), host::ErrorKind::kInvalidArgument);
}

}  // namespace
}  // namespace qtx::testing
