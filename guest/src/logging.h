// Logging to stderr with spdlog: timestamps on a terminal, "<N>" syslog
// priority prefixes (and no timestamps) under systemd, which journald reads.
#pragma once

#include <string>

namespace qtx::agent {

// Installs the default logger. `level`: trace, debug, info, warn, error, off.
void setup_logging(const std::string& level);
void set_log_level(const std::string& level);

}  // namespace qtx::agent
