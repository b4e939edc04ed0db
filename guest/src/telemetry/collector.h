// TelemetryCollector: one TelemetrySample from /proc and /sys.
//
// Cheap by construction: a handful of small reads, no processes spawned.
// Network filesystems are listed but never statvfs'd (a hung server must not
// hang the agent); pseudo filesystems are left out. Thread-safe: collections
// (from any session's worker job) run one at a time.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "qtx/agent/v1/telemetry.pb.h"

namespace qtx::agent {

struct CpuTimes {
  std::uint64_t user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
  std::uint64_t total() const { return user + nice + system + idle + iowait + irq + softirq + steal; }
};

// Where the collector reads from (tests point these at a fake tree).
struct TelemetryRoots {
  std::string proc = "/proc";
  std::string sys = "/sys";
  std::string utmp = "/var/run/utmp";
};

class TelemetryCollector {
 public:
  using Roots = TelemetryRoots;
  // Takes the CPU baseline now, so the first sample covers the time since the
  // agent started.
  explicit TelemetryCollector(Roots roots = Roots());

  v1::TelemetrySample collect(bool per_cpu);
  // Runs collect() unless `cancelled` holds once this collection's turn has
  // come (a job of a session that ended meanwhile). False when skipped.
  bool collect_unless(const std::atomic<bool>& cancelled, bool per_cpu, v1::TelemetrySample* out);

  // Parts, exposed for tests.
  static bool parse_proc_stat(const std::string& text, CpuTimes* total, std::vector<CpuTimes>* per_cpu);
  static void cpu_usage(const CpuTimes& before, const CpuTimes& after, int cpu, v1::CpuUsage* out);
  static void parse_meminfo(const std::string& text, v1::Memory* out);
  // Whether a mount of `type` is a real filesystem worth reporting.
  static bool is_real_filesystem(const std::string& type);
  static bool is_network_filesystem(const std::string& type);

 private:
  v1::TelemetrySample collect_locked(bool per_cpu);
  void collect_filesystems(v1::TelemetrySample* s);
  void collect_disks(v1::TelemetrySample* s);
  void collect_users(v1::TelemetrySample* s);

  std::mutex mu_;  // one collection at a time; guards everything below
  Roots roots_;
  std::uint64_t seq_ = 0;
  CpuTimes prev_total_;
  std::vector<CpuTimes> prev_cpus_;
};

// The network interfaces with their addresses and counters (shared with the
// `network` request).
void collect_interfaces(const std::string& sys_root, google::protobuf::RepeatedPtrField<v1::NetworkInterface>* out);

// Reads a whole (small) file; "" when unreadable.
std::string read_small_file(const std::string& path);

}  // namespace qtx::agent
