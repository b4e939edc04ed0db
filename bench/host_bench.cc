// host_bench: libqtx-host's figures against the real agent over unix sockets.
//   - ping round trip through the blocking API (median, p99 of 20000)
//   - pipelined pings, 64 in flight (calls per second)
//   - exec of /bin/true (median of 200)
//   - upload and download throughput of a file, sha256 checked
//   - memory per connection: this process's RSS growth with N agents ready,
//     divided by N (each agent a process of its own)
//   - metrics: render time and exposition size for 1, 100 and 1000 agents
//     (each with the real agent's counters and telemetry sample, copied),
//     and a whole scrape (collect + render) of the N real agents
// Prints one "name value unit" line each. Usage: host_bench [MiB] [agents]
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "qtx/host/manager.h"
#include "qtx/host/metrics.h"
#include "support/agent_process.h"

namespace {

namespace v1 = ::qtx::agent::v1;
using Clock = std::chrono::steady_clock;
using qtx::testing::AgentProcess;
using namespace std::chrono_literals;

long rss_kib() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return -1;
}

double us_since(Clock::time_point t) { return std::chrono::duration<double, std::micro>(Clock::now() - t).count(); }

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(p * static_cast<double>(v.size() - 1))];
}

void die(const std::string& what) {
  std::fprintf(stderr, "host_bench: %s\n", what.c_str());
  std::exit(1);
}

std::shared_ptr<qtx::host::Agent> connect(qtx::host::Manager& m, const std::string& path) {
  qtx::host::AgentOptions o;
  o.endpoint = qtx::host::Endpoint::connect(path);
  o.reconnect_min = 10ms;
  auto a = m.add(o);
  if (!a) die(a.error().to_string());
  if (auto r = a.value()->wait_ready(30s); !r) die(r.error().to_string());
  return a.value();
}

// Median time of render_metrics over `agents` copies of `one`, and the size.
void metrics_figures(const qtx::host::AgentMetrics& one) {
  for (int n : {1, 100, 1000}) {
    std::vector<qtx::host::AgentMetrics> all(static_cast<std::size_t>(n), one);
    for (int i = 0; i < n; ++i) all[static_cast<std::size_t>(i)].name = "vm-" + std::to_string(i);
    for (auto format : {qtx::host::MetricsFormat::kPrometheusText, qtx::host::MetricsFormat::kOpenMetrics}) {
      std::vector<double> us;
      std::size_t bytes = 0;
      for (int r = 0; r < (n >= 1000 ? 11 : 101); ++r) {
        auto t = Clock::now();
        bytes = qtx::host::render_metrics(all, format).size();
        us.push_back(us_since(t));
      }
      std::printf("metrics_render_%s_%d_agents %.2f ms (%zu bytes, %.1f KiB per agent)\n",
                  format == qtx::host::MetricsFormat::kOpenMetrics ? "openmetrics" : "text", n,
                  percentile(us, 0.5) / 1000, bytes, static_cast<double>(bytes) / 1024 / n);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::uint64_t mib = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 256;
  const int agents = argc > 2 ? std::atoi(argv[2]) : 1000;
  char tmpl[] = "/tmp/qtx-host-bench.XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) die("mkdtemp");
  const std::string dir = tmpl;

  {
    AgentProcess agent("unix-listen:" + dir + "/a.sock", "[telemetry]\ninterval_ms = 3600000\n", "warn");
    qtx::host::Manager manager;
    auto a = connect(manager, dir + "/a.sock");

    // The metrics of this agent (its sample arrived after the handshake).
    for (int i = 0; i < 1000 && !a->latest_telemetry(); ++i) std::this_thread::sleep_for(10ms);
    const auto collected = qtx::host::collect_metrics(manager);
    if (collected.size() != 1 || !collected[0].telemetry) die("no telemetry sample for the metrics figures");
    metrics_figures(collected[0]);

    std::vector<double> rtt;
    for (int i = 0; i < 20000; ++i) {
      auto t = Clock::now();
      if (!a->ping({})) die("ping failed");
      rtt.push_back(us_since(t));
    }
    std::printf("ping_rtt_median %.1f us\nping_rtt_p99 %.1f us\n", percentile(rtt, 0.5), percentile(rtt, 0.99));

    // Pipelined: keep 64 pings in flight.
    {
      std::mutex mu;
      std::condition_variable cv;
      int in_flight = 0, done = 0;
      const int total = 100000;
      auto t = Clock::now();
      for (int sent = 0; sent < total; ++sent) {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return in_flight < 64; });
        ++in_flight;
        lock.unlock();
        a->ping({}, {}, [&](qtx::host::Result<v1::PingResponse> r) {
          if (!r) die("pipelined ping failed");
          std::lock_guard<std::mutex> g(mu);
          --in_flight;
          ++done;
          cv.notify_all();
        });
      }
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return done == total; });
      std::printf("pipelined_pings %.0f calls/s\n", total / (us_since(t) / 1e6));
    }

    std::vector<double> exec_us;
    v1::ExecRequest tr;
    tr.add_argv("/bin/true");
    for (int i = 0; i < 200; ++i) {
      auto t = Clock::now();
      if (!a->exec(tr)) die("exec failed");
      exec_us.push_back(us_since(t));
    }
    std::printf("exec_true_median %.0f us\n", percentile(exec_us, 0.5));

    // Transfers: a file of `mib` MiB, in and out.
    const std::string local = dir + "/local.bin";
    {
      std::ofstream f(local, std::ios::binary);
      std::string block(1 << 20, '\0');
      for (std::size_t i = 0; i < block.size(); ++i) block[i] = static_cast<char>(i * 2654435761u >> 24);
      for (std::uint64_t i = 0; i < mib; ++i) f << block;
    }
    v1::FileWriteRequest w;
    w.set_path(dir + "/remote.bin");
    auto t = Clock::now();
    auto up = a->upload_file(local, w);
    if (!up) die(up.error().to_string());
    std::printf("upload %.0f MB/s (%llu MiB, sha256 checked)\n", static_cast<double>(up->bytes) / us_since(t),
                static_cast<unsigned long long>(mib));
    v1::FileReadRequest rd;
    rd.set_path(dir + "/remote.bin");
    t = Clock::now();
    auto down = a->download_file(rd, dir + "/back.bin");
    if (!down) die(down.error().to_string());
    std::printf("download %.0f MB/s (%llu MiB, sha256 checked)\n", static_cast<double>(down->bytes) / us_since(t),
                static_cast<unsigned long long>(mib));
  }

  // Memory per connection: N agents, one Manager.
  if (agents > 0) {
    rlimit nofile{};
    ::getrlimit(RLIMIT_NOFILE, &nofile);
    nofile.rlim_cur = nofile.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &nofile);
    std::vector<std::unique_ptr<AgentProcess>> procs;
    for (int i = 0; i < agents; ++i) {
      procs.push_back(std::make_unique<AgentProcess>("unix-listen:" + dir + "/vm" + std::to_string(i) + ".sock",
                                                     "[telemetry]\ninterval_ms = 3600000\n", "warn"));
    }
    qtx::host::Manager manager;
    const long before = rss_kib();
    std::vector<std::shared_ptr<qtx::host::Agent>> vms;
    auto t = Clock::now();
    for (int i = 0; i < agents; ++i) {
      qtx::host::AgentOptions o;
      o.endpoint = qtx::host::Endpoint::connect(dir + "/vm" + std::to_string(i) + ".sock");
      o.reconnect_min = 10ms;
      auto a = manager.add(o);
      if (!a) die(a.error().to_string());
      vms.push_back(a.value());
    }
    for (auto& vm : vms) {
      if (auto r = vm->wait_ready(60s); !r) die(r.error().to_string());
    }
    const double ready_ms = us_since(t) / 1000;
    const long after = rss_kib();
    std::printf("agents_ready %d in %.0f ms\n", agents, ready_ms);
    std::printf("memory_per_connection %.1f KiB (RSS %ld -> %ld KiB)\n", static_cast<double>(after - before) / agents,
                before, after);
    // A whole scrape of the real agents: copy under each agent's lock, then render.
    std::vector<double> us;
    std::size_t bytes = 0;
    for (int r = 0; r < 11; ++r) {
      auto ts = Clock::now();
      bytes = qtx::host::render_metrics(manager, qtx::host::MetricsFormat::kPrometheusText).size();
      us.push_back(us_since(ts));
    }
    std::printf("metrics_scrape_%d_real_agents %.2f ms (%zu bytes)\n", agents, percentile(us, 0.5) / 1000, bytes);
    vms.clear();
  }
  (void)std::system(("rm -rf '" + dir + "'").c_str());
  return 0;
}
