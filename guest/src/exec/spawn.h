// Spawning a child with pipes, as a given user, without a shell.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "qtx/unique_fd.h"

namespace qtx::agent {

struct SpawnSpec {
  std::string path;  // resolved executable
  std::vector<std::string> argv;
  std::vector<std::string> env;  // "NAME=value"
  std::string cwd;               // "" = inherit
  bool set_user = false;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
  bool merge_stderr = false;    // stderr into the stdout pipe
  bool discard_output = false;  // stdout and stderr to /dev/null (no pipes)
};

struct Spawned {
  pid_t pid = -1;
  UniqueFd stdin_fd, stdout_fd, stderr_fd;  // parent ends; stderr invalid when merged
  int error = 0;                            // errno of the failed step (0: the program runs)
  std::string failed_step;                  // "chdir", "setuid", "execve", "fork", "pipe"...
};

// Forks and execs. The child gets its own process group (kill(-pid) reaches
// everything it starts), default signal handling and mask, and no descriptor
// of the agent's but the three pipes. Blocking (it waits for the exec to
// succeed or fail): call it on a worker.
Spawned spawn(const SpawnSpec& spec);

// argv0 as execve needs it: unchanged when it contains '/', else the first
// executable match in `path_var` ("" when none).
std::string resolve_executable(const std::string& argv0, const std::string& path_var);

}  // namespace qtx::agent
