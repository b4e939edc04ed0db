// Metrics of a Manager in front of real agents: the counters the I/O thread
// keeps for calls, frames and connections, the guest's telemetry as the
// agent sent it, promtool's verdict on the exposition, and the built-in
// HTTP endpoint.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>
#include <vector>

#include "qtx/host/metrics.h"
#include "support/host_fixture.h"
#include "support/promtool.h"

namespace qtx::testing {
namespace {

using namespace std::chrono_literals;
using host::ErrorKind;
using host::MetricsFormat;

std::size_t outcome(ErrorKind kind) { return static_cast<std::size_t>(kind); }

bool contains(const std::string& text, const std::string& line) { return text.find(line) != std::string::npos; }

class HostMetrics : public HostFixture {
 protected:
  // An agent with telemetry on demand only, added with a name and a label
  // and no keepalive (so every frame is one the test caused); waits for the
  // sample that follows the handshake and one more asked for.
  std::shared_ptr<host::Agent> connect_with_telemetry() {
    start_agent("[telemetry]\ninterval_ms = 3600000\n");
    auto o = options();
    o.name = "vm-a";
    o.labels = {{"env", "test"}};
    o.keepalive_interval = 0ms;
    o.callbacks.on_telemetry = [this](const v1::TelemetrySample& s) { samples_.post(s); };
    auto agent = connect(o);
    if (!agent) return nullptr;
    v1::TelemetryConfigRequest cfg;
    cfg.set_sample_now(true);
    EXPECT_TRUE(agent->telemetry_config(cfg).ok());
    EXPECT_TRUE(samples_.take());
    latest_ = samples_.take();
    EXPECT_TRUE(latest_);
    return agent;
  }
  Mailbox<v1::TelemetrySample> samples_;
  std::optional<v1::TelemetrySample> latest_;
};

TEST_F(HostMetrics, CountersFollowCallsFramesAndConnections) {
  auto agent = connect_with_telemetry();
  ASSERT_TRUE(agent && latest_);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(agent->ping(v1::PingRequest{}).ok());
  v1::FileStatRequest stat;
  stat.set_path("/nonexistent/qtx-metrics");
  auto missing = agent->file_stat(stat);
  ASSERT_FALSE(missing.ok());
  ASSERT_EQ(missing.error().kind(), ErrorKind::kNotFound);

  auto all = host::collect_metrics(*manager_);
  ASSERT_EQ(all.size(), 1u);
  const host::AgentMetrics& m = all[0];
  EXPECT_EQ(m.name, "vm-a");
  ASSERT_EQ(m.labels.size(), 1u);
  EXPECT_EQ(m.labels[0], std::make_pair(std::string("env"), std::string("test")));
  EXPECT_EQ(m.state, host::State::kReady);
  const host::AgentStats& s = m.stats;
  EXPECT_GE(s.connect_attempts, 1u);  // and more when the agent was not listening yet
  EXPECT_EQ(s.connects, 1u);
  EXPECT_EQ(s.handshakes, 1u);
  EXPECT_EQ(s.disconnects, 0u);
  EXPECT_EQ(s.restarts_seen, 0u);
  EXPECT_EQ(s.keepalive_pings, 0u);
  EXPECT_EQ(s.calls_in_flight, 0u);
  // telemetry_config and three pings answered, one answered with a guest error.
  EXPECT_EQ(s.calls_ended[0], 4u);
  EXPECT_EQ(s.calls_ended[outcome(ErrorKind::kNotFound)], 1u);
  std::uint64_t ended = 0, rtts = 0;
  for (auto n : s.calls_ended) ended += n;
  for (auto n : s.rtt_buckets) rtts += n;
  EXPECT_EQ(ended, 5u);
  EXPECT_EQ(rtts, 5u);
  EXPECT_GT(s.rtt_sum_seconds, 0.0);
  // Out: the hello and five requests. In: the agent's announcement, the
  // hello's answer, two samples and five answers.
  EXPECT_EQ(s.frames_out, 6u);
  EXPECT_EQ(s.frames_in, 9u);
  EXPECT_EQ(s.dropped_bytes, 0u);
  EXPECT_EQ(s.telemetry_samples, 2u);
  ASSERT_TRUE(m.telemetry);
  EXPECT_EQ(m.telemetry->seq(), latest_->seq());
  EXPECT_GE(m.telemetry_age_seconds, 0.0);

  const std::string text = host::render_metrics(all, MetricsFormat::kPrometheusText);
  EXPECT_TRUE(contains(text, "qtx_agent_up{agent=\"vm-a\",env=\"test\"} 1\n")) << text;
  EXPECT_TRUE(contains(text, "qtx_agent_calls_total{agent=\"vm-a\",env=\"test\",outcome=\"not_found\"} 1\n"));
  EXPECT_TRUE(contains(text, "qtx_guest_memory_total_bytes{agent=\"vm-a\",env=\"test\"} " +
                                 std::to_string(latest_->memory().total_bytes()) + "\n"));
  EXPECT_TRUE(contains(text, "qtx_agent_call_duration_seconds_count{agent=\"vm-a\",env=\"test\"} 5\n"));

  // The agent goes away: not up, the connection counted as lost, and a call
  // made meanwhile counted as refused.
  ASSERT_EQ(agent_->signal_and_wait(SIGKILL) & 0x7f, SIGKILL);
  EXPECT_FALSE(agent->ping(v1::PingRequest{}).ok() && agent->ping(v1::PingRequest{}).ok());
  auto after = host::collect_metrics(*manager_);
  ASSERT_EQ(after.size(), 1u);
  EXPECT_NE(after[0].state, host::State::kReady);
  EXPECT_EQ(after[0].stats.disconnects, 1u);
  EXPECT_GE(after[0].stats.calls_ended[outcome(ErrorKind::kDisconnected)], 1u);
  EXPECT_EQ(after[0].stats.calls_in_flight, 0u);
  const std::string down = host::render_metrics(after, MetricsFormat::kPrometheusText);
  EXPECT_TRUE(contains(down, "qtx_agent_up{agent=\"vm-a\",env=\"test\"} 0\n")) << down;
  agent_.reset();
}

TEST_F(HostMetrics, PromtoolAcceptsTheExposition) {
  auto agent = connect_with_telemetry();
  ASSERT_TRUE(agent && latest_);
  // A second agent that never connects: its series are there too.
  auto o = options();
  o.endpoint = host::Endpoint::connect(dir() + "/absent.sock");
  o.name = "vm-absent \"quoted\"";
  ASSERT_TRUE(manager_->add(o).ok());
  const std::string text = host::render_metrics(*manager_, MetricsFormat::kPrometheusText);
  ToolRun run = promtool_check_metrics(dir(), text);
  EXPECT_EQ(run.status, 0) << "promtool check metrics:\n" << run.output << "\non:\n" << text;
  EXPECT_EQ(run.output, "");
}

TEST_F(HostMetrics, LabelsAreCheckedWhenAdded) {
  auto refused = [this](std::vector<std::pair<std::string, std::string>> labels) {
    auto o = options();
    o.labels = std::move(labels);
    auto r = manager_->add(o);
    return !r.ok() && r.error().kind() == ErrorKind::kLocal;
  };
  EXPECT_TRUE(refused({{"9lives", "x"}}));
  EXPECT_TRUE(refused({{"agent", "x"}}));
  EXPECT_TRUE(refused({{"__name__", "x"}}));
  EXPECT_TRUE(refused({{"le", "x"}}));
  EXPECT_TRUE(refused({{"env", "a"}, {"env", "b"}}));
  EXPECT_TRUE(refused({{"env", std::string("\xff", 1)}}));
  EXPECT_TRUE(refused({{"env", std::string(host::AgentOptions::kMaxMetricLabelValue + 1, 'x')}}));
  std::vector<std::pair<std::string, std::string>> many;
  for (std::size_t i = 0; i <= host::AgentOptions::kMaxMetricLabels; ++i)
    many.emplace_back("l" + std::to_string(i), "v");
  EXPECT_TRUE(refused(many));
  EXPECT_EQ(manager_->size(), 0u);
  auto o = options();
  o.labels = {{"env", "prod"}, {"rack", "r1"}};
  EXPECT_TRUE(manager_->add(o).ok());
}

TEST_F(HostMetrics, ServerAnswersEitherFormat) {
  auto agent = connect_with_telemetry();
  ASSERT_TRUE(agent && latest_);
  auto server = host::MetricsServer::start(*manager_, "127.0.0.1:0");
  ASSERT_TRUE(server.ok()) << server.error().to_string();
  const int port = server.value()->port();
  ASSERT_GT(port, 0);
  EXPECT_EQ(server.value()->address(), "127.0.0.1:" + std::to_string(port));

  httplib::Client client("127.0.0.1", port);
  auto text = client.Get("/metrics");
  ASSERT_TRUE(text) << httplib::to_string(text.error());
  EXPECT_EQ(text->status, 200);
  EXPECT_EQ(text->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_TRUE(contains(text->body, "qtx_agent_up{agent=\"vm-a\",env=\"test\"} 1\n"));
  EXPECT_FALSE(contains(text->body, "# EOF"));

  auto om = client.Get("/metrics", {{"Accept", "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"}});
  ASSERT_TRUE(om);
  EXPECT_EQ(om->status, 200);
  EXPECT_EQ(om->get_header_value("Content-Type"), "application/openmetrics-text; version=1.0.0; charset=utf-8");
  ASSERT_GE(om->body.size(), 6u);
  EXPECT_EQ(om->body.substr(om->body.size() - 6), "# EOF\n");

  auto other = client.Get("/");
  ASSERT_TRUE(other);
  EXPECT_EQ(other->status, 404);

  // A port in use is refused, as is a malformed address.
  auto clash = host::MetricsServer::start(*manager_, "127.0.0.1:" + std::to_string(port));
  ASSERT_FALSE(clash.ok());
  EXPECT_EQ(clash.error().kind(), ErrorKind::kLocal);
  EXPECT_FALSE(host::MetricsServer::start(*manager_, "localhost").ok());
  EXPECT_FALSE(host::MetricsServer::start(*manager_, "::1:80").ok());
  EXPECT_FALSE(host::MetricsServer::start(*manager_, "127.0.0.1:70000").ok());
}

// Descriptors this process holds now.
std::size_t open_fds() {
  std::size_t n = 0;
  DIR* d = ::opendir("/proc/self/fd");
  if (d == nullptr) return 0;
  while (const dirent* e = ::readdir(d)) n += e->d_name[0] != '.';
  ::closedir(d);
  return n - 1;  // the directory stream's own
}

// A scraper that opens many connections and sends nothing costs the process
// (the VM manager, whose descriptors are the VMs' sockets) at most 2 serving
// + 2 waiting + 1 accepted-and-held sockets: the rest wait in the kernel's
// listen backlog. Once they go, scrapes are served again.
TEST(MetricsServerLimits, IdleConnectionsCostABoundedNumberOfDescriptors) {
  auto server = host::MetricsServer::start([](MetricsFormat) { return std::string("up 1\n"); }, "127.0.0.1:0");
  ASSERT_TRUE(server.ok()) << server.error().to_string();
  const std::size_t before = open_fds();
  constexpr std::size_t kIdle = 64, kBound = 5;
  std::vector<int> idle;
  for (std::size_t i = 0; i < kIdle; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<std::uint16_t>(server.value()->port()));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);  // EINPROGRESS beyond the backlog
    idle.push_back(fd);
  }
  // The server's accepted sockets: what the process holds beyond the
  // clients'. Sampled until the accept loop has taken all it will take.
  std::size_t most = 0;
  for (int i = 0; i < 40000 && most < kBound; ++i) {
    most = std::max(most, open_fds() - before - kIdle);
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
  EXPECT_EQ(most, kBound);  // with an unbounded queue: kIdle
  for (int i = 0; i < 200; ++i) most = std::max(most, open_fds() - before - kIdle);
  EXPECT_EQ(most, kBound);
  for (int fd : idle) ::close(fd);
  httplib::Client client("127.0.0.1", server.value()->port());
  client.set_read_timeout(std::chrono::seconds(60));
  auto res = client.Get("/metrics");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->body, "up 1\n");
}

}  // namespace
}  // namespace qtx::testing
