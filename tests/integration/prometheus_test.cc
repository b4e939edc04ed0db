// A real Prometheus (Debian's prometheus package) scraping `qtx exporter`
// in front of three agents, every second, checked through its HTTP query
// API: the scrape is up, every agent is up, a counter rises between
// scrapes, the guest memory is what the agent read, and a killed agent
// shows as down within a bounded number of scrapes. Prometheus asks for
// OpenMetrics first, so this is also its parser's verdict on that format.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <set>

#include "support/agent_process.h"
#include "support/exporter_process.h"
#include "support/prometheus_server.h"

namespace qtx::testing {
namespace {

using namespace std::chrono_literals;

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

class Prometheus : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/qtx-prometheus-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    prometheus_.reset();
    exporter_.reset();
    for (auto& a : agents_) {
      if (a && a->running()) a->signal_and_wait(SIGTERM);
    }
    (void)std::system(("rm -rf '" + dir_ + "'").c_str());
  }
  std::string dir_;
  std::vector<std::unique_ptr<AgentProcess>> agents_;
  std::unique_ptr<ExporterProcess> exporter_;
  std::unique_ptr<PrometheusProcess> prometheus_;
};

TEST_F(Prometheus, ScrapesTheExporter) {
  for (int i = 1; i <= 3; ++i) {
    agents_.push_back(std::make_unique<AgentProcess>("unix-listen:" + dir_ + "/vm-" + std::to_string(i) + ".sock",
                                                     "[telemetry]\ninterval_ms = 500\n", "warn"));
  }
  exporter_ = std::make_unique<ExporterProcess>(QTX_CLI_BINARY,
                                                std::vector<std::string>{"--socket-glob", dir_ + "/*.sock",
                                                                         "--rescan-interval", "0.1"},
                                                dir_ + "/exporter.log");
  ASSERT_GT(exporter_->port(), 0) << exporter_->log();
  prometheus_ = std::make_unique<PrometheusProcess>(dir_, exporter_->port());
  ASSERT_GT(prometheus_->port(), 0) << "prometheus did not start:\n" << prometheus_->log();
  PrometheusProcess& p = *prometheus_;

  // The scrape works (Prometheus parsed the page) and every agent is up.
  ASSERT_TRUE(eventually([&] { return p.value("up{job=\"qtx\"}") == "1"; }, 60, 500ms)) << p.log();
  std::optional<std::vector<Series>> agents;
  ASSERT_TRUE(eventually(
      [&] {
        agents = p.query("qtx_agent_up == 1");
        return agents && agents->size() == 3;
      },
      60, 500ms))
      << exporter_->log();
  std::set<std::string> names;
  for (const auto& s : *agents) names.insert(s.labels.at("agent"));
  EXPECT_EQ(names, (std::set<std::string>{"vm-1", "vm-2", "vm-3"}));

  // A counter rises between two scrapes.
  const std::string samples = "qtx_agent_telemetry_samples_total{agent=\"vm-1\"}";
  std::string first;
  ASSERT_TRUE(eventually([&] { return !(first = p.value(samples)).empty(); }, 60, 500ms));
  ASSERT_TRUE(eventually(
      [&] {
        const std::string now = p.value(samples);
        return !now.empty() && std::stod(now) > std::stod(first);
      },
      60, 500ms))
      << samples << " stayed at " << first;

  // The guest's memory, as the agent read it (this machine's).
  std::string mem;
  ASSERT_TRUE(
      eventually([&] { return !(mem = p.value("qtx_guest_memory_total_bytes{agent=\"vm-2\"}")).empty(); }, 60, 500ms));
  EXPECT_EQ(mem, mem_total_bytes());

  // vm-2's agent is killed: down within 10 scrapes (20 attempts 500 ms apart).
  agents_[1]->signal_and_wait(SIGKILL);
  EXPECT_TRUE(eventually([&] { return p.value("qtx_agent_up{agent=\"vm-2\"}") == "0"; }, 20, 500ms))
      << exporter_->log();
  EXPECT_EQ(p.value("qtx_agent_up{agent=\"vm-1\"}"), "1");
  EXPECT_EQ(p.value("up{job=\"qtx\"}"), "1");
}

}  // namespace
}  // namespace qtx::testing
