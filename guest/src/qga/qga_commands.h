// The qemu-ga commands qtx-agent answers, with qemu's argument and result
// schema (qga/qapi-schema.json), and the native request kind whose policy
// entry governs each. Everything here runs synchronously on the io thread:
// phase 1 has only commands that read a few small files or call uname(2),
// getifaddrs(3) and the like.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "qga/json_writer.h"

namespace qtx::agent {
struct AgentConfig;
}

namespace qtx::agent::qga {

// What a command answered: a return value, or an error (class and desc as
// qemu's QMP errors carry them).
struct Outcome {
  Json ret;
  std::string error_class;  // "" on success
  std::string desc;
  bool delimit = false;  // guest-sync-delimited: send 0xFF before the answer

  bool ok() const { return error_class.empty(); }
  static Outcome error(std::string cls, std::string desc) { return {Json(), std::move(cls), std::move(desc), false}; }
  static Outcome generic(std::string desc) { return error("GenericError", std::move(desc)); }
};

// Runs command `name` with `args` (an object) under `config`'s policy:
//  - a command this agent does not have (every qemu-ga command outside phase
//    1 among them): CommandNotFound "The command NAME has not been found";
//  - qemu-ga's Windows-only commands, and commands the policy denies:
//    CommandNotFound "Command NAME has been disabled", as Debian's qemu-ga
//    7.2 answers a command it has disabled;
//  - a missing, mistyped or unexpected argument: GenericError with qemu's
//    wording ("Parameter 'id' is missing", "Invalid parameter type for 'id',
//    expected: integer", "Parameter 'x' is unexpected").
// Never throws.
Outcome run_command(const AgentConfig& config, const std::string& name, const Json& args);

struct CommandInfo {
  std::string name;
  bool enabled;
  bool success_response;
};
// The commands guest-info lists, sorted by name, `enabled` per `config`.
std::vector<CommandInfo> command_list(const AgentConfig& config);

// The native request kind whose policy entry governs `name` ("" when the
// command is always allowed), or nullptr for a command this agent lacks.
const char* policy_kind(std::string_view name);

}  // namespace qtx::agent::qga
