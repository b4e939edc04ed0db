// Agent pieces that need no process: configuration, port discovery, the
// /proc and /etc parsers, account files.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <asio/post.hpp>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <future>
#include <memory>
#include <sstream>

#include "agent_config.h"
#include "agent_context.h"
#include "dispatcher.h"
#include "freeze/freeze_manager.h"
#include "system/accounts.h"
#include "system/system_info.h"
#include "telemetry/collector.h"
#include "transport/port_discovery.h"
#include "transport/transport.h"
#include "transport/virtio_transport.h"

namespace qtx::agent {
namespace {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/qtx-unit.XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() { (void)std::system(("rm -rf '" + path_ + "'").c_str()); }
  const std::string& path() const { return path_; }
  void write(const std::string& rel, const std::string& text) const {
    const std::string full = path_ + "/" + rel;
    (void)std::system(("mkdir -p \"$(dirname '" + full + "')\"").c_str());
    std::ofstream(full) << text;
  }

 private:
  std::string path_;
};

TEST(AgentConfig, DefaultsAreSane) {
  AgentConfig c;
  EXPECT_EQ(c.transport, "virtio:org.quantix.agent.0");
  EXPECT_EQ(c.telemetry_interval_ms, 5000u);
  EXPECT_EQ(c.max_message, 16u * 1024 * 1024);
  EXPECT_TRUE(c.allows("exec"));
}

TEST(AgentConfig, ParsesEverySection) {
  AgentConfig c;
  auto r = parse_config(R"(
[agent]
transport = "unix-listen:/run/qtx.sock"
log_level = "debug"

[telemetry]
interval_ms = 1000
per_cpu = true

[policy]
allow = ["ping", "info", "exec"]
deny = ["exec"]
file_roots = ["/srv", "/home"]
process_kill_init = true

[limits]
max_concurrent_execs = 2

[freeze]
timeout_ms = 30000
max_timeout_ms = 120000
)",
                        "test.conf", &c);
  ASSERT_TRUE(r.status.ok()) << r.status.to_string();
  EXPECT_EQ(c.transport, "unix-listen:/run/qtx.sock");
  EXPECT_EQ(c.log_level, "debug");
  EXPECT_EQ(c.telemetry_interval_ms, 1000u);
  EXPECT_TRUE(c.telemetry_per_cpu);
  EXPECT_TRUE(c.allows("info"));
  EXPECT_FALSE(c.allows("exec"));        // deny wins
  EXPECT_FALSE(c.allows("file_write"));  // not in allow
  EXPECT_EQ(c.file_roots, (std::vector<std::string>{"/srv", "/home"}));
  EXPECT_TRUE(c.process_kill_init);
  EXPECT_EQ(c.max_concurrent_execs, 2u);
  EXPECT_EQ(c.freeze_timeout_ms, 30000u);
  EXPECT_EQ(c.freeze_max_timeout_ms, 120000u);
  EXPECT_TRUE(r.warnings.empty());
}

// Typos and misplacements in the file: each refused with its place, so the
// agent never runs with a policy nobody wrote.
TEST(AgentConfig, UnknownKindsKeysAndSectionsAreRefusedWithTheirPlace) {
  struct Case {
    const char* text;
    const char* message;
  } cases[] = {
      {"[policy]\ndeny = [\"file-write\", \"set-password\", \"ssh-key\", \"Exec\"]\n",
       "t.conf:2:9: policy.deny names an unknown request kind \"file-write\" (did you mean file_write?)"},
      {"[policy]\ndeny = [\"exec\", \"Exec\"]\n",
       "t.conf:2:17: policy.deny names an unknown request kind \"Exec\" (did you mean exec?)"},
      {"[policy]\ndeny = [\"ssh-key\"]\n",
       "t.conf:2:9: policy.deny names an unknown request kind \"ssh-key\" (did you mean ssh_keys?)"},
      {"[policy]\nallow = [\"ping\", \"everything\"]\n",
       "t.conf:2:18: policy.allow names an unknown request kind \"everything\""},
      {"[policy]\ndeny = [\"exec\\n\"]\n",
       "t.conf:2:9: policy.deny names an unknown request kind \"exec\\x0a\" (did you mean exec?)"},
      {"[limits]\nfile_roots = [\"/srv\"]\n",
       "t.conf:2:1: limits.file_roots is misplaced: file_roots belongs in [policy]"},
      {"[policy]\ntimeout_ms = 1000\n", "t.conf:2:1: policy.timeout_ms is misplaced: timeout_ms belongs in [freeze]"},
      {"[Policy]\ndeny = [\"exec\"]\n", "t.conf:1:1: unknown section [Policy] (did you mean [policy]?)"},
      {"[polcy]\ndeny = [\"exec\"]\n", "t.conf:1:1: unknown section [polcy] (did you mean [policy]?)"},
      {"[extra]\nx = 1\n", "t.conf:1:1: unknown section [extra]"},
      {"deny = [\"exec\"]\n[policy]\n", "t.conf:1:1: deny is misplaced: it belongs in [policy]"},
      {"colour = 1\n", "t.conf:1:1: unknown key colour outside any section"},
      {"[agent]\ncolour = \"blue\"\n", "t.conf:2:1: unknown key agent.colour"},
      {"[agent]\nlog-level = \"info\"\n", "t.conf:2:1: unknown key agent.log-level (did you mean log_level?)"},
      {"[policy.extra]\nx = 1\n", "t.conf:1:9: unknown key policy.extra"},
      // The first problem in the file is the one reported.
      {"[limits]\nmax_mesage = 65536\n[agent]\ncolour = 1\n",
       "t.conf:2:1: unknown key limits.max_mesage (did you mean max_message?)"},
      {"[freeze]\ntimeout_ms = 700000\n", "t.conf: freeze.timeout_ms (700000) is above freeze.max_timeout_ms (600000)"},
  };
  for (const auto& k : cases) {
    AgentConfig c;
    c.transport = "unchanged";
    auto r = parse_config(k.text, "t.conf", &c);
    ASSERT_FALSE(r.status.ok()) << k.text;
    EXPECT_EQ(r.status.code(), Status::Code::kInvalidArgument);
    EXPECT_EQ(r.status.message(), k.message) << k.text;
    EXPECT_EQ(c.transport, "unchanged");
    EXPECT_TRUE(c.deny.empty());
  }
}

// Denying what cannot be denied is accepted with a warning, since it changes
// nothing; every real kind name and "*" are accepted.
TEST(AgentConfig, EveryRequestKindIsANameThePolicyAccepts) {
  std::string all;
  for (const auto name : request_kind_names()) all += "\"" + std::string(name) + "\", ";
  AgentConfig c;
  auto r = parse_config("[policy]\nallow = [" + all + "\"*\"]\ndeny = [" + all + "]\n", "t.conf", &c);
  ASSERT_TRUE(r.status.ok()) << r.status.to_string();
  EXPECT_EQ(r.warnings, (std::vector<std::string>{
                            "t.conf: policy.deny names hello, which is always allowed (the session needs it)",
                            "t.conf: policy.deny names ping, which is always allowed (the session needs it)"}));
  std::vector<std::string> capability_names;
  for (const auto& cap : capabilities(c)) capability_names.push_back(cap.name());
  // The native requests come first; the qemu-ga-only kinds after them.
  const std::vector<std::string> all_names(request_kind_names().begin(), request_kind_names().end());
  ASSERT_EQ(all_names.size(), capability_names.size() + 4);
  EXPECT_EQ(capability_names, std::vector<std::string>(all_names.begin(), all_names.end() - 4));
  EXPECT_EQ(std::vector<std::string>(all_names.end() - 4, all_names.end()),
            (std::vector<std::string>{"fstrim", "suspend", "vcpus_set", "memory_blocks_set"}));
  // The shipped file's comment ("# Kinds: hello ping ... memory_blocks_set.") lists them all.
  std::ifstream f(QTX_SOURCE_DIR "/guest/config/agent.conf");
  const std::string shipped((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const auto from = shipped.find("# Kinds:");
  ASSERT_NE(from, std::string::npos);
  std::istringstream words(shipped.substr(from + 8, shipped.find('.', from) - from - 8));
  std::vector<std::string> listed;
  for (std::string w; words >> w;) {
    if (w != "#") listed.push_back(w);
  }
  EXPECT_EQ(listed, all_names);
}

TEST(AgentConfig, ErrorsNameTheFileLineAndKeyAndLeaveTheConfigAlone) {
  struct Case {
    const char* text;
    const char* message;
  } cases[] = {
      {"[agent\n", "t.conf:1:7: "},
      {"[telemetry]\ninterval_ms = \"fast\"\n", "t.conf:2:15: telemetry.interval_ms must be an integer"},
      {"[telemetry]\ninterval_ms = 5\n", "t.conf:2:15: telemetry.interval_ms must be between 100 and 86400000"},
      {"[limits]\nmax_message = 3.3e77\n", "t.conf:2:15: limits.max_message must be an integer"},
      {"[limits]\nmax_message = 65536.0\n", "t.conf:2:15: limits.max_message must be an integer"},
      {"[policy]\ndeny = \"exec\"\n", "t.conf:2:8: policy.deny must be an array of strings"},
      {"[policy]\nfile_roots = [\"relative\"]\n",
       "t.conf: policy.file_roots entries must be absolute paths: \"relative\""},
      {"[agent]\nlog_level = \"loud\"\n",
       "t.conf: agent.log_level must be one of trace, debug, info, warn, error, off"},
      {"agent = 3\n", "t.conf:1:9: agent must be a [section]"},
      {"[policy]\nfile_root\xd0\x8a = [\"/\"]\n", "t.conf:2:10: only ASCII is accepted in the configuration"},
      {"# caf\xc3\xa9\n", "t.conf:1:6: only ASCII is accepted in the configuration"},
  };
  for (const auto& k : cases) {
    AgentConfig c;
    c.transport = "unchanged";
    auto r = parse_config(k.text, "t.conf", &c);
    ASSERT_FALSE(r.status.ok()) << k.text;
    EXPECT_EQ(r.status.code(), Status::Code::kInvalidArgument);
    EXPECT_EQ(r.status.message().rfind(k.message, 0), 0u) << r.status.message();
    EXPECT_EQ(c.transport, "unchanged");
  }
}

// The shipped default configuration parses without a warning and equals the
// built-in defaults.
TEST(AgentConfig, ShippedDefaultFileMatchesTheBuiltInDefaults) {
  AgentConfig c;
  auto r = load_config(QTX_SOURCE_DIR "/guest/config/agent.conf", true, &c);
  ASSERT_TRUE(r.status.ok()) << r.status.to_string();
  EXPECT_TRUE(r.warnings.empty()) << r.warnings.front();
  AgentConfig d;
  EXPECT_EQ(c.transport, d.transport);
  EXPECT_EQ(c.telemetry_interval_ms, d.telemetry_interval_ms);
  EXPECT_EQ(c.allow, d.allow);
  EXPECT_EQ(c.max_message, d.max_message);
  EXPECT_EQ(c.max_exec_output, d.max_exec_output);
  EXPECT_EQ(c.outbox_bytes, d.outbox_bytes);
  EXPECT_EQ(c.freeze_timeout_ms, d.freeze_timeout_ms);
  EXPECT_EQ(c.freeze_max_timeout_ms, d.freeze_max_timeout_ms);
  EXPECT_EQ(c.process_kill_init, d.process_kill_init);
  EXPECT_EQ(c.qga_enabled, d.qga_enabled);
  EXPECT_EQ(c.qga_transport, d.qga_transport);
  EXPECT_EQ(c.shadow_file, d.shadow_file);
  EXPECT_EQ(c.file_allow_hard_links, d.file_allow_hard_links);
}

TEST(AgentConfig, MissingFileIsAnErrorOnlyWhenNamed) {
  AgentConfig c;
  EXPECT_TRUE(load_config("/nonexistent/agent.conf", false, &c).status.ok());
  auto r = load_config("/nonexistent/agent.conf", true, &c);
  EXPECT_EQ(r.status.code(), Status::Code::kNotFound);
  EXPECT_EQ(r.status.message(), "cannot read config file /nonexistent/agent.conf");
}

TEST(Transport, SpecsAreCheckedUpFront) {
  asio::io_context io;
  std::unique_ptr<Transport> t;
  EXPECT_TRUE(make_transport(io, "virtio:org.quantix.agent.0", &t).ok());
  EXPECT_EQ(t->describe(), "virtio:org.quantix.agent.0");
  EXPECT_TRUE(make_transport(io, "virtio", &t).ok());
  EXPECT_EQ(t->describe(), "virtio:org.quantix.agent.0");
  EXPECT_TRUE(make_transport(io, "unix-listen:/tmp/x.sock", &t).ok());
  EXPECT_EQ(make_transport(io, "unix-listen:", &t).message(),
            "unix-listen needs a socket path: unix-listen:/path/to/socket");
  EXPECT_EQ(make_transport(io, "virtio:a/b", &t).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(make_transport(io, "tcp:1.2.3.4", &t).message(),
            "unknown transport \"tcp:1.2.3.4\": use virtio:NAME, unix-listen:PATH or unix-connect:PATH");
}

TEST(PortDiscovery, UdevSymlinkFirstThenSysfsScan) {
  TempDir d;
  PortRoots roots{d.path() + "/dev", d.path() + "/sys"};
  EXPECT_EQ(find_virtio_port("org.quantix.agent.0", roots), "");
  // No udev: the node and its sysfs name.
  d.write("sys/class/virtio-ports/vport1p1/name", "org.qemu.guest_agent.0\n");
  d.write("sys/class/virtio-ports/vport2p1/name", "org.quantix.agent.0\n");
  d.write("dev/vport1p1", "");
  EXPECT_EQ(find_virtio_port("org.quantix.agent.0", roots), "");  // its node is not there yet
  d.write("dev/vport2p1", "");
  EXPECT_EQ(find_virtio_port("org.quantix.agent.0", roots), d.path() + "/dev/vport2p1");
  // With udev's symlink, that wins.
  d.write("dev/virtio-ports/org.quantix.agent.0", "");
  EXPECT_EQ(find_virtio_port("org.quantix.agent.0", roots), d.path() + "/dev/virtio-ports/org.quantix.agent.0");
  EXPECT_EQ(find_virtio_port("../etc", roots), "");
}

TEST(PortDiscovery, ANameStillToComeIsPending) {
  TempDir d;
  PortRoots roots{d.path() + "/dev", d.path() + "/sys"};
  EXPECT_FALSE(virtio_port_name_pending(roots));
  d.write("sys/class/virtio-ports/vport1p1/dev", "250:1\n");  // the port, its name not yet sent
  EXPECT_TRUE(virtio_port_name_pending(roots));
  d.write("sys/class/virtio-ports/vport1p1/name", "org.quantix.agent.0\n");
  EXPECT_FALSE(virtio_port_name_pending(roots));
}

// Without udev, a hot-plugged port's node appears (an inotify event) before
// its name does (no event): the waiting transport still opens it.
TEST(VirtioTransport, APortWhoseNameArrivesAfterItsNodeIsOpened) {
  TempDir d;
  d.write("dev/.keep", "");
  d.write("sys/class/virtio-ports/.keep", "");
  PortRoots roots{d.path() + "/dev", d.path() + "/sys"};
  asio::io_context io;
  VirtioTransport t(io, "org.quantix.agent.0", roots);
  bool opened = false;
  int fd = -1;
  t.async_open([&](Status s, int f) {
    opened = s.ok();
    fd = f;
  });
  io.poll();
  d.write("sys/class/virtio-ports/vport1p1/dev", "250:1\n");
  d.write("dev/vport1p1", "");  // the node: the watch fires, the name is not there
  io.run_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(opened);
  d.write("sys/class/virtio-ports/vport1p1/name", "org.quantix.agent.0\n");
  // Bounds only a failing test: the transport looks again every 20 ms.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!opened && std::chrono::steady_clock::now() < deadline) io.run_for(std::chrono::milliseconds(10));
  EXPECT_TRUE(opened);
  EXPECT_EQ(t.describe(), "virtio:org.quantix.agent.0 (" + d.path() + "/dev/vport1p1)");
  if (fd >= 0) ::close(fd);
}

TEST(Telemetry, CpuUsageFromProcStatDeltas) {
  CpuTimes total;
  std::vector<CpuTimes> cpus;
  ASSERT_TRUE(TelemetryCollector::parse_proc_stat(
      "cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 60 0 20 400 20 0 0 0 0 0\ncpu1 40 0 30 400 30 0 0 0 0 0\nintr 1\n", &total,
      &cpus));
  EXPECT_EQ(total.total(), 1000u);
  ASSERT_EQ(cpus.size(), 2u);
  CpuTimes later = total;
  later.user += 300;
  later.system += 100;
  later.idle += 500;
  later.iowait += 100;
  v1::CpuUsage u;
  TelemetryCollector::cpu_usage(total, later, -1, &u);
  EXPECT_DOUBLE_EQ(u.user_pct(), 30.0);
  EXPECT_DOUBLE_EQ(u.system_pct(), 10.0);
  EXPECT_DOUBLE_EQ(u.idle_pct(), 50.0);
  EXPECT_DOUBLE_EQ(u.iowait_pct(), 10.0);
  EXPECT_DOUBLE_EQ(u.busy_pct(), 40.0);
  TelemetryCollector::cpu_usage(total, total, -1, &u);  // no time passed
  EXPECT_DOUBLE_EQ(u.idle_pct(), 100.0);
}

TEST(Telemetry, MeminfoInBytes) {
  v1::Memory m;
  TelemetryCollector::parse_meminfo(
      "MemTotal:       262144 kB\nMemFree:  1000 kB\nMemAvailable: 2000 kB\n"
      "SwapTotal: 0 kB\nSwapFree: 0 kB\n",
      &m);
  EXPECT_EQ(m.total_bytes(), 268435456u);
  EXPECT_EQ(m.free_bytes(), 1024000u);
  EXPECT_EQ(m.available_bytes(), 2048000u);
}

TEST(Telemetry, CollectsFromAFakeTree) {
  TempDir d;
  d.write("proc/stat", "cpu  10 0 10 80 0 0 0 0 0 0\n");
  d.write("proc/meminfo", "MemTotal: 1024 kB\n");
  d.write("proc/uptime", "12.50 20.00\n");
  d.write("proc/loadavg", "0.50 0.25 0.10 1/100 1234\n");
  d.write("proc/mounts", "");
  d.write("proc/diskstats", "");
  d.write("proc/42/stat", "");
  TelemetryCollector c({d.path() + "/proc", d.path() + "/sys", d.path() + "/utmp"});
  d.write("proc/stat", "cpu  30 0 10 160 0 0 0 0 0 0\n");
  auto s = c.collect(false);
  EXPECT_EQ(s.seq(), 1u);
  EXPECT_EQ(s.uptime_ms(), 12500u);
  EXPECT_EQ(s.memory().total_bytes(), 1048576u);
  EXPECT_DOUBLE_EQ(s.cpu().user_pct(), 20.0);  // 20 of 100 ticks since the collector started
  EXPECT_DOUBLE_EQ(s.load().one(), 0.5);
  EXPECT_EQ(s.process_count(), 1u);
  EXPECT_EQ(c.collect(false).seq(), 2u);
}

TEST(Telemetry, RealAndNetworkFilesystems) {
  EXPECT_TRUE(TelemetryCollector::is_real_filesystem("ext4"));
  EXPECT_TRUE(TelemetryCollector::is_real_filesystem("xfs"));
  EXPECT_FALSE(TelemetryCollector::is_real_filesystem("proc"));
  EXPECT_FALSE(TelemetryCollector::is_real_filesystem("tmpfs"));
  EXPECT_TRUE(TelemetryCollector::is_network_filesystem("nfs4"));
}

TEST(Freeze, FreezableMountpointsAreLocalWritableOncePerDeviceInReverseOrder) {
  const auto m = FreezeManager::freezable_mountpoints(
      "/dev/vda1 / ext4 rw,relatime 0 0\n"
      "proc /proc proc rw 0 0\n"
      "/dev/vdb1 /data xfs rw 0 0\n"
      "/dev/vda1 /bind ext4 rw 0 0\n"
      "/dev/vdc1 /ro ext4 ro,relatime 0 0\n"
      "server:/x /nfs nfs4 rw 0 0\n");
  EXPECT_EQ(m, (std::vector<std::string>{"/data", "/"}));
}

TEST(SystemInfo, OsRelease) {
  auto os = parse_os_release(
      "# comment\nNAME=\"Debian GNU/Linux\"\nID=debian\nVERSION_ID='12'\n"
      "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n");
  EXPECT_EQ(os.id(), "debian");
  EXPECT_EQ(os.name(), "Debian GNU/Linux");
  EXPECT_EQ(os.version_id(), "12");
  EXPECT_EQ(os.pretty_name(), "Debian GNU/Linux 12 (bookworm)");
}

TEST(SystemInfo, TimezoneNames) {
  EXPECT_EQ(timezone_from_link("/usr/share/zoneinfo/Etc/UTC"), "Etc/UTC");
  EXPECT_EQ(timezone_from_link("../usr/share/zoneinfo/Europe/Paris"), "Europe/Paris");
  EXPECT_EQ(timezone_from_link("/usr/share/zoneinfo/posix/America/New_York"), "America/New_York");
  EXPECT_EQ(timezone_from_link("/usr/share/zoneinfo/right/Asia/Tokyo"), "Asia/Tokyo");
  EXPECT_EQ(timezone_from_link("zoneinfo/UTC"), "UTC");
  EXPECT_EQ(timezone_from_link("/usr/share/nozoneinfo/UTC"), "");  // not a whole component
  EXPECT_EQ(timezone_from_link("/etc/mytime"), "");
  EXPECT_EQ(timezone_from_link("/usr/share/zoneinfo/"), "");
  EXPECT_EQ(timezone_from_link("/usr/share/zoneinfo/../../../etc/passwd"), "");
  EXPECT_EQ(timezone_from_file("Etc/UTC\n"), "Etc/UTC");
  EXPECT_EQ(timezone_from_file("  Europe/Berlin \r\nsecond line\n"), "Europe/Berlin");
  EXPECT_EQ(timezone_from_file("Etc/GMT+5"), "Etc/GMT+5");
  EXPECT_EQ(timezone_from_file(""), "");
  EXPECT_EQ(timezone_from_file("\n"), "");
  EXPECT_EQ(timezone_from_file("not a zone\n"), "");
  EXPECT_EQ(timezone_from_file("/etc/localtime\n"), "");
}

// The order of the sources, in a fake root: the link, then /etc/timezone,
// then "UTC" when there is no /etc/localtime at all, else nothing.
TEST(SystemInfo, TimezoneFromAFakeRoot) {
  {
    TempDir t;  // nothing: glibc uses UTC
    EXPECT_EQ(read_timezone(t.path()), "UTC");
  }
  {
    TempDir t;  // Debian's pair: the link wins over a stale /etc/timezone
    t.write("etc/timezone", "Europe/Paris\n");
    ASSERT_EQ(::symlink("/usr/share/zoneinfo/Etc/UTC", (t.path() + "/etc/localtime").c_str()), 0);
    EXPECT_EQ(read_timezone(t.path()), "Etc/UTC");
  }
  {
    TempDir t;  // a copied zone file: the name comes from /etc/timezone
    t.write("etc/localtime", "TZif2...");
    t.write("etc/timezone", "Etc/UTC\n");
    EXPECT_EQ(read_timezone(t.path()), "Etc/UTC");
  }
  {
    TempDir t;  // a copied zone file and no name anywhere
    t.write("etc/localtime", "TZif2...");
    EXPECT_EQ(read_timezone(t.path()), "");
  }
  {
    TempDir t;  // a link outside any zoneinfo directory
    t.write("etc/timezone", "Asia/Tokyo\n");
    ASSERT_EQ(::symlink("/opt/zones/tokyo", (t.path() + "/etc/localtime").c_str()), 0);
    EXPECT_EQ(read_timezone(t.path()), "Asia/Tokyo");
  }
}

TEST(Accounts, UsersGroupsAndOwnerSpecs) {
  TempDir d;
  d.write("passwd", "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000:Alice,,,:/home/alice:/bin/sh\nbroken:line\n");
  d.write("group", "root:x:0:\nalice:x:1000:\nwheel:x:10:alice,bob\nstaff:x:50:bob\n");
  AccountFiles f{d.path() + "/passwd", d.path() + "/group"};
  auto u = find_user("alice", f);
  ASSERT_TRUE(u);
  EXPECT_EQ(u->uid, 1000u);
  EXPECT_EQ(u->home, "/home/alice");
  EXPECT_FALSE(find_user("broken", f));
  EXPECT_FALSE(find_user("", f));
  EXPECT_EQ(groups_of("alice", 1000, f), (std::vector<gid_t>{1000, 10}));
  uid_t uid = 0;
  gid_t gid = 0;
  std::string why;
  ASSERT_TRUE(parse_owner("alice:wheel", &uid, &gid, &why, f));
  EXPECT_EQ(uid, 1000u);
  EXPECT_EQ(gid, 10u);
  ASSERT_TRUE(parse_owner("alice", &uid, &gid, &why, f));
  EXPECT_EQ(gid, 1000u);
  ASSERT_TRUE(parse_owner("33:44", &uid, &gid, &why, f));
  EXPECT_EQ(uid, 33u);
  EXPECT_EQ(gid, 44u);
  EXPECT_FALSE(parse_owner("mallory", &uid, &gid, &why, f));
  EXPECT_EQ(why, "no such user: mallory");
  EXPECT_FALSE(parse_owner("alice:nogroup", &uid, &gid, &why, f));
  EXPECT_EQ(why, "no such group: nogroup");
}

// Jobs still queued when the pool is destroyed are destroyed unrun, by the
// pool's own destructor, so each one's uncounting reaches a live count.
TEST(WorkerPool, JobsQueuedAtDestructionAreDestroyedUnrunWhileThePoolLives) {
  class Witness {
   public:
    explicit Witness(std::atomic<int>* destroyed) : destroyed_(destroyed) {}
    Witness(const Witness&) = delete;
    Witness& operator=(const Witness&) = delete;
    ~Witness() { destroyed_->fetch_add(1); }

   private:
    std::atomic<int>* destroyed_;
  };
  constexpr int kQueued = 5;
  std::atomic<int> ran{0};
  std::atomic<int> destroyed{0};
  auto pool = std::make_unique<WorkerPool>(1, 100);
  std::promise<void> started, release;
  std::shared_future<void> released = release.get_future().share();
  asio::post(*pool, [&started, released] {
    started.set_value();
    released.wait();
  });
  started.get_future().wait();
  for (int i = 0; i < kQueued; ++i) {
    asio::post(*pool, [&ran, w = std::make_shared<Witness>(&destroyed)] { ran.fetch_add(1); });
  }
  EXPECT_EQ(pool->jobs(), static_cast<std::size_t>(kQueued + 1));
  pool->stop();
  release.set_value();
  pool->join();
  EXPECT_EQ(pool->jobs(), static_cast<std::size_t>(kQueued));  // the blocker ran; the rest wait, unrun
  EXPECT_EQ(destroyed.load(), 0);
  pool.reset();
  EXPECT_EQ(ran.load(), 0);
  EXPECT_EQ(destroyed.load(), kQueued);
}

}  // namespace
}  // namespace qtx::agent
