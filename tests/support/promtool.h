// Runs Debian's promtool (package prometheus) on text the tests produced.
#pragma once

#include <string>

namespace qtx::testing {

struct ToolRun {
  int status = -1;     // the shell's exit status; 127: promtool is missing
  std::string output;  // stdout and stderr
};

// `promtool check metrics` on `exposition` (Prometheus text format), with
// scratch files in `dir`.
ToolRun promtool_check_metrics(const std::string& dir, const std::string& exposition);

// `promtool ARGS...` run in `dir` (arguments are quoted for the shell).
ToolRun promtool(const std::string& dir, const std::string& args);

}  // namespace qtx::testing
