// The options every qtx command takes (--socket, --json, --listen,
// --connect-timeout, --timeout): defined once, on the root App, and accepted
// before or after the command name (`qtx --json info` is `qtx info --json`).
#pragma once

#include <CLI/CLI.hpp>

#include <string>

namespace qtx::cli {

struct GlobalOptions {
  std::string socket;            // --socket, or $QTX_SOCKET
  bool listen = false;           // --listen: QEMU connects to us (server=off)
  bool json = false;             // --json: one JSON document on stdout
  double connect_timeout = 5.0;  // seconds to wait for the handshake
  // --timeout: seconds the command may take once connected (every call it
  // makes shares this deadline); negative: the command's own default
  // (docs/cli.md); 0: none.
  double timeout = -1;
};

// Adds the global options to `app`, the root, bound to `g`. Call it before
// any subcommand is added: subcommands added afterwards pass the options
// they do not know up to the root (CLI11's fallthrough), and their --help
// lists the global options too. After the command name a command's own
// option of the same name is the command's (exec --timeout is the guest's
// kill timeout, vm wiring --socket its own); a global option given both
// before and after the command name takes the later value.
void add_global_options(CLI::App& app, GlobalOptions& g);

}  // namespace qtx::cli
