// The qemu-ga commands qtx-agent answers, with qemu's argument and result
// schema (qga/qapi-schema.json), and the native request kind whose policy
// entry governs each. A command either answers at once on the io thread
// (reading a few small files, uname(2) and the like) or does its blocking
// part on the agent's worker pool and answers later; either way through
// one Reply, on the io thread.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "qga/json_writer.h"

namespace qtx::agent {
struct AgentConfig;
struct AgentContext;
}  // namespace qtx::agent

namespace qtx::agent::qga {

// What a command answered: a return value, or an error (class and desc as
// qemu's QMP errors carry them).
struct Outcome {
  Json ret;
  std::string error_class;  // "" on success
  std::string desc;
  bool delimit = false;  // guest-sync-delimited: send 0xFF before the answer
  bool silent = false;   // a command without success-response (guest-shutdown): no answer when ok()

  bool ok() const { return error_class.empty(); }
  static Outcome error(std::string cls, std::string desc) { return {Json(), std::move(cls), std::move(desc)}; }
  static Outcome generic(std::string desc) { return error("GenericError", std::move(desc)); }
};

struct QgaState;

// What a command may use: the agent (configuration, policy, worker pool,
// reaper, freeze manager) and the protocol's state. Both outlive every
// command's synchronous part; an asynchronous command copies `state`.
struct CommandEnv {
  AgentContext& agent;
  std::shared_ptr<QgaState> state;
};

// Takes a command's outcome. Called exactly once per command, on the io
// thread, possibly before the command's start returns.
using Reply = std::function<void(Outcome)>;

// Runs command `name` with `args` (an object) under the agent's policy:
//  - a command this agent does not have (every qemu-ga command outside phase
//    1 among them): CommandNotFound "The command NAME has not been found";
//  - qemu-ga's Windows-only commands, and commands the policy denies:
//    CommandNotFound "Command NAME has been disabled", as Debian's qemu-ga
//    7.2 answers a command it has disabled;
//  - a missing, mistyped or unexpected argument: GenericError with qemu's
//    wording ("Parameter 'id' is missing", "Invalid parameter type for 'id',
//    expected: integer", "Parameter 'x' is unexpected").
// Never throws; an exception from a command's synchronous part becomes a
// GenericError answer.
void run_command(CommandEnv& env, const std::string& name, const Json& args, Reply reply);

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
