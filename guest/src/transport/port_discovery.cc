#include "port_discovery.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <vector>

namespace qtx::agent {
namespace {

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

std::string read_first_line(const std::string& path) {
  std::ifstream f(path);
  std::string line;
  std::getline(f, line);
  return line;
}

// The vportNpM entries of /sys/class/virtio-ports, sorted.
std::vector<std::string> sysfs_ports(const std::string& cls) {
  std::vector<std::string> ports;
  DIR* d = ::opendir(cls.c_str());
  if (d == nullptr) return ports;
  while (dirent* e = ::readdir(d)) {
    std::string entry = e->d_name;
    if (entry.rfind("vport", 0) == 0) ports.push_back(entry);
  }
  ::closedir(d);
  std::sort(ports.begin(), ports.end());
  return ports;
}

}  // namespace

std::string find_virtio_port(const std::string& name, const PortRoots& roots) {
  if (name.empty() || name.find('/') != std::string::npos) return "";
  const std::string link = roots.dev + "/virtio-ports/" + name;
  if (exists(link)) return link;

  const std::string cls = roots.sys + "/class/virtio-ports";
  for (const auto& port : sysfs_ports(cls)) {
    if (read_first_line(cls + "/" + port + "/name") != name) continue;
    const std::string node = roots.dev + "/" + port;
    if (exists(node)) return node;
  }
  return "";
}

bool virtio_port_name_pending(const PortRoots& roots) {
  const std::string cls = roots.sys + "/class/virtio-ports";
  for (const auto& port : sysfs_ports(cls)) {
    if (!exists(cls + "/" + port + "/name")) return true;
  }
  return false;
}

}  // namespace qtx::agent
