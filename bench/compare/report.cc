#include "report.h"

#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>

namespace qtx::bench {

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5)];
}

double Samples::median() const { return percentile(values, 0.5); }
double Samples::min() const { return values.empty() ? NAN : *std::min_element(values.begin(), values.end()); }
double Samples::max() const { return values.empty() ? NAN : *std::max_element(values.begin(), values.end()); }

double Metric::advantage() const {
  if (qtx.empty() || qga.empty()) return NAN;
  const double a = qtx.median(), b = qga.median();
  if (a <= 0 || b <= 0) return NAN;
  return higher_is_better ? a / b : b / a;
}

Metric make_metric(std::string transport, std::string name, std::string unit, bool higher_is_better) {
  Metric m;
  m.transport = std::move(transport);
  m.name = std::move(name);
  m.unit = std::move(unit);
  m.higher_is_better = higher_is_better;
  return m;
}

Machine describe_machine(const std::string& accel) {
  Machine m;
  m.cores = static_cast<int>(::sysconf(_SC_NPROCESSORS_ONLN));
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("model name", 0) == 0) {
      m.cpu = line.substr(line.find(':') + 2);
      break;
    }
  }
  utsname u{};
  ::uname(&u);
  m.kernel = u.release;
  m.accel = accel;
  return m;
}

namespace {

std::string fmt(double v) {
  if (std::isnan(v)) return "-";
  char buf[32];
  if (v >= 100) {
    std::snprintf(buf, sizeof(buf), "%.0f", v);
  } else if (v >= 10) {
    std::snprintf(buf, sizeof(buf), "%.1f", v);
  } else {
    std::snprintf(buf, sizeof(buf), "%.2f", v);
  }
  return buf;
}

std::string with_spread(const Samples& s) {
  if (s.empty()) return "n/a";
  if (s.values.size() == 1) return fmt(s.median());
  return fmt(s.median()) + " (" + fmt(s.min()) + "-" + fmt(s.max()) + ")";
}

std::string json_str(const std::string& s) {
  std::string q = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      q += '\\';
      q += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      q += buf;
    } else {
      q += c;
    }
  }
  return q + "\"";
}

std::string json_num(double v) {
  if (std::isnan(v)) return "null";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.6g", v);
  return buf;
}

}  // namespace

void print_table(const Machine& m, const std::vector<Metric>& metrics) {
  std::printf("\nmachine: %d cores, %s, kernel %s, guest acceleration: %s\n", m.cores, m.cpu.c_str(), m.kernel.c_str(),
              m.accel.c_str());
  std::printf("figures: median (min-max) of the repetitions; advantage: how many times better qtx is\n\n");
  std::printf("%-8s %-48s %-9s %-24s %-24s %-9s %-9s %-22s %s\n", "via", "metric", "unit", "qtx", "qemu-ga", "ceiling",
              "advantage", "goal", "");
  for (const auto& x : metrics) {
    const double adv = x.advantage();
    std::string verdict = x.met == 1 ? "met" : (x.met == 0 ? "MISSED" : "");
    std::printf("%-8s %-48s %-9s %-24s %-24s %-9s %-9s %-22s %s\n", x.transport.c_str(), x.name.c_str(), x.unit.c_str(),
                with_spread(x.qtx).c_str(), with_spread(x.qga).c_str(), fmt(x.ceiling).c_str(),
                std::isnan(adv) ? "-" : (fmt(adv) + "x").c_str(), x.goal.c_str(), verdict.c_str());
    if (!x.note.empty()) std::printf("%-8s   note: %s\n", "", x.note.c_str());
  }
}

bool write_json(const std::string& path, const Machine& m, const std::vector<Metric>& metrics) {
  std::ofstream f(path);
  f << "{\"machine\":{\"cores\":" << m.cores << ",\"cpu\":" << json_str(m.cpu) << ",\"kernel\":" << json_str(m.kernel)
    << ",\"guest_acceleration\":" << json_str(m.accel) << "},\n\"metrics\":[\n";
  for (std::size_t i = 0; i < metrics.size(); ++i) {
    const auto& x = metrics[i];
    f << "{\"transport\":" << json_str(x.transport) << ",\"name\":" << json_str(x.name)
      << ",\"unit\":" << json_str(x.unit) << ",\"higher_is_better\":" << (x.higher_is_better ? "true" : "false")
      << ",\"qtx\":" << json_num(x.qtx.median()) << ",\"qtx_min\":" << json_num(x.qtx.min())
      << ",\"qtx_max\":" << json_num(x.qtx.max()) << ",\"qemu_ga\":" << json_num(x.qga.median())
      << ",\"qemu_ga_min\":" << json_num(x.qga.min()) << ",\"qemu_ga_max\":" << json_num(x.qga.max())
      << ",\"ceiling\":" << json_num(x.ceiling) << ",\"ratio\":" << json_num(x.advantage())
      << ",\"goal\":" << json_str(x.goal) << ",\"met\":" << (x.met < 0 ? "null" : (x.met ? "true" : "false"))
      << ",\"note\":" << json_str(x.note) << "}" << (i + 1 < metrics.size() ? ",\n" : "\n");
  }
  f << "]}\n";
  return static_cast<bool>(f.flush());
}

bool write_markdown(const std::string& path, const Machine& m, const std::vector<Metric>& metrics) {
  std::ofstream f(path);
  f << "Machine: " << m.cores << " cores, " << m.cpu << ", kernel " << m.kernel << "; guest: " << m.accel
    << ". Median of the repetitions, (min-max) beside it; advantage: how many times better qtx is.\n\n"
    << "| via | metric | unit | qtx | qemu-ga | ceiling | advantage | goal | |\n"
    << "|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& x : metrics) {
    const double adv = x.advantage();
    f << "| " << x.transport << " | " << x.name << " | " << x.unit << " | " << with_spread(x.qtx) << " | "
      << with_spread(x.qga) << " | " << fmt(x.ceiling) << " | " << (std::isnan(adv) ? "-" : fmt(adv) + "x") << " | "
      << x.goal << " | " << (x.met == 1 ? "met" : (x.met == 0 ? "**missed**" : "")) << " |\n";
  }
  return static_cast<bool>(f.flush());
}

bool plot(const std::string& png, const std::string& left_title, const std::string& left_xlabel,
          const std::vector<Series>& left, const std::string& right_title, const std::string& right_xlabel,
          const std::vector<Series>& right) {
  const std::string data = png + ".dat";
  std::ofstream d(data);
  int index = 0;
  std::string plots[2];
  const std::vector<Series>* panels[2] = {&left, &right};
  for (int p = 0; p < 2; ++p) {
    for (const auto& s : *panels[p]) {
      for (std::size_t i = 0; i < s.x.size(); ++i) d << s.x[i] << " " << s.y[i] << "\n";
      d << "\n\n";
      plots[p] += std::string(plots[p].empty() ? "" : ", ") + "'" + data + "' index " + std::to_string(index++) +
                  " with linespoints lw 2 title '" + s.title + "'";
    }
  }
  d.close();
  const std::string script = png + ".gp";
  std::ofstream g(script);
  g << "set terminal pngcairo size 1400,720 font 'Sans,11'\nset output '" << png << "'\n"
    << "set multiplot layout 1,2\nset grid\nset logscale x 2\nset logscale y 10\nset key below\n"
    << "set title '" << left_title << "'\nset xlabel '" << left_xlabel << "'\nset ylabel 'MB/s'\nplot " << plots[0]
    << "\nset title '" << right_title << "'\nset xlabel '" << right_xlabel << "'\nset ylabel 'requests/s'\nplot "
    << plots[1] << "\nunset multiplot\n";
  g.close();
  return std::system(("gnuplot '" + script + "' 2>/dev/null").c_str()) == 0;
}

}  // namespace qtx::bench
