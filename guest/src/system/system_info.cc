#include "system_info.h"

#include <sys/utsname.h>

#include <sstream>

#include "telemetry/collector.h"

namespace qtx::agent {

v1::OsInfo parse_os_release(const std::string& text) {
  v1::OsInfo os;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    const auto eq = line.find('=');
    if (eq == std::string::npos || line[0] == '#') continue;
    const std::string key = line.substr(0, eq);
    std::string value = line.substr(eq + 1);
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') && value.back() == value.front()) {
      value = value.substr(1, value.size() - 2);
    }
    std::string unescaped;
    for (std::size_t i = 0; i < value.size(); ++i) {
      if (value[i] == '\\' && i + 1 < value.size()) ++i;
      unescaped += value[i];
    }
    if (key == "ID") os.set_id(unescaped);
    else if (key == "NAME") os.set_name(unescaped);
    else if (key == "VERSION_ID") os.set_version_id(unescaped);
    else if (key == "PRETTY_NAME") os.set_pretty_name(unescaped);
  }
  return os;
}

v1::OsInfo read_os_info() {
  std::string text = read_small_file("/etc/os-release");
  if (text.empty()) text = read_small_file("/usr/lib/os-release");
  return parse_os_release(text);
}

KernelInfo read_kernel_info() {
  KernelInfo k;
  struct utsname u {};
  if (::uname(&u) == 0) {
    k.release = u.release;
    k.version = u.version;
    k.arch = u.machine;
    k.hostname = u.nodename;
  }
  return k;
}

}  // namespace qtx::agent
