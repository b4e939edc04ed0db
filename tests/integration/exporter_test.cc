// `qtx exporter` in front of three real agents on unix sockets: each is
// picked up as its socket appears, its series carry the exact values the
// library holds (and the guest's memory as the agent read it), promtool
// accepts the page, a killed agent shows as down, and an agent whose
// socket is removed is no longer exported.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <sstream>

#include "qtx/host/manager.h"
#include "support/agent_process.h"
#include "support/exporter_process.h"
#include "support/promtool.h"

namespace qtx::testing {
namespace {

namespace host = ::qtx::host;
namespace v1 = ::qtx::agent::v1;

// What the agent reports as the guest's memory, read the way it does: it
// runs on this machine, so the "guest" is this host.
std::string mem_total_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  unsigned long long kib = 0;
  while (in >> key) {
    if (key == "MemTotal:") {
      in >> kib;
      break;
    }
    std::getline(in, key);
  }
  return std::to_string(kib * 1024);
}

bool has(const std::optional<std::string>& page, const std::string& line) {
  return page && page->find(line) != std::string::npos;
}

class Exporter : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/qtx-exporter-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    exporter_.reset();
    for (auto& a : agents_) {
      if (a && a->running()) a->signal_and_wait(SIGTERM);
    }
    agents_.clear();
    (void)std::system(("rm -rf '" + dir_ + "'").c_str());
  }
  std::string sock(int i) const { return dir_ + "/vm-" + std::to_string(i) + ".sock"; }
  void start_agents(int n, const std::string& config = "") {
    for (int i = 1; i <= n; ++i)
      agents_.push_back(std::make_unique<AgentProcess>("unix-listen:" + sock(i), config, "warn"));
  }
  void start_exporter(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--socket-glob", dir_ + "/*.sock", "--rescan-interval",
                                     "0.1",           "--label",        "site=test"};
    args.insert(args.end(), extra.begin(), extra.end());
    exporter_ = std::make_unique<ExporterProcess>(QTX_CLI_BINARY, args, dir_ + "/exporter.log");
  }
  std::optional<std::string> scrape() { return http_get(exporter_->port(), "/metrics"); }

  std::string dir_;
  std::vector<std::unique_ptr<AgentProcess>> agents_;
  std::unique_ptr<ExporterProcess> exporter_;
};

std::string up(int i, int v) {
  return "qtx_agent_up{agent=\"vm-" + std::to_string(i) + "\",site=\"test\"} " + std::to_string(v) + "\n";
}

TEST_F(Exporter, FollowsSocketsAndAgents) {
  // A regular file matching the pattern is not an agent.
  std::ofstream(dir_ + "/notes.sock") << "not a socket";
  start_agents(3);
  start_exporter();
  ASSERT_GT(exporter_->port(), 0) << exporter_->log();

  std::optional<std::string> page;
  ASSERT_TRUE(eventually([&] {
    page = scrape();
    return has(page, up(1, 1)) && has(page, up(2, 1)) && has(page, up(3, 1));
  })) << (page ? *page : "no page")
      << exporter_->log();
  EXPECT_TRUE(has(page, "qtx_agents 3\n")) << *page;
  EXPECT_FALSE(has(page, "agent=\"notes\""));
  for (int i = 1; i <= 3; ++i) {
    const std::string l = "{agent=\"vm-" + std::to_string(i) + "\",site=\"test\"} ";
    EXPECT_TRUE(has(page, "qtx_agent_handshakes_total" + l + "1\n")) << *page;
    EXPECT_TRUE(has(page, "qtx_agent_restarts_total" + l + "0\n"));
    EXPECT_TRUE(has(page, "qtx_agent_calls_in_flight" + l + "0\n"));
    EXPECT_TRUE(has(page, "qtx_agent_dropped_bytes_total{agent=\"vm-" + std::to_string(i) +
                              "\",site=\"test\",reason=\"garbage\"} 0\n"));
  }
  // The first sample follows each handshake.
  ASSERT_TRUE(eventually([&] {
    page = scrape();
    for (int i = 1; i <= 3; ++i) {
      if (!has(page, "qtx_guest_memory_total_bytes{agent=\"vm-" + std::to_string(i) + "\",site=\"test\"} "))
        return false;
    }
    return true;
  })) << (page ? *page : "no page");
  EXPECT_TRUE(has(page, "qtx_guest_memory_total_bytes{agent=\"vm-2\",site=\"test\"} " + mem_total_bytes() + "\n"))
      << *page;

  ToolRun check = promtool_check_metrics(dir_, *page);
  EXPECT_EQ(check.status, 0) << check.output;
  EXPECT_EQ(check.output, "");
  auto om = http_get(exporter_->port(), "/metrics", "application/openmetrics-text; version=1.0.0");
  ASSERT_TRUE(om);
  EXPECT_EQ(om->substr(om->size() - 6), "# EOF\n");

  // vm-2's agent dies (its socket file stays): down, and counted.
  agents_[1]->signal_and_wait(SIGKILL);
  ASSERT_TRUE(eventually([&] {
    page = scrape();
    return has(page, up(2, 0));
  })) << (page ? *page : "no page");
  EXPECT_TRUE(has(page, up(1, 1)));
  EXPECT_TRUE(has(page, "qtx_agent_disconnects_total{agent=\"vm-2\",site=\"test\"} 1\n")) << *page;

  // vm-3's socket goes: no longer exported.
  ASSERT_EQ(::unlink(sock(3).c_str()), 0);
  ASSERT_TRUE(eventually([&] {
    page = scrape();
    return page && page->find("agent=\"vm-3\"") == std::string::npos;
  })) << (page ? *page : "no page");
  EXPECT_TRUE(has(page, "qtx_agents 2\n"));
  EXPECT_TRUE(has(page, up(1, 1)));
  EXPECT_NE(exporter_->log().find("vm-3.sock is gone"), std::string::npos) << exporter_->log();

  // A new socket is picked up.
  agents_.push_back(std::make_unique<AgentProcess>("unix-listen:" + sock(4), "", "warn"));
  ASSERT_TRUE(eventually([&] {
    page = scrape();
    return has(page, up(4, 1));
  })) << (page ? *page : "no page")
      << exporter_->log();
}

TEST_F(Exporter, NamesFromAPattern) {
  start_agents(1);
  start_exporter({"--name-pattern", "/(vm-[0-9]+)\\.sock$", "--label", "rack=r7"});
  ASSERT_GT(exporter_->port(), 0) << exporter_->log();
  std::optional<std::string> page;
  ASSERT_TRUE(eventually([&] {
    page = scrape();
    return has(page, "qtx_agent_up{agent=\"vm-1\",site=\"test\",rack=\"r7\"} 1\n");
  })) << (page ? *page : "no page")
      << exporter_->log();
}

TEST_F(Exporter, RefusesASecondSocketUnderANameInUse) {
  start_agents(2);
  // Both sockets there before the first scan, which takes them in path
  // order: vm-1 first, so vm-2 is the one refused. (An agent that starts
  // late would have its socket found a scan later, whatever its name.)
  ASSERT_TRUE(eventually([&] {
    struct stat st;
    return ::stat(sock(1).c_str(), &st) == 0 && ::stat(sock(2).c_str(), &st) == 0;
  }));
  // Both sockets match as "vm": their series could not be told apart.
  start_exporter({"--name-pattern", "/(vm)-[0-9]+\\.sock$"});
  ASSERT_GT(exporter_->port(), 0) << exporter_->log();
  const std::string refusal = "not exporting " + sock(2) + ": the name \"vm\" is already exported for " + sock(1);
  std::optional<std::string> page;
  ASSERT_TRUE(eventually([&] {
    page = scrape();
    return has(page, "qtx_agent_up{agent=\"vm\",site=\"test\"} 1\n") &&
           exporter_->log().find(refusal) != std::string::npos;
  })) << (page ? *page : "no page")
      << exporter_->log();
  EXPECT_TRUE(has(page, "qtx_agents 1\n"));
  // Reported once, though every scan tries again.
  const std::string log = exporter_->log();
  EXPECT_EQ(log.find("not exporting " + sock(2)), log.rfind("not exporting " + sock(2))) << log;
}

TEST_F(Exporter, LeavesSocketsOthersOwnAlone) {
  start_agents(2);
  // This process owns vm-1's socket, as a VM manager would.
  host::Manager owner;
  host::AgentOptions o;
  o.endpoint = host::Endpoint::connect(sock(1));
  auto held = owner.add(o);
  ASSERT_TRUE(held.ok()) << held.error().to_string();
  ASSERT_TRUE(held.value()->wait_ready(std::chrono::seconds(10)).ok());
  start_exporter();
  ASSERT_GT(exporter_->port(), 0) << exporter_->log();
  std::optional<std::string> page;
  ASSERT_TRUE(eventually([&] {
    page = scrape();
    return has(page, up(2, 1));
  })) << (page ? *page : "no page")
      << exporter_->log();
  EXPECT_TRUE(has(page, "qtx_agents 1\n"));
  EXPECT_EQ(page->find("agent=\"vm-1\""), std::string::npos);
  const std::string log = exporter_->log();
  EXPECT_NE(log.find("not exporting " + sock(1) + ": already_exists"), std::string::npos) << log;
  // Reported once, though every scan tries again.
  EXPECT_EQ(log.find("not exporting " + sock(1)), log.rfind("not exporting " + sock(1))) << log;
  // Still working: the owner's connection was not disturbed.
  EXPECT_TRUE(held.value()->ping(v1::PingRequest{}).ok());
}

TEST_F(Exporter, RefusesBadArguments) {
  const std::vector<std::vector<std::string>> bad = {
      {"exporter"},                                                  // no sockets to watch
      {"exporter", "--socket-dir", "/tmp", "--listen", "nonsense"},  // no port
      {"exporter", "--socket-dir", "/tmp", "--label", "noequals"},
      {"exporter", "--socket-dir", "/tmp", "--name-pattern", "("},
  };
  for (const auto& args : bad) {
    std::vector<char*> argv;
    std::string bin = QTX_CLI_BINARY;
    argv.push_back(bin.data());
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = ::fork();
    if (pid == 0) {
      int null = ::open("/dev/null", O_WRONLY);
      ::dup2(null, 1);
      ::dup2(null, 2);
      ::execv(bin.c_str(), argv.data());
      _exit(127);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0) << args.back();
  }
}

}  // namespace
}  // namespace qtx::testing
