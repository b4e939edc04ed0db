// The exposition formats' text rules (Prometheus text 0.0.4, OpenMetrics
// 1.0.0): label names, escaping, numbers, and a writer that emits one metric
// family after another. Knows nothing of agents.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "qtx/host/metrics.h"

namespace qtx::host::detail {

// [a-zA-Z_][a-zA-Z0-9_]*
bool valid_label_name(std::string_view name);
// "agent", a label the metrics set themselves, or one starting with "__".
bool reserved_label_name(std::string_view name);
bool valid_utf8(std::string_view s);
// A label value from the guest: invalid UTF-8 sequences and control
// characters become '?', cut (on a character boundary) to at most `max` bytes.
std::string sanitize_label_value(std::string_view s, std::size_t max);

// `name="value"` with the value escaped (\\, \", \n), appended to *out.
void append_label(std::string* out, std::string_view name, std::string_view value);

enum class MetricType { kCounter, kGauge, kHistogram };

class Exposition {
 public:
  explicit Exposition(MetricsFormat format) : format_(format) {}
  // Room for `bytes` of text, so a large exposition is not copied as it grows.
  void reserve(std::size_t bytes) { out_.reserve(bytes); }

  // Starts a family. `name` is the family name (without _total for a
  // counter); `unit` is its base unit ("seconds", "bytes", "ratio") or
  // empty, and `name` ends with it.
  void family(std::string_view name, MetricType type, std::string_view unit, std::string_view help);
  // One sample of the current family: the family name + `suffix` ("_total"
  // is added for counters, "_bucket" etc. given for histograms), `labels`
  // already rendered (append_label, comma separated, may be empty), `extra`
  // one more rendered label or empty.
  void sample(std::string_view suffix, std::string_view labels, std::string_view extra, std::uint64_t value);
  void sample(std::string_view suffix, std::string_view labels, std::string_view extra, double value);
  // The text, ended by "# EOF" in OpenMetrics.
  std::string finish();

 private:
  void head(std::string_view suffix, std::string_view labels, std::string_view extra);

  MetricsFormat format_;
  std::string out_;
  std::string name_;
  MetricType type_ = MetricType::kGauge;
};

// Shortest text that reads back as `v` ("NaN", "+Inf", "-Inf" included).
std::string format_double(double v);

}  // namespace qtx::host::detail
