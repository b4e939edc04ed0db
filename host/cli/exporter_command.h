// `qtx exporter`: a standalone Prometheus exporter for the agents whose
// sockets match a pattern, on hosts where no other process owns them.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>

namespace qtx::cli {

// Registers the `exporter` subcommand on `app`. After a successful parse,
// `*run` is set to it; it runs until SIGINT/SIGTERM.
void add_exporter_command(CLI::App& app, std::function<int()>* run);

}  // namespace qtx::cli
