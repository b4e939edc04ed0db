// End-to-end over a real virtio-serial port: a QEMU VM (TCG) booting the
// project's test guest (tests/vm/guest), driven through libqtx-host.
// The guest's architecture is $QTX_VM_ARCH (x86_64, the default, or aarch64:
// CTest runs the suite once for each, labels vm and vm-arm64). Skips only
// where that architecture's qemu-system is not installed.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <future>
#include <random>
#include <thread>

#include "qtx/wire/sha256.h"
#include "support/agent_process.h"
#include "support/exporter_process.h"
#include "support/host_fixture.h"
#include "support/prometheus_server.h"
#include "vm/injecting_proxy.h"
#include "vm/test_vm.h"

namespace qtx::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using host::ErrorKind;

std::string random_bytes(std::size_t n) {
  std::mt19937_64 rng(42);
  std::string s(n, '\0');
  for (std::size_t i = 0; i + 8 <= n; i += 8) {
    const std::uint64_t v = rng();
    std::memcpy(&s[i], &v, 8);
  }
  return s;
}

class RealVm : public HostFixture {
 protected:
  void SetUp() override {
    HostFixture::SetUp();
    std::string bad_arch;
    arch_ = test_guest_arch(&bad_arch);
    ASSERT_EQ(bad_arch, "");
    qemu_ = find_qemu(arch_);
    if (qemu_.empty()) {
      GTEST_SKIP() << "qemu-system-" << arch_name(arch_) << " is not installed: the real-VM tests need it";
    }
  }
  // Boots the VM and connects at once (the host waits before the guest
  // boots); returns the agent once ready, and the boot-to-ready time.
  std::shared_ptr<host::Agent> boot(double* seconds_to_ready = nullptr, host::AgentOptions o = {}) {
    auto t0 = Clock::now();
    vm_ = std::make_unique<TestVm>(qemu_, dir());
    o.endpoint = host::Endpoint::connect(vm_->socket());
    o.reconnect_min = 20ms;
    o.reconnect_max = 200ms;
    o.handshake_timeout = 1000ms;
    auto added = manager_->add(o);
    if (!added) {
      ADD_FAILURE() << added.error().to_string();
      return nullptr;
    }
    auto ready = added.value()->wait_ready(120s);
    if (!ready) {
      ADD_FAILURE() << ready.error().to_string() << "\nconsole:\n" << vm_->console();
      return nullptr;
    }
    if (seconds_to_ready) *seconds_to_ready = std::chrono::duration<double>(Clock::now() - t0).count();
    return added.value();
  }
  GuestArch arch_ = GuestArch::kX86_64;
  std::string qemu_;
  std::unique_ptr<TestVm> vm_;
};

TEST_F(RealVm, BootInfoExecTransfersTelemetryAndPowerOff) {
  double ready_s = 0;
  Mailbox<v1::TelemetrySample> samples;
  host::AgentOptions o;
  o.callbacks.on_telemetry = [&samples](const v1::TelemetrySample& s) { samples.post(s); };
  auto agent = boot(&ready_s, o);
  ASSERT_TRUE(agent);
  std::printf("[ figure ] boot to ready (TCG, host connected before boot): %.2f s\n", ready_s);

  auto info = agent->info({});
  ASSERT_TRUE(info.ok()) << info.error().to_string();
  EXPECT_EQ(info->kernel_release().rfind("6.1.", 0), 0u) << info->kernel_release();
  EXPECT_EQ(info->hostname(), "qtx-guest");
  EXPECT_EQ(info->agent().boot_id().size(), 36u);
  EXPECT_EQ(info->agent().boot_id(), agent->identity()->boot_id());

  v1::ExecRequest ex;
  ex.add_argv("/bin/sh");
  ex.add_argv("-c");
  ex.add_argv("readlink -f /dev/virtio-ports/org.quantix.agent.0 || ls /dev/vport*; exit 4");
  auto r = agent->exec(ex, {}, {.timeout = 30s});
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->result.exit_code(), 4);
  EXPECT_NE(r->stdout_data.find("/dev/vport"), std::string::npos) << r->stdout_data;

  // 64 MiB in and out through the port, equal end to end: with sha256 on
  // both sides, then without (the guest has no SHA instructions under TCG).
  const std::string data = random_bytes(64u << 20);
  for (const bool sha : {true, false}) {
    host::TransferOptions t;
    t.verify_sha256 = sha;
    v1::FileWriteRequest w;
    w.set_path("/tmp/big.bin");
    auto start = Clock::now();
    auto up = agent->upload_bytes(data, w, t);
    const double up_s = std::chrono::duration<double>(Clock::now() - start).count();
    ASSERT_TRUE(up.ok()) << up.error().to_string();
    EXPECT_EQ(up->sha256_hex, sha ? wire::Sha256::hex(wire::Sha256::of(data)) : "");
    v1::FileReadRequest rd;
    rd.set_path("/tmp/big.bin");
    std::string back;
    start = Clock::now();
    auto down = agent->download_bytes(rd, &back, t);
    const double down_s = std::chrono::duration<double>(Clock::now() - start).count();
    ASSERT_TRUE(down.ok()) << down.error().to_string();
    EXPECT_TRUE(back == data);
    std::printf("[ figure ] 64 MiB through the agent, %s: host->guest %.1f MB/s, guest->host %.1f MB/s\n",
                sha ? "sha256 checked" : "no sha256", 64 * 1.048576 / up_s, 64 * 1.048576 / down_s);
    v1::FileRemoveRequest rm;  // the guest's /tmp holds one copy, not two
    rm.set_path("/tmp/big.bin");
    ASSERT_TRUE(agent->file_remove(rm).ok());
  }
  // The transport's ceiling in the same VM: dd through a sibling port.
  auto raw_in = dd_through_raw_port(*agent, *vm_, true, 64u << 20);
  ASSERT_TRUE(raw_in.ok()) << raw_in.error().to_string();
  auto raw_out = dd_through_raw_port(*agent, *vm_, false, 64u << 20);
  ASSERT_TRUE(raw_out.ok()) << raw_out.error().to_string();
  std::printf("[ figure ] 64 MiB by dd through the bare port: host->guest %.1f MB/s, guest->host %.1f MB/s\n", *raw_in,
              *raw_out);

  // Telemetry at the configured interval; memory total is the VM's 256 MiB
  // less the kernel's reservation.
  while (samples.take(0ms)) {
  }  // samples at the old interval, from the transfers' time
  v1::TelemetryConfigRequest cfg;
  cfg.set_interval_ms(500);
  ASSERT_TRUE(agent->telemetry_config(cfg).ok());
  samples.take(30s);  // one may have been under way at the old interval
  auto first = samples.take(30s);
  auto sample = samples.take(30s);
  ASSERT_TRUE(first && sample);
  EXPECT_EQ(sample->seq(), first->seq() + 1);
  const auto gap_ms = sample->uptime_ms() - first->uptime_ms();
  EXPECT_GE(gap_ms, 400u);
  EXPECT_LE(gap_ms, 1500u);
  EXPECT_GT(sample->memory().total_bytes(), 150u << 20);
  EXPECT_LE(sample->memory().total_bytes(), 256u << 20);

  // A clean power-off through the agent: QEMU exits by itself.
  v1::PowerRequest off;
  off.set_action(v1::PowerRequest::ACTION_POWEROFF);
  ASSERT_TRUE(agent->power(off).ok());
  const int status = vm_->wait_exit(60000);
  ASSERT_NE(status, -1) << "the VM did not power off; console:\n" << vm_->console();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_NE(vm_->console().find("reboot: Power down"), std::string::npos);
}

TEST_F(RealVm, HostDisconnectMidTransferFailsItCleanlyAndTheNextOneSucceeds) {
  auto agent = boot();
  ASSERT_TRUE(agent);
  const std::string data = random_bytes(32u << 20);
  v1::FileWriteRequest w;
  w.set_path("/tmp/target.bin");
  w.set_atomic(true);
  std::promise<host::Result<host::TransferResult>> done;
  std::promise<void> halfway;
  std::atomic<bool> signalled{false};
  auto owned = std::make_shared<std::string>(data);
  auto pos = std::make_shared<std::size_t>(0);
  host::UploadSource source = [owned, pos](char* buf, std::size_t n) -> host::Result<std::size_t> {
    const std::size_t k = std::min(n, owned->size() - *pos);
    std::memcpy(buf, owned->data() + *pos, k);
    *pos += k;
    return k;
  };
  host::TransferOptions t;
  t.on_progress = [&](const host::TransferProgress& p) {
    if (p.bytes >= (4u << 20) && !signalled.exchange(true)) halfway.set_value();
  };
  agent->upload(source, data.size(), w, t, {.timeout = 0ms},
                [&done](host::Result<host::TransferResult> r) { done.set_value(std::move(r)); });
  halfway.get_future().wait();
  agent->close();  // the host goes away mid-transfer
  auto r = done.get_future().get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind(), ErrorKind::kClosed);

  // A new owner of the socket: ready again, nothing of the failed atomic
  // upload left behind, and the same upload now succeeds.
  host::AgentOptions o = options();
  o.endpoint = host::Endpoint::connect(vm_->socket());
  auto again = manager_->add(o);
  ASSERT_TRUE(again.ok()) << again.error().to_string();
  ASSERT_TRUE(again.value()->wait_ready(60s).ok());
  v1::FileStatRequest st;
  st.set_path("/tmp/target.bin");
  auto gone = again.value()->file_stat(st);
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().kind(), ErrorKind::kNotFound);
  auto up = again.value()->upload_bytes(data, w);
  ASSERT_TRUE(up.ok()) << up.error().to_string();
  EXPECT_EQ(up->bytes, data.size());
}

TEST_F(RealVm, GarbageFromAnEarlierClientIsNotTakenForAnswers) {
  auto agent = boot();
  ASSERT_TRUE(agent);
  agent->close();
  // Another client writes garbage, a stale partial frame and a complete
  // stale request into the channel, then leaves.
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", vm_->socket().c_str());
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  std::string junk(1000, '\x55');
  junk += std::string("QTX\x01\x00\x00\x10\x00", 8) + "partial";
  ASSERT_EQ(::write(fd, junk.data(), junk.size()), static_cast<ssize_t>(junk.size()));
  ::close(fd);

  auto again = manager_->add([&] {
    host::AgentOptions o = options();
    o.endpoint = host::Endpoint::connect(vm_->socket());
    return o;
  }());
  ASSERT_TRUE(again.ok());
  ASSERT_TRUE(again.value()->wait_ready(60s).ok());
  for (int i = 0; i < 20; ++i) {
    v1::PingRequest p;
    p.set_payload("n" + std::to_string(i));
    auto pong = again.value()->ping(p);
    ASSERT_TRUE(pong.ok()) << pong.error().to_string();
    EXPECT_EQ(pong->payload(), "n" + std::to_string(i));
  }
  EXPECT_EQ(again.value()->stats().stray_frames, 0u);
}

TEST_F(RealVm, AgentKilledInTheGuestFailsCallsAtOnceAndIsSeenRestarted) {
  Mailbox<std::string> restarts;
  host::AgentOptions o;
  o.keepalive_interval = 0ms;  // only the new agent's announcement can end the calls
  o.callbacks.on_agent_restarted = [&restarts](const v1::AgentIdentity& now, const v1::AgentIdentity&) {
    restarts.post(now.instance_id());
  };
  auto agent = boot(nullptr, o);
  ASSERT_TRUE(agent);
  const std::string first = agent->identity()->instance_id();
  std::promise<host::Result<host::ExecOutcome>> pending;
  v1::ExecRequest sleep;
  sleep.add_argv("/bin/sleep");
  sleep.add_argv("1000");
  agent->exec(sleep, {}, {.timeout = 0ms},
              [&pending](host::Result<host::ExecOutcome> r) { pending.set_value(std::move(r)); });
  // The guest's init restarts the agent; QEMU's socket stays connected.
  v1::ExecRequest kill;
  kill.add_argv("/bin/sh");
  kill.add_argv("-c");
  kill.add_argv("kill -9 $(pidof qtx-agent)");
  auto killer = agent->exec(kill, {}, {.timeout = 0ms});
  ASSERT_FALSE(killer.ok());
  EXPECT_EQ(killer.error().kind(), ErrorKind::kDisconnected) << killer.error().to_string();
  auto r = pending.get_future().get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind(), ErrorKind::kDisconnected) << r.error().to_string();
  auto now = restarts.take(60s);
  ASSERT_TRUE(now) << vm_->console();
  EXPECT_NE(*now, first);
  ASSERT_TRUE(agent->wait_ready(60s).ok());
  EXPECT_EQ(agent->identity()->instance_id(), *now);
  EXPECT_TRUE(agent->ping({}).ok());
}

// The VM stage of tests/integration/prometheus_test.cc: a real Prometheus
// scraping `qtx exporter` in front of the guest's agent. The exporter takes
// the socket's one-owner lock, so the test's own connection reads the
// guest's memory first and lets the socket go before the exporter starts
// (the exporter retries a refused socket at every rescan).
TEST_F(RealVm, PrometheusScrapesTheExporterInFrontOfTheGuest) {
  Mailbox<v1::TelemetrySample> samples;
  host::AgentOptions o;
  o.callbacks.on_telemetry = [&samples](const v1::TelemetrySample& s) { samples.post(s); };
  auto agent = boot(nullptr, o);
  ASSERT_TRUE(agent);
  auto sample = samples.take([](const v1::TelemetrySample& s) { return s.has_memory(); }, 60s);
  ASSERT_TRUE(sample) << "no telemetry with memory from the guest";
  const std::uint64_t mem_total = sample->memory().total_bytes();
  ASSERT_GT(mem_total, 0u);
  manager_->remove(agent);
  agent.reset();

  ExporterProcess exporter(QTX_CLI_BINARY, {"--socket-glob", vm_->socket(), "--rescan-interval", "0.1"},
                           dir() + "/exporter.log");
  ASSERT_GT(exporter.port(), 0) << exporter.log();
  PrometheusProcess p(dir(), exporter.port());
  ASSERT_GT(p.port(), 0) << "prometheus did not start:\n" << p.log();

  // The scrape works and the guest's agent (named after qtx.sock) is up.
  ASSERT_TRUE(eventually([&] { return p.value("up{job=\"qtx\"}") == "1"; }, 120, 500ms)) << p.log();
  std::optional<std::vector<Series>> up;
  ASSERT_TRUE(eventually(
      [&] {
        up = p.query("qtx_agent_up == 1");
        return up && up->size() == 1;
      },
      120, 500ms))
      << exporter.log();
  EXPECT_EQ((*up)[0].labels.at("agent"), "qtx");

  // The guest's memory total is what the agent told the test's own connection.
  std::string mem;
  ASSERT_TRUE(
      eventually([&] { return !(mem = p.value("qtx_guest_memory_total_bytes{agent=\"qtx\"}")).empty(); }, 120, 500ms))
      << exporter.log();
  EXPECT_EQ(mem, std::to_string(mem_total));

  // A counter rises between two scrapes (a sample every 5 s in this guest).
  const std::string counter = "qtx_agent_telemetry_samples_total{agent=\"qtx\"}";
  std::string first;
  ASSERT_TRUE(eventually([&] { return !(first = p.value(counter)).empty(); }, 120, 500ms));
  ASSERT_TRUE(eventually(
      [&] {
        const std::string now = p.value(counter);
        return !now.empty() && std::stod(now) > std::stod(first);
      },
      120, 500ms))
      << counter << " stayed at " << first;
  EXPECT_EQ(p.value("qtx_agent_up{agent=\"qtx\"}"), "1");
}

TEST_F(RealVm, GuestUpLongBeforeTheHostThenEverythingAtOnce) {
  vm_ = std::make_unique<TestVm>(qemu_, dir());
  // The agent starts with no host on the channel and stays alone for several
  // of its telemetry intervals (5 s): nothing it could have queued may be
  // taken for an answer when the host arrives.
  ASSERT_TRUE(vm_->wait_console("qtx-agent 0.1.0 starting", 120000)) << vm_->console();
  std::this_thread::sleep_for(8s);
  host::AgentOptions o = options();
  o.endpoint = host::Endpoint::connect(vm_->socket());
  auto added = manager_->add(o);
  ASSERT_TRUE(added.ok()) << added.error().to_string();
  auto agent = added.value();
  ASSERT_TRUE(agent->wait_ready(30s).ok()) << vm_->console();
  // 64 calls at once, answered in any order, each with its own payload.
  constexpr int kCalls = 64;
  std::vector<std::promise<host::Result<v1::PingResponse>>> answers(kCalls);
  for (int i = 0; i < kCalls; ++i) {
    v1::PingRequest p;
    p.set_payload("call " + std::to_string(i));
    agent->ping(p, {}, [&answers, i](host::Result<v1::PingResponse> r) { answers[i].set_value(std::move(r)); });
  }
  auto info = agent->info({});
  for (int i = 0; i < kCalls; ++i) {
    auto r = answers[i].get_future().get();
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    EXPECT_EQ(r->payload(), "call " + std::to_string(i));
  }
  ASSERT_TRUE(info.ok()) << info.error().to_string();
  EXPECT_EQ(info->session().bytes_dropped(), 0u);
  const auto st = agent->stats();
  EXPECT_EQ(st.discarded_frames, 0u);
  EXPECT_EQ(st.stray_frames, 0u);
  EXPECT_EQ(st.dropped_bytes, 0u);
  EXPECT_EQ(st.connects, 1u);
}

TEST_F(RealVm, GarbageBetweenTheHostsFramesIsDroppedAndNothingValidIsLost) {
  vm_ = std::make_unique<TestVm>(qemu_, dir());
  ASSERT_TRUE(vm_->wait_console("qtx-agent 0.1.0 starting", 120000)) << vm_->console();
  // The host talks to the VM through a proxy that writes garbage before the
  // handshake and before every later frame, file chunks included.
  InjectingProxy proxy(dir() + "/proxy.sock", vm_->socket(), 7);
  host::AgentOptions o = options();
  o.endpoint = host::Endpoint::connect(dir() + "/proxy.sock");
  o.keepalive_interval = 0ms;  // no frames but the test's own
  o.handshake_timeout = 30s;   // the proxy serves one connection: no retry
  auto added = manager_->add(o);
  ASSERT_TRUE(added.ok()) << added.error().to_string();
  auto agent = added.value();
  ASSERT_TRUE(agent->wait_ready(60s).ok()) << proxy.error() << "\n" << vm_->console();
  for (int i = 0; i < 50; ++i) {
    v1::PingRequest p;
    p.set_payload("n" + std::to_string(i));
    auto pong = agent->ping(p);
    ASSERT_TRUE(pong.ok()) << pong.error().to_string();
    EXPECT_EQ(pong->payload(), "n" + std::to_string(i));
  }
  const std::string data = random_bytes(4u << 20);
  v1::FileWriteRequest w;
  w.set_path("/tmp/through-garbage.bin");
  auto up = agent->upload_bytes(data, w);
  ASSERT_TRUE(up.ok()) << up.error().to_string();
  EXPECT_EQ(up->sha256_hex, wire::Sha256::hex(wire::Sha256::of(data)));
  v1::FileReadRequest rd;
  rd.set_path("/tmp/through-garbage.bin");
  std::string back;
  ASSERT_TRUE(agent->download_bytes(rd, &back).ok());
  EXPECT_TRUE(back == data);
  // The agent dropped exactly the garbage, and took every frame the host sent.
  auto info = agent->info({});
  ASSERT_TRUE(info.ok()) << info.error().to_string();
  EXPECT_EQ(proxy.error(), "");
  EXPECT_GT(proxy.garbage_bytes(), 1000u + 60 * 3);
  EXPECT_EQ(info->session().bytes_dropped(), proxy.garbage_bytes());
  EXPECT_EQ(info->session().frames_received() + 1, proxy.frames());  // + the info request
  EXPECT_EQ(agent->stats().stray_frames, 0u);
  EXPECT_EQ(agent->stats().connects, 1u);
}

TEST_F(RealVm, APortHotPluggedAfterBootIsFoundByTheWaitingAgent) {
  GuestImage image = GuestImage::busybox();
  image.agent_port = false;
  vm_ = std::make_unique<TestVm>(qemu_, dir(), image);
  ASSERT_TRUE(vm_->wait_console("qtx-agent 0.1.0 starting", 120000)) << vm_->console();
  ASSERT_EQ(vm_->hotplug_agent_port(), "");
  host::AgentOptions o = options();
  o.endpoint = host::Endpoint::connect(vm_->socket());
  auto added = manager_->add(o);
  ASSERT_TRUE(added.ok()) << added.error().to_string();
  ASSERT_TRUE(added.value()->wait_ready(60s).ok()) << vm_->console();
  EXPECT_TRUE(added.value()->ping({}).ok());
}

// The agent's context switches (all threads) and CPU ticks, read in the guest.
struct AgentCost {
  long switches = -1, ticks = -1;
};
AgentCost agent_cost(host::Agent& agent) {
  v1::ExecRequest ex;
  ex.add_argv("/bin/sh");
  ex.add_argv("-c");
  ex.add_argv(
      "p=$(pidof qtx-agent); s=0; for t in /proc/$p/task/*/status; do "
      "for k in voluntary_ctxt_switches nonvoluntary_ctxt_switches; do "
      "s=$((s + $(grep \"^$k\" $t | cut -f2))); done; done; "
      "echo $s $(( $(cut -d' ' -f14 /proc/$p/stat) + $(cut -d' ' -f15 /proc/$p/stat) ))");
  AgentCost c;
  auto r = agent.exec(ex, {}, {.timeout = 30s});
  if (r.ok()) std::sscanf(r->stdout_data.c_str(), "%ld %ld", &c.switches, &c.ticks);
  return c;
}

TEST_F(RealVm, IdleWithNoHostCostsNearlyNothing) {
  auto agent = boot();
  ASSERT_TRUE(agent);
  // What one measurement (a connection and an exec) costs the agent.
  const AgentCost a = agent_cost(*agent);
  const AgentCost b = agent_cost(*agent);
  ASSERT_GE(a.switches, 0);
  agent->close();
  // The measured period: no host on the channel for 30 s.
  std::this_thread::sleep_for(30s);
  host::AgentOptions o = options();
  o.endpoint = host::Endpoint::connect(vm_->socket());
  auto again = manager_->add(o);
  ASSERT_TRUE(again.ok());
  ASSERT_TRUE(again.value()->wait_ready(60s).ok());
  const AgentCost c = agent_cost(*again.value());
  const long per_measure = b.switches - a.switches;
  const long idle_switches = c.switches - b.switches - 2 * per_measure;
  const long idle_ticks = c.ticks - b.ticks;
  std::printf("[ figure ] 30 s with no host: %ld context switches beyond the measurement's own %ld, %ld CPU ticks\n",
              idle_switches, 2 * per_measure, idle_ticks);
  // A busy wait would show thousands of switches or ~3000 ticks.
  EXPECT_LE(idle_switches, 30);
  EXPECT_LE(idle_ticks, 20);
}

}  // namespace
}  // namespace qtx::testing
