// `qtx decode FILE|-`: reads a captured byte stream of the channel and prints
// one JSON line per decoded message and one per dropped run of bytes.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>

namespace qtx::cli {

struct DecodeOptions {
  std::string input = "-";        // a path, or "-" for standard input
  std::uint32_t max_payload = 0;  // 0: the default limit
  bool stats = false;             // finish with a {"stats":{...}} line
};

// Returns the process exit code: 0 when the input was readable (whatever it
// contained), 1 when it could not be opened or read (one line on `err`).
int run_decode(const DecodeOptions& options, std::FILE* out, std::FILE* err);

// Registers `decode` on `app`; after a successful parse `*run` is set to it.
void add_decode_command(CLI::App& app, std::function<int()>* run);

}  // namespace qtx::cli
