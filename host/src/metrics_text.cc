#include "metrics_text.h"

#include <charconv>
#include <cmath>

namespace qtx::host::detail {
namespace {

// Labels the metrics set themselves; a caller's label of the same name
// would make two labels of one name on a series.
constexpr std::string_view kReserved[] = {"agent",  "state",  "outcome",    "reason",    "mode", "le",
                                          "device", "fstype", "mountpoint", "interface", "what", "quantile"};

// The length of the valid UTF-8 sequence at s[i], or 0.
std::size_t utf8_sequence(std::string_view s, std::size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) return 1;
  std::size_t n;
  std::uint32_t cp;
  if ((c & 0xE0) == 0xC0) {
    n = 2;
    cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3;
    cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    const auto cc = static_cast<unsigned char>(s[i + k]);
    if ((cc & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (cc & 0x3F);
  }
  // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
  if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000)) return 0;
  if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return 0;
  return n;
}

}  // namespace

bool valid_label_name(std::string_view name) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

bool reserved_label_name(std::string_view name) {
  if (name.substr(0, 2) == "__") return true;
  for (auto r : kReserved) {
    if (name == r) return true;
  }
  return false;
}

bool valid_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t n = utf8_sequence(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string sanitize_label_value(std::string_view s, std::size_t max) {
  std::string out;
  for (std::size_t i = 0; i < s.size();) {
    std::size_t n = utf8_sequence(s, i);
    if (out.size() + (n == 0 ? 1 : n) > max) break;
    const auto c = static_cast<unsigned char>(s[i]);
    if (n == 0 || (n == 1 && (c < 0x20 || c == 0x7F))) {
      out.push_back('?');
      i += n == 0 ? 1 : n;
      continue;
    }
    out.append(s.substr(i, n));
    i += n;
  }
  return out;
}

void append_label(std::string* out, std::string_view name, std::string_view value) {
  out->append(name);
  out->append("=\"");
  for (char c : value) {
    switch (c) {
      case '\\': out->append("\\\\"); break;
      case '"': out->append("\\\""); break;
      case '\n': out->append("\\n"); break;
      default: out->push_back(c);
    }
  }
  out->push_back('"');
}

std::string format_double(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, res.ptr);
}

void Exposition::family(std::string_view name, MetricType type, std::string_view unit, std::string_view help) {
  name_ = std::string(name);
  type_ = type;
  const bool om = format_ == MetricsFormat::kOpenMetrics;
  // Prometheus text names a counter by its sample (with _total); OpenMetrics
  // names the family.
  std::string shown = name_;
  if (type == MetricType::kCounter && !om) shown += "_total";
  const char* type_name = type == MetricType::kCounter ? "counter" : type == MetricType::kGauge ? "gauge" : "histogram";
  out_ += "# HELP " + shown + " ";
  for (char c : help) {  // both formats escape \ and newline in HELP
    if (c == '\\') {
      out_ += "\\\\";
    } else if (c == '\n') {
      out_ += "\\n";
    } else {
      out_ += c;
    }
  }
  out_ += "\n# TYPE " + shown + " " + type_name + "\n";
  if (om && !unit.empty()) out_ += "# UNIT " + shown + " " + std::string(unit) + "\n";
}

void Exposition::head(std::string_view suffix, std::string_view labels, std::string_view extra) {
  out_ += name_;
  if (type_ == MetricType::kCounter) out_ += "_total";
  out_ += suffix;
  if (!labels.empty() || !extra.empty()) {
    out_ += '{';
    out_ += labels;
    if (!labels.empty() && !extra.empty()) out_ += ',';
    out_ += extra;
    out_ += '}';
  }
  out_ += ' ';
}

void Exposition::sample(std::string_view suffix, std::string_view labels, std::string_view extra, std::uint64_t value) {
  head(suffix, labels, extra);
  char buf[24];
  auto res = std::to_chars(buf, buf + sizeof buf, value);
  out_.append(buf, res.ptr);
  out_ += '\n';
}

void Exposition::sample(std::string_view suffix, std::string_view labels, std::string_view extra, double value) {
  head(suffix, labels, extra);
  out_ += format_double(value);
  out_ += '\n';
}

std::string Exposition::finish() {
  if (format_ == MetricsFormat::kOpenMetrics) out_ += "# EOF\n";
  return std::move(out_);
}

}  // namespace qtx::host::detail
