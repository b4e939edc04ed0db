// collect_metrics and render_metrics: the metric families of docs/metrics.md.
#include "qtx/host/metrics.h"

#include <charconv>
#include <chrono>
#include <set>
#include <unordered_set>

#include "io_thread.h"
#include "link.h"
#include "metrics_text.h"
#include "qtx/host/manager.h"

namespace qtx::host {

namespace detail {
struct ManagerAccess {
  static const std::shared_ptr<IoThread>& io(const Manager& m) { return m.io_; }
};
}  // namespace detail

namespace {

namespace v1 = ::qtx::agent::v1;
using detail::append_label;
using detail::Exposition;
using detail::MetricType;

// A guest device (filesystem, disk, interface) kept for the exposition: its
// labels rendered, and the entry.
template <class T>
struct Device {
  std::string labels;
  const T* entry;
};

// One agent, ready to render: its labels rendered once, its guest devices
// capped and without duplicates.
struct Prepared {
  const AgentMetrics* m = nullptr;
  std::string labels;
  std::vector<Device<v1::Filesystem>> filesystems;
  std::vector<Device<v1::DiskIo>> disks;
  std::vector<Device<v1::NetworkInterface>> interfaces;
  std::uint64_t omitted_filesystems = 0, omitted_disks = 0, omitted_interfaces = 0;
};

// Keeps the first kMaxGuestDevices entries of distinct labels; counts the rest.
template <class T, class Labels>
void pick_devices(const google::protobuf::RepeatedPtrField<T>& all, Labels labels_of, std::vector<Device<T>>* out,
                  std::uint64_t* omitted) {
  std::unordered_set<std::string> seen;
  for (const T& e : all) {
    std::string labels = labels_of(e);
    if (out->size() >= kMaxGuestDevices || !seen.insert(labels).second) {
      ++*omitted;
      continue;
    }
    out->push_back({std::move(labels), &e});
  }
}

std::string caller_value(const std::string& v);

std::string guest_label(std::string_view name, const std::string& value) {
  std::string out;
  append_label(&out, name, detail::sanitize_label_value(value, kMaxGuestLabelValue));
  return out;
}

std::vector<Prepared> prepare(const std::vector<AgentMetrics>& agents) {
  std::vector<Prepared> out;
  std::set<std::string> seen;
  for (const AgentMetrics& a : agents) {
    Prepared p;
    p.m = &a;
    append_label(&p.labels, "agent", caller_value(a.name));
    for (const auto& [name, value] : a.labels) {
      // add() has checked a Manager's labels; a caller's own list is
      // checked here, and a label that cannot be rendered is left out.
      if (!detail::valid_label_name(name) || detail::reserved_label_name(name)) continue;
      p.labels += ',';
      append_label(&p.labels, name, caller_value(value));
    }
    if (!seen.insert(p.labels).second) continue;
    if (a.telemetry) {
      const v1::TelemetrySample& t = *a.telemetry;
      pick_devices(
          t.filesystems(),
          [](const v1::Filesystem& f) {
            return guest_label("mountpoint", f.mountpoint()) + "," + guest_label("device", f.device()) + "," +
                   guest_label("fstype", f.type());
          },
          &p.filesystems, &p.omitted_filesystems);
      pick_devices(
          t.disks(), [](const v1::DiskIo& d) { return guest_label("device", d.name()); }, &p.disks, &p.omitted_disks);
      pick_devices(
          t.interfaces(), [](const v1::NetworkInterface& n) { return guest_label("interface", n.name()); },
          &p.interfaces, &p.omitted_interfaces);
    }
    out.push_back(std::move(p));
  }
  return out;
}

// Writes the families, one after another, each over every agent.
class Renderer {
 public:
  Renderer(const std::vector<Prepared>& agents, MetricsFormat format) : agents_(agents), x_(format) {}

  std::string run() {
    // Room for the whole text up front (a large one is not copied as it
    // grows): 80 series per agent and at most 9 per device, each about 64
    // bytes besides the agent's labels and the device's, and the families'
    // HELP and TYPE lines.
    std::size_t bytes = 16384;
    for (const Prepared& p : agents_) {
      const std::size_t line = 64 + p.labels.size();
      bytes += 80 * line;
      for (const auto& d : p.filesystems) bytes += 6 * (line + d.labels.size());
      for (const auto& d : p.disks) bytes += 5 * (line + d.labels.size());
      for (const auto& d : p.interfaces) bytes += 9 * (line + d.labels.size());
    }
    x_.reserve(bytes);
    agent_families();
    guest_families();
    return x_.finish();
  }

 private:
  template <class Fn>
  void each(Fn fn) {
    for (const Prepared& p : agents_) fn(p);
  }
  template <class Fn>
  void each_with_telemetry(Fn fn) {
    for (const Prepared& p : agents_) {
      if (p.m->telemetry) fn(p, *p.m->telemetry);
    }
  }

  // A counter or gauge of one value per agent, from its stats.
  template <class Get>
  void per_agent(const char* name, MetricType type, const char* unit, const char* help, Get get) {
    x_.family(name, type, unit, help);
    each([&](const Prepared& p) { x_.sample("", p.labels, "", get(*p.m)); });
  }
  template <class Get>
  void per_sample(const char* name, MetricType type, const char* unit, const char* help, Get get) {
    x_.family(name, type, unit, help);
    each_with_telemetry([&](const Prepared& p, const v1::TelemetrySample& t) { x_.sample("", p.labels, "", get(t)); });
  }
  template <class T, class Get>
  void per_device(const char* name, MetricType type, const char* unit, const char* help,
                  std::vector<Device<T>> Prepared::*devices, Get get) {
    x_.family(name, type, unit, help);
    each([&](const Prepared& p) {
      for (const Device<T>& d : p.*devices) x_.sample("", p.labels, d.labels, get(*d.entry));
    });
  }

  void agent_families();
  void guest_families();

  const std::vector<Prepared>& agents_;
  Exposition x_;
};

std::string one_label(std::string_view name, std::string_view value) {
  std::string out;
  append_label(&out, name, value);
  return out;
}

// A histogram bound as OpenMetrics writes floats: "0.0005", "1.0".
std::string le_value(double bound) {
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, bound, std::chars_format::fixed);
  std::string s(buf, res.ptr);
  if (s.find('.') == std::string::npos) s += ".0";
  return s;
}

// A caller's name or label value: as given when it is UTF-8 (escaping
// handles the rest), else made so.
std::string caller_value(const std::string& v) {
  return detail::valid_utf8(v) ? v : detail::sanitize_label_value(v, v.size());
}

void Renderer::agent_families() {
  using C = MetricType;
  const auto counter = C::kCounter;
  const auto gauge = C::kGauge;
  x_.family("qtx_agents", gauge, "", "Agents the manager holds.");
  x_.sample("", "", "", static_cast<std::uint64_t>(agents_.size()));

  per_agent("qtx_agent_up", gauge, "", "1 when the agent is ready for calls (handshake done), else 0.",
            [](const AgentMetrics& m) { return std::uint64_t{m.state == State::kReady}; });
  x_.family("qtx_agent_state", gauge, "", "1 for the connection's current state, 0 for the others.");
  static const State kStates[] = {State::kDisconnected, State::kConnecting, State::kHandshaking, State::kReady};
  each([&](const Prepared& p) {
    for (State s : kStates) {
      x_.sample("", p.labels, one_label("state", state_name(s)), std::uint64_t{p.m->state == s});
    }
  });
  per_agent("qtx_agent_connect_attempts", counter, "", "Connections started (connect, listen or adopt).",
            [](const AgentMetrics& m) { return m.stats.connect_attempts; });
  per_agent("qtx_agent_connections", counter, "", "Connections that were established (reached the handshake).",
            [](const AgentMetrics& m) { return m.stats.connects; });
  per_agent("qtx_agent_handshakes", counter, "", "Handshakes completed (the agent became ready).",
            [](const AgentMetrics& m) { return m.stats.handshakes; });
  per_agent("qtx_agent_disconnects", counter, "",
            "Established connections that ended; each is followed by a reconnect.",
            [](const AgentMetrics& m) { return m.stats.disconnects; });
  per_agent("qtx_agent_restarts", counter, "",
            "Handshakes that found a new agent instance id (agent restarted or guest rebooted).",
            [](const AgentMetrics& m) { return m.stats.restarts_seen; });
  per_agent("qtx_agent_keepalive_pings", counter, "", "Keepalive pings sent after silence from the agent.",
            [](const AgentMetrics& m) { return m.stats.keepalive_pings; });
  per_agent("qtx_agent_keepalive_timeouts", counter, "",
            "Connections ended because the agent stayed silent past the keepalive timeout.",
            [](const AgentMetrics& m) { return m.stats.keepalive_timeouts; });

  per_agent("qtx_agent_calls_in_flight", gauge, "", "Calls sent to the agent and not yet ended.",
            [](const AgentMetrics& m) { return m.stats.calls_in_flight; });
  x_.family("qtx_agent_calls", counter, "",
            "Calls ended, by outcome: ok, the error kind of the guest's answer, or the local failure's kind.");
  each([&](const Prepared& p) {
    for (std::size_t k = 0; k < AgentStats::kCallOutcomes; ++k) {
      const char* outcome = k == 0 ? "ok" : error_kind_name(static_cast<ErrorKind>(k));
      x_.sample("", p.labels, one_label("outcome", outcome), p.m->stats.calls_ended[k]);
    }
  });
  x_.family("qtx_agent_call_duration_seconds", MetricType::kHistogram, "seconds",
            "Round trip of calls the agent answered, from the request queued to the final answer.");
  each([&](const Prepared& p) {
    const AgentStats& s = p.m->stats;
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < AgentStats::kRttBounds.size(); ++i) {
      cumulative += s.rtt_buckets[i];
      x_.sample("_bucket", p.labels, one_label("le", le_value(AgentStats::kRttBounds[i])), cumulative);
    }
    cumulative += s.rtt_buckets.back();
    x_.sample("_bucket", p.labels, one_label("le", "+Inf"), cumulative);
    x_.sample("_sum", p.labels, "", s.rtt_sum_seconds);
    x_.sample("_count", p.labels, "", cumulative);
  });

  per_agent("qtx_agent_received_bytes", counter, "bytes", "Bytes read from the agent's channel.",
            [](const AgentMetrics& m) { return m.stats.bytes_in; });
  per_agent("qtx_agent_sent_bytes", counter, "bytes", "Bytes written to the agent's channel.",
            [](const AgentMetrics& m) { return m.stats.bytes_out; });
  per_agent("qtx_agent_received_frames", counter, "", "Valid frames received from the agent.",
            [](const AgentMetrics& m) { return m.stats.frames_in; });
  per_agent("qtx_agent_sent_frames", counter, "", "Frames written to the agent.",
            [](const AgentMetrics& m) { return m.stats.frames_out; });
  x_.family("qtx_agent_dropped_bytes", counter, "bytes",
            "Received bytes the frame decoder dropped, by reason (docs/wire-format.md).");
  static const char* const kReasons[] = {"garbage", "bad_length", "bad_payload", "stalled", "reset"};
  each([&](const Prepared& p) {
    for (std::size_t r = 0; r < p.m->stats.dropped_bytes_by_reason.size(); ++r) {
      x_.sample("", p.labels, one_label("reason", kReasons[r]), p.m->stats.dropped_bytes_by_reason[r]);
    }
  });
  per_agent("qtx_agent_discarded_frames", counter, "",
            "Valid frames received before the handshake's answer, discarded.",
            [](const AgentMetrics& m) { return m.stats.discarded_frames; });
  per_agent("qtx_agent_stray_frames", counter, "", "Valid frames for calls no longer in flight.",
            [](const AgentMetrics& m) { return m.stats.stray_frames; });
  per_agent("qtx_agent_telemetry_samples", counter, "", "Telemetry samples received from the agent.",
            [](const AgentMetrics& m) { return m.stats.telemetry_samples; });
}

void Renderer::guest_families() {
  const auto counter = MetricType::kCounter;
  const auto gauge = MetricType::kGauge;
  x_.family("qtx_guest_telemetry_age_seconds", gauge, "seconds", "Time since the latest telemetry sample arrived.");
  each_with_telemetry(
      [&](const Prepared& p, const v1::TelemetrySample&) { x_.sample("", p.labels, "", p.m->telemetry_age_seconds); });
  per_sample("qtx_guest_telemetry_timestamp_seconds", gauge, "seconds",
             "The guest's wall clock when the latest sample was taken, in seconds since the epoch.",
             [](const v1::TelemetrySample& t) { return static_cast<double>(t.unix_time_ms()) / 1000.0; });
  per_sample("qtx_guest_uptime_seconds", gauge, "seconds", "Time since the guest booted.",
             [](const v1::TelemetrySample& t) { return static_cast<double>(t.uptime_ms()) / 1000.0; });

  x_.family("qtx_guest_cpu_usage_ratio", gauge, "ratio",
            "Share of all guest CPUs spent in each mode over the sample's interval (0 to 1).");
  each_with_telemetry([&](const Prepared& p, const v1::TelemetrySample& t) {
    if (!t.has_cpu()) return;
    const v1::CpuUsage& c = t.cpu();
    const std::pair<const char*, double> modes[] = {{"user", c.user_pct()},
                                                    {"system", c.system_pct()},
                                                    {"iowait", c.iowait_pct()},
                                                    {"steal", c.steal_pct()},
                                                    {"idle", c.idle_pct()}};
    for (const auto& [mode, pct] : modes) x_.sample("", p.labels, one_label("mode", mode), pct / 100.0);
  });

  struct MemoryField {
    const char* name;
    const char* help;
    std::uint64_t (v1::Memory::*get)() const;
  };
  static const MemoryField kMemory[] = {
      {"qtx_guest_memory_total_bytes", "Guest memory in total (MemTotal).", &v1::Memory::total_bytes},
      {"qtx_guest_memory_available_bytes", "Guest memory available for new work without swapping (MemAvailable).",
       &v1::Memory::available_bytes},
      {"qtx_guest_memory_free_bytes", "Guest memory unused (MemFree).", &v1::Memory::free_bytes},
      {"qtx_guest_memory_buffers_bytes", "Guest memory in block device buffers.", &v1::Memory::buffers_bytes},
      {"qtx_guest_memory_cached_bytes", "Guest memory in the page cache.", &v1::Memory::cached_bytes},
      {"qtx_guest_swap_total_bytes", "Guest swap space in total.", &v1::Memory::swap_total_bytes},
      {"qtx_guest_swap_free_bytes", "Guest swap space unused.", &v1::Memory::swap_free_bytes},
  };
  for (const MemoryField& f : kMemory) {
    x_.family(f.name, gauge, "bytes", f.help);
    each_with_telemetry([&](const Prepared& p, const v1::TelemetrySample& t) {
      if (t.has_memory()) x_.sample("", p.labels, "", (t.memory().*f.get)());
    });
  }

  x_.family("qtx_guest_load1", gauge, "", "Guest load average over 1 minute.");
  each_with_telemetry([&](const Prepared& p, const v1::TelemetrySample& t) {
    if (t.has_load()) x_.sample("", p.labels, "", t.load().one());
  });
  x_.family("qtx_guest_load5", gauge, "", "Guest load average over 5 minutes.");
  each_with_telemetry([&](const Prepared& p, const v1::TelemetrySample& t) {
    if (t.has_load()) x_.sample("", p.labels, "", t.load().five());
  });
  x_.family("qtx_guest_load15", gauge, "", "Guest load average over 15 minutes.");
  each_with_telemetry([&](const Prepared& p, const v1::TelemetrySample& t) {
    if (t.has_load()) x_.sample("", p.labels, "", t.load().fifteen());
  });
  per_sample("qtx_guest_processes", gauge, "", "Processes in the guest.",
             [](const v1::TelemetrySample& t) { return std::uint64_t{t.process_count()}; });
  per_sample("qtx_guest_users", gauge, "", "Login sessions in the guest.",
             [](const v1::TelemetrySample& t) { return static_cast<std::uint64_t>(t.users_size()); });

  using Fs = v1::Filesystem;
  per_device("qtx_guest_filesystem_size_bytes", gauge, "bytes", "Guest filesystem size.", &Prepared::filesystems,
             [](const Fs& f) { return f.size_bytes(); });
  per_device("qtx_guest_filesystem_used_bytes", gauge, "bytes", "Guest filesystem space in use.",
             &Prepared::filesystems, [](const Fs& f) { return f.used_bytes(); });
  per_device("qtx_guest_filesystem_avail_bytes", gauge, "bytes",
             "Guest filesystem space available to unprivileged users.", &Prepared::filesystems,
             [](const Fs& f) { return f.free_bytes(); });
  per_device("qtx_guest_filesystem_files", gauge, "", "Guest filesystem inodes in total.", &Prepared::filesystems,
             [](const Fs& f) { return f.inodes_total(); });
  per_device("qtx_guest_filesystem_files_free", gauge, "", "Guest filesystem inodes free.", &Prepared::filesystems,
             [](const Fs& f) { return f.inodes_free(); });
  per_device("qtx_guest_filesystem_readonly", gauge, "", "1 when the guest filesystem is mounted read-only.",
             &Prepared::filesystems, [](const Fs& f) { return std::uint64_t{f.read_only()}; });

  using Disk = v1::DiskIo;
  per_device("qtx_guest_disk_reads_completed", counter, "", "Guest disk reads completed.", &Prepared::disks,
             [](const Disk& d) { return d.reads(); });
  per_device("qtx_guest_disk_writes_completed", counter, "", "Guest disk writes completed.", &Prepared::disks,
             [](const Disk& d) { return d.writes(); });
  per_device("qtx_guest_disk_read_bytes", counter, "bytes", "Bytes read from the guest disk.", &Prepared::disks,
             [](const Disk& d) { return d.read_bytes(); });
  per_device("qtx_guest_disk_written_bytes", counter, "bytes", "Bytes written to the guest disk.", &Prepared::disks,
             [](const Disk& d) { return d.write_bytes(); });
  per_device("qtx_guest_disk_io_time_seconds", counter, "seconds", "Time the guest disk spent doing I/O.",
             &Prepared::disks, [](const Disk& d) { return static_cast<double>(d.io_ms()) / 1000.0; });

  using Nic = v1::NetworkInterface;
  per_device("qtx_guest_network_up", gauge, "", "1 when the guest interface's operational state is up.",
             &Prepared::interfaces, [](const Nic& n) { return std::uint64_t{n.oper_state() == "up"}; });
  per_device("qtx_guest_network_receive_bytes", counter, "bytes", "Bytes received on the guest interface.",
             &Prepared::interfaces, [](const Nic& n) { return n.rx_bytes(); });
  per_device("qtx_guest_network_transmit_bytes", counter, "bytes", "Bytes sent on the guest interface.",
             &Prepared::interfaces, [](const Nic& n) { return n.tx_bytes(); });
  per_device("qtx_guest_network_receive_packets", counter, "", "Packets received on the guest interface.",
             &Prepared::interfaces, [](const Nic& n) { return n.rx_packets(); });
  per_device("qtx_guest_network_transmit_packets", counter, "", "Packets sent on the guest interface.",
             &Prepared::interfaces, [](const Nic& n) { return n.tx_packets(); });
  per_device("qtx_guest_network_receive_errors", counter, "", "Receive errors on the guest interface.",
             &Prepared::interfaces, [](const Nic& n) { return n.rx_errors(); });
  per_device("qtx_guest_network_transmit_errors", counter, "", "Transmit errors on the guest interface.",
             &Prepared::interfaces, [](const Nic& n) { return n.tx_errors(); });
  per_device("qtx_guest_network_receive_drops", counter, "", "Received packets dropped on the guest interface.",
             &Prepared::interfaces, [](const Nic& n) { return n.rx_dropped(); });
  per_device("qtx_guest_network_transmit_drops", counter, "", "Outgoing packets dropped on the guest interface.",
             &Prepared::interfaces, [](const Nic& n) { return n.tx_dropped(); });

  x_.family("qtx_guest_devices_omitted", gauge, "",
            "Filesystems, disks or interfaces of the latest sample left out: past the cap of 32 per kind, or repeating "
            "one already shown.");
  each_with_telemetry([&](const Prepared& p, const v1::TelemetrySample&) {
    x_.sample("", p.labels, one_label("what", "filesystems"), p.omitted_filesystems);
    x_.sample("", p.labels, one_label("what", "disks"), p.omitted_disks);
    x_.sample("", p.labels, one_label("what", "interfaces"), p.omitted_interfaces);
  });
}

}  // namespace

const char* metrics_content_type(MetricsFormat format) {
  return format == MetricsFormat::kOpenMetrics ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
                                               : "text/plain; version=0.0.4; charset=utf-8";
}

MetricsFormat metrics_format_for_accept(std::string_view accept) {
  return accept.find("application/openmetrics-text") != std::string_view::npos ? MetricsFormat::kOpenMetrics
                                                                               : MetricsFormat::kPrometheusText;
}

std::vector<AgentMetrics> collect_metrics(const Manager& manager) {
  std::vector<AgentMetrics> out;
  const auto links = detail::ManagerAccess::io(manager)->links();
  out.reserve(links.size());
  const auto now = std::chrono::steady_clock::now();
  for (const auto& link : links) {
    detail::Link::MetricsView view = link->metrics_view();
    AgentMetrics m;
    m.name = link->name();
    m.labels = link->labels();
    m.state = view.state;
    m.stats = view.stats;
    if (view.telemetry) {
      m.telemetry = std::move(view.telemetry);
      m.telemetry_age_seconds = std::chrono::duration<double>(now - view.telemetry_at).count();
    }
    out.push_back(std::move(m));
  }
  return out;
}

std::string render_metrics(const std::vector<AgentMetrics>& agents, MetricsFormat format) {
  const std::vector<Prepared> prepared = prepare(agents);
  return Renderer(prepared, format).run();
}

std::string render_metrics(const Manager& manager, MetricsFormat format) {
  return render_metrics(collect_metrics(manager), format);
}

}  // namespace qtx::host
