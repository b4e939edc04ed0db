// What /proc says of a process: memory, context switches (every thread),
// CPU time. For the agents' footprint figures.
#pragma once

#include <sys/types.h>

#include <string>

namespace qtx::bench {

long status_kib(pid_t pid, const char* field);  // "VmRSS", "VmHWM": KiB, or -1
long context_switches(pid_t pid);               // voluntary + involuntary, all threads
double cpu_seconds(pid_t pid);                  // utime + stime
long file_size(const std::string& path);
// The size of `binary` stripped (strip -o), or its size when strip fails.
long stripped_size(const std::string& binary);
// The sizes of the shared libraries `binary` loads (ldd), summed; 0 for a static binary.
long shared_libraries_size(const std::string& binary);

}  // namespace qtx::bench
