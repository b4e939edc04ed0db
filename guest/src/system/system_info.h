// Facts about the guest OS: /etc/os-release, uname, hostname.
#pragma once

#include <string>

#include "qtx/agent/v1/session.pb.h"

namespace qtx::agent {

// Parses os-release text (KEY=value lines, values optionally quoted).
::qtx::agent::v1::OsInfo parse_os_release(const std::string& text);

// /etc/os-release, falling back to /usr/lib/os-release.
::qtx::agent::v1::OsInfo read_os_info();

// The guest's time zone, as the system sets it (the agent's own TZ is not
// looked at), read under `root` ("" for the real one):
//  1. /etc/localtime a symlink into a zoneinfo directory: the name after
//     "zoneinfo/" ("../usr/share/zoneinfo/Europe/Paris" -> "Europe/Paris"),
//     without a "posix/" or "right/" prefix;
//  2. else the first line of /etc/timezone (Debian's), when it is a name;
//  3. else "UTC" when /etc/localtime does not exist (glibc's default);
//  4. else "" (a zone file copied to /etc/localtime, with no name).
std::string read_timezone(const std::string& root = "");

// Step 1 alone: the zone name in a symlink target, or "" if it names none.
std::string timezone_from_link(const std::string& target);
// Step 2 alone: the first line of /etc/timezone, trimmed, if it is a name
// (letters, digits and "/_+-."), else "".
std::string timezone_from_file(const std::string& text);

struct KernelInfo {
  std::string release, version, arch, hostname;
};
KernelInfo read_kernel_info();

}  // namespace qtx::agent
