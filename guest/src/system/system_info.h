// Facts about the guest OS: /etc/os-release, uname, hostname.
#pragma once

#include <string>

#include "qtx/agent/v1/session.pb.h"

namespace qtx::agent {

// Parses os-release text (KEY=value lines, values optionally quoted).
::qtx::agent::v1::OsInfo parse_os_release(const std::string& text);

// /etc/os-release, falling back to /usr/lib/os-release.
::qtx::agent::v1::OsInfo read_os_info();

struct KernelInfo {
  std::string release, version, arch, hostname;
};
KernelInfo read_kernel_info();

}  // namespace qtx::agent
