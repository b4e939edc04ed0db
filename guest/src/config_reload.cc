#include "config_reload.h"

#include <spdlog/spdlog.h>

#include <utility>

#include "agent_config.h"
#include "logging.h"

namespace qtx::agent {

void reload_config(AgentContext& agent, const ConfigSource& source) {
  AgentConfig fresh;
  ConfigLoad reload = load_config(source.path, source.path_given, &fresh);
  if (!reload.status) {
    spdlog::error("configuration not reloaded: {}", reload.status.message());
    return;
  }
  for (const auto& w : reload.warnings) spdlog::warn("{}", w);
  if (!source.transport.empty()) fresh.transport = source.transport;
  if (!source.log_level.empty()) fresh.log_level = source.log_level;
  if (fresh.transport != agent.config.transport) {
    spdlog::warn("agent.transport changed to {}: takes effect at the next start", fresh.transport);
    fresh.transport = agent.config.transport;
  }
  if (fresh.telemetry_interval_ms != agent.config.telemetry_interval_ms) {
    agent.telemetry_interval_ms = fresh.telemetry_interval_ms;
  }
  set_log_level(fresh.log_level);
  agent.config = std::move(fresh);
  spdlog::info("configuration reloaded from {}", source.path);
}

}  // namespace qtx::agent
