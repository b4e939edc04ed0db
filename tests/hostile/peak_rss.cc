#include "hostile/peak_rss.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "support/agent_process.h"

namespace qtx::testing {
namespace {

std::string proc_path(pid_t pid, const char* file) {
  return pid == 0 ? std::string("/proc/self/") + file : "/proc/" + std::to_string(pid) + "/" + file;
}

}  // namespace

long peak_rss_kib(pid_t pid) {
  std::ifstream in(proc_path(pid, "status"));
  std::string line;
  while (std::getline(in, line)) {
    long kib = 0;
    if (std::sscanf(line.c_str(), "VmHWM: %ld kB", &kib) == 1) return kib;
  }
  return -1;
}

bool reset_peak_rss(pid_t pid) {
  std::ofstream out(proc_path(pid, "clear_refs"));
  out << "5";
  out.flush();
  return static_cast<bool>(out);
}

void expect_peak_rss_below(pid_t pid, std::uint64_t bound_mib) {
  const long peak = peak_rss_kib(pid);
  ASSERT_GT(peak, 0);
  std::printf("agent VmHWM: %ld KiB (bound %llu MiB)\n", peak, static_cast<unsigned long long>(bound_mib));
  if (!kRssIsMeaningful) return;
  EXPECT_LT(static_cast<std::uint64_t>(peak), bound_mib * 1024);
}

}  // namespace qtx::testing
