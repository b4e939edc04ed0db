// Peak resident memory (VmHWM) of a process, the one memory figure the
// hostile-peer suite asserts: it cannot miss a short spike between samples.
#pragma once

#include <sys/types.h>

#include <cstdint>

namespace qtx::testing {

// VmHWM of `pid` in KiB (0 for this process), or -1 when /proc does not say.
long peak_rss_kib(pid_t pid = 0);

// Resets the peak of `pid` (0 for this process) to its current RSS, so a
// test can measure the peak of one phase. False where the kernel refuses
// (writing 5 to /proc/PID/clear_refs needs Linux 4.0 and the right to
// write there).
bool reset_peak_rss(pid_t pid = 0);

// Prints the VmHWM of `pid` and expects it below `bound_mib` MiB. Under a
// sanitizer (whose shadow memory inflates RSS) only the print remains; the
// behaviour the test checks beside it still holds there.
void expect_peak_rss_below(pid_t pid, std::uint64_t bound_mib);

}  // namespace qtx::testing
