#include "proc_stats.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace qtx::bench {
namespace {

long field_of(const std::string& path, const char* field) {
  std::ifstream f(path);
  std::string line;
  const std::string key = std::string(field) + ":";
  while (std::getline(f, line)) {
    if (line.rfind(key, 0) == 0) return std::strtol(line.c_str() + key.size(), nullptr, 10);
  }
  return -1;
}

}  // namespace

long status_kib(pid_t pid, const char* field) { return field_of("/proc/" + std::to_string(pid) + "/status", field); }

long context_switches(pid_t pid) {
  const std::string dir = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return -1;
  long total = 0;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    const std::string status = dir + "/" + e->d_name + "/status";
    total += std::max(0L, field_of(status, "voluntary_ctxt_switches")) +
             std::max(0L, field_of(status, "nonvoluntary_ctxt_switches"));
  }
  ::closedir(d);
  return total;
}

double cpu_seconds(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const auto close = all.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream rest(all.substr(close + 2));
  std::string skip;
  for (int i = 0; i < 11; ++i) rest >> skip;  // fields 3..13
  long utime = 0, stime = 0;
  rest >> utime >> stime;
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

long file_size(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<long>(st.st_size) : -1;
}

long stripped_size(const std::string& binary) {
  char tmpl[] = "/tmp/qtx-strip.XXXXXX";
  const int fd = ::mkstemp(tmpl);
  if (fd < 0) return file_size(binary);
  ::close(fd);
  const bool ok = std::system(("strip -o '" + std::string(tmpl) + "' '" + binary + "' 2>/dev/null").c_str()) == 0;
  const long size = ok ? file_size(tmpl) : file_size(binary);
  ::unlink(tmpl);
  return size;
}

long shared_libraries_size(const std::string& binary) {
  FILE* p = ::popen(("ldd '" + binary + "' 2>/dev/null").c_str(), "r");
  if (p == nullptr) return 0;
  long total = 0;
  char line[1024];
  while (std::fgets(line, sizeof(line), p) != nullptr) {
    const char* arrow = std::strstr(line, "=> /");
    if (arrow == nullptr) continue;
    std::string path(arrow + 3);
    path = path.substr(0, path.find(' '));
    char resolved[4096];
    if (::realpath(path.c_str(), resolved) != nullptr) total += std::max(0L, file_size(resolved));
  }
  ::pclose(p);
  return total;
}

}  // namespace qtx::bench
