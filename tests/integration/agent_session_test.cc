// qtx-agent as a separate process over a unix socket: handshake, requests,
// policy, telemetry, reconnects, garbage, signals.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/utsname.h>
#include <sys/wait.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "qtx/wire/envelope_codec.h"
#include "support/agent_client.h"
#include "support/agent_process.h"
#include "support/frames.h"
#include "system/system_info.h"

namespace qtx::testing {
namespace {

constexpr Millis kAccept{10000};

std::string socket_path(const char* name) { return "/tmp/qtx-it-" + std::to_string(::getpid()) + "-" + name + ".sock"; }

std::uint64_t mem_total_bytes() {
  std::ifstream f("/proc/meminfo");
  std::string key;
  std::uint64_t kb = 0;
  f >> key >> kb;
  return kb * 1024;
}

class AgentSession : public ::testing::Test {
 protected:
  void start(const std::string& config = "", const char* name = "s") {
    listener_ = std::make_unique<HostListener>(socket_path(name));
    agent_ = std::make_unique<AgentProcess>(listener_->path(), config);
    conn_ = accept_next();
  }
  std::unique_ptr<AgentConnection> accept_next() {
    int fd = listener_->accept(kAccept);
    EXPECT_GE(fd, 0) << "the agent did not connect; its log:\n" << agent_->log();
    return fd >= 0 ? std::make_unique<AgentConnection>(fd) : nullptr;
  }
  void TearDown() override {
    conn_.reset();
    if (agent_ && agent_->running()) {
      int status = agent_->signal_and_wait(SIGTERM);
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << agent_->log();
    }
  }

  std::unique_ptr<HostListener> listener_;
  std::unique_ptr<AgentProcess> agent_;
  std::unique_ptr<AgentConnection> conn_;
};

TEST_F(AgentSession, HandshakeEchoesTheNonceAndIdentifiesTheAgent) {
  start();
  ASSERT_TRUE(conn_);
  auto r = conn_->hello(0xfeedface12345678ull);
  ASSERT_TRUE(r) << agent_->log();
  ASSERT_TRUE(r->has_hello()) << describe(r);
  EXPECT_EQ(r->hello().nonce(), 0xfeedface12345678ull);
  EXPECT_EQ(r->hello().protocol_version(), 1u);
  const auto& id = r->hello().agent();
  EXPECT_EQ(id.version(), "0.2.0");
  EXPECT_EQ(id.instance_id().size(), 32u);
  std::ifstream boot("/proc/sys/kernel/random/boot_id");
  std::string boot_id;
  boot >> boot_id;
  EXPECT_EQ(id.boot_id(), boot_id);
  bool has_ping = false;
  for (const auto& c : id.capabilities()) has_ping |= c.name() == "ping" && c.allowed();
  EXPECT_TRUE(has_ping);
}

TEST_F(AgentSession, NothingIsSentBeforeTheHandshake) {
  start("[telemetry]\ninterval_ms = 100\n");
  ASSERT_TRUE(conn_);
  EXPECT_FALSE(conn_->recv(Millis(400)));  // quiet line: no telemetry, nothing
  ASSERT_TRUE(conn_->hello());
  auto t = conn_->recv_until([](const v1::Envelope& e) { return e.has_event(); });
  ASSERT_TRUE(t);
  EXPECT_EQ(t->event().telemetry().seq(), 1u);
}

TEST_F(AgentSession, PingEchoesItsPayload) {
  start();
  ASSERT_TRUE(conn_ && conn_->hello());
  v1::Request req;
  req.mutable_ping()->set_payload(std::string("\0\1\2payload", 10));
  auto r = conn_->call(7, req);
  ASSERT_TRUE(r && r->has_ping());
  EXPECT_EQ(r->ping().payload(), std::string("\0\1\2payload", 10));
}

TEST_F(AgentSession, UnknownRequestKindIsUnsupported) {
  start();
  ASSERT_TRUE(conn_ && conn_->hello());
  // A Request carrying only field 999, which this agent does not know.
  std::string body("\x10\x05\x1a\x03\xb8\x3e\x01", 7);
  conn_->send_raw(frame(sealed(body)));
  auto r = conn_->recv_until([](const v1::Envelope& e) { return e.id() == 5; });
  ASSERT_TRUE(r);
  ASSERT_TRUE(r->response().has_error());
  EXPECT_EQ(r->response().error().code(), v1::ERROR_CODE_UNSUPPORTED);
}

TEST_F(AgentSession, PolicyDenialsAreAnsweredAndHelloStillWorks) {
  start("[policy]\ndeny = [\"info\"]\n");
  ASSERT_TRUE(conn_);
  auto hello = conn_->hello();
  ASSERT_TRUE(hello);
  bool info_denied = false;
  for (const auto& c : hello->hello().agent().capabilities()) info_denied |= c.name() == "info" && !c.allowed();
  EXPECT_TRUE(info_denied);
  v1::Request req;
  req.mutable_info();
  auto r = conn_->call(2, req);
  ASSERT_TRUE(r && r->has_error());
  EXPECT_EQ(r->error().code(), v1::ERROR_CODE_DENIED);
  EXPECT_EQ(r->error().message(), "denied by the guest's policy: info");
  EXPECT_NE(agent_->log().find("audit: denied info (id 2) by policy"), std::string::npos);
}

TEST_F(AgentSession, InfoDescribesTheGuest) {
  start();
  ASSERT_TRUE(conn_ && conn_->hello());
  v1::Request req;
  req.mutable_info();
  auto r = conn_->call(3, req);
  ASSERT_TRUE(r && r->has_info()) << describe(r);
  struct utsname u {};
  ::uname(&u);
  EXPECT_EQ(r->info().kernel_release(), u.release);
  EXPECT_EQ(r->info().arch(), u.machine);
  EXPECT_EQ(r->info().hostname(), u.nodename);
  EXPECT_FALSE(r->info().os().id().empty());
  EXPECT_TRUE(r->info().policy().exec_allowed());
  // The sources and their order are pinned by SystemInfo.TimezoneFromAFakeRoot.
  EXPECT_EQ(r->info().timezone(), agent::read_timezone());
  EXPECT_FALSE(r->info().timezone().empty());
}

// A request with id 0 cannot be answered (its answer would look like an
// event): the agent refuses its frame, which its decoder drops whole as
// bad_payload. It is counted in bytes_dropped, not in frames_received, and
// the session goes on.
TEST_F(AgentSession, RequestWithIdZeroIsACountedDropAndNeverAnswered) {
  start();
  ASSERT_TRUE(conn_ && conn_->hello());  // frame 1
  v1::Envelope zero;
  zero.set_id(0);
  zero.mutable_request()->mutable_ping()->set_payload("id zero");
  std::string f;
  ASSERT_TRUE(wire::append_envelope_frame(zero, &f).ok());
  conn_->send_raw(f);
  v1::Request info;
  info.mutable_info();
  auto r = conn_->call(2, info);
  ASSERT_TRUE(r && r->has_info()) << describe(r);
  EXPECT_EQ(r->info().session().frames_received(), 1u);  // the hello; not the refused frame, nor the info itself
  EXPECT_EQ(r->info().session().bytes_dropped(), f.size());
  for (const auto& e : conn_->skipped) EXPECT_FALSE(e.has_response()) << "an answer to id " << e.id();
  EXPECT_NE(agent_->log().find("request with id 0 refused"), std::string::npos) << agent_->log();
  EXPECT_NE(agent_->log().find("dropped " + std::to_string(f.size()) + " bytes at offset"), std::string::npos);
}

// Requests need no hello first: the hello is for the host, to tell the
// answers of this session from stale ones. Telemetry waits for it.
TEST_F(AgentSession, RequestsBeforeAnyHelloAreAnswered) {
  start("[telemetry]\ninterval_ms = 100\n");
  ASSERT_TRUE(conn_);
  v1::Request ping;
  ping.mutable_ping()->set_payload("early");
  auto r = conn_->call(4, ping);
  ASSERT_TRUE(r && r->has_ping()) << describe(r);
  EXPECT_EQ(r->ping().payload(), "early");
  v1::Request info;
  info.mutable_info();
  r = conn_->call(5, info);
  ASSERT_TRUE(r && r->has_info()) << describe(r);
  EXPECT_EQ(r->info().session().frames_received(), 1u);
  EXPECT_TRUE(conn_->events.empty());  // no telemetry before a hello
  ASSERT_TRUE(conn_->hello(0x77, 6));
  auto t = conn_->recv_until([](const v1::Envelope& e) { return e.has_event() && e.event().has_telemetry(); });
  ASSERT_TRUE(t);
  EXPECT_EQ(t->event().telemetry().seq(), 1u);
}

// The agent answers every hello with the version it speaks, 1, whatever the
// host asked for: a host that wants another must decide whether to go on.
TEST_F(AgentSession, HelloIsAnsweredWithProtocolOneWhateverTheHostAsks) {
  start();
  ASSERT_TRUE(conn_);
  for (std::uint32_t asked : {2u, 0u, 1u, 0xffffffffu}) {
    v1::Request req;
    req.mutable_hello()->set_nonce(100 + asked);
    req.mutable_hello()->set_protocol_version(asked);
    const std::uint64_t id = 10 + (asked & 0xff);
    auto r = conn_->call(id, req);
    ASSERT_TRUE(r && r->has_hello()) << "asked " << asked << ": " << describe(r);
    EXPECT_EQ(r->hello().nonce(), 100u + asked);
    EXPECT_EQ(r->hello().protocol_version(), 1u) << "asked " << asked;
  }
}

// A second hello on a session is answered like the first (its own nonce, the
// same identity) and changes nothing else: operations in flight go on.
TEST_F(AgentSession, ASecondHelloIsAnsweredAndOperationsInFlightGoOn) {
  start();
  ASSERT_TRUE(conn_);
  auto first = conn_->hello(1, 1);
  ASSERT_TRUE(first && first->has_hello());
  v1::Envelope exec;
  exec.set_id(2);
  exec.mutable_request()->mutable_exec()->add_argv("/bin/cat");
  exec.mutable_request()->mutable_exec()->set_stdin_stream(true);
  conn_->send(exec);
  auto second = conn_->hello(2, 3);
  ASSERT_TRUE(second && second->has_hello()) << describe(second);
  EXPECT_EQ(second->hello().nonce(), 2u);
  EXPECT_EQ(second->hello().agent().instance_id(), first->hello().agent().instance_id());
  v1::Envelope in;
  in.set_id(2);
  in.mutable_progress()->mutable_exec_input()->set_data("still here");
  in.mutable_progress()->mutable_exec_input()->set_eof(true);
  conn_->send(in);
  auto done = conn_->recv_until([](const v1::Envelope& e) { return e.id() == 2 && e.has_response(); });
  ASSERT_TRUE(done && done->response().has_exec()) << agent_->log();
  EXPECT_EQ(done->response().exec().exit_code(), 0);
  std::string out;
  for (const auto& p : conn_->progress) {
    if (p.id() == 2 && p.progress().has_exec_output()) out += p.progress().exec_output().data();
  }
  EXPECT_EQ(out, "still here");
}

TEST_F(AgentSession, TelemetryArrivesWithPlausibleValuesAndFollowsTheInterval) {
  start("[telemetry]\ninterval_ms = 60000\n");
  ASSERT_TRUE(conn_ && conn_->hello());
  auto first = conn_->recv_until([](const v1::Envelope& e) { return e.has_event(); });
  ASSERT_TRUE(first);
  const auto& s = first->event().telemetry();
  EXPECT_EQ(s.seq(), 1u);
  EXPECT_EQ(s.memory().total_bytes(), mem_total_bytes());
  EXPECT_GT(s.uptime_ms(), 0u);
  EXPECT_GT(s.process_count(), 1u);
  EXPECT_GE(s.cpu().idle_pct() + s.cpu().busy_pct(), 99.0);
  EXPECT_LE(s.cpu().busy_pct(), 100.0);
  bool has_lo = false;
  for (const auto& i : s.interfaces()) has_lo |= i.name() == "lo";
  EXPECT_TRUE(has_lo);
  bool has_root = false;
  for (const auto& fs : s.filesystems()) has_root |= fs.mountpoint() == "/" && fs.size_bytes() > 0;
  EXPECT_TRUE(has_root);

  // Interval 60 s: nothing more soon. Then 100 ms, and a sample on request.
  v1::Request cfg;
  cfg.mutable_telemetry_config()->set_interval_ms(100);
  cfg.mutable_telemetry_config()->set_sample_now(true);
  auto r = conn_->call(2, cfg);
  ASSERT_TRUE(r && r->has_telemetry_config());
  EXPECT_EQ(r->telemetry_config().interval_ms(), 100u);
  for (std::uint64_t seq = 2; seq <= 5; ++seq) {
    auto next = conn_->recv_until([](const v1::Envelope& e) { return e.has_event(); }, Millis(5000));
    ASSERT_TRUE(next);
    EXPECT_EQ(next->event().telemetry().seq(), seq);
  }
}

TEST_F(AgentSession, TelemetryIntervalBelowTheMinimumIsRefused) {
  start();
  ASSERT_TRUE(conn_ && conn_->hello());
  v1::Request cfg;
  cfg.mutable_telemetry_config()->set_interval_ms(5);
  auto r = conn_->call(2, cfg);
  ASSERT_TRUE(r && r->has_error());
  EXPECT_EQ(r->error().code(), v1::ERROR_CODE_INVALID_ARGUMENT);
}

TEST_F(AgentSession, GarbageAndAStalePartialFrameBeforeTheHandshakeAreSkipped) {
  start();
  ASSERT_TRUE(conn_);
  // Garbage, then the first 40 bytes of a real frame of 4 KiB, then hello:
  // the agent waits for the stale frame, flushes it after the idle time and
  // finds the hello inside.
  v1::Envelope big;
  big.set_id(3);
  big.mutable_request()->mutable_ping()->set_payload(std::string(4096, 'z'));
  std::string stale;
  ASSERT_TRUE(wire::append_envelope_frame(big, &stale).ok());
  conn_->send_raw("\xff\xfe garbage QTX" + stale.substr(0, 40));
  auto r = conn_->hello(99);
  ASSERT_TRUE(r && r->has_hello()) << agent_->log();
  EXPECT_EQ(r->hello().nonce(), 99u);
  EXPECT_NE(agent_->log().find("from the host: stalled"), std::string::npos) << agent_->log();
}

std::string ping_frame(std::uint64_t id, char fill) {
  v1::Envelope e;
  e.set_id(id);
  e.mutable_request()->mutable_ping()->set_payload(std::string(4096, fill));
  std::string f;
  EXPECT_TRUE(wire::append_envelope_frame(e, &f).ok());
  return f;
}

// A host that pauses inside a frame for longer than the idle time (a loaded
// machine descheduled it, or it was stopped) and then goes on: the frame is
// still delivered, and the ones after it. Flushing it would lose one whole
// message of a stream that carries on (an exec's stdin piece, silently).
TEST_F(AgentSession, AHostPausingInsideAFrameLongerThanTheIdleTimeLosesNothing) {
  start();
  ASSERT_TRUE(conn_ && conn_->hello());
  const std::string p2 = ping_frame(2, 'b'), p3 = ping_frame(3, 'c');
  conn_->send_raw(p2.substr(0, 100));
  // The pause is the scenario, not a synchronisation: a longer one changes
  // nothing, and an agent slow to read the head only shortens its wait.
  std::this_thread::sleep_for(Millis(wire::kDefaultStallTimeoutMs + 500));
  conn_->send_raw(p2.substr(100) + p3);
  auto r2 = conn_->recv_until([](const v1::Envelope& e) { return e.id() == 2 && e.has_response(); });
  ASSERT_TRUE(r2 && r2->response().has_ping()) << agent_->log();
  EXPECT_EQ(r2->response().ping().payload(), std::string(4096, 'b'));
  auto r3 = conn_->recv_until([](const v1::Envelope& e) { return e.id() == 3 && e.has_response(); });
  ASSERT_TRUE(r3 && r3->response().has_ping()) << agent_->log();
  EXPECT_EQ(r3->response().ping().payload(), std::string(4096, 'c'));
  EXPECT_EQ(agent_->log().find("from the host"), std::string::npos) << agent_->log();
}

TEST_F(AgentSession, HostDisconnectIsFollowedByANewSession) {
  start();
  ASSERT_TRUE(conn_ && conn_->hello());
  const std::string instance = conn_->hello(5, 2)->hello().agent().instance_id();
  conn_->close();
  conn_ = accept_next();
  ASSERT_TRUE(conn_);
  auto r = conn_->hello(6);
  ASSERT_TRUE(r && r->has_hello());
  EXPECT_EQ(r->hello().agent().instance_id(), instance);  // same process, new session
}

TEST_F(AgentSession, HostKilledMidFrameDoesNotLeakIntoTheNextSession) {
  start();
  ASSERT_TRUE(conn_ && conn_->hello());
  v1::Envelope env;
  env.set_id(9);
  env.mutable_request()->mutable_ping()->set_payload(std::string(1000, 'p'));
  std::string f;
  ASSERT_TRUE(wire::append_envelope_frame(env, &f).ok());
  conn_->send_raw(f.substr(0, f.size() / 2));
  conn_->close();
  conn_ = accept_next();
  ASSERT_TRUE(conn_);
  // The half frame died with its session: the new one answers at once, and
  // the old request is never answered in it.
  auto r = conn_->hello(7);
  ASSERT_TRUE(r && r->has_hello());
  EXPECT_FALSE(conn_->recv_until([](const v1::Envelope& e) { return e.id() == 9; }, Millis(300)));
}

TEST_F(AgentSession, SigtermExitsZero) {
  start();
  ASSERT_TRUE(conn_ && conn_->hello());
  int status = agent_->signal_and_wait(SIGTERM);
  EXPECT_TRUE(WIFEXITED(status)) << agent_->log();
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_NE(agent_->log().find("SIGTERM received: stopping"), std::string::npos);
}

TEST_F(AgentSession, ThousandReconnectsLeakNoDescriptorsOrMemory) {
  start();
  ASSERT_TRUE(conn_ && conn_->hello());
  // Measured when quiet: after the hello and the telemetry sample it starts
  // (the collector briefly opens /proc files on a worker).
  auto settle = [&](std::uint64_t nonce) {
    ASSERT_TRUE(conn_->hello(nonce));
    ASSERT_TRUE(conn_->recv_until([](const v1::Envelope& e) { return e.has_event(); }));
  };
  conn_->close();
  conn_ = accept_next();
  ASSERT_TRUE(conn_);
  settle(1);
  const int fds_before = agent_->open_fds();
  const std::string fd_list_before = agent_->describe_fds();
  const long rss_before = agent_->rss_kib();
  for (int i = 0; i < 1000; ++i) {
    conn_->close();
    conn_ = accept_next();
    ASSERT_TRUE(conn_) << "cycle " << i;
    if (i % 2 == 0) {
      ASSERT_TRUE(conn_->hello(static_cast<std::uint64_t>(i))) << "cycle " << i;
    }
  }
  settle(2);
  EXPECT_EQ(agent_->open_fds(), fds_before) << "before:\n" << fd_list_before << "after:\n" << agent_->describe_fds();
  if (kRssIsMeaningful) {
    EXPECT_LT(agent_->rss_kib() - rss_before, 2048) << "RSS grew from " << rss_before << " KiB";
  }
}

}  // namespace
}  // namespace qtx::testing
