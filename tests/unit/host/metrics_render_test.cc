// render_metrics on fixed AgentMetrics: the exact exposition in both
// formats (tests/data/metrics-*.txt), the escaping of label values, the
// caps on guest devices, and agents that would repeat a series.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "qtx/host/metrics.h"

namespace qtx::host {
namespace {

namespace v1 = ::qtx::agent::v1;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Two agents: a ready one with a caller label and a full sample, and one
// whose name needs escaping, never connected.
std::vector<AgentMetrics> fixture() {
  AgentMetrics a;
  a.name = "vm1";
  a.labels = {{"env", "prod"}};
  a.state = State::kReady;
  AgentStats& s = a.stats;
  s.connect_attempts = 3;
  s.connects = 2;
  s.handshakes = 2;
  s.disconnects = 1;
  s.restarts_seen = 1;
  s.keepalive_pings = 4;
  s.keepalive_timeouts = 1;
  s.calls_in_flight = 2;
  s.calls_ended[0] = 5;                                       // ok
  s.calls_ended[static_cast<int>(ErrorKind::kNotFound)] = 1;  // a guest error
  s.calls_ended[static_cast<int>(ErrorKind::kDisconnected)] = 2;
  s.rtt_buckets[1] = 4;                              // (0.0005, 0.001]
  s.rtt_buckets[AgentStats::kRttBounds.size()] = 2;  // above 60 s
  s.rtt_sum_seconds = 130.5;
  s.bytes_in = 1000;
  s.bytes_out = 500;
  s.frames_in = 10;
  s.frames_out = 9;
  s.dropped_bytes_by_reason = {7, 0, 3, 0, 2};
  s.dropped_bytes = 12;
  s.discarded_frames = 1;
  s.stray_frames = 0;
  s.telemetry_samples = 6;
  v1::TelemetrySample t;
  t.set_unix_time_ms(1700000000250);
  t.set_uptime_ms(3600500);
  auto* cpu = t.mutable_cpu();
  cpu->set_user_pct(12.5);
  cpu->set_system_pct(2.5);
  cpu->set_idle_pct(84);
  cpu->set_iowait_pct(1);
  auto* mem = t.mutable_memory();
  mem->set_total_bytes(268435456);
  mem->set_available_bytes(134217728);
  mem->set_free_bytes(67108864);
  mem->set_buffers_bytes(4096);
  mem->set_cached_bytes(8192);
  t.mutable_load()->set_one(0.5);
  t.mutable_load()->set_five(0.25);
  t.mutable_load()->set_fifteen(0.125);
  t.set_process_count(42);
  t.add_users()->set_name("root");
  auto* fs = t.add_filesystems();
  fs->set_mountpoint("/");
  fs->set_device("/dev/vda1");
  fs->set_type("ext4");
  fs->set_size_bytes(10000);
  fs->set_used_bytes(6000);
  fs->set_free_bytes(3500);
  fs->set_inodes_total(100);
  fs->set_inodes_free(40);
  *t.add_filesystems() = *fs;  // a bind mount of the same: one series only
  auto* disk = t.add_disks();
  disk->set_name("vda");
  disk->set_reads(11);
  disk->set_read_bytes(4096);
  disk->set_writes(12);
  disk->set_write_bytes(8192);
  disk->set_io_ms(1500);
  auto* nic = t.add_interfaces();
  nic->set_name("eth0");
  nic->set_oper_state("up");
  nic->set_rx_bytes(100);
  nic->set_tx_bytes(200);
  nic->set_rx_packets(3);
  nic->set_tx_packets(4);
  a.telemetry = t;
  a.telemetry_age_seconds = 1.5;

  AgentMetrics b;
  b.name = "odd \"name\"\\\n";
  b.state = State::kConnecting;
  b.stats.connect_attempts = 1;
  return {a, b};
}

TEST(MetricsRender, PrometheusTextIsExact) {
  EXPECT_EQ(render_metrics(fixture(), MetricsFormat::kPrometheusText),
            read_file(std::string(QTX_TEST_DATA_DIR) + "/metrics-text.txt"));
}

TEST(MetricsRender, OpenMetricsIsExact) {
  EXPECT_EQ(render_metrics(fixture(), MetricsFormat::kOpenMetrics),
            read_file(std::string(QTX_TEST_DATA_DIR) + "/metrics-openmetrics.txt"));
}

TEST(MetricsRender, FormatsDifferOnlyWhereTheSpecsDo) {
  const std::string text = render_metrics(fixture(), MetricsFormat::kPrometheusText);
  const std::string om = render_metrics(fixture(), MetricsFormat::kOpenMetrics);
  // Counters: Prometheus text names the sample, OpenMetrics the family.
  EXPECT_NE(text.find("# TYPE qtx_agent_handshakes_total counter\n"), std::string::npos);
  EXPECT_NE(om.find("# TYPE qtx_agent_handshakes counter\n"), std::string::npos);
  EXPECT_NE(om.find("# UNIT qtx_agent_received_bytes bytes\n"), std::string::npos);
  EXPECT_EQ(text.find("# UNIT"), std::string::npos);
  EXPECT_EQ(text.find("# EOF"), std::string::npos);
  ASSERT_GE(om.size(), 6u);
  EXPECT_EQ(om.substr(om.size() - 6), "# EOF\n");
  // Samples are the same lines in both.
  EXPECT_NE(text.find("qtx_agent_handshakes_total{agent=\"vm1\",env=\"prod\"} 2\n"), std::string::npos);
  EXPECT_NE(om.find("qtx_agent_handshakes_total{agent=\"vm1\",env=\"prod\"} 2\n"), std::string::npos);
}

TEST(MetricsRender, LabelValuesAreEscaped) {
  const std::string text = render_metrics(fixture(), MetricsFormat::kPrometheusText);
  EXPECT_NE(text.find("qtx_agent_up{agent=\"odd \\\"name\\\"\\\\\\n\"} 0\n"), std::string::npos) << text;
}

TEST(MetricsRender, GuestDevicesAreCappedAndCleaned) {
  auto agents = fixture();
  agents.resize(1);
  auto& t = *agents[0].telemetry;
  t.clear_interfaces();
  for (int i = 0; i < 40; ++i) t.add_interfaces()->set_name("eth" + std::to_string(i));
  t.add_interfaces()->set_name(std::string("bad\xff\x01name", 9));
  const std::string text = render_metrics(agents, MetricsFormat::kPrometheusText);
  std::size_t up_lines = 0;
  for (std::size_t at = 0; (at = text.find("\nqtx_guest_network_up{", at)) != std::string::npos; ++at) ++up_lines;
  EXPECT_EQ(up_lines, kMaxGuestDevices);
  EXPECT_NE(text.find("qtx_guest_network_up{agent=\"vm1\",env=\"prod\",interface=\"eth31\"} 0\n"), std::string::npos);
  EXPECT_EQ(text.find("interface=\"eth32\""), std::string::npos);
  EXPECT_NE(text.find("qtx_guest_devices_omitted{agent=\"vm1\",env=\"prod\",what=\"interfaces\"} 9\n"),
            std::string::npos);
  EXPECT_NE(text.find("qtx_guest_devices_omitted{agent=\"vm1\",env=\"prod\",what=\"filesystems\"} 1\n"),
            std::string::npos);

  t.clear_interfaces();
  t.add_interfaces()->set_name(std::string("bad\xff\x01name", 9));
  const std::string cleaned = render_metrics(agents, MetricsFormat::kPrometheusText);
  EXPECT_NE(cleaned.find("interface=\"bad??name\"} 0\n"), std::string::npos) << cleaned;
}

TEST(MetricsRender, AnAgentRepeatingAnotherIsLeftOut) {
  auto agents = fixture();
  agents.push_back(agents[0]);
  agents.back().stats.handshakes = 99;
  const std::string text = render_metrics(agents, MetricsFormat::kPrometheusText);
  EXPECT_NE(text.find("qtx_agents 2\n"), std::string::npos);  // the repeat is not counted
  EXPECT_EQ(text.find(" 99\n"), std::string::npos);
}

TEST(MetricsRender, NoAgents) {
  const std::string om = render_metrics(std::vector<AgentMetrics>{}, MetricsFormat::kOpenMetrics);
  const std::string head = "# HELP qtx_agents Agents the manager holds.\n# TYPE qtx_agents gauge\nqtx_agents 0\n";
  EXPECT_EQ(om.substr(0, head.size()), head);
  EXPECT_EQ(om.find('{'), std::string::npos);  // families, no samples
}

TEST(MetricsRender, AcceptHeaderPicksTheFormat) {
  EXPECT_EQ(metrics_format_for_accept("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"),
            MetricsFormat::kOpenMetrics);
  EXPECT_EQ(metrics_format_for_accept("text/plain"), MetricsFormat::kPrometheusText);
  EXPECT_EQ(metrics_format_for_accept(""), MetricsFormat::kPrometheusText);
}

}  // namespace
}  // namespace qtx::host
