// qtx: the command-line tool over the qtx host library.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <functional>

#include "agent_commands.h"
#include "completion.h"
#include "decode_command.h"
#include "exporter_command.h"
#include "global_options.h"
#include "vm_commands.h"

int main(int argc, char** argv) {
  qtx::cli::start_signal_thread();
  CLI::App app{"qtx: talk to a qtx guest agent over its virtio-serial channel"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("qtx ") + QTX_VERSION);
  app.footer(
      "Exit codes: 0 success; 1 the guest could not do it; 2 usage error; 3 no agent (nothing on the socket, no "
      "handshake, connection lost); 4 denied by the guest's policy or unsupported; 5 the command's deadline passed "
      "(--timeout). exec exits "
      "with the command's code (128+N when killed by signal N, 124 when the agent's timeout killed it).");

  // Global options first: the commands added after them accept them too.
  qtx::cli::GlobalOptions global;
  qtx::cli::add_global_options(app, global);

  // The commands; each registrar sets `run` to its command when parsed.
  std::function<int()> run;
  qtx::cli::add_agent_commands(app, global, &run);
  qtx::cli::add_vm_commands(app, global.json, &run);
  qtx::cli::add_exporter_command(app, &run);
  qtx::cli::add_decode_command(app, &run);
  qtx::cli::add_completion_command(app, &run);  // last: it covers the commands above

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; every usage error exits 2.
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (run) return run();
  return 2;
}
