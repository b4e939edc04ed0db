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

}  // namespace

std::string find_virtio_port(const std::string& name, const PortRoots& roots) {
  if (name.empty() || name.find('/') != std::string::npos) return "";
  const std::string link = roots.dev + "/virtio-ports/" + name;
  if (exists(link)) return link;

  const std::string cls = roots.sys + "/class/virtio-ports";
  DIR* d = ::opendir(cls.c_str());
  if (d == nullptr) return "";
  std::vector<std::string> ports;
  while (dirent* e = ::readdir(d)) {
    std::string entry = e->d_name;
    if (entry.rfind("vport", 0) == 0) ports.push_back(entry);
  }
  ::closedir(d);
  std::sort(ports.begin(), ports.end());
  for (const auto& port : ports) {
    if (read_first_line(cls + "/" + port + "/name") != name) continue;
    const std::string node = roots.dev + "/" + port;
    if (exists(node)) return node;
  }
  return "";
}

}  // namespace qtx::agent
