// The table behind run_command(): how one command is described, the argument
// checks every command shares, and the groups of commands, one file each.
// Internal to the qga folder.
#pragma once

#include <initializer_list>
#include <optional>
#include <vector>

#include "qga/qga_commands.h"

namespace qtx::agent::qga {

// --- arguments ---------------------------------------------------------------

enum class Type { kInt, kString, kBool, kArray, kObject, kNumber };

struct Param {
  const char* name;
  Type type;
  bool required;
};

// qemu's input visitor: the members in schema order (missing, then wrong
// type), then the first member the schema does not have; nullopt when
// `args` fits `params`. Wording as qemu's ("Parameter 'id' is missing",
// "Invalid parameter type for 'id', expected: integer", "Parameter 'x' is
// unexpected").
std::optional<Outcome> check_params(const Json& args, std::initializer_list<Param> params);

inline Outcome ok(Json v) { return {std::move(v), "", ""}; }

// --- commands ----------------------------------------------------------------

// One qemu-ga command. Exactly one of `run` and `start` is set:
//  - run answers at once, on the io thread, and must not block (a few small
//    file reads at most);
//  - start answers through `reply` later (blocking work goes to
//    env.agent.workers; the answer is posted back to the io thread).
// `kind` names the native request kind whose policy entry governs the
// command ("" for the protocol's own commands, which policy cannot deny).
struct Command {
  const char* name;
  const char* kind;
  Outcome (*run)(CommandEnv& env, const Json& args) = nullptr;
  void (*start)(CommandEnv& env, const Json& args, Reply reply) = nullptr;
  bool success_response = true;  // false: qemu-ga sends no answer on success (guest-shutdown, guest-suspend-*)
};

// The groups; qga_commands.cc puts them together.
void add_protocol_commands(std::vector<Command>* out);     // qga_commands.cc: sync, ping, info
void add_system_info_commands(std::vector<Command>* out);  // qga_system_info.cc: read-only system facts

}  // namespace qtx::agent::qga
