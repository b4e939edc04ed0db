#include "system_info.h"

#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <sstream>
#include <string>

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

namespace {

bool is_zone_name(const std::string& s) {
  if (s.empty() || s.size() > 255 || s.front() == '/') return false;
  for (char c : s) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '/' ||
                    c == '_' || c == '+' || c == '-' || c == '.';
    if (!ok) return false;
  }
  return s.find("..") == std::string::npos;
}

}  // namespace

std::string timezone_from_link(const std::string& target) {
  static const std::string kDir = "zoneinfo/";
  std::size_t at = std::string::npos;  // the last "zoneinfo/" that is a whole component
  for (std::size_t pos = target.find(kDir); pos != std::string::npos; pos = target.find(kDir, pos + 1)) {
    if (pos == 0 || target[pos - 1] == '/') at = pos;
  }
  if (at == std::string::npos) return "";
  std::string name = target.substr(at + kDir.size());
  for (const char* prefix : {"posix/", "right/"}) {
    if (name.rfind(prefix, 0) == 0) name.erase(0, std::char_traits<char>::length(prefix));
  }
  return is_zone_name(name) ? name : "";
}

std::string timezone_from_file(const std::string& text) {
  std::string line = text.substr(0, text.find('\n'));
  const auto first = line.find_first_not_of(" \t\r");
  if (first == std::string::npos) return "";
  const auto last = line.find_last_not_of(" \t\r");
  line = line.substr(first, last - first + 1);
  return is_zone_name(line) ? line : "";
}

std::string read_timezone(const std::string& root) {
  const std::string localtime = root + "/etc/localtime";
  char target[4096];
  const ssize_t n = ::readlink(localtime.c_str(), target, sizeof(target) - 1);
  if (n > 0) {
    std::string name = timezone_from_link(std::string(target, static_cast<std::size_t>(n)));
    if (!name.empty()) return name;
  }
  std::string name = timezone_from_file(read_small_file(root + "/etc/timezone"));
  if (!name.empty()) return name;
  struct stat st {};
  if (::lstat(localtime.c_str(), &st) != 0 && errno == ENOENT) return "UTC";
  return "";
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
