// Any text as the agent's configuration file: never a crash; a refused file
// leaves the configuration exactly as it was and says why; an accepted one
// holds every bound the parser promises, and its policy names only request
// kinds the agent has.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "agent_config.h"
#include "dispatcher.h"

namespace {

constexpr std::size_t kMaxInput = 16 * 1024;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "property violated: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > kMaxInput) return 0;
  const std::string text(reinterpret_cast<const char*>(data), size);
  qtx::agent::AgentConfig config;
  config.transport = "unchanged";
  config.max_message = 70000;
  const auto load = qtx::agent::parse_config(text, "fuzz.conf", &config);
  if (!load.status) {
    if (load.status.message().empty()) fail("a refusal without a reason");
    if (config.transport != "unchanged" || config.max_message != 70000) fail("a refused file changed the config");
    return 0;
  }
  if (config.max_message < 64 * 1024 || config.max_message > 16u * 1024 * 1024) fail("max_message out of bounds");
  if (config.telemetry_interval_ms < 100) fail("telemetry interval below 100 ms");
  if (config.write_timeout_ms < 100) fail("write timeout below 100 ms");
  for (const auto& root : config.file_roots) {
    if (root.empty() || root[0] != '/') fail("a relative file root was accepted");
  }
  if (config.freeze_timeout_ms > config.freeze_max_timeout_ms) fail("freeze timeout above its maximum");
  const auto& kinds = qtx::agent::request_kind_names();
  for (const auto* list : {&config.allow, &config.deny}) {
    for (const auto& name : *list) {
      if (name != "*" && std::find(kinds.begin(), kinds.end(), name) == kinds.end())
        fail("an unknown kind was accepted");
    }
  }
  return 0;
}
