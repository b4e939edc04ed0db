// `qtx vm ...`: the provisioning helpers of libqtx-host (qtx/host/vm.h) on
// the command line: overlay, seed, wiring, wait-ready.
//
// Exit codes: 0 done (or already done: the same file was there); 1 it could
// not be done (a missing backing image, a different file in the way, a tool
// that failed); 2 bad input (usage, or a value the checks refuse); 3
// wait-ready saw no agent in time.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>

namespace qtx::cli {

// Registers `vm` and its subcommands on `app`; after a successful parse
// `*run` is set to the chosen one. `json` is the global --json flag.
void add_vm_commands(CLI::App& app, const bool& json, std::function<int()>* run);

}  // namespace qtx::cli
