// qtx: the command-line tool over the qtx host library.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <functional>

#include "agent_commands.h"
#include "decode_command.h"
#include "exporter_command.h"
#include "vm_commands.h"

int main(int argc, char** argv) {
  qtx::cli::start_signal_thread();
  CLI::App app{"qtx: talk to a qtx guest agent over its virtio-serial channel"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("qtx ") + QTX_VERSION);
  app.footer(
      "Exit codes: 0 success; 1 the guest could not do it; 2 usage error; 3 no agent (nothing on the socket, no "
      "handshake, connection lost); 4 denied by the guest's policy or unsupported; 5 the command's deadline passed (--timeout). exec exits "
      "with the command's code (128+N when killed by signal N, 124 when the agent's timeout killed it).");

  std::function<int()> run;
  qtx::cli::GlobalOptions global;
  qtx::cli::add_agent_commands(app, global, &run);
  qtx::cli::add_vm_commands(app, global.json, &run);
  qtx::cli::add_exporter_command(app, &run);

  qtx::cli::DecodeOptions decode;
  auto* dec = app.add_subcommand(
      "decode",
      "Decode a captured byte stream of the channel: one JSON line per message and one per run of "
      "dropped bytes ({\"dropped\":N,\"reason\":R,\"offset\":O}). End of input counts as a stall. "
      "Exit 0 when the input was readable.");
  dec->add_option("input", decode.input, "Capture file, or - for standard input")->required();
  dec->add_option("--max-payload", decode.max_payload, "Largest payload accepted (bytes; default 16 MiB)")
      ->check(CLI::Range(1u, 16u * 1024 * 1024));
  dec->add_flag("--stats", decode.stats, "Finish with a {\"stats\":{...}} line");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; every usage error exits 2.
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (dec->parsed()) return qtx::cli::run_decode(decode, stdout, stderr);
  if (run) return run();
  return 2;
}
