#include "measure.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace qtx::bench {
namespace {}  // namespace

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

void die(const std::string& what) {
  std::fprintf(stderr, "agent_compare: %s\n", what.c_str());
  std::exit(1);
}

// Round trips of 32 bytes through a connected echo; the times in us.
std::vector<double> echo_round_trips(int fd, int n) {
  std::vector<double> us;
  char msg[32] = "qtx-echo-floor-0123456789abcdef";
  char back[32];
  for (int i = 0; i < n; ++i) {
    const auto t = Clock::now();
    if (::write(fd, msg, sizeof(msg)) != static_cast<ssize_t>(sizeof(msg))) die("echo write");
    std::size_t got = 0;
    while (got < sizeof(back)) {
      const ssize_t r = ::read(fd, back + got, sizeof(back) - got);
      if (r <= 0) die("echo read");
      got += static_cast<std::size_t>(r);
    }
    us.push_back(seconds_since(t) * 1e6);
  }
  return us;
}

namespace {

void measure_pings(Driver& d, const Plan& plan, PingFigures* f) {
  for (int rep = 0; rep < plan.reps; ++rep) {
    std::vector<double> us;
    const auto start = Clock::now();
    for (int i = 0; i < plan.pings; ++i) {
      const auto t = Clock::now();
      if (!d.ping()) die("ping: " + d.last_error());
      us.push_back(seconds_since(t) * 1e6);
    }
    f->rate1.add(plan.pings / seconds_since(start));
    f->p50.add(percentile(us, 0.5));
    f->p99.add(percentile(us, 0.99));
  }
}

double window_rate(Driver& d, int n, int window) {
  const auto t = Clock::now();
  if (!d.pings(n, window)) die("pipelined pings: " + d.last_error());
  return n / seconds_since(t);
}

std::string pattern(std::size_t bytes) {
  std::string data(bytes, '\0');
  std::uint32_t x = 2463534242u;
  for (std::size_t i = 0; i < bytes; ++i) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    data[i] = static_cast<char>(x);
  }
  return data;
}

double read_rate(Driver& d, const std::string& path, std::size_t bytes, std::size_t chunk) {
  std::string out;
  out.reserve(bytes);
  const auto t = Clock::now();
  if (!d.read_file(path, chunk, &out)) die("read " + path + ": " + d.last_error());
  const double s = seconds_since(t);
  if (out.size() != bytes) die("read " + path + ": " + std::to_string(out.size()) + " bytes");
  return static_cast<double>(bytes) / s / 1e6;
}

double write_rate(Driver& d, const std::string& path, const std::string& data, std::size_t chunk) {
  const auto t = Clock::now();
  if (!d.write_file(path, data, chunk)) die("write " + path + ": " + d.last_error());
  return static_cast<double>(data.size()) / seconds_since(t) / 1e6;
}

double exec_ms(Driver& d, const std::vector<std::string>& argv, std::size_t expect_bytes) {
  int code = -1;
  std::size_t bytes = 0;
  const auto t = Clock::now();
  if (!d.exec(argv, &code, &bytes)) die("exec " + argv[0] + ": " + d.last_error());
  const double ms = seconds_since(t) * 1e3;
  if (code != 0 || bytes != expect_bytes) die("exec " + argv[0] + ": exit " + std::to_string(code));
  return ms;
}

}  // namespace

void measure_agent(Driver& d, bool is_qga, const Plan& plan, const std::string& guest_dir, AgentFigures* f) {
  measure_pings(d, plan, &f->ping);
  for (int rep = 0; rep < plan.reps; ++rep) f->rate64.add(window_rate(d, plan.window_pings, 64));
  for (int w : plan.windows) f->window_rates.push_back(window_rate(d, plan.window_pings / 2, w));

  const std::size_t bytes = plan.mib << 20;
  const std::string data = pattern(bytes);
  const std::string file = guest_dir + (is_qga ? "/qga.bin" : "/qtx.bin");
  // The file to read is written by the agent itself first (also a warm-up).
  f->best_chunk = plan.qga_chunks.back();
  if (!d.write_file(file, data, 1 << 20)) die("write " + file + ": " + d.last_error());
  if (is_qga) {
    double best = 0;
    for (std::size_t chunk : plan.qga_chunks) {
      const double r = read_rate(d, file, bytes, chunk);
      f->chunk_read_rates.push_back(r);
      if (r > best) {
        best = r;
        f->best_chunk = chunk;
      }
    }
  }
  for (int rep = 0; rep < plan.reps; ++rep) {
    f->read_mbps.add(read_rate(d, file, bytes, f->best_chunk));
    f->write_mbps.add(write_rate(d, file, data, f->best_chunk));
    if (!is_qga) {
      d.set_checksums(false);
      f->read_mbps_nosha.add(read_rate(d, file, bytes, 0));
      f->write_mbps_nosha.add(write_rate(d, file, data, 0));
      d.set_checksums(true);
    }
  }
  for (int rep = 0; rep < plan.reps; ++rep) {
    std::vector<double> ms;
    for (int i = 0; i < plan.execs; ++i) ms.push_back(exec_ms(d, {"/bin/true"}, 0));
    f->exec_true_ms.add(percentile(ms, 0.5));
    f->exec_10m_ms.add(exec_ms(d, {"/bin/sh", "-c", "head -c 10485760 /dev/zero"}, 10u << 20));
  }
}

void add_common_metrics(const std::string& via, const Plan& plan, const AgentFigures& q, const AgentFigures& g,
                        double floor_p50, double ceiling_read, double ceiling_write, std::vector<Metric>* out) {
  auto row = [&](const std::string& name, const std::string& unit, bool higher, const Samples& a, const Samples& b) {
    Metric m = make_metric(via, name, unit, higher);
    m.qtx = a;
    m.qga = b;
    out->push_back(m);
    return &out->back();
  };
  auto* p50 = row("ping round trip p50", "us", false, q.ping.p50, g.ping.p50);
  p50->ceiling = floor_p50;
  p50->goal = "<= qemu-ga, <= 2x echo";
  p50->met = (p50->qtx.median() <= p50->qga.median() && p50->qtx.median() <= 2 * floor_p50) ? 1 : 0;
  p50->note = "ceiling column: a bare 32-byte echo over the same transport, the floor";
  auto* p99 = row("ping round trip p99", "us", false, q.ping.p99, g.ping.p99);
  p99->goal = "<= qemu-ga";
  p99->met = p99->qtx.median() <= p99->qga.median() ? 1 : 0;
  row("requests/s, 1 in flight", "req/s", true, q.ping.rate1, g.ping.rate1);
  auto* r64 = row("requests/s, 64 in flight", "req/s", true, q.rate64, g.rate64);
  r64->goal = ">= 10x qemu-ga";
  r64->met = r64->advantage() >= 10 ? 1 : 0;
  r64->note = "qemu-ga executes one request at a time; its 64 are pipelined on the socket";
  const std::string size = std::to_string(plan.mib) + " MiB";
  auto* rd = row("file read " + size + " (qtx sha256 checked)", "MB/s", true, q.read_mbps, g.read_mbps);
  auto* wr = row("file write " + size + " (qtx sha256 checked)", "MB/s", true, q.write_mbps, g.write_mbps);
  auto* rd2 = row("file read " + size + " (qtx no sha256)", "MB/s", true, q.read_mbps_nosha, g.read_mbps);
  auto* wr2 = row("file write " + size + " (qtx no sha256)", "MB/s", true, q.write_mbps_nosha, g.write_mbps);
  const std::string chunk_note = "qemu-ga: guest-file-read/write, base64, its best chunk here " +
                                 std::to_string(g.best_chunk >> 10) + " KiB; no checksum";
  rd->note = chunk_note;
  for (auto* m : {rd, wr, rd2, wr2}) {
    m->goal = ">= 10x qemu-ga";
    m->met = m->advantage() >= 10 ? 1 : 0;
  }
  if (!std::isnan(ceiling_read)) {
    for (auto* m : {rd, rd2}) m->ceiling = ceiling_read;
    for (auto* m : {wr, wr2}) m->ceiling = ceiling_write;
    for (auto* m : {rd, wr, rd2, wr2}) {
      m->goal = ">= 10x qemu-ga, >= 80% ceiling";
      m->met = (m->advantage() >= 10 && m->qtx.median() >= 0.8 * m->ceiling) ? 1 : 0;
    }
  }
  row("exec /bin/true round trip", "ms", false, q.exec_true_ms, g.exec_true_ms)->note =
      "qemu-ga: guest-exec, then guest-exec-status polled back to back";
  row("exec printing 10 MiB round trip", "ms", false, q.exec_10m_ms, g.exec_10m_ms);
}

void plot_series(const Plan& plan, const AgentFigures& q, const AgentFigures& g, const std::string& suffix,
                 std::vector<Series>* chunk_plot, std::vector<Series>* window_plot) {
  Series qga_chunks{"qemu-ga file read" + suffix, {}, {}};
  Series qtx_read{"qtx file read, sha256 checked" + suffix, {}, {}};
  Series qtx_read_nosha{"qtx file read, no sha256" + suffix, {}, {}};
  for (std::size_t i = 0; i < plan.qga_chunks.size() && i < g.chunk_read_rates.size(); ++i) {
    const double kib = static_cast<double>(plan.qga_chunks[i] >> 10);
    qga_chunks.x.push_back(kib);
    qga_chunks.y.push_back(g.chunk_read_rates[i]);
    qtx_read.x.push_back(kib);
    qtx_read.y.push_back(q.read_mbps.median());
    qtx_read_nosha.x.push_back(kib);
    qtx_read_nosha.y.push_back(q.read_mbps_nosha.median());
  }
  chunk_plot->insert(chunk_plot->end(), {qtx_read, qtx_read_nosha, qga_chunks});
  Series qw{"qtx" + suffix, {}, {}}, gw{"qemu-ga, pipelined" + suffix, {}, {}};
  for (std::size_t i = 0; i < plan.windows.size(); ++i) {
    qw.x.push_back(plan.windows[i]);
    qw.y.push_back(q.window_rates[i]);
    gw.x.push_back(plan.windows[i]);
    gw.y.push_back(g.window_rates[i]);
  }
  window_plot->insert(window_plot->end(), {qw, gw});
}

}  // namespace qtx::bench
