// libqtx-host against the real qtx-agent over a unix socket: every command
// through the typed API, streams, errors as kinds, many calls in flight,
// cancellation and deadlines.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <future>
#include <random>
#include <sstream>

#include "qtx/wire/sha256.h"
#include "support/host_fixture.h"

namespace qtx::testing {
namespace {

using namespace std::chrono_literals;
using host::ErrorKind;

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

v1::ExecRequest argv(std::initializer_list<std::string> args) {
  v1::ExecRequest r;
  for (const auto& a : args) r.add_argv(a);
  return r;
}

// Waits in the guest (an exec, bounded by 10 s) until `path` is non-empty.
bool wait_for_file(host::Agent& agent, const std::string& path) {
  auto r = agent.exec(argv({"/bin/sh", "-c", ("while [ ! -s " + path + " ]; do sleep 0.01; done").c_str()}), {},
                      {.timeout = std::chrono::seconds(10)});
  return r.ok() && r->result.exit_code() == 0;
}

class HostAgent : public HostFixture {};

TEST_F(HostAgent, HandshakeGivesIdentityAndInfoAgrees) {
  start_agent();
  auto agent = connect();
  ASSERT_TRUE(agent);
  EXPECT_EQ(agent->state(), host::State::kReady);
  auto id = agent->identity();
  ASSERT_TRUE(id);
  EXPECT_EQ(id->instance_id().size(), 32u);
  EXPECT_FALSE(id->boot_id().empty());

  auto info = agent->info({});
  ASSERT_TRUE(info.ok()) << info.error().to_string();
  EXPECT_EQ(info->agent().instance_id(), id->instance_id());
  EXPECT_FALSE(info->kernel_release().empty());

  v1::PingRequest ping;
  ping.set_payload("abc\0def", 7);
  auto pong = agent->ping(ping);
  ASSERT_TRUE(pong.ok());
  EXPECT_EQ(pong->payload(), std::string("abc\0def", 7));

  auto stats = agent->stats();
  EXPECT_EQ(stats.connects, 1u);
  EXPECT_EQ(stats.handshakes, 1u);
  EXPECT_EQ(stats.discarded_frames, 0u);
  EXPECT_EQ(stats.dropped_bytes, 0u);
}

TEST_F(HostAgent, ExecCollectsOutputAndExitCode) {
  start_agent();
  auto agent = connect();
  ASSERT_TRUE(agent);
  auto r = agent->exec(argv({"/bin/sh", "-c", "printf out; printf err >&2; exit 3"}));
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->stdout_data, "out");
  EXPECT_EQ(r->stderr_data, "err");
  ASSERT_TRUE(r->result.has_exit_code());
  EXPECT_EQ(r->result.exit_code(), 3);
}

TEST_F(HostAgent, ExecStreamsLargeOutputThroughCredit) {
  start_agent();
  auto agent = connect();
  ASSERT_TRUE(agent);
  // 8 MiB through a 64 KiB window: the agent must wait for credit again and again.
  std::string got;
  host::ExecStreams streams;
  streams.on_stdout = [&got](std::string_view d) { got.append(d); };
  auto req = argv({"/bin/sh", "-c", "head -c 8388608 /dev/zero | tr '\\0' x"});
  req.set_output_window(64 * 1024);
  auto r = agent->exec(req, streams);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->result.exit_code(), 0);
  EXPECT_EQ(got.size(), 8u * 1024 * 1024);
  EXPECT_EQ(got.find_first_not_of('x'), std::string::npos);
  EXPECT_TRUE(r->stdout_data.empty());
}

// Streams `input` as the stdin of cat through the agent's credit and
// expects every byte back on stdout; *largest_ask, when given, records the
// largest piece the library asked the source for.
void expect_cat_streams_back(host::Agent& agent, const std::string& input, std::size_t* largest_ask = nullptr) {
  std::size_t pos = 0;
  host::ExecStreams streams;
  streams.stdin_source = [&](char* buf, std::size_t n) -> host::Result<std::size_t> {
    if (largest_ask) *largest_ask = std::max(*largest_ask, n);
    const std::size_t k = std::min(n, input.size() - pos);
    std::memcpy(buf, input.data() + pos, k);
    pos += k;
    return k;
  };
  std::string got;
  streams.on_stdout = [&got](std::string_view d) { got.append(d); };
  auto r = agent.exec(argv({"/bin/cat"}), streams, {.timeout = 60s});  // the deadline only bounds a failure
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->result.exit_code(), 0);
  EXPECT_EQ(r->result.stdout_bytes(), input.size());
  ASSERT_EQ(got.size(), input.size());
  EXPECT_TRUE(got == input);
}

// Streamed stdin follows the agent's credit: 24 MiB (24 stdin windows)
// through cat, the source asked for more only as cat consumes. An agent
// fails an exec whose host sends beyond its credit, so success shows the
// host kept to it.
TEST_F(HostAgent, ExecStreamsStdinWithinTheAgentsCredit) {
  start_agent();
  auto agent = connect();
  ASSERT_TRUE(agent);
  const std::string input = random_bytes(24u * 1024 * 1024, 11);
  std::size_t largest_ask = 0;
  expect_cat_streams_back(*agent, input, &largest_ask);
  // 64 KiB less the envelope around the data: its frame fits in any peer's
  // max_message.
  EXPECT_EQ(largest_ask, 64u * 1024 - 128);
}

// Both sides at the smallest max_message (64 KiB): every stdin piece still
// fits in one frame, and a few MiB pass through the credit intact.
TEST_F(HostAgent, ExecStreamsStdinWithTheSmallestMaxMessageOnBothSides) {
  start_agent("[limits]\nmax_message = 65536\n");
  auto o = options();
  o.max_message = 64 * 1024;
  auto agent = connect(o);
  ASSERT_TRUE(agent);
  const std::string input = random_bytes(4u * 1024 * 1024, 12);
  expect_cat_streams_back(*agent, input);
}

// A program that stops reading its stdin: the host holds its source back
// (no credit comes), and the call ends when the program does.
TEST_F(HostAgent, ExecWhoseProgramStopsReadingEndsWithTheProgram) {
  start_agent();
  auto agent = connect();
  ASSERT_TRUE(agent);
  std::uint64_t supplied = 0;
  host::ExecStreams streams;
  streams.stdin_source = [&supplied](char* buf, std::size_t n) -> host::Result<std::size_t> {
    std::memset(buf, 'z', n);
    supplied += n;
    return n;  // endless
  };
  auto r = agent->exec(argv({"/bin/sh", "-c", "head -c 100000 >/dev/null; exec sleep 0.2"}), streams, {.timeout = 60s});
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->result.exit_code(), 0);
  // Never more than what head consumed plus one window the agent held.
  EXPECT_LE(supplied, 100000u + 2u * 1024 * 1024);
}

TEST_F(HostAgent, CollectedOutputIsBoundedAndTheCommandCancelledBeyondIt) {
  start_agent();
  auto agent = connect();
  ASSERT_TRUE(agent);
  const std::string pidfile = dir() + "/pid";
  host::ExecStreams collect;
  collect.max_collected = 1024 * 1024;
  // Prints 1 MiB + 1 byte, then waits: only the bound can end the call.
  auto r = agent->exec(argv({"/bin/sh", "-c",
                             "echo $$ > " + pidfile + ".tmp; mv " + pidfile + ".tmp " + pidfile +
                                 "; head -c 1048577 /dev/zero; exec sleep 60"}),
                       collect);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind(), ErrorKind::kLocal);
  EXPECT_EQ(r.error().message(),
            "exec: the command's stdout passed the 1048576 bytes this call collects (ExecStreams::max_collected): the "
            "command was cancelled. Stream its output with a callback instead.");
  // The guest killed the command, and the connection serves the next call.
  const pid_t pid = std::stoi(slurp(pidfile));
  auto gone =
      agent->exec(argv({"/bin/sh", "-c", "while kill -0 " + std::to_string(pid) + " 2>/dev/null; do sleep 0.01; done"}),
                  {}, {.timeout = 10s});
  EXPECT_TRUE(gone.ok()) << gone.error().to_string();
  // Exactly the bound is still collected.
  auto exact = agent->exec(argv({"/bin/sh", "-c", "head -c 1048576 /dev/zero"}), collect);
  ASSERT_TRUE(exact.ok()) << exact.error().to_string();
  EXPECT_EQ(exact->stdout_data.size(), 1048576u);
  EXPECT_EQ(agent->stats().handshakes, 1u);
}

TEST_F(HostAgent, UploadAndDownloadBytesWithSha256) {
  start_agent();
  auto agent = connect();
  ASSERT_TRUE(agent);
  const std::string data = random_bytes(5 * 1024 * 1024 + 17, 1);
  const std::string remote = dir() + "/up.bin";
  v1::FileWriteRequest w;
  w.set_path(remote);
  std::vector<host::TransferProgress> progress;
  host::TransferOptions t;
  t.on_progress = [&progress](const host::TransferProgress& p) { progress.push_back(p); };
  auto up = agent->upload_bytes(data, w, t);
  ASSERT_TRUE(up.ok()) << up.error().to_string();
  EXPECT_EQ(up->bytes, data.size());
  EXPECT_EQ(up->sha256_hex, wire::Sha256::hex(wire::Sha256::of(data)));
  EXPECT_EQ(slurp(remote), data);
  ASSERT_FALSE(progress.empty());
  EXPECT_EQ(progress.back().bytes, data.size());
  EXPECT_EQ(progress.back().total, data.size());

  v1::FileReadRequest rd;
  rd.set_path(remote);
  std::string back;
  auto down = agent->download_bytes(rd, &back);
  ASSERT_TRUE(down.ok()) << down.error().to_string();
  EXPECT_EQ(down->bytes, data.size());
  EXPECT_EQ(back, data);
  EXPECT_EQ(down->sha256_hex, up->sha256_hex);

  // A range, and an empty file.
  rd.set_offset(100);
  rd.set_length(1000);
  back.clear();
  ASSERT_TRUE(agent->download_bytes(rd, &back).ok());
  EXPECT_EQ(back, data.substr(100, 1000));
  w.set_path(dir() + "/empty");
  auto empty = agent->upload_bytes("", w);
  ASSERT_TRUE(empty.ok()) << empty.error().to_string();
  EXPECT_EQ(empty->bytes, 0u);
  EXPECT_EQ(slurp(dir() + "/empty"), "");
}

TEST_F(HostAgent, TransfersWithoutSha256MoveTheSameBytesAndReportNoDigest) {
  start_agent();
  auto agent = connect();
  ASSERT_TRUE(agent);
  const std::string data = random_bytes(3 * 1024 * 1024 + 3, 4);
  host::TransferOptions t;
  t.verify_sha256 = false;
  v1::FileWriteRequest w;
  w.set_path(dir() + "/nosha.bin");
  auto up = agent->upload_bytes(data, w, t);
  ASSERT_TRUE(up.ok()) << up.error().to_string();
  EXPECT_EQ(up->bytes, data.size());
  EXPECT_EQ(up->sha256_hex, "");
  EXPECT_EQ(slurp(dir() + "/nosha.bin"), data);
  v1::FileReadRequest rd;
  rd.set_path(dir() + "/nosha.bin");
  std::string back;
  auto down = agent->download_bytes(rd, &back, t);
  ASSERT_TRUE(down.ok()) << down.error().to_string();
  EXPECT_EQ(down->bytes, data.size());
  EXPECT_EQ(down->sha256_hex, "");
  EXPECT_EQ(back, data);
}

TEST_F(HostAgent, FileToFileTransfersLeaveNoPartialOnFailure) {
  start_agent();
  auto agent = connect();
  ASSERT_TRUE(agent);
  const std::string data = random_bytes(3 * 1024 * 1024, 2);
  std::ofstream(dir() + "/local.bin", std::ios::binary) << data;
  v1::FileWriteRequest w;
  w.set_path(dir() + "/guest/remote.bin");
  w.set_create_parents(true);
  w.set_atomic(true);
  auto up = agent->upload_file(dir() + "/local.bin", w);
  ASSERT_TRUE(up.ok()) << up.error().to_string();
  EXPECT_EQ(slurp(dir() + "/guest/remote.bin"), data);

  v1::FileReadRequest rd;
  rd.set_path(dir() + "/guest/remote.bin");
  auto down = agent->download_file(rd, dir() + "/copy.bin");
  ASSERT_TRUE(down.ok()) << down.error().to_string();
  EXPECT_EQ(slurp(dir() + "/copy.bin"), data);

  // A missing guest file: kNotFound, and no temporary left beside the target.
  rd.set_path(dir() + "/nope");
  auto missing = agent->download_file(rd, dir() + "/copy2.bin");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().kind(), ErrorKind::kNotFound) << missing.error().to_string();
  EXPECT_EQ(missing.error().guest_code(), v1::ERROR_CODE_NOT_FOUND);
  EXPECT_EQ(std::system(("ls " + dir() + " | grep -q partial").c_str()) == 0, false);

  // A missing local file: kLocal with the errno, nothing sent.
  auto nolocal = agent->upload_file(dir() + "/absent", w);
  ASSERT_FALSE(nolocal.ok());
  EXPECT_EQ(nolocal.error().kind(), ErrorKind::kLocal);
  EXPECT_EQ(nolocal.error().os_errno(), ENOENT);
}

TEST_F(HostAgent, AChunkLargerThanTheLargestMessageIsSentInPiecesThatFit) {
  start_agent("[limits]\nmax_message = 65536\n");
  auto o = options();
  o.max_message = 64 * 1024;
  auto agent = connect(o);
  ASSERT_TRUE(agent);
  v1::FileWriteRequest w;
  w.set_path(dir() + "/big-chunks");
  const std::string data = random_bytes(3u * 1024 * 1024 + 5, 13);
  auto r = agent->upload_bytes(data, w);  // default chunk: 256 KiB
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->bytes, data.size());
  EXPECT_TRUE(slurp(dir() + "/big-chunks") == data);
}

TEST_F(HostAgent, FileCommands) {
  start_agent();
  auto agent = connect();
  ASSERT_TRUE(agent);
  v1::FileMkdirRequest mk;
  mk.set_path(dir() + "/a/b");
  mk.set_parents(true);
  ASSERT_TRUE(agent->file_mkdir(mk).ok());
  v1::FileWriteRequest w;
  w.set_path(dir() + "/a/b/f.txt");
  ASSERT_TRUE(agent->upload_bytes("hello", w).ok());

  v1::FileStatRequest st;
  st.set_path(dir() + "/a/b/f.txt");
  auto s = agent->file_stat(st);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->type(), v1::FILE_TYPE_REGULAR);
  EXPECT_EQ(s->size(), 5u);

  v1::FileListRequest ls;
  ls.set_path(dir() + "/a/b");
  auto l = agent->file_list(ls);
  ASSERT_TRUE(l.ok());
  ASSERT_EQ(l->entries_size(), 1);
  EXPECT_EQ(l->entries(0).path(), "f.txt");

  v1::FileHashRequest h;
  h.set_path(dir() + "/a/b/f.txt");
  auto hash = agent->file_hash(h);
  ASSERT_TRUE(hash.ok());
  EXPECT_EQ(hash->sha256(), wire::Sha256::bytes(wire::Sha256::of("hello")));

  v1::FileSetAttrRequest attr;
  attr.set_path(dir() + "/a/b/f.txt");
  attr.set_mode(0600);
  ASSERT_TRUE(agent->file_set_attr(attr).ok());
  struct stat lst {};
  ASSERT_EQ(::stat((dir() + "/a/b/f.txt").c_str(), &lst), 0);
  EXPECT_EQ(lst.st_mode & 07777, 0600u);

  v1::FileRemoveRequest rm;
  rm.set_path(dir() + "/a");
  auto not_recursive = agent->file_remove(rm);
  ASSERT_FALSE(not_recursive.ok());
  EXPECT_NE(not_recursive.error().kind(), ErrorKind::kDisconnected);
  rm.set_recursive(true);
  ASSERT_TRUE(agent->file_remove(rm).ok());
  EXPECT_NE(::access((dir() + "/a").c_str(), F_OK), 0);
}

TEST_F(HostAgent, SystemCommands) {
  const std::string marker = dir() + "/powered-off";
  start_agent("[power]\npoweroff = [\"/bin/sh\", \"-c\", \"echo off > " + marker + "\"]\n");
  auto agent = connect();
  ASSERT_TRUE(agent);
  auto t = agent->time_get({});
  ASSERT_TRUE(t.ok());
  EXPECT_GT(t->unix_time_ns(), 1700000000LL * 1000000000LL);
  auto hn = agent->hostname_get({});
  ASSERT_TRUE(hn.ok());
  char mine[256] = {};
  ::gethostname(mine, sizeof(mine) - 1);
  EXPECT_EQ(hn->hostname(), mine);
  auto net = agent->network({});
  ASSERT_TRUE(net.ok());
  bool has_lo = false;
  for (const auto& i : net->interfaces()) has_lo |= i.name() == "lo";
  EXPECT_TRUE(has_lo);
  auto ps = agent->process_list({});
  ASSERT_TRUE(ps.ok());
  bool has_agent = false;
  for (const auto& p : ps->processes()) has_agent |= static_cast<pid_t>(p.pid()) == agent_->pid();
  EXPECT_TRUE(has_agent);
  v1::ProcessKillRequest kill;
  kill.set_pid(0x7ffffff0);
  auto killed = agent->process_kill(kill);
  ASSERT_FALSE(killed.ok());
  EXPECT_EQ(killed.error().kind(), ErrorKind::kNotFound) << killed.error().to_string();
  auto fs = agent->freeze_status({});
  ASSERT_TRUE(fs.ok());
  EXPECT_FALSE(fs->frozen());

  v1::PowerRequest power;
  power.set_action(v1::PowerRequest::ACTION_POWEROFF);
  ASSERT_TRUE(agent->power(power).ok());
  // The agent answers first, then runs the command.
  EXPECT_TRUE(wait_for_file(*agent, marker));
  EXPECT_EQ(slurp(marker), "off\n");
}

TEST_F(HostAgent, TelemetryArrivesThroughCallbackAndLatest) {
  start_agent("[telemetry]\ninterval_ms = 3600000\n");
  Mailbox<v1::TelemetrySample> samples;
  auto o = options();
  o.callbacks.on_telemetry = [&samples](const v1::TelemetrySample& s) { samples.post(s); };
  auto agent = connect(o);
  ASSERT_TRUE(agent);
  v1::TelemetryConfigRequest cfg;
  cfg.set_sample_now(true);
  cfg.set_interval_ms(3600000);
  auto r = agent->telemetry_config(cfg);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->interval_ms(), 3600000u);
  // One sample follows the handshake and one was asked for: seq 1, then 2.
  auto first = samples.take();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->seq(), 1u);
  auto s = samples.take();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->seq(), 2u);
  EXPECT_GT(s->memory().total_bytes(), 0u);
  auto latest = agent->latest_telemetry();
  ASSERT_TRUE(latest);
  EXPECT_EQ(latest->seq(), 2u);
  EXPECT_EQ(agent->stats().telemetry_samples, 2u);
}

TEST_F(HostAgent, PolicyDenialIsAKind) {
  start_agent("[policy]\ndeny = [\"exec\"]\n");
  auto agent = connect();
  ASSERT_TRUE(agent);
  auto r = agent->exec(argv({"/bin/true"}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind(), ErrorKind::kDenied) << r.error().to_string();
  EXPECT_EQ(r.error().guest_code(), v1::ERROR_CODE_DENIED);
  EXPECT_FALSE(r.error().retryable());
  bool listed = false;
  const auto identity = agent->identity();
  ASSERT_TRUE(identity);
  for (const auto& c : identity->capabilities()) {
    if (c.name() == "exec") listed = !c.allowed();
  }
  EXPECT_TRUE(listed);
}

TEST_F(HostAgent, HundredCallsInFlightAnsweredOutOfOrder) {
  start_agent();
  auto agent = connect();
  ASSERT_TRUE(agent);
  // The exec cannot finish before the flag file exists, and the flag is
  // made only once all 99 pings are answered: replies out of order, by
  // construction.
  const std::string flag = dir() + "/flag";
  std::promise<host::Result<host::ExecOutcome>> slow;
  agent->exec(argv({"/bin/sh", "-c", "while [ ! -e " + flag + " ]; do sleep 0.01; done; echo late"}), {},
              {.timeout = 0ms}, [&slow](host::Result<host::ExecOutcome> r) { slow.set_value(std::move(r)); });
  std::mutex mu;
  std::condition_variable cv;
  int answered = 0, matched = 0;
  for (int i = 0; i < 99; ++i) {
    v1::PingRequest p;
    p.set_payload("ping-" + std::to_string(i));
    agent->ping(p, {}, [&, i](host::Result<v1::PingResponse> r) {
      std::lock_guard<std::mutex> lock(mu);
      ++answered;
      if (r.ok() && r->payload() == "ping-" + std::to_string(i)) ++matched;
      cv.notify_all();
    });
  }
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, 10s, [&] { return answered == 99; }));
  }
  EXPECT_EQ(matched, 99);
  auto fut = slow.get_future();
  EXPECT_EQ(fut.wait_for(0s), std::future_status::timeout);
  std::ofstream(flag) << "";
  auto r = fut.get();
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->stdout_data, "late\n");
}

TEST_F(HostAgent, CancelKillsTheExecAndDeadlinesFailWithTimeout) {
  start_agent();
  auto agent = connect();
  ASSERT_TRUE(agent);
  const std::string pidfile = dir() + "/pid";
  std::promise<host::Result<host::ExecOutcome>> done;
  auto id =
      agent->exec(argv({"/bin/sh", "-c",
                        "echo $$ > " + pidfile + ".tmp; mv " + pidfile + ".tmp " + pidfile + "; exec sleep 60"}),
                  {}, {.timeout = 0ms}, [&done](host::Result<host::ExecOutcome> r) { done.set_value(std::move(r)); });
  ASSERT_TRUE(wait_for_file(*agent, pidfile));
  const pid_t pid = std::stoi(slurp(pidfile));
  agent->cancel(id);
  auto r = done.get_future().get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind(), ErrorKind::kCancelled);
  // The agent killed the process: waiting for it in the guest returns.
  auto gone =
      agent->exec(argv({"/bin/sh", "-c", "while kill -0 " + std::to_string(pid) + " 2>/dev/null; do sleep 0.01; done"}),
                  {}, {.timeout = 10s});
  EXPECT_TRUE(gone.ok()) << gone.error().to_string();

  auto slow = agent->exec(argv({"/bin/sleep", "60"}), {}, {.timeout = 200ms});
  ASSERT_FALSE(slow.ok());
  EXPECT_EQ(slow.error().kind(), ErrorKind::kTimeout) << slow.error().to_string();
  EXPECT_TRUE(slow.error().retryable());
}

// Deadlines of one duration share a list (IoThread::set_deadline): one
// answered from the middle of it leaves the others in force, and another
// duration keeps its own.
TEST_F(HostAgent, DeadlinesOfOneDurationEndOnlyTheCallsLeftUnanswered) {
  start_agent();
  auto agent = connect();
  ASSERT_TRUE(agent);
  using Outcome = host::Result<host::ExecOutcome>;
  std::promise<Outcome> first, last, shorter;
  std::promise<host::Result<v1::PingResponse>> answered;
  const auto sleep60 = argv({"/bin/sleep", "60"});
  agent->exec(sleep60, {}, {.timeout = 300ms}, [&first](Outcome r) { first.set_value(std::move(r)); });
  agent->ping({}, {.timeout = 300ms},
              [&answered](host::Result<v1::PingResponse> r) { answered.set_value(std::move(r)); });
  agent->exec(sleep60, {}, {.timeout = 300ms}, [&last](Outcome r) { last.set_value(std::move(r)); });
  agent->exec(sleep60, {}, {.timeout = 100ms}, [&shorter](Outcome r) { shorter.set_value(std::move(r)); });
  auto ping = answered.get_future().get();
  EXPECT_TRUE(ping.ok()) << ping.error().to_string();
  for (auto* p : {&first, &last}) {
    auto r = p->get_future().get();
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().kind(), ErrorKind::kTimeout);
    EXPECT_NE(r.error().message().find("no answer within 300 ms"), std::string::npos) << r.error().to_string();
  }
  auto r = shorter.get_future().get();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("no answer within 100 ms"), std::string::npos) << r.error().to_string();
  EXPECT_TRUE(agent->ping({}, {.timeout = 300ms}).ok());  // the link is still ready
}

TEST_F(HostAgent, BlockingCallInsideACallbackFailsInsteadOfDeadlocking) {
  start_agent();
  auto agent = connect();
  ASSERT_TRUE(agent);
  std::promise<host::Result<v1::PingResponse>> inner;
  agent->ping({}, {}, [&](host::Result<v1::PingResponse>) { inner.set_value(agent->ping({})); });
  auto r = inner.get_future().get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind(), ErrorKind::kInvalidArgument);
}

TEST_F(HostAgent, StreamedKindsAreRefusedByTheGenericCall) {
  start_agent();
  auto agent = connect();
  ASSERT_TRUE(agent);
  v1::Request req;
  req.mutable_exec()->add_argv("/bin/true");
  auto r = agent->call(req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind(), ErrorKind::kInvalidArgument);
  req.mutable_hostname_get();
  auto h = agent->call(req);
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(h->has_hostname_get());
}

}  // namespace
}  // namespace qtx::testing
