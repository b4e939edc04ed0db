// The agent's configuration: defaults, the TOML file (/etc/qtx/agent.conf)
// and its validation. Every key is in guest/config/agent.conf; docs/agent.md
// describes them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "qtx/status.h"

namespace qtx::agent {

struct AgentConfig {
  // [agent]
  std::string transport = "virtio:org.quantix.agent.0";
  std::string log_level = "info";
  std::string state_dir = "/var/lib/qtx";  // freeze state survives restarts here

  // [telemetry]
  std::uint32_t telemetry_interval_ms = 5000;
  bool telemetry_per_cpu = false;

  // [policy]
  std::vector<std::string> allow = {"*"};  // request kinds; "*" = every kind
  std::vector<std::string> deny;           // wins over allow
  std::vector<std::string> file_roots;     // empty: file commands may touch any path
  bool file_allow_hard_links = false;      // under file_roots: use files with more than one hard link
  std::uint32_t exec_default_timeout_ms = 300000;
  bool process_kill_init = false;  // process_kill may signal pid 1

  // [limits]
  std::uint32_t max_message = 16u * 1024 * 1024;  // largest frame payload accepted or sent
  std::uint64_t max_exec_output = 64u * 1024 * 1024;
  std::uint32_t max_concurrent_execs = 8;
  std::uint32_t max_open_transfers = 8;
  std::uint32_t write_timeout_ms = 10000;  // a frame that cannot be written in this time ends the session
  std::uint64_t outbox_bytes =
      8u * 1024 * 1024;  // frames queued for the host beyond this: telemetry dropped, streams wait

  // [freeze]
  std::string freeze_hooks_dir = "/etc/qtx/freeze-hook.d";
  std::uint32_t freeze_timeout_ms = 60000;       // automatic thaw when the request names no timeout
  std::uint32_t freeze_max_timeout_ms = 600000;  // a request asking for longer is refused

  // [power] commands run for each action; empty: detected (systemctl where
  // systemd runs, else poweroff/reboot/halt, else the reboot(2) system call)
  std::vector<std::string> poweroff_command;
  std::vector<std::string> reboot_command;
  std::vector<std::string> halt_command;

  // [system] the files the user and hostname commands edit
  std::string passwd_file = "/etc/passwd";
  std::string shadow_file = "/etc/shadow";
  std::string group_file = "/etc/group";
  std::string hostname_file = "/etc/hostname";

  // [qga] the qemu-ga protocol on a port of its own (docs/qemu-ga-compat.md)
  // "false" (the default while the qemu-ga protocol lacks the commands that
  // act on the guest: docs/qemu-ga-compat.md), "auto" (serve when the port
  // exists) or "true".
  std::string qga_enabled = "false";
  std::string qga_transport = "virtio:org.qemu.guest_agent.0";

  // True when `kind` (a Request field name such as "exec") is allowed.
  bool allows(const std::string& kind) const;
};

// A file is refused (InvalidArgument, "FILE:LINE:COL: what") for a syntax
// error, a value of the wrong type or out of range, an unknown or misplaced
// key, an unknown section (names are case-sensitive) or an unknown request
// kind in policy.allow / policy.deny; a refused file changes nothing.
struct ConfigLoad {
  Status status;
  std::vector<std::string> warnings;  // accepted settings that have no effect, with their place
};

// Reads `path` over the defaults in *config. A missing file is an error only
// when `required` (the path was given explicitly).
ConfigLoad load_config(const std::string& path, bool required, AgentConfig* config);

// True for the log levels agent.log_level and --log-level accept: trace,
// debug, info, warn, error, off.
bool is_known_log_level(const std::string& level);

// Parses TOML text (for tests and the fuzzer); `origin` names it in messages.
ConfigLoad parse_config(const std::string& text, const std::string& origin, AgentConfig* config);

}  // namespace qtx::agent
