// `qtx completion bash|zsh`: prints a shell completion script generated
// from the command line's own definition (every subcommand and option
// registered on the App), so the scripts cannot fall behind the commands.
// The build runs it to make the scripts the package installs.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdio>
#include <functional>
#include <string>

namespace qtx::cli {

// Registers the hidden `completion` subcommand on `app`. Call it last: the
// script covers what is registered when it runs, itself excepted.
void add_completion_command(CLI::App& app, std::function<int()>* run);

// The script for `shell` ("bash" or "zsh") completing `app`'s commands.
std::string completion_script(const CLI::App& app, const std::string& shell);

}  // namespace qtx::cli
