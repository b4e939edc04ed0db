// Runs an external tool (qemu-img, xorriso) for the provisioning helpers and
// collects what it printed. posix_spawn, so it is safe in a threaded process;
// the child gets /dev/null as stdin and inherits nothing else of ours
// (every descriptor the library opens is close-on-exec).
#pragma once

#include <string>
#include <vector>

#include "qtx/host/error.h"

namespace qtx::host::vm {

struct ToolOutput {
  int exit_code = -1;  // -1 when killed by a signal
  std::string out;     // stdout
  std::string err;     // stderr
};

// Runs argv[0] (looked up in PATH). kLocal when it cannot be started; the
// message names the tool and, when given, the package that provides it.
Result<ToolOutput> run_tool(const std::vector<std::string>& argv, const std::string& package);

// argv as one shell command line, each argument quoted only when it needs it.
std::string shell_join(const std::vector<std::string>& argv);

}  // namespace qtx::host::vm
