// agent_compare: qtx and the QEMU Guest Agent measured by the same code on
// the same transport in one run, printed as a table with ratios and written
// as JSON, with a plot (docs/benchmarks.md).
//
//   agent_compare [--transport unix|vm|vm-arm64|all] [--quick] [--mib N] [--reps N]
//                 [--idle-seconds S] [--scale 10,1000,10000] [--scale-only]
//                 [--json FILE] [--plot FILE.png] [--markdown FILE]
//
// Transports: "unix" runs both agents on this host, each listening on a
// unix socket; "vm" boots the test guest with both agents on virtio-serial
// ports of one controller, beside a bare port for the transport's ceiling;
// "vm-arm64" the same in the arm64 test guest (qemu-system-aarch64 -M virt,
// the cross-built agent beside Debian's arm64 qemu-ga). "all" runs every
// one, vm-arm64 only where its guest was built (QTX_BUILD_ARM64_AGENT).
// Speed goals are reported, never asserted: --quick is the CI smoke run.
#include <malloc.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "drivers.h"
#include "measure.h"
#include "proc_stats.h"
#include "report.h"
#include "support/agent_process.h"
#include "support/agent_swarm.h"
#include "vm_transport.h"

extern char** environ;

namespace qtx::bench {
namespace {

using namespace std::chrono_literals;
using testing::AgentProcess;

// --- the bare transport: an echo server, for the round-trip floor ---------

class UnixEcho {
 public:
  explicit UnixEcho(const std::string& path) {
    listen_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
    if (::bind(listen_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || ::listen(listen_, 1) != 0) {
      die("echo socket " + path);
    }
    thread_ = std::thread([this] {
      const int c = ::accept(listen_, nullptr, nullptr);
      char buf[4096];
      for (;;) {
        const ssize_t n = ::read(c, buf, sizeof(buf));
        if (n <= 0 || ::write(c, buf, static_cast<std::size_t>(n)) != n) break;
      }
      ::close(c);
    });
    client_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (::connect(client_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) die("echo connect");
  }
  ~UnixEcho() {
    ::close(client_);
    thread_.join();
    ::close(listen_);
  }
  int fd() const { return client_; }

 private:
  int listen_ = -1, client_ = -1;
  std::thread thread_;
};

// --- qemu-ga as a process on this host ------------------------------------

class QgaProcess {
 public:
  QgaProcess(const std::string& binary, const std::string& socket, const std::string& state_dir) {
    std::vector<std::string> args = {binary, "-m", "unix-listen", "-p", socket, "-t", state_dir};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (::posix_spawn(&pid_, binary.c_str(), nullptr, nullptr, argv.data(), environ) != 0) die("cannot run " + binary);
  }
  ~QgaProcess() {
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
  }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
};

std::string find_qga() {
  for (const char* p : {"/usr/sbin/qemu-ga", "/usr/bin/qemu-ga"}) {
    if (::access(p, X_OK) == 0) return p;
  }
  return "";
}

// --- host scale: one host process, N simulated agents ---------------------
//
// The agents are an AgentSwarm: one server process answering hello and ping
// on N socketpairs whose other ends this process adopts, so the host
// library keeps its full per-connection state (socket, timers, decoder,
// call table) while the machine need not run N agent processes. The figures
// are this process's: RSS and heap (mallinfo2) growth per connection once
// all are ready, requests/s with 64 pings in flight spread over them, and,
// at the largest N, the CPU this process spends on keepalive while idle.

// Bytes in use on the heap (all arenas).
double heap_bytes() { return static_cast<double>(::mallinfo2().uordblks); }

// Keepalive pings sent so far, over every agent.
std::uint64_t keepalive_pings(const std::vector<std::shared_ptr<host::Agent>>& agents) {
  std::uint64_t n = 0;
  for (const auto& a : agents) n += a->stats().keepalive_pings;
  return n;
}

// What a real qtx-agent says of itself in its hello (capabilities and all):
// the identity the simulated agents answer with.
agent::v1::AgentIdentity real_identity(const std::string& dir) {
  AgentProcess agent("unix-listen:" + dir + "/identity.sock", "[telemetry]\ninterval_ms = 3600000\n", "warn");
  host::Manager manager;
  host::AgentOptions o;
  o.endpoint = host::Endpoint::connect(dir + "/identity.sock");
  o.reconnect_min = 10ms;
  auto a = manager.add(o);
  if (!a) die(a.error().to_string());
  auto ready = a.value()->wait_ready(30s);
  if (!ready) die(ready.error().to_string());
  return ready.value();
}

void measure_scale(const Plan& plan, const std::string& dir, std::vector<Metric>* out) {
  rlimit nofile{};
  ::getrlimit(RLIMIT_NOFILE, &nofile);
  nofile.rlim_cur = nofile.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &nofile);
  const int largest = *std::max_element(plan.scale.begin(), plan.scale.end());
  const agent::v1::AgentIdentity identity = real_identity(dir);
  for (int n : plan.scale) {
    const std::string label = "host scale: " + std::to_string(n) + " agents";
    Metric rate = make_metric("unix", label + ", requests/s", "req/s", true);
    Metric mem = make_metric("unix", label + ", RSS per connection", "KiB", false);
    Metric heap = make_metric("unix", label + ", heap per connection", "KiB", false);
    Metric idle = make_metric("unix", label + ", idle host CPU (keepalive)", "ms/s", false);
    Metric per_ping = make_metric("unix", label + ", host CPU per keepalive ping", "us", false);
    testing::AgentSwarm swarm(identity);  // forked before the Manager starts its thread
    {
      host::Manager manager;
      ::malloc_trim(0);
      const long rss0 = status_kib(::getpid(), "VmRSS");
      const double heap0 = heap_bytes();
      std::vector<std::shared_ptr<host::Agent>> agents;
      agents.reserve(static_cast<std::size_t>(n));
      const double vector_bytes = static_cast<double>(agents.capacity() * sizeof(agents[0]));
      for (int fd : swarm.connect(static_cast<std::size_t>(n))) {
        host::AgentOptions o;
        o.endpoint = host::Endpoint::adopt(fd);
        auto a = manager.add(o);
        if (!a) die(a.error().to_string());
        agents.push_back(a.value());
      }
      for (auto& a : agents) {
        if (auto r = a->wait_ready(120s); !r) die(r.error().to_string());
      }
      // The benchmark's own vector of handles is not the library's.
      const double heap1 = heap_bytes() - vector_bytes;
      const long rss1 = status_kib(::getpid(), "VmRSS") - static_cast<long>(vector_bytes / 1024);
      mem.qtx.add(static_cast<double>(rss1 - rss0) / n);
      heap.qtx.add((heap1 - heap0) / 1024 / n);
      for (int rep = 0; rep < plan.reps; ++rep) {
        // 64 pings in flight in all, spread over the agents round-robin.
        std::mutex mu;
        std::condition_variable cv;
        int in_flight = 0, done = 0;
        const int total = std::max(plan.window_pings, 2 * n);
        const auto t = Clock::now();
        for (int i = 0; i < total; ++i) {
          std::unique_lock<std::mutex> lock(mu);
          cv.wait(lock, [&] { return in_flight < 64; });
          ++in_flight;
          lock.unlock();
          agents[static_cast<std::size_t>(i % n)]->ping({}, {}, [&](host::Result<agent::v1::PingResponse> r) {
            if (!r) die("scale ping: " + r.error().to_string());
            std::lock_guard<std::mutex> g(mu);
            --in_flight;
            ++done;
            cv.notify_all();
          });
        }
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return done == total; });
        rate.qtx.add(total / seconds_since(t));
      }
      if (n == largest && n >= 100) {
        // Idle: every agent answers its keepalive ping (one per agent per
        // keepalive_interval, 5 s by default); this process's CPU over two
        // intervals, divided by the pings it sent meanwhile.
        const auto k0 = keepalive_pings(agents);
        const double cpu0 = cpu_seconds(::getpid());
        const auto t0 = Clock::now();
        std::this_thread::sleep_for(2 * host::AgentOptions().keepalive_interval);
        const double cpu = cpu_seconds(::getpid()) - cpu0;
        const double wall = seconds_since(t0);
        const auto pings = keepalive_pings(agents) - k0;
        idle.qtx.add(cpu * 1e3 / wall);
        if (pings > 0) per_ping.qtx.add(cpu * 1e6 / static_cast<double>(pings));
        idle.note = std::to_string(pings) + " keepalive pings in " + std::to_string(wall).substr(0, 4) +
                    " s; CPU of the host process from /proc in clock ticks";
      }
    }
    rate.note = n == plan.scale.front() ? "one host process, 64 pings in flight over all agents, each a socket "
                                          "served by one simulated-agent process; qemu-ga has no host library"
                                        : "";
    if (n >= 10000) {
      mem.goal = "<= 4 KiB";
      mem.met = mem.qtx.median() <= 4.0 ? 1 : 0;
    }
    out->push_back(rate);
    out->push_back(mem);
    out->push_back(heap);
    if (!idle.qtx.empty()) {
      out->push_back(idle);
      out->push_back(per_ping);
    }
  }
}

// --- the unix transport -------------------------------------------------------

void run_unix(const Plan& plan, const std::string& dir, std::vector<Metric>* out, std::vector<Series>* chunk_plot,
              std::vector<Series>* window_plot) {
  const std::string qga_bin = find_qga();
  if (qga_bin.empty()) die("qemu-ga is not installed (apt-get install qemu-guest-agent; scripts/setup.sh does)");
  std::printf("unix transport: qtx-agent and %s on unix sockets in %s\n", qga_bin.c_str(), dir.c_str());
  std::fflush(stdout);

  double echo_p50 = 0;
  {
    UnixEcho echo(dir + "/echo.sock");
    echo_round_trips(echo.fd(), 200);  // warm-up
    Samples p50;
    for (int rep = 0; rep < plan.reps; ++rep) p50.add(percentile(echo_round_trips(echo.fd(), plan.pings), 0.5));
    echo_p50 = p50.median();
  }

  AgentFigures q, g;
  Samples q_rss_idle, q_rss_peak, g_rss_idle, g_rss_peak, q_anon_idle, g_anon_idle;
  {
    AgentProcess agent("unix-listen:" + dir + "/qtx.sock", "[telemetry]\ninterval_ms = 3600000\n", "warn");
    host::Manager manager;
    auto d = connect_qtx(manager, dir + "/qtx.sock");
    if (!d) die("qtx-agent did not become ready");
    d->ping();
    q_rss_idle.add(static_cast<double>(status_kib(agent.pid(), "VmRSS")));
    q_anon_idle.add(static_cast<double>(status_kib(agent.pid(), "RssAnon")));
    measure_agent(*d, false, plan, dir, &q);
    q_rss_peak.add(static_cast<double>(status_kib(agent.pid(), "VmHWM")));
  }
  {
    const std::string state = dir + "/qga-state";
    ::mkdir(state.c_str(), 0700);
    QgaProcess qga(qga_bin, dir + "/qga.sock", state);
    auto d = connect_qga(dir + "/qga.sock");
    if (!d) die("qemu-ga did not answer");
    d->ping();
    g_rss_idle.add(static_cast<double>(status_kib(qga.pid(), "VmRSS")));
    g_anon_idle.add(static_cast<double>(status_kib(qga.pid(), "RssAnon")));
    measure_agent(*d, true, plan, dir, &g);
    g_rss_peak.add(static_cast<double>(status_kib(qga.pid(), "VmHWM")));
  }
  add_common_metrics("unix", plan, q, g, echo_p50, NAN, NAN, out);

  Metric rss = make_metric("unix", "agent RSS, idle with a host", "KiB", false);
  rss.qtx = q_rss_idle;
  rss.qga = g_rss_idle;
  rss.goal = "<= qemu-ga";
  rss.met = rss.qtx.median() <= rss.qga.median() ? 1 : 0;
  out->push_back(rss);
  rss.name = "agent anonymous memory (RssAnon), idle";
  rss.qtx = q_anon_idle;
  rss.qga = g_anon_idle;
  rss.met = rss.qtx.median() <= rss.qga.median() ? 1 : 0;
  rss.note = "RSS less the pages mapped from files (the binary, shared libraries): what the agent costs in memory";
  out->push_back(rss);
  rss.note.clear();
  rss.name = "agent RSS, peak through the file transfers";
  rss.qtx = q_rss_peak;
  rss.qga = g_rss_peak;
  rss.met = rss.qtx.median() <= rss.qga.median() ? 1 : 0;
  rss.note = "VmHWM: qtx streams with a credit window; qemu-ga holds a whole chunk and its base64";
  out->push_back(rss);

  Metric size = make_metric("unix", "agent binary, stripped", "KiB", false);
  size.qtx.add(static_cast<double>(stripped_size(AgentProcess::agent_binary())) / 1024);
  size.qga.add(static_cast<double>(stripped_size(qga_bin)) / 1024);
  size.note = "qtx-agent is static; qemu-ga also loads " + std::to_string(shared_libraries_size(qga_bin) >> 10) +
              " KiB of shared libraries (glib, ...)";
  out->push_back(size);

  // Idle with no host: wakeups (context switches) per second.
  {
    Metric idle = make_metric("unix", "wakeups/s with no host connected", "1/s", false);
    idle.goal = "<= 1/s";
    AgentProcess agent("unix-listen:" + dir + "/idle.sock", "", "warn");
    const std::string state = dir + "/qga-idle-state";
    ::mkdir(state.c_str(), 0700);
    QgaProcess qga(qga_bin, dir + "/qga-idle.sock", state);
    std::this_thread::sleep_for(1s);  // both past their start-up
    const long q0 = context_switches(agent.pid()), g0 = context_switches(qga.pid());
    std::this_thread::sleep_for(std::chrono::duration<double>(plan.idle_seconds));
    idle.qtx.add(static_cast<double>(context_switches(agent.pid()) - q0) / plan.idle_seconds);
    idle.qga.add(static_cast<double>(context_switches(qga.pid()) - g0) / plan.idle_seconds);
    idle.met = idle.qtx.median() <= 1.0 ? 1 : 0;
    idle.note = "context switches of every thread over " + std::to_string(static_cast<int>(plan.idle_seconds)) +
                " s, from /proc";
    out->push_back(idle);
  }

  // CPU per telemetry sample (qtx pushes them; qemu-ga has no telemetry).
  {
    AgentProcess agent("unix-listen:" + dir + "/tele.sock", "[telemetry]\ninterval_ms = 100\n", "warn");
    host::Manager manager;
    host::AgentOptions o;
    o.endpoint = host::Endpoint::connect(dir + "/tele.sock");
    auto a = manager.add(o);
    if (!a || !a.value()->wait_ready(30s)) die("telemetry agent");
    const double cpu0 = cpu_seconds(agent.pid());
    const auto n0 = a.value()->stats().telemetry_samples;
    std::this_thread::sleep_for(std::chrono::duration<double>(plan.telemetry_seconds));
    const double cpu = cpu_seconds(agent.pid()) - cpu0;
    const auto n = a.value()->stats().telemetry_samples - n0;
    Metric t = make_metric("unix", "agent CPU per telemetry sample", "ms", false);
    if (n > 0) t.qtx.add(cpu * 1e3 / static_cast<double>(n));
    t.note = std::to_string(n) + " samples at 100 ms; CPU from /proc in clock ticks; qemu-ga pushes no telemetry";
    out->push_back(t);
  }

  measure_scale(plan, dir, out);

  plot_series(plan, q, g, " (unix)", chunk_plot, window_plot);
}

}  // namespace
}  // namespace qtx::bench

int main(int argc, char** argv) {
  using namespace qtx::bench;
  Plan plan;
  std::string transport = "unix", json = "agent_compare.json", png = "agent_compare.png", markdown;
  bool reps_given = false;
  bool scale_only = false;  // only the host-scale rows (no agents, no qemu-ga)
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) die(a + " needs a value");
      return argv[++i];
    };
    if (a == "--transport") {
      transport = next();
    } else if (a == "--quick") {
      plan.reps = 2;
      plan.pings = 200;
      plan.window_pings = 1000;
      plan.mib = 4;
      plan.execs = 3;
      plan.idle_seconds = 2;
      plan.telemetry_seconds = 1;
      plan.scale = {1, 10};
      plan.qga_chunks = {64 << 10, 1 << 20};
      plan.windows = {1, 64};
    } else if (a == "--mib") {
      plan.mib = std::strtoul(next().c_str(), nullptr, 10);
    } else if (a == "--reps") {
      plan.reps = std::atoi(next().c_str());
      reps_given = true;
    } else if (a == "--idle-seconds") {
      plan.idle_seconds = std::atof(next().c_str());
    } else if (a == "--scale") {
      plan.scale.clear();
      const std::string list = next();
      for (std::size_t at = 0; at < list.size();) {
        plan.scale.push_back(std::atoi(list.c_str() + at));
        const auto comma = list.find(',', at);
        at = comma == std::string::npos ? list.size() : comma + 1;
      }
    } else if (a == "--scale-only") {
      scale_only = true;
    } else if (a == "--json") {
      json = next();
    } else if (a == "--plot") {
      png = next();
    } else if (a == "--markdown") {
      markdown = next();
    } else if (a == "-h" || a == "--help") {
      std::printf(
          "usage: agent_compare [--transport unix|vm|vm-arm64|all] [--quick] [--mib N] [--reps N] [--idle-seconds S]\n"
          "                     [--scale 10,1000,10000] [--scale-only] [--json FILE] [--plot FILE.png]\n"
          "                     [--markdown FILE]\n");
      return 0;
    } else {
      die("unknown argument " + a + " (--help)");
    }
  }
  (void)reps_given;
  if (plan.reps < 1 || plan.mib < 1) die("--reps and --mib must be at least 1");
  if (transport != "unix" && transport != "vm" && transport != "vm-arm64" && transport != "all") {
    die("--transport is unix, vm, vm-arm64 or all");
  }
  ::signal(SIGPIPE, SIG_IGN);

  char tmpl[] = "/tmp/qtx-compare.XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) die("mkdtemp");
  const std::string dir = tmpl;
  std::vector<Metric> metrics;
  std::vector<Series> chunk_plot, window_plot;
  std::string accel = "none (unix sockets on the host)";
  if (scale_only) {
    measure_scale(plan, dir, &metrics);
    transport = "";
  }
  if (transport == "unix" || transport == "all") run_unix(plan, dir, &metrics, &chunk_plot, &window_plot);
  if (transport == "vm" || transport == "all") {
    if (!run_vm(qtx::testing::GuestArch::kX86_64, plan, dir, &metrics, &chunk_plot, &window_plot, &accel)) {
      die("the VM transport could not run");
    }
  }
  const auto arm64 = qtx::testing::GuestArch::kAarch64;
  const bool arm64_guest = ::access(qtx::testing::GuestImage::busybox(arm64).initrd.c_str(), R_OK) == 0;
  if (transport == "all" && !arm64_guest) {
    std::printf("vm-arm64 transport: skipped, no arm64 benchmark guest in this build\n");
  } else if (transport == "vm-arm64" || transport == "all") {
    if (!run_vm(arm64, plan, dir, &metrics, &chunk_plot, &window_plot, &accel)) die("the arm64 VM could not run");
  }
  const Machine machine = describe_machine(accel);
  print_table(machine, metrics);
  if (!write_json(json, machine, metrics)) die("cannot write " + json);
  std::printf("\nJSON: %s\n", json.c_str());
  if (!markdown.empty()) {
    if (!write_markdown(markdown, machine, metrics)) die("cannot write " + markdown);
    std::printf("Markdown: %s\n", markdown.c_str());
  }
  if (plot(png, "file read throughput vs qemu-ga chunk size", "chunk (KiB)", chunk_plot,
           "ping requests/s vs requests in flight", "requests in flight", window_plot)) {
    std::printf("plot: %s\n", png.c_str());
  } else {
    std::printf("plot: not made (gnuplot missing or failed)\n");
  }
  (void)std::system(("rm -rf '" + dir + "'").c_str());
  return 0;
}
