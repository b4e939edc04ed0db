// exec: runs a program for the host and streams its output.
//
//   spawn (worker) -> pipes read on the io thread -> Progress.exec_output
//   within the host's credit -> exit (ChildReaper) + both pipes at EOF ->
//   Response.exec (ExecResult).
// The timeout and Cancel kill the whole process group (SIGKILL). Output
// beyond the limit is read and discarded (the program is never blocked by a
// full pipe once truncated) and the result says truncated. After the process
// exits, pipes held open by its own children are given 1 s, then closed.
#pragma once

#include <cstdint>

#include "qtx/agent/v1/envelope.pb.h"

namespace qtx::agent {

class Session;

void start_exec(Session& s, std::uint64_t id, const ::qtx::agent::v1::ExecRequest& req);

inline constexpr std::uint64_t kDefaultOutputWindow = 4u * 1024 * 1024;

}  // namespace qtx::agent
