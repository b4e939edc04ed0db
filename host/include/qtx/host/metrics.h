// Metrics of a Manager's agents for Prometheus: connection health, call
// round trips and outcomes, bytes and frames each way, dropped bytes, and
// the guest's latest telemetry. Every metric, its labels and their bounds
// are listed in docs/metrics.md.
//
// Reading metrics never talks to a guest and never waits on one: it copies
// what the Manager already holds (each agent's counters, state and latest
// telemetry sample, under that agent's lock, held for the copy only) and
// renders the copy on the caller's thread. It may be called from any
// thread, callbacks included (no lock is held while a callback runs), but a
// large render is better kept off the I/O thread, which it would hold up.
//
// Cardinality is bounded: per agent the series are fixed by this header but
// for the guest's filesystems, disks and network interfaces, each capped at
// kMaxGuestDevices per kind (the first ones of the sample; duplicates after
// the first are left out, and what is left out is counted). Nothing is
// labelled per process, per call or per user.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "qtx/host/agent.h"
#include "qtx/host/error.h"
#include "qtx/host/export.h"

namespace qtx::host {

class Manager;

enum class MetricsFormat {
  kPrometheusText,  // text/plain; version=0.0.4
  kOpenMetrics,     // application/openmetrics-text; version=1.0.0 (ends with "# EOF")
};

// The Content-Type header for `format`.
QTX_HOST_API const char* metrics_content_type(MetricsFormat format);
// The format a scraper asks for in its Accept header: OpenMetrics when it
// names application/openmetrics-text, else the Prometheus text format.
QTX_HOST_API MetricsFormat metrics_format_for_accept(std::string_view accept);

// Filesystems, disks and network interfaces exported per agent, each.
inline constexpr std::size_t kMaxGuestDevices = 32;
// Label values from the guest (mountpoints, device and interface names) are
// cut to this many bytes, invalid UTF-8 and control characters become '?'.
inline constexpr std::size_t kMaxGuestLabelValue = 128;

// One agent's metrics, as copied from the Manager (or built by a caller that
// keeps its own).
struct AgentMetrics {
  std::string name;                                         // the `agent` label
  std::vector<std::pair<std::string, std::string>> labels;  // AgentOptions::labels
  State state = State::kDisconnected;
  AgentStats stats;
  std::optional<agent::v1::TelemetrySample> telemetry;  // the latest sample
  double telemetry_age_seconds = 0;                     // since it arrived here; with telemetry only
};

// A copy of every open agent's metrics, in the order the agents were added.
QTX_HOST_API std::vector<AgentMetrics> collect_metrics(const Manager& manager);

// The exposition of `agents`. A later agent with the same name and labels
// as an earlier one would repeat its series and is left out.
QTX_HOST_API std::string render_metrics(const std::vector<AgentMetrics>& agents, MetricsFormat format);
// collect_metrics + render_metrics.
QTX_HOST_API std::string render_metrics(const Manager& manager, MetricsFormat format);

// A built-in HTTP endpoint serving GET /metrics (either format, as the
// scraper's Accept header asks) on its own threads. Other paths get 404.
class QTX_HOST_API MetricsServer {
 public:
  // Renders the body for one scrape; called on a server thread, possibly
  // on several at once.
  using Render = std::function<std::string(MetricsFormat)>;

  // Listens on `address`: "HOST:PORT", "[V6ADDR]:PORT" or ":PORT" (every
  // address); port 0 picks a free one (see port()). The Manager must
  // outlive the server. kLocal when the address is malformed or cannot be
  // bound.
  static Result<std::unique_ptr<MetricsServer>> start(const Manager& manager, const std::string& address);
  static Result<std::unique_ptr<MetricsServer>> start(Render render, const std::string& address);

  // Stops listening and waits for scrapes being served.
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // The port bound (the one picked when 0 was asked).
  int port() const;
  // The host part as given ("" for every address) and the port bound:
  // "127.0.0.1:9464".
  std::string address() const;

 private:
  struct Impl;
  explicit MetricsServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace qtx::host
