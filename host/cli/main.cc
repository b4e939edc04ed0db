// qtx: the command-line tool over the qtx host library.
#include <CLI/CLI.hpp>

#include <cstdio>

#include "decode_command.h"

int main(int argc, char** argv) {
  CLI::App app{"qtx: talk to a qtx guest agent over its virtio-serial channel"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("qtx ") + QTX_VERSION);

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
  return 2;
}
