// A real Prometheus (Debian's prometheus package) scraping `qtx exporter`
// in front of three agents, every second, checked through its HTTP query
// API: the scrape is up, every agent is up, a counter rises between
// scrapes, the guest memory is what the agent read, and a killed agent
// shows as down within a bounded number of scrapes. Prometheus asks for
// OpenMetrics first, so this is also its parser's verdict on that format.
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <fstream>
#include <map>
#include <set>
#include <memory>
#include <sstream>

#include "support/agent_process.h"
#include "support/exporter_process.h"

namespace qtx::testing {
namespace {

using namespace std::chrono_literals;

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

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

// One series of an instant query: its labels and its value as Prometheus
// wrote it.
struct Series {
  std::map<std::string, std::string> labels;
  std::string value;
};

// Prometheus on 127.0.0.1 with a temporary storage directory.
class PrometheusProcess {
 public:
  PrometheusProcess(const std::string& dir, int target_port) : dir_(dir) {
    std::ofstream(dir + "/prometheus.yml") << "global:\n"
                                              "  scrape_interval: 1s\n"
                                              "  scrape_timeout: 1s\n"
                                              "scrape_configs:\n"
                                              "  - job_name: qtx\n"
                                              "    static_configs:\n"
                                              "      - targets: ['127.0.0.1:"
                                           << target_port << "']\n";
    // A port that was free a moment ago; if another process takes it first,
    // Prometheus exits and the next one is tried.
    for (int attempt = 0; attempt < 5 && port_ == 0; ++attempt) {
      const int port = free_tcp_port();
      start(port);
      const bool ready = eventually([&] { return exited() || http_get(port, "/-/ready").has_value(); }, 300);
      if (ready && !exited()) port_ = port;
      else stop();
    }
  }
  ~PrometheusProcess() { stop(); }

  int port() const { return port_; }
  std::string log() const { return slurp(dir_ + "/prometheus.log"); }

  // GET /api/v1/query; nullopt when the query failed.
  std::optional<std::vector<Series>> query(const std::string& expr) {
    httplib::Client client("127.0.0.1", port_);
    client.set_read_timeout(10s);
    auto res = client.Get("/api/v1/query", httplib::Params{{"query", expr}}, httplib::Headers{});
    if (!res || res->status != 200) return std::nullopt;
    google::protobuf::Struct doc;
    if (!google::protobuf::util::JsonStringToMessage(res->body, &doc).ok()) return std::nullopt;
    const auto& f = doc.fields();
    if (!f.count("status") || f.at("status").string_value() != "success") return std::nullopt;
    std::vector<Series> out;
    for (const auto& r : f.at("data").struct_value().fields().at("result").list_value().values()) {
      Series s;
      for (const auto& [k, v] : r.struct_value().fields().at("metric").struct_value().fields()) {
        s.labels[k] = v.string_value();
      }
      const auto& value = r.struct_value().fields().at("value").list_value().values();
      if (value.size() == 2) s.value = value[1].string_value();
      out.push_back(std::move(s));
    }
    return out;
  }
  // The value of the one series `expr` selects, or "" when not exactly one.
  std::string value(const std::string& expr) {
    auto r = query(expr);
    return r && r->size() == 1 ? (*r)[0].value : "";
  }

 private:
  void start(int port) {
    pid_ = ::fork();
    if (pid_ == 0) {
      int log = ::open((dir_ + "/prometheus.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      ::dup2(log, 1);
      ::dup2(log, 2);
      const std::string config = "--config.file=" + dir_ + "/prometheus.yml";
      const std::string storage = "--storage.tsdb.path=" + dir_ + "/data";
      const std::string listen = "--web.listen-address=127.0.0.1:" + std::to_string(port);
      ::execlp("prometheus", "prometheus", config.c_str(), storage.c_str(), listen.c_str(), "--log.level=warn",
               static_cast<char*>(nullptr));
      _exit(127);
    }
  }
  bool exited() {
    int status = 0;
    if (pid_ > 0 && ::waitpid(pid_, &status, WNOHANG) == pid_) pid_ = -1;
    return pid_ <= 0;
  }
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  std::string dir_;
  pid_t pid_ = -1;
  int port_ = 0;
};

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
  exporter_ = std::make_unique<ExporterProcess>(
      QTX_CLI_BINARY, std::vector<std::string>{"--socket-glob", dir_ + "/*.sock", "--rescan-interval", "0.1"},
      dir_ + "/exporter.log");
  ASSERT_GT(exporter_->port(), 0) << exporter_->log();
  prometheus_ = std::make_unique<PrometheusProcess>(dir_, exporter_->port());
  ASSERT_GT(prometheus_->port(), 0) << "prometheus did not start:\n" << prometheus_->log();
  PrometheusProcess& p = *prometheus_;

  // The scrape works (Prometheus parsed the page) and every agent is up.
  ASSERT_TRUE(eventually([&] { return p.value("up{job=\"qtx\"}") == "1"; }, 60, 500ms)) << p.log();
  std::optional<std::vector<Series>> agents;
  ASSERT_TRUE(eventually([&] {
    agents = p.query("qtx_agent_up == 1");
    return agents && agents->size() == 3;
  }, 60, 500ms)) << exporter_->log();
  std::set<std::string> names;
  for (const auto& s : *agents) names.insert(s.labels.at("agent"));
  EXPECT_EQ(names, (std::set<std::string>{"vm-1", "vm-2", "vm-3"}));

  // A counter rises between two scrapes.
  const std::string samples = "qtx_agent_telemetry_samples_total{agent=\"vm-1\"}";
  std::string first;
  ASSERT_TRUE(eventually([&] { return !(first = p.value(samples)).empty(); }, 60, 500ms));
  ASSERT_TRUE(eventually([&] {
    const std::string now = p.value(samples);
    return !now.empty() && std::stod(now) > std::stod(first);
  }, 60, 500ms)) << samples << " stayed at " << first;

  // The guest's memory, as the agent read it (this machine's).
  std::string mem;
  ASSERT_TRUE(eventually([&] { return !(mem = p.value("qtx_guest_memory_total_bytes{agent=\"vm-2\"}")).empty(); },
                         60, 500ms));
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
