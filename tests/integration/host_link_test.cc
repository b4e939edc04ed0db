// libqtx-host's connection under the failures of the seeds: agents that die
// mid-call, stale bytes and garbage on the channel, a QEMU socket that
// accepts but never delivers, a peer that stops reading or answering, a
// second owner. Scripted peers play the agent where the real one cannot be
// made to misbehave.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "qtx/wire/envelope_codec.h"
#include "support/agent_client.h"
#include "support/host_fixture.h"

namespace qtx::testing {
namespace {

using namespace std::chrono_literals;
using host::ErrorKind;
using host::State;

struct StateChange {
  State state;
  std::optional<host::Error> cause;
};

// Records every state change of an agent.
host::AgentCallbacks record_states(Mailbox<StateChange>* box) {
  host::AgentCallbacks cb;
  cb.on_state = [box](State s, const host::Error* cause) {
    box->post(StateChange{s, cause ? std::optional<host::Error>(*cause) : std::nullopt});
  };
  return cb;
}

// Answers the next ping request with its payload.
void answer_ping(AgentConnection& peer, const std::string& before = "") {
  auto ping = peer.recv_until([](const v1::Envelope& e) { return e.has_request() && e.request().has_ping(); });
  ASSERT_TRUE(ping);
  v1::Envelope reply;
  reply.set_id(ping->id());
  reply.mutable_response()->mutable_ping()->set_payload(ping->request().ping().payload());
  std::string frame;
  ASSERT_TRUE(wire::append_envelope_frame(reply, &frame).ok());
  peer.send_raw(before + frame);
}

// Starts an upload of endless zeros and, as the peer, grants it a huge
// credit: the library then writes until the socket is full. The future
// holds the upload's result; `sourced`, when given, counts the bytes the
// library asked the source for.
std::future<host::Result<host::TransferResult>> start_endless_upload(
    host::Agent& agent, AgentConnection& peer, std::shared_ptr<std::atomic<std::uint64_t>> sourced = nullptr) {
  auto done = std::make_shared<std::promise<host::Result<host::TransferResult>>>();
  auto result = done->get_future();
  v1::FileWriteRequest w;
  w.set_path("/endless");
  host::UploadSource zeros = [sourced](char* buf, std::size_t n) -> host::Result<std::size_t> {
    std::memset(buf, 0, n);
    if (sourced) *sourced += n;
    return n;
  };
  agent.upload(zeros, 0, w, {}, {.timeout = 0ms},
               [done](host::Result<host::TransferResult> r) { done->set_value(std::move(r)); });
  auto req = peer.recv_until([](const v1::Envelope& e) { return e.has_request() && e.request().has_file_write(); });
  EXPECT_TRUE(req) << "the upload's request did not arrive";
  if (req) {
    v1::Envelope credit;
    credit.set_id(req->id());
    credit.mutable_credit()->set_bytes(1ull << 40);
    peer.send(credit);
  }
  return result;
}

std::string frame_of(const v1::Envelope& env) {
  std::string f;
  EXPECT_TRUE(wire::append_envelope_frame(env, &f).ok());
  return f;
}

class HostLink : public HostFixture {
 protected:
  // A scripted agent: the test listens where the library connects.
  std::unique_ptr<AgentConnection> accept_fake() {
    int fd = listener_->accept(10000ms);
    EXPECT_GE(fd, 0) << "the library did not connect";
    return fd >= 0 ? std::make_unique<AgentConnection>(fd) : nullptr;
  }
  void listen_fake() { listener_ = std::make_unique<HostListener>(socket_path()); }

  // A scripted agent that has answered the handshake as `instance`, and the
  // library's Agent on it, ready; keepalive off, so only the test speaks.
  struct Scripted {
    std::shared_ptr<host::Agent> agent;
    std::unique_ptr<AgentConnection> peer;
  };
  Scripted ready_fake(const std::string& instance) {
    auto o = options();
    o.keepalive_interval = 0ms;
    return ready_fake_with(o, instance);
  }
  // The same with the given options.
  Scripted ready_fake_with(const host::AgentOptions& o, const std::string& instance = "fake-instance") {
    listen_fake();
    auto added = manager_->add(o);
    EXPECT_TRUE(added.ok());
    if (!added.ok()) return {};
    Scripted s{added.value(), accept_fake()};
    if (!s.peer) return {};
    answer_hello(*s.peer, instance);
    if (!s.agent->wait_ready(10s).ok()) {
      ADD_FAILURE() << "not ready after the handshake";
      return {};
    }
    return s;
  }

  std::unique_ptr<HostListener> listener_;
};

TEST_F(HostLink, AgentKilledMidCallFailsItAtOnceThenRestartIsReported) {
  start_agent();
  Mailbox<std::pair<std::string, std::string>> restarts;
  auto o = options();
  o.keepalive_interval = 0ms;  // only the connection's end can fail the call
  o.callbacks.on_agent_restarted = [&restarts](const v1::AgentIdentity& now, const v1::AgentIdentity& before) {
    restarts.post({now.instance_id(), before.instance_id()});
  };
  auto agent = connect(o);
  ASSERT_TRUE(agent);
  const std::string first = agent->identity()->instance_id();

  std::promise<host::Result<host::ExecOutcome>> pending;
  v1::ExecRequest sleep;
  sleep.add_argv("/bin/sleep");
  sleep.add_argv("60");
  agent->exec(sleep, {}, {.timeout = 0ms},
              [&pending](host::Result<host::ExecOutcome> r) { pending.set_value(std::move(r)); });
  // The exec is admitted once the ping behind it is answered.
  ASSERT_TRUE(agent->ping({}).ok());
  ASSERT_EQ(agent_->signal_and_wait(SIGKILL) & 0x7f, SIGKILL);

  auto r = pending.get_future().get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind(), ErrorKind::kDisconnected) << r.error().to_string();
  EXPECT_TRUE(r.error().retryable());

  start_agent();
  auto restarted = restarts.take();
  ASSERT_TRUE(restarted);
  EXPECT_EQ(restarted->second, first);
  EXPECT_NE(restarted->first, first);
  ASSERT_TRUE(agent->wait_ready(10s).ok());
  EXPECT_EQ(agent->identity()->instance_id(), restarted->first);
  EXPECT_TRUE(agent->ping({}).ok());
  EXPECT_EQ(agent->stats().restarts_seen, 1u);
}

TEST_F(HostLink, AnAgentAnnouncingANewSessionFailsCallsInFlightAndIsHandshakenAgain) {
  // QEMU's socket stays connected while the agent in the guest restarts:
  // the only sign is the new agent's Event.agent_started.
  listen_fake();
  Mailbox<std::pair<std::string, std::string>> restarts;
  auto o = options();
  o.keepalive_interval = 0ms;
  o.callbacks.on_agent_restarted = [&restarts](const v1::AgentIdentity& now, const v1::AgentIdentity& before) {
    restarts.post({now.instance_id(), before.instance_id()});
  };
  auto added = manager_->add(o);
  ASSERT_TRUE(added.ok());
  auto agent = added.value();
  auto peer = accept_fake();
  ASSERT_TRUE(peer);
  answer_hello(*peer, "first");
  ASSERT_TRUE(agent->wait_ready(10s).ok());
  std::promise<host::Result<v1::PingResponse>> pending;
  agent->ping({}, {.timeout = 0ms}, [&pending](host::Result<v1::PingResponse> r) { pending.set_value(std::move(r)); });
  ASSERT_TRUE(peer->recv_until([](const v1::Envelope& e) { return e.has_request() && e.request().has_ping(); }));
  v1::Envelope started;
  started.mutable_event()->mutable_agent_started()->mutable_agent()->set_instance_id("second");
  peer->send(started);
  auto r = pending.get_future().get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind(), ErrorKind::kDisconnected);
  EXPECT_EQ(r.error().message(), "connection to " + socket_path() + " lost: the agent restarted (instance second)");
  // The library reconnects and handshakes; the new instance is reported.
  auto peer2 = accept_fake();
  ASSERT_TRUE(peer2);
  answer_hello(*peer2, "second");
  auto restarted = restarts.take();
  ASSERT_TRUE(restarted);
  EXPECT_EQ(restarted->first, "second");
  EXPECT_EQ(restarted->second, "first");
}

TEST_F(HostLink, AnAgentSendingBeyondItsCreditFailsTheCallInsteadOfBeingBuffered) {
  // A hostile guest ignores flow control: the library must not hold what it
  // sends past the credit it granted.
  auto fake = ready_fake("hostile");
  ASSERT_TRUE(fake.agent && fake.peer);
  auto& agent = fake.agent;
  auto& peer = fake.peer;

  std::promise<host::Result<host::ExecOutcome>> exec_done;
  v1::ExecRequest ex;
  ex.add_argv("/bin/yes");
  ex.set_output_window(1000);
  agent->exec(ex, {}, {.timeout = 0ms},
              [&exec_done](host::Result<host::ExecOutcome> r) { exec_done.set_value(std::move(r)); });
  auto req = peer->recv_until([](const v1::Envelope& e) { return e.has_request() && e.request().has_exec(); });
  ASSERT_TRUE(req);
  v1::Envelope out;
  out.set_id(req->id());
  out.mutable_progress()->mutable_exec_output()->set_stream(v1::ExecOutput::STREAM_STDOUT);
  out.mutable_progress()->mutable_exec_output()->set_data(std::string(400, 'y'));
  peer->send(out);  // 400 of 1000: fine, and under half the window, so no credit back yet
  out.mutable_progress()->mutable_exec_output()->set_data(std::string(601, 'y'));
  peer->send(out);  // 1001 of 1000
  auto r = exec_done.get_future().get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind(), ErrorKind::kProtocol);
  EXPECT_EQ(r.error().message(), "exec: the agent sent 1001 bytes of output against 1000 of credit");

  std::promise<host::Result<host::TransferResult>> read_done;
  std::string sink;
  v1::FileReadRequest rd;
  rd.set_path("/x");
  host::TransferOptions t;
  t.window = 4096;
  agent->download(
      rd,
      [&sink](std::string_view d) -> host::Result<void> {
        sink.append(d);
        return {};
      },
      t, {.timeout = 0ms}, [&read_done](host::Result<host::TransferResult> x) { read_done.set_value(std::move(x)); });
  auto rreq = peer->recv_until([](const v1::Envelope& e) { return e.has_request() && e.request().has_file_read(); });
  ASSERT_TRUE(rreq);
  v1::Envelope chunk;
  chunk.set_id(rreq->id());
  chunk.mutable_progress()->mutable_file_chunk()->set_offset(0);
  chunk.mutable_progress()->mutable_file_chunk()->set_data(std::string(5000, 'z'));
  peer->send(chunk);
  auto d = read_done.get_future().get();
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().kind(), ErrorKind::kProtocol);
  EXPECT_EQ(d.error().message(), "download: the agent sent 5000 bytes against 4096 of credit");
  EXPECT_EQ(sink, "");
}

TEST_F(HostLink, AGuestsErrorTextCannotForgeLogLinesOrDriveATerminal) {
  // An application logs Error::message(); the guest writes part of it.
  auto fake = ready_fake("hostile");
  ASSERT_TRUE(fake.agent && fake.peer);
  auto& agent = fake.agent;
  auto& peer = fake.peer;
  // Shared with the callback, which may outlive a failed assertion here.
  auto ping_with_error = [&](const std::string& message) -> std::optional<host::Error> {
    auto done = std::make_shared<std::promise<host::Result<v1::PingResponse>>>();
    agent->ping({}, {.timeout = 0ms}, [done](host::Result<v1::PingResponse> r) { done->set_value(std::move(r)); });
    auto req = peer->recv_until([](const v1::Envelope& e) { return e.has_request() && e.request().has_ping(); });
    if (!req) return std::nullopt;
    v1::Envelope answer;
    answer.set_id(req->id());
    auto* err = answer.mutable_response()->mutable_error();
    err->set_code(v1::ERROR_CODE_DENIED);
    err->set_message(message);
    peer->send(answer);
    auto result = done->get_future();
    if (result.wait_for(10s) != std::future_status::ready) return std::nullopt;
    auto r = result.get();
    if (r.ok()) return std::nullopt;
    return r.error();
  };

  auto e = ping_with_error(
      "no\n2026-11-23 qtx: all fine\x1b[2J\xc2\x9b"
      "0m\\");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->kind(), ErrorKind::kDenied);
  EXPECT_EQ(e->message(), "no\\x0a2026-11-23 qtx: all fine\\x1b[2J\\xc2\\x9b0m\\x5c");
  // A long one is cut.
  e = ping_with_error(std::string(100000, 'a'));
  ASSERT_TRUE(e);
  EXPECT_EQ(e->message(), std::string(1024, 'a') + "...");
}

// Entries in /proc/self/fd, and VmRSS in KiB, of this process.
int own_fds() {
  int n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
  return n;
}
long own_rss_kib() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

TEST_F(HostLink, TenThousandReconnectsLeakNoDescriptorsOrMemory) {
  // The agent (here a script) goes away right after every handshake; the
  // library reconnects each time. Counted at the same point of every cycle:
  // ready, with the scripted peer's socket open.
  listen_fake();
  Mailbox<StateChange> states;
  auto o = options();
  o.keepalive_interval = 0ms;
  o.reconnect_min = 1ms;
  o.reconnect_max = 1ms;
  o.callbacks = record_states(&states);
  auto added = manager_->add(o);
  ASSERT_TRUE(added.ok());
  auto agent = added.value();
  std::unique_ptr<AgentConnection> peer;
  auto cycle = [&] {
    peer = accept_fake();
    ASSERT_TRUE(peer);
    answer_hello(*peer, "same");
    ASSERT_TRUE(states.take([](const StateChange& c) { return c.state == State::kReady; }));
  };
  for (int i = 0; i < 100; ++i) {  // warm-up: allocator caches, the I/O thread's buffers
    ASSERT_NO_FATAL_FAILURE(cycle());
    peer->close();
  }
  ASSERT_NO_FATAL_FAILURE(cycle());
  const int fds_before = own_fds();
  const long rss_before = own_rss_kib();
  const int cycles = kUnderSanitizer ? 1000 : 10000;
  for (int i = 0; i < cycles; ++i) {
    peer->close();
    ASSERT_NO_FATAL_FAILURE(cycle()) << "cycle " << i;
  }
  EXPECT_EQ(own_fds(), fds_before);
  if (kRssIsMeaningful) {
    EXPECT_LT(own_rss_kib() - rss_before, 2048) << "RSS grew from " << rss_before << " KiB";
  }
  const auto stats = agent->stats();
  EXPECT_EQ(stats.handshakes, 101u + cycles);
  EXPECT_EQ(stats.connects, 101u + cycles);
  EXPECT_EQ(stats.restarts_seen, 0u);
  std::printf("[ figure ] %d reconnect cycles: fds %d -> %d, RSS %ld -> %ld KiB\n", cycles, fds_before, own_fds(),
              rss_before, own_rss_kib());
}

TEST_F(HostLink, StaleFramesAndGarbageBeforeTheHandshakeAreDiscardedAndCounted) {
  listen_fake();
  auto added = manager_->add(options());
  ASSERT_TRUE(added.ok());
  auto agent = added.value();
  auto peer = accept_fake();
  ASSERT_TRUE(peer);
  // What an earlier session left in the channel: garbage, an answer to an
  // old hello, an answer to an old ping.
  v1::Envelope old_hello;
  old_hello.set_id(1);
  old_hello.mutable_response()->mutable_hello()->set_nonce(42);
  v1::Envelope old_ping;
  old_ping.set_id(2);
  old_ping.mutable_response()->mutable_ping();
  const std::string garbage(100, 'x');
  peer->send_raw(garbage + frame_of(old_hello) + frame_of(old_ping));
  answer_hello(*peer);
  ASSERT_TRUE(agent->wait_ready(10s).ok());
  EXPECT_EQ(agent->identity()->instance_id(), "fake-instance");
  auto stats = agent->stats();
  EXPECT_EQ(stats.discarded_frames, 2u);
  EXPECT_EQ(stats.dropped_bytes, 100u);

  // Garbage between frames after the handshake: the answer still arrives.
  std::promise<host::Result<v1::PingResponse>> pong;
  v1::PingRequest p;
  p.set_payload("after garbage");
  agent->ping(p, {}, [&pong](host::Result<v1::PingResponse> r) { pong.set_value(std::move(r)); });
  answer_ping(*peer, std::string(37, '\x07'));
  auto r = pong.get_future().get();
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->payload(), "after garbage");
  EXPECT_EQ(agent->stats().dropped_bytes, 137u);
}

TEST_F(HostLink, AStalePartialFrameIsFlushedAndTheAnswerBehindItFound) {
  listen_fake();
  auto o = options();
  o.stall_timeout = 50ms;
  auto added = manager_->add(o);
  ASSERT_TRUE(added.ok());
  auto agent = added.value();
  auto peer = accept_fake();
  ASSERT_TRUE(peer);
  answer_hello(*peer);
  ASSERT_TRUE(agent->wait_ready(10s).ok());
  std::promise<host::Result<v1::PingResponse>> pong;
  agent->ping({}, {}, [&pong](host::Result<v1::PingResponse> r) { pong.set_value(std::move(r)); });
  // A header claiming 1000 bytes, 10 of them, then the real answer: the
  // answer sits inside the claimed payload until the stall flush.
  std::string stale("QTX\x01\x00\x00\x03\xe8", 8);
  stale += std::string(10, 's');
  answer_ping(*peer, stale);
  auto r = pong.get_future().get();
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(agent->stats().dropped_bytes, 18u);
}

// An agent that pauses inside a frame for longer than the stall timeout
// (descheduled, stopped) and then goes on: the frame is delivered, nothing
// is dropped. Flushing it would lose one message of a stream that carries
// on (an exec's output piece, silently).
TEST_F(HostLink, AnAgentPausingInsideAFrameLongerThanTheStallTimeoutLosesNothing) {
  listen_fake();
  auto o = options();
  o.stall_timeout = 50ms;
  auto added = manager_->add(o);
  ASSERT_TRUE(added.ok());
  auto agent = added.value();
  auto peer = accept_fake();
  ASSERT_TRUE(peer);
  answer_hello(*peer);
  ASSERT_TRUE(agent->wait_ready(10s).ok());
  std::promise<host::Result<v1::PingResponse>> pong;
  v1::PingRequest req;
  req.set_payload(std::string(4096, 'p'));
  agent->ping(req, {}, [&pong](host::Result<v1::PingResponse> r) { pong.set_value(std::move(r)); });
  auto ping = peer->recv_until([](const v1::Envelope& e) { return e.has_request() && e.request().has_ping(); });
  ASSERT_TRUE(ping);
  v1::Envelope reply;
  reply.set_id(ping->id());
  reply.mutable_response()->mutable_ping()->set_payload(ping->request().ping().payload());
  std::string frame;
  ASSERT_TRUE(wire::append_envelope_frame(reply, &frame).ok());
  peer->send_raw(frame.substr(0, 100));
  // The pause is the scenario, not a synchronisation: a longer one changes
  // nothing.
  std::this_thread::sleep_for(500ms);
  peer->send_raw(frame.substr(100));
  auto r = pong.get_future().get();
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->payload(), std::string(4096, 'p'));
  EXPECT_EQ(agent->stats().dropped_bytes, 0u);
}

TEST_F(HostLink, ASocketThatAcceptsButNeverAnswersTimesOutTheHandshake) {
  listen_fake();
  Mailbox<StateChange> states;
  auto o = options();
  o.handshake_timeout = 200ms;
  o.callbacks = record_states(&states);
  auto added = manager_->add(o);
  ASSERT_TRUE(added.ok());
  auto silent = accept_fake();  // accepted, never read from, never answered
  auto change = states.take([](const StateChange& c) { return c.state == State::kDisconnected && c.cause; });
  ASSERT_TRUE(change);
  EXPECT_EQ(change->cause->kind(), ErrorKind::kTimeout);
  EXPECT_EQ(change->cause->message(), "the agent on " + socket_path() + " did not answer the handshake within 200 ms");
  auto ready = added.value()->wait_ready(1ms);
  ASSERT_FALSE(ready.ok());
  EXPECT_EQ(ready.error().kind(), ErrorKind::kTimeout);
  EXPECT_NE(ready.error().message().find("did not answer the handshake"), std::string::npos) << ready.error().message();
  // Calls meanwhile fail at once instead of waiting.
  auto ping = added.value()->ping({});
  ASSERT_FALSE(ping.ok());
  EXPECT_EQ(ping.error().kind(), ErrorKind::kDisconnected);
}

TEST_F(HostLink, APeerThatStopsReadingIsResetByTheWriteTimeout) {
  Mailbox<StateChange> states;
  auto o = options();
  o.write_timeout = 300ms;
  o.keepalive_interval = 0ms;
  o.callbacks = record_states(&states);
  auto fake = ready_fake_with(o);
  ASSERT_TRUE(fake.peer);
  auto& agent = fake.agent;
  auto& peer = fake.peer;

  // The peer grants a huge credit, then never reads again.
  auto done = start_endless_upload(*agent, *peer);
  auto r = done.get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind(), ErrorKind::kDisconnected);
  EXPECT_NE(r.error().message().find("did not complete within 300 ms"), std::string::npos) << r.error().message();
  auto change = states.take([](const StateChange& c) { return c.state == State::kDisconnected && c.cause; });
  ASSERT_TRUE(change);
  EXPECT_EQ(change->cause->kind(), ErrorKind::kTimeout);
}

// The literal stall, with the library's own write timeout and keepalive
// (10 s; 5 s / 15 s): the agent stops reading and answering for thirty
// seconds while an endless upload and ten pings are in flight. The
// library's memory stays bounded (the upload's source is asked only for
// what the socket takes), every call fails with kDisconnected, the write
// timeout resets the connection, and when the agent looks again the
// library's next connection is waiting and serves.
TEST_F(HostLink, APeerThatStopsReadingForThirtySecondsIsResetAndTheNextConnectionServes) {
  if (kUnderSanitizer) {
    GTEST_SKIP() << "thirty seconds of waiting, measured in the plain build; the same reset runs with a 300 ms timeout";
  }
  Mailbox<StateChange> states;
  auto o = options();
  const host::AgentOptions defaults;
  o.write_timeout = defaults.write_timeout;
  o.keepalive_interval = defaults.keepalive_interval;
  o.keepalive_timeout = defaults.keepalive_timeout;
  // The reconnect after the reset waits out the rest of the stall in its
  // handshake, so that the connection the agent finds is a live one.
  o.handshake_timeout = 60s;
  o.callbacks = record_states(&states);
  auto fake = ready_fake_with(o);
  ASSERT_TRUE(fake.peer);
  auto& agent = fake.agent;
  auto& peer = fake.peer;
  const long rss_before = own_rss_kib();

  auto sourced = std::make_shared<std::atomic<std::uint64_t>>(0);
  auto upload_done = start_endless_upload(*agent, *peer, sourced);
  constexpr int kPings = 10;
  Mailbox<host::Result<v1::PingResponse>> pings;
  v1::PingRequest ping;
  ping.set_payload(std::string(64 * 1024, 'p'));
  for (int i = 0; i < kPings; ++i) {
    agent->ping(ping, {.timeout = 0ms}, [&pings](host::Result<v1::PingResponse> r) { pings.post(std::move(r)); });
  }

  // The scenario: thirty seconds in which the agent reads nothing.
  long rss_peak = rss_before;
  for (int second = 0; second < 30; ++second) {
    std::this_thread::sleep_for(1s);
    rss_peak = std::max(rss_peak, own_rss_kib());
  }

  auto upload = upload_done.get();
  ASSERT_FALSE(upload.ok());
  EXPECT_EQ(upload.error().kind(), ErrorKind::kDisconnected);
  EXPECT_NE(upload.error().message().find("did not complete within 10 s"), std::string::npos)
      << upload.error().message();
  for (int i = 0; i < kPings; ++i) {
    auto r = pings.take(0ms);
    ASSERT_TRUE(r) << "ping " << i << " was not failed";
    ASSERT_FALSE(r->ok());
    EXPECT_EQ(r->error().kind(), ErrorKind::kDisconnected);
  }
  EXPECT_FALSE(pings.take(0ms)) << "a ping was answered twice";
  auto change = states.take([](const StateChange& c) { return c.state == State::kDisconnected && c.cause; }, 0ms);
  ASSERT_TRUE(change);
  EXPECT_EQ(change->cause->kind(), ErrorKind::kTimeout);
  // What the upload was allowed to source: what the socket buffers and the
  // library's bounded write queue hold (1.5 MiB here), not thirty seconds'
  // worth.
  EXPECT_LT(sourced->load(), 8u << 20);
  if (kRssIsMeaningful) {
    EXPECT_LT(rss_peak - rss_before, 16 * 1024) << "RSS from " << rss_before << " KiB to " << rss_peak << " KiB";
  }
  std::printf("[ figure ] 30 s stall: upload sourced %llu bytes, RSS %ld -> peak %ld KiB\n",
              static_cast<unsigned long long>(sourced->load()), rss_before, rss_peak);

  // The agent reads again: the library's next connection answers.
  peer->close();
  auto next = accept_fake();
  ASSERT_TRUE(next);
  answer_hello(*next);
  ASSERT_TRUE(agent->wait_ready(10s).ok());
  std::thread answerer([&] { answer_ping(*next); });
  auto again = agent->ping(ping);
  answerer.join();
  ASSERT_TRUE(again.ok()) << again.error().to_string();
  EXPECT_EQ(again.value().payload(), ping.payload());
  EXPECT_EQ(agent->stats().connects, 2u);
}

TEST_F(HostLink, SilenceBeyondTheKeepaliveTimeoutEndsTheConnection) {
  listen_fake();
  Mailbox<StateChange> states;
  auto o = options();
  o.keepalive_interval = 50ms;
  o.keepalive_timeout = 200ms;
  o.callbacks = record_states(&states);
  auto added = manager_->add(o);
  ASSERT_TRUE(added.ok());
  auto peer = accept_fake();
  ASSERT_TRUE(peer);
  answer_hello(*peer);
  // The library pings after 50 ms of silence; the peer reads it and says nothing.
  auto ping = peer->recv_until([](const v1::Envelope& e) { return e.has_request() && e.request().has_ping(); });
  ASSERT_TRUE(ping) << "no keepalive ping";
  auto change = states.take([](const StateChange& c) { return c.state == State::kDisconnected && c.cause; });
  ASSERT_TRUE(change);
  EXPECT_EQ(change->cause->message(), "the agent on " + socket_path() + " did not answer for 200 ms (keepalive)");
}

TEST_F(HostLink, ASecondOwnerOfTheSocketIsRefused) {
  start_agent();
  auto agent = connect();
  ASSERT_TRUE(agent);
  auto second = manager_->add(options());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().kind(), ErrorKind::kAlreadyExists);
  EXPECT_EQ(second.error().message(),
            socket_path() + " is already owned by this process (QEMU serves one client per channel)");
  // A second Manager in the same process is refused too.
  host::Manager other;
  auto third = other.add(options());
  ASSERT_FALSE(third.ok());
  EXPECT_EQ(third.error().kind(), ErrorKind::kAlreadyExists);
  // Once closed, the socket can be owned again.
  agent->close();
  auto again = other.add(options());
  ASSERT_TRUE(again.ok()) << again.error().to_string();
  EXPECT_TRUE(again.value()->wait_ready(10s).ok());
}

TEST_F(HostLink, CloseFailsCallsInFlightWithClosedAndLaterCallsAtOnce) {
  start_agent();
  auto agent = connect();
  ASSERT_TRUE(agent);
  std::promise<host::Result<host::ExecOutcome>> pending;
  v1::ExecRequest sleep;
  sleep.add_argv("/bin/sleep");
  sleep.add_argv("60");
  agent->exec(sleep, {}, {.timeout = 0ms},
              [&pending](host::Result<host::ExecOutcome> r) { pending.set_value(std::move(r)); });
  agent->close();
  auto r = pending.get_future().get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind(), ErrorKind::kClosed);
  EXPECT_EQ(agent->state(), State::kClosed);
  auto later = agent->ping({});
  ASSERT_FALSE(later.ok());
  EXPECT_EQ(later.error().kind(), ErrorKind::kClosed);
  EXPECT_EQ(manager_->size(), 0u);
}

TEST_F(HostLink, CallsBeforeTheAgentExistsFailAtOnceWithTheReason) {
  auto added = manager_->add(options());
  ASSERT_TRUE(added.ok());
  auto r = added.value()->ping({});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind(), ErrorKind::kDisconnected);
  auto ready = added.value()->wait_ready(50ms);
  ASSERT_FALSE(ready.ok());
  EXPECT_EQ(ready.error().kind(), ErrorKind::kTimeout);
  EXPECT_NE(ready.error().message().find("no agent on " + socket_path()), std::string::npos) << ready.error().message();
  // The agent appears: the library finds it without being told.
  start_agent();
  EXPECT_TRUE(added.value()->wait_ready(10s).ok());
}

TEST_F(HostLink, ListenModeAcceptsTheAgentAgainAfterItRestarts) {
  Mailbox<std::string> restarts;
  auto o = options();
  o.endpoint = host::Endpoint::listen(socket_path());
  o.callbacks.on_agent_restarted = [&restarts](const v1::AgentIdentity& now, const v1::AgentIdentity&) {
    restarts.post(now.instance_id());
  };
  auto added = manager_->add(o);
  ASSERT_TRUE(added.ok());
  agent_ = std::make_unique<AgentProcess>("unix-connect:" + socket_path(), "", "info");
  ASSERT_TRUE(added.value()->wait_ready(10s).ok());
  ASSERT_EQ(agent_->signal_and_wait(SIGKILL) & 0x7f, SIGKILL);
  agent_ = std::make_unique<AgentProcess>("unix-connect:" + socket_path(), "", "info");
  auto restarted = restarts.take();
  ASSERT_TRUE(restarted);
  ASSERT_TRUE(added.value()->wait_ready(10s).ok());
  EXPECT_EQ(added.value()->identity()->instance_id(), *restarted);
  EXPECT_TRUE(added.value()->ping({}).ok());
}

TEST_F(HostLink, AnAdoptedSocketIsUsedOnceAndClosedWhenItDrops) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  AgentConnection peer(sv[1]);
  host::AgentOptions o;
  o.endpoint = host::Endpoint::adopt(sv[0]);
  Mailbox<StateChange> states;
  o.callbacks = record_states(&states);
  auto added = manager_->add(o);
  ASSERT_TRUE(added.ok());
  answer_hello(peer);
  ASSERT_TRUE(added.value()->wait_ready(10s).ok());
  EXPECT_EQ(added.value()->name(), "fd " + std::to_string(sv[0]));
  peer.close();
  auto closed = states.take([](const StateChange& c) { return c.state == State::kClosed; });
  ASSERT_TRUE(closed);
  auto r = added.value()->ping({});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind(), ErrorKind::kClosed);
}

TEST_F(HostLink, BadOptionsAreRefusedWithAClearError) {
  host::AgentOptions o;
  auto r = manager_->add(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind(), ErrorKind::kLocal);
  EXPECT_EQ(r.error().message(), "no socket path given");
  o = options();
  o.keepalive_timeout = o.keepalive_interval;
  r = manager_->add(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message(), "keepalive_timeout must be longer than keepalive_interval");
}

}  // namespace
}  // namespace qtx::testing
