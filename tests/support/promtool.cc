#include "support/promtool.h"

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace qtx::testing {
namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

ToolRun run_shell(const std::string& dir, const std::string& command) {
  const std::string out = dir + "/promtool.out";
  const std::string line = "cd '" + dir + "' && " + command + " >'" + out + "' 2>&1";
  const int rc = std::system(line.c_str());
  ToolRun run;
  run.status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  run.output = slurp(out);
  std::remove(out.c_str());
  return run;
}

}  // namespace

ToolRun promtool_check_metrics(const std::string& dir, const std::string& exposition) {
  const std::string in = dir + "/exposition.txt";
  std::ofstream(in, std::ios::binary) << exposition;
  ToolRun run = run_shell(dir, std::string(QTX_PROMTOOL) + " check metrics < '" + in + "'");
  std::remove(in.c_str());
  return run;
}

ToolRun promtool(const std::string& dir, const std::string& args) {
  return run_shell(dir, std::string(QTX_PROMTOOL) + " " + args);
}

}  // namespace qtx::testing
