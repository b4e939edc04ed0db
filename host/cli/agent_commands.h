// The qtx subcommands that talk to an agent (everything but `decode`), on
// top of libqtx-host.
//
// Exit codes (docs/cli.md):
//   0  success
//   1  the guest could not do it (not found, invalid argument, I/O error, ...)
//   2  usage error
//   3  no agent: nothing on the socket, no handshake, connection lost
//   4  refused: denied by the guest's policy, or unsupported by the agent
//   5  the call's deadline passed
//   exec: the command's own exit code; 128+N when killed by signal N; 124
//   when the agent's timeout killed it.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>

#include "global_options.h"

namespace qtx::cli {

// Blocks SIGINT and SIGTERM in the calling thread (and so in every thread
// started after it) and handles them on a thread of its own. Call first in
// main, before any Manager exists.
void start_signal_thread();

// Registers the agent subcommands on `app` (after add_global_options, whose
// options they read): one registrar per command in agent_commands.cc. After
// a successful parse, `*run` is set to the chosen command; it returns the
// exit code.
void add_agent_commands(CLI::App& app, GlobalOptions& global, std::function<int()>* run);

}  // namespace qtx::cli
