// exec: runs a program for the host and streams its output.
//
//   spawn (worker) -> pipes read on the io thread -> Progress.exec_output
//   within the host's credit -> exit (ChildReaper) + both pipes at EOF ->
//   Response.exec (ExecResult).
// The timeout and Cancel kill the whole process group (SIGKILL). Output
// beyond the limit is read and discarded (the program is never blocked by a
// full pipe once truncated) and the result says truncated. After the process
// exits, pipes held open by its own children are given 1 s, then closed.
//
// Streamed stdin (stdin_stream) follows the agent's credit: the host may
// send kStdinWindow bytes of Progress.exec_input data from the request on
// without waiting (the implicit initial grant), and the agent grants more
// with Credit as the program consumes what it holds. Data beyond the credit
// fails the exec (INVALID_ARGUMENT, the process group killed); it is never
// buffered. So an exec holds at most kStdinWindow bytes of streamed stdin,
// plus the request's own `stdin` field. Once the program has closed its
// stdin, further data is discarded and no more credit is granted.
#pragma once

#include <cstdint>

#include "qtx/agent/v1/envelope.pb.h"
#include "qtx/wire/format.h"

namespace qtx::agent {

class Session;

void start_exec(Session& s, std::uint64_t id, const ::qtx::agent::v1::ExecRequest& req);

inline constexpr std::uint64_t kDefaultOutputWindow = 4u * 1024 * 1024;
using wire::kStdinWindow;

}  // namespace qtx::agent
