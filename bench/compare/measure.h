// The measurements of the comparison, written once and run against either
// agent (a Driver) over either transport.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "drivers.h"
#include "report.h"

namespace qtx::bench {

using Clock = std::chrono::steady_clock;

struct Plan {
  int reps = 5;
  int pings = 2000;          // per repetition, for the round-trip percentiles
  int window_pings = 20000;  // per repetition, for requests/s in flight
  std::size_t mib = 64;
  int execs = 20;
  double idle_seconds = 30;
  double telemetry_seconds = 10;
  std::vector<int> scale = {10, 1000, 10000};
  std::vector<std::size_t> qga_chunks = {64 << 10, 256 << 10, 1 << 20, 4 << 20, 16 << 20};
  std::vector<int> windows = {1, 2, 4, 8, 16, 32, 64};
};

double seconds_since(Clock::time_point t);
[[noreturn]] void die(const std::string& what);

// Round trips of 32 bytes through a connected echo (the transport's floor);
// the times in microseconds.
std::vector<double> echo_round_trips(int fd, int n);

struct PingFigures {
  Samples p50, p99, rate1;
};

// Figures of one agent (qtx or qemu-ga) over one transport.
struct AgentFigures {
  PingFigures ping;
  Samples rate64;
  std::vector<double> window_rates;      // per Plan::windows, for the plot
  std::vector<double> chunk_read_rates;  // per Plan::qga_chunks (qemu-ga), for the plot
  std::size_t best_chunk = 0;
  Samples read_mbps, write_mbps, exec_true_ms, exec_10m_ms;
  Samples read_mbps_nosha, write_mbps_nosha;  // qtx without the end-to-end sha256
};

// Every per-agent figure; files go to `guest_dir` (as the agent sees it).
void measure_agent(Driver& d, bool is_qga, const Plan& plan, const std::string& guest_dir, AgentFigures* f);

// The rows both transports share. `floor_p50`: the bare echo's round trip;
// ceilings (MB/s) NAN where the transport has none.
void add_common_metrics(const std::string& via, const Plan& plan, const AgentFigures& q, const AgentFigures& g,
                        double floor_p50, double ceiling_read, double ceiling_write, std::vector<Metric>* out);

// The plot's series from both agents' figures; `suffix` goes after titles.
void plot_series(const Plan& plan, const AgentFigures& q, const AgentFigures& g, const std::string& suffix,
                 std::vector<Series>* chunk_plot, std::vector<Series>* window_plot);

}  // namespace qtx::bench
