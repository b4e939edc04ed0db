// SIGHUP: the running agent re-reads its configuration file.
#pragma once

#include <string>

#include "agent_context.h"

namespace qtx::agent {

// Where the configuration comes from: the file, and the command-line
// options that override it (empty: not given). They keep overriding the
// file on every reload.
struct ConfigSource {
  std::string path;
  bool path_given = false;  // a missing file is an error only when given
  std::string transport;    // --transport
  std::string log_level;    // --log-level
};

// Reads the file again and applies it to `agent` (on the io thread). A file
// that is refused changes nothing: the error is logged and the running
// configuration stays. A changed agent.transport is kept for the next start
// (the port cannot change under a session); the log level and the telemetry
// interval take effect at once, the rest with the next request that reads it.
void reload_config(AgentContext& agent, const ConfigSource& source);

}  // namespace qtx::agent
