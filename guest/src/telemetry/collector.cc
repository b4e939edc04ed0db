#include "collector.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <utmp.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <sstream>

namespace qtx::agent {

std::string read_small_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  std::string out;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
    if (out.size() > (1 << 20)) break;  // /proc files we read are far smaller
  }
  ::close(fd);
  return out;
}

namespace {

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

std::uint64_t read_u64(const std::string& path) { return std::strtoull(read_small_file(path).c_str(), nullptr, 10); }

// Mount paths in /proc/mounts escape space, tab, newline and backslash as \ooo.
std::string unescape_mount(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      const std::string oct = s.substr(i + 1, 3);
      if (oct.size() == 3 && std::all_of(oct.begin(), oct.end(), [](char c) { return c >= '0' && c <= '7'; })) {
        out += static_cast<char>(std::strtol(oct.c_str(), nullptr, 8));
        i += 3;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

}  // namespace

TelemetryCollector::TelemetryCollector(Roots roots) : roots_(std::move(roots)) {
  parse_proc_stat(read_small_file(roots_.proc + "/stat"), &prev_total_, &prev_cpus_);
}

bool TelemetryCollector::parse_proc_stat(const std::string& text, CpuTimes* total, std::vector<CpuTimes>* per_cpu) {
  std::istringstream in(text);
  std::string line;
  bool found = false;
  per_cpu->clear();
  while (std::getline(in, line)) {
    if (line.rfind("cpu", 0) != 0) continue;
    std::istringstream ls(line);
    std::string name;
    CpuTimes t;
    ls >> name >> t.user >> t.nice >> t.system >> t.idle >> t.iowait >> t.irq >> t.softirq >> t.steal;
    if (name == "cpu") {
      *total = t;
      found = true;
    } else {
      per_cpu->push_back(t);
    }
  }
  return found;
}

void TelemetryCollector::cpu_usage(const CpuTimes& before, const CpuTimes& after, int cpu, v1::CpuUsage* out) {
  auto d = [](std::uint64_t a, std::uint64_t b) { return b >= a ? static_cast<double>(b - a) : 0.0; };
  const double total = d(before.total(), after.total());
  out->set_cpu(cpu);
  if (total <= 0) {
    out->set_idle_pct(100);
    return;
  }
  const double user = d(before.user + before.nice, after.user + after.nice);
  const double system = d(before.system + before.irq + before.softirq, after.system + after.irq + after.softirq);
  const double idle = d(before.idle, after.idle);
  const double iowait = d(before.iowait, after.iowait);
  const double steal = d(before.steal, after.steal);
  out->set_user_pct(100 * user / total);
  out->set_system_pct(100 * system / total);
  out->set_idle_pct(100 * idle / total);
  out->set_iowait_pct(100 * iowait / total);
  out->set_steal_pct(100 * steal / total);
  out->set_busy_pct(100 - 100 * (idle + iowait) / total);
}

void TelemetryCollector::parse_meminfo(const std::string& text, v1::Memory* out) {
  std::istringstream in(text);
  std::string key;
  std::uint64_t kb = 0;
  std::string unit;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    if (!(ls >> key >> kb)) continue;
    const std::uint64_t bytes = kb * 1024;
    if (key == "MemTotal:") out->set_total_bytes(bytes);
    else if (key == "MemAvailable:") out->set_available_bytes(bytes);
    else if (key == "MemFree:") out->set_free_bytes(bytes);
    else if (key == "Buffers:") out->set_buffers_bytes(bytes);
    else if (key == "Cached:") out->set_cached_bytes(bytes);
    else if (key == "SwapTotal:") out->set_swap_total_bytes(bytes);
    else if (key == "SwapFree:") out->set_swap_free_bytes(bytes);
  }
}

bool TelemetryCollector::is_network_filesystem(const std::string& type) {
  static const std::set<std::string> k = {"nfs",       "nfs4", "cifs",  "smb3",       "smbfs", "ceph",
                                          "glusterfs", "9p",   "sshfs", "fuse.sshfs", "afs",   "lustre"};
  return k.count(type) != 0;
}

bool TelemetryCollector::is_real_filesystem(const std::string& type) {
  static const std::set<std::string> pseudo = {"proc",     "sysfs",      "devtmpfs",    "devpts",      "tmpfs",
                                               "ramfs",    "cgroup",     "cgroup2",     "securityfs",  "debugfs",
                                               "tracefs",  "pstore",     "bpf",         "mqueue",      "hugetlbfs",
                                               "configfs", "fusectl",    "autofs",      "binfmt_misc", "rpc_pipefs",
                                               "nsfs",     "efivarfs",   "squashfs",    "overlay",     "selinuxfs",
                                               "rootfs",   "fuse.lxcfs", "fuse.portal", "iso9660",     "udf",
                                               "nfsd",     "devfs",      "none"};
  return pseudo.count(type) == 0;
}

void TelemetryCollector::collect_filesystems(v1::TelemetrySample* s) {
  std::istringstream in(read_small_file(roots_.proc + "/mounts"));
  std::string line;
  std::set<std::string> seen_devices;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string dev, mnt, type, opts;
    if (!(ls >> dev >> mnt >> type >> opts)) continue;
    if (!is_real_filesystem(type)) continue;
    if (!seen_devices.insert(dev).second) continue;  // bind mounts and subvolumes: once
    auto* fs = s->add_filesystems();
    fs->set_device(unescape_mount(dev));
    fs->set_mountpoint(unescape_mount(mnt));
    fs->set_type(type);
    fs->set_read_only(opts == "ro" || opts.rfind("ro,", 0) == 0);
    if (is_network_filesystem(type)) continue;  // never statvfs a network mount
    struct statvfs v {};
    if (::statvfs(fs->mountpoint().c_str(), &v) != 0) continue;
    const std::uint64_t f = v.f_frsize ? v.f_frsize : v.f_bsize;
    fs->set_size_bytes(v.f_blocks * f);
    fs->set_used_bytes((v.f_blocks - v.f_bfree) * f);
    fs->set_free_bytes(v.f_bavail * f);
    fs->set_inodes_total(v.f_files);
    fs->set_inodes_free(v.f_ffree);
  }
}

void TelemetryCollector::collect_disks(v1::TelemetrySample* s) {
  // Whole disks: the names in /sys/block, without loop and ram devices.
  std::set<std::string> disks;
  if (DIR* d = ::opendir((roots_.sys + "/block").c_str())) {
    while (dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n[0] == '.' || n.rfind("loop", 0) == 0 || n.rfind("ram", 0) == 0) continue;
      disks.insert(n);
    }
    ::closedir(d);
  }
  std::istringstream in(read_small_file(roots_.proc + "/diskstats"));
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    unsigned major = 0, minor = 0;
    std::string name;
    std::uint64_t rd = 0, rd_merged = 0, rd_sectors = 0, rd_ms = 0, wr = 0, wr_merged = 0, wr_sectors = 0, wr_ms = 0,
                  in_flight = 0, io_ms = 0;
    if (!(ls >> major >> minor >> name >> rd >> rd_merged >> rd_sectors >> rd_ms >> wr >> wr_merged >> wr_sectors >>
          wr_ms >> in_flight >> io_ms)) {
      continue;
    }
    if (!disks.count(name)) continue;
    auto* disk = s->add_disks();
    disk->set_name(name);
    disk->set_reads(rd);
    disk->set_read_bytes(rd_sectors * 512);
    disk->set_writes(wr);
    disk->set_write_bytes(wr_sectors * 512);
    disk->set_io_ms(io_ms);
  }
}

void TelemetryCollector::collect_users(v1::TelemetrySample* s) {
  int fd = ::open(roots_.utmp.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  struct utmp u {};
  while (::read(fd, &u, sizeof(u)) == static_cast<ssize_t>(sizeof(u))) {
    if (u.ut_type != USER_PROCESS) continue;
    auto* user = s->add_users();
    user->set_name(std::string(u.ut_user, strnlen(u.ut_user, sizeof(u.ut_user))));
    user->set_tty(std::string(u.ut_line, strnlen(u.ut_line, sizeof(u.ut_line))));
    user->set_host(std::string(u.ut_host, strnlen(u.ut_host, sizeof(u.ut_host))));
    user->set_login_unix_time(u.ut_tv.tv_sec);
  }
  ::close(fd);
}

bool TelemetryCollector::collect_unless(const std::atomic<bool>& cancelled, bool per_cpu, v1::TelemetrySample* out) {
  std::lock_guard<std::mutex> lock(mu_);
  if (cancelled.load()) return false;
  *out = collect_locked(per_cpu);
  return true;
}

v1::TelemetrySample TelemetryCollector::collect(bool per_cpu) {
  std::lock_guard<std::mutex> lock(mu_);
  return collect_locked(per_cpu);
}

v1::TelemetrySample TelemetryCollector::collect_locked(bool per_cpu) {
  v1::TelemetrySample s;
  s.set_seq(++seq_);
  s.set_unix_time_ms(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
  s.set_uptime_ms(
      static_cast<std::uint64_t>(std::strtod(read_small_file(roots_.proc + "/uptime").c_str(), nullptr) * 1000));

  CpuTimes total;
  std::vector<CpuTimes> cpus;
  if (parse_proc_stat(read_small_file(roots_.proc + "/stat"), &total, &cpus)) {
    cpu_usage(prev_total_, total, -1, s.mutable_cpu());
    if (per_cpu) {
      for (std::size_t i = 0; i < cpus.size(); ++i) {
        cpu_usage(i < prev_cpus_.size() ? prev_cpus_[i] : CpuTimes(), cpus[i], static_cast<int>(i), s.add_per_cpu());
      }
    }
    prev_total_ = total;
    prev_cpus_ = std::move(cpus);
  }
  parse_meminfo(read_small_file(roots_.proc + "/meminfo"), s.mutable_memory());
  collect_filesystems(&s);
  collect_disks(&s);
  collect_interfaces(roots_.sys, s.mutable_interfaces());

  std::istringstream load(read_small_file(roots_.proc + "/loadavg"));
  double one = 0, five = 0, fifteen = 0;
  load >> one >> five >> fifteen;
  s.mutable_load()->set_one(one);
  s.mutable_load()->set_five(five);
  s.mutable_load()->set_fifteen(fifteen);

  std::uint32_t procs = 0;
  if (DIR* d = ::opendir(roots_.proc.c_str())) {
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] >= '1' && e->d_name[0] <= '9') ++procs;
    }
    ::closedir(d);
  }
  s.set_process_count(procs);
  collect_users(&s);
  return s;
}

void collect_interfaces(const std::string& sys_root, google::protobuf::RepeatedPtrField<v1::NetworkInterface>* out) {
  std::map<std::string, v1::NetworkInterface> ifs;
  const std::string net = sys_root + "/class/net";
  if (DIR* d = ::opendir(net.c_str())) {
    while (dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n[0] == '.') continue;
      auto& i = ifs[n];
      const std::string base = net + "/" + n;
      i.set_name(n);
      i.set_mac(trim(read_small_file(base + "/address")));
      i.set_mtu(static_cast<std::uint32_t>(read_u64(base + "/mtu")));
      i.set_oper_state(trim(read_small_file(base + "/operstate")));
      const std::string st = base + "/statistics/";
      i.set_rx_bytes(read_u64(st + "rx_bytes"));
      i.set_rx_packets(read_u64(st + "rx_packets"));
      i.set_rx_errors(read_u64(st + "rx_errors"));
      i.set_rx_dropped(read_u64(st + "rx_dropped"));
      i.set_tx_bytes(read_u64(st + "tx_bytes"));
      i.set_tx_packets(read_u64(st + "tx_packets"));
      i.set_tx_errors(read_u64(st + "tx_errors"));
      i.set_tx_dropped(read_u64(st + "tx_dropped"));
    }
    ::closedir(d);
  }
  ifaddrs* addrs = nullptr;
  if (::getifaddrs(&addrs) == 0) {
    for (ifaddrs* a = addrs; a != nullptr; a = a->ifa_next) {
      if (a->ifa_addr == nullptr || a->ifa_name == nullptr) continue;
      auto it = ifs.find(a->ifa_name);
      if (it == ifs.end()) continue;
      char buf[INET6_ADDRSTRLEN] = {};
      int prefix = 0;
      if (a->ifa_addr->sa_family == AF_INET) {
        auto* sin = reinterpret_cast<sockaddr_in*>(a->ifa_addr);
        ::inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf));
        if (a->ifa_netmask)
          prefix = __builtin_popcount(reinterpret_cast<sockaddr_in*>(a->ifa_netmask)->sin_addr.s_addr);
        it->second.add_ipv4(std::string(buf) + "/" + std::to_string(prefix));
      } else if (a->ifa_addr->sa_family == AF_INET6) {
        auto* sin6 = reinterpret_cast<sockaddr_in6*>(a->ifa_addr);
        ::inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof(buf));
        if (a->ifa_netmask) {
          const auto* m = reinterpret_cast<sockaddr_in6*>(a->ifa_netmask)->sin6_addr.s6_addr;
          for (int b = 0; b < 16; ++b) prefix += __builtin_popcount(m[b]);
        }
        it->second.add_ipv6(std::string(buf) + "/" + std::to_string(prefix));
      }
    }
    ::freeifaddrs(addrs);
  }
  for (auto& [name, i] : ifs) *out->Add() = std::move(i);
}

}  // namespace qtx::agent
