// Logging to stderr with spdlog: timestamps on a terminal, "<N>" syslog
// priority prefixes (and no timestamps) under systemd, which journald reads.
#pragma once

#include <string>

namespace qtx::agent {

// Installs the default logger. `level`: trace, debug, info, warn, error, off.
void setup_logging(const std::string& level);
void set_log_level(const std::string& level);

// While held (filesystems frozen), log lines are kept in memory (at most
// 10,000; beyond that they are counted) and written when released, so the
// agent never blocks writing to a journal on a frozen filesystem.
void set_log_hold(bool hold);

}  // namespace qtx::agent
