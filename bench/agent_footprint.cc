// agent_footprint: the guest agent's own figures, measured on this machine.
//   - cost of one telemetry sample (in-process, median of 200)
//   - RSS idle, and peak RSS (VmHWM) across a 64 MiB file read and write
//   - file read/write throughput over a unix socket with the credit protocol
// Prints one "name value unit" line each. Usage: agent_footprint [MiB]
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <signal.h>
#include <string>
#include <vector>

#include "support/agent_client.h"
#include "support/agent_process.h"
#include "telemetry/collector.h"

using namespace qtx::testing;
using Clock = std::chrono::steady_clock;

namespace {

long status_kib(pid_t pid, const char* key) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind(key, 0) == 0) return std::strtol(line.c_str() + std::strlen(key), nullptr, 10);
  }
  return -1;
}

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

}  // namespace

int main(int argc, char** argv) {
  const std::size_t mib = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 64;
  const std::size_t size = mib << 20;

  {
    qtx::agent::TelemetryCollector c;
    std::vector<double> us;
    for (int i = 0; i < 200; ++i) {
      auto t = Clock::now();
      auto s = c.collect(false);
      us.push_back(seconds_since(t) * 1e6);
    }
    std::sort(us.begin(), us.end());
    std::printf("telemetry_sample_cost_median %.1f us\n", us[us.size() / 2]);
    std::printf("telemetry_sample_cost_p90 %.1f us\n", us[us.size() * 9 / 10]);
  }

  const std::string dir = "/tmp/qtx-footprint-" + std::to_string(::getpid());
  ::mkdir(dir.c_str(), 0700);
  const std::string src = dir + "/src.bin";
  {
    std::string block(1 << 20, '\0');
    for (std::size_t i = 0; i < block.size(); ++i) block[i] = static_cast<char>(i * 2654435761u >> 24);
    std::ofstream f(src, std::ios::binary);
    for (std::size_t i = 0; i < mib; ++i) f << block;
  }
  HostListener listener(dir + "/agent.sock");
  AgentProcess agent(listener.path(), "", "warn");
  int fd = listener.accept(Millis(10000));
  if (fd < 0) {
    std::fprintf(stderr, "agent did not connect\n");
    return 1;
  }
  AgentConnection conn(fd);
  if (!conn.hello()) return 1;
  std::printf("agent_rss_idle %ld KiB\n", status_kib(agent.pid(), "VmRSS:"));

  // Read: the host grants credit as it consumes, 8 MiB window.
  const std::uint64_t window = 8 << 20;
  v1::Envelope env;
  env.set_id(2);
  env.mutable_request()->mutable_file_read()->set_path(src);
  env.mutable_request()->mutable_file_read()->set_window(window);
  auto t = Clock::now();
  conn.send(env);
  std::uint64_t got = 0, unacked = 0;
  for (;;) {
    auto e = conn.recv(Millis(30000));
    if (!e) return 1;
    if (e->id() != 2) continue;
    if (e->has_response()) break;
    const auto n = e->progress().file_chunk().data().size();
    got += n;
    unacked += n;
    if (unacked >= window / 2) {
      v1::Envelope c;
      c.set_id(2);
      c.mutable_credit()->set_bytes(unacked);
      conn.send(c);
      unacked = 0;
    }
  }
  const double read_s = seconds_since(t);
  std::printf("file_read_%zu_MiB %.1f MB/s\n", mib, got / read_s / 1e6);

  // Write: chunks of 256 KiB within the agent's credit.
  env.Clear();
  env.set_id(3);
  env.mutable_request()->mutable_file_write()->set_path(dir + "/dst.bin");
  env.mutable_request()->mutable_file_write()->set_atomic(true);
  std::string chunk(256 << 10, 'w');
  t = Clock::now();
  conn.send(env);
  std::uint64_t credit = 0, sent = 0;
  bool done = false;
  while (!done) {
    while (credit >= chunk.size() && sent < size) {
      v1::Envelope c;
      c.set_id(3);
      auto* fc = c.mutable_progress()->mutable_file_chunk();
      fc->set_offset(sent);
      fc->set_data(chunk);
      sent += chunk.size();
      credit -= chunk.size();
      fc->set_last(sent >= size);
      conn.send(c);
    }
    auto e = conn.recv(Millis(30000));
    if (!e) return 1;
    if (e->id() != 3) continue;
    if (e->has_credit()) credit += e->credit().bytes();
    if (e->has_response()) done = true;
  }
  const double write_s = seconds_since(t);
  std::printf("file_write_%zu_MiB %.1f MB/s\n", mib, size / write_s / 1e6);
  std::printf("agent_rss_peak_during_transfers %ld KiB\n", status_kib(agent.pid(), "VmHWM:"));
  conn.close();
  agent.signal_and_wait(SIGTERM);
  (void)std::system(("rm -rf '" + dir + "'").c_str());
  return 0;
}
