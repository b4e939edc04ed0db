// The comparison's figures: repeated samples reduced to a median with its
// spread, rows for the table and the JSON, and the plot (gnuplot).
#pragma once

#include <cmath>
#include <string>
#include <vector>

namespace qtx::bench {

// Repeated measurements of one figure.
struct Samples {
  std::vector<double> values;
  void add(double v) { values.push_back(v); }
  bool empty() const { return values.empty(); }
  double median() const;
  double min() const;
  double max() const;
};
double percentile(std::vector<double> v, double p);

struct Metric {
  std::string transport;  // "unix" or "vm"
  std::string name, unit;
  bool higher_is_better = true;
  Samples qtx, qga;
  double ceiling = NAN;  // the transport's own figure, where there is one
  std::string goal;      // e.g. ">= 10x qemu-ga", or ""
  int met = -1;          // 1 met, 0 missed, -1 no goal
  std::string note;

  // How many times better qtx is (> 1: qtx better), or NAN.
  double advantage() const;
};

// A metric named and oriented; its samples, goal and note are set after.
Metric make_metric(std::string transport, std::string name, std::string unit, bool higher_is_better);

struct Machine {
  int cores = 0;
  std::string cpu, accel, kernel;
};
Machine describe_machine(const std::string& accel);

void print_table(const Machine& m, const std::vector<Metric>& metrics);
bool write_json(const std::string& path, const Machine& m, const std::vector<Metric>& metrics);
// The same table in Markdown, for docs/benchmarks.md.
bool write_markdown(const std::string& path, const Machine& m, const std::vector<Metric>& metrics);

// A series for the plot: x values and y values of one agent.
struct Series {
  std::string title;
  std::vector<double> x, y;
};
// Two panels side by side; false when gnuplot is missing or failed.
bool plot(const std::string& png, const std::string& left_title, const std::string& left_xlabel,
          const std::vector<Series>& left, const std::string& right_title, const std::string& right_xlabel,
          const std::vector<Series>& right);

}  // namespace qtx::bench
