#include "exporter_command.h"

#include <glob.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "qtx/host/manager.h"
#include "qtx/host/metrics.h"

namespace qtx::cli {
namespace {

namespace host = ::qtx::host;

struct ExporterOptions {
  std::vector<std::string> globs;         // --socket-glob
  std::vector<std::string> dirs;          // --socket-dir: every socket directly in it
  std::string listen = "127.0.0.1:9756";  // --listen
  std::string name_pattern;               // --name-pattern: the first group names the agent
  std::vector<std::string> labels;        // --label K=V, on every agent
  double rescan = 5.0;                    // --rescan-interval, seconds
};

// The sockets the patterns match now (files that are sockets, nothing else).
std::set<std::string> scan(const ExporterOptions& o) {
  std::vector<std::string> patterns = o.globs;
  for (const auto& d : o.dirs) patterns.push_back((d.empty() || d.back() != '/' ? d + "/" : d) + "*");
  std::set<std::string> found;
  for (const auto& p : patterns) {
    glob_t g{};
    if (::glob(p.c_str(), 0, nullptr, &g) == 0) {
      for (std::size_t i = 0; i < g.gl_pathc; ++i) {
        struct stat st;
        if (::stat(g.gl_pathv[i], &st) == 0 && S_ISSOCK(st.st_mode)) found.insert(g.gl_pathv[i]);
      }
    }
    ::globfree(&g);
  }
  return found;
}

// The agent's name: the pattern's first group when it matches, else the
// socket's file name without its extension ("/run/qtx/vm1.sock" -> "vm1").
std::string name_for(const std::string& path, const std::optional<std::regex>& pattern) {
  if (pattern) {
    std::smatch m;
    if (std::regex_search(path, m, *pattern) && m.size() > 1 && m[1].matched) return m[1].str();
  }
  std::string base = path.substr(path.rfind('/') + 1);
  const auto dot = base.rfind('.');
  if (dot != std::string::npos && dot > 0) base.resize(dot);
  return base;
}

int run_exporter(const ExporterOptions& o) {
  std::optional<std::regex> pattern;
  if (!o.name_pattern.empty()) {
    try {
      pattern.emplace(o.name_pattern, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      std::fprintf(stderr, "qtx exporter: --name-pattern: %s\n", e.what());
      return 2;
    }
  }
  std::vector<std::pair<std::string, std::string>> labels;
  for (const auto& l : o.labels) {
    const auto eq = l.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::fprintf(stderr, "qtx exporter: --label %s: expected NAME=VALUE\n", l.c_str());
      return 2;
    }
    labels.emplace_back(l.substr(0, eq), l.substr(eq + 1));
  }

  host::Manager manager;
  auto server = host::MetricsServer::start(manager, o.listen);
  if (!server) {
    std::fprintf(stderr, "qtx exporter: %s\n", server.error().message().c_str());
    return 1;
  }
  // The address bound, first and alone on stdout (a test or a wrapper that
  // asked for port 0 reads it from here).
  std::printf("listening on %s\n", server.value()->address().c_str());
  std::fflush(stdout);

  // Sockets refused (another process owns them, or a bad label) are tried
  // again at every scan but reported only when the reason changes.
  std::map<std::string, std::string> refused;
  auto refuse = [&refused](const std::string& path, const std::string& why) {
    auto [it, fresh] = refused.emplace(path, why);
    if (fresh || it->second != why) {
      it->second = why;
      std::fprintf(stderr, "qtx exporter: not exporting %s: %s\n", path.c_str(), why.c_str());
    }
  };
  // The handles keep the agents open (an Agent closes when its last handle goes).
  std::map<std::string, std::shared_ptr<host::Agent>> exported;
  // name -> socket path. Two sockets under one name would be one series, so
  // the exposition would keep only the first: the second is refused, loudly.
  std::map<std::string, std::string> name_owner;
  const auto interval = std::chrono::duration<double>(o.rescan);
  for (;;) {
    const std::set<std::string> now = scan(o);
    for (const auto& path : now) {
      if (exported.count(path)) continue;
      host::AgentOptions a;
      a.endpoint = host::Endpoint::connect(path);
      a.name = name_for(path, pattern);
      a.labels = labels;
      if (auto owner = name_owner.find(a.name); owner != name_owner.end()) {
        refuse(path, "the name \"" + a.name + "\" is already exported for " + owner->second +
                         " (tell them apart with --name-pattern)");
        continue;
      }
      auto added = manager.add(a);
      if (!added) {
        refuse(path, added.error().to_string());
        continue;
      }
      refused.erase(path);
      exported.emplace(path, added.value());
      name_owner.emplace(a.name, path);
      std::fprintf(stderr, "qtx exporter: exporting %s as %s\n", path.c_str(), a.name.c_str());
    }
    // Sockets gone (the VM stopped): their agents go, and their series.
    for (auto it = exported.begin(); it != exported.end();) {
      if (now.count(it->first)) {
        ++it;
        continue;
      }
      name_owner.erase(name_for(it->first, pattern));
      manager.remove(it->second);
      std::fprintf(stderr, "qtx exporter: %s is gone; no longer exported\n", it->first.c_str());
      it = exported.erase(it);
    }
    for (auto it = refused.begin(); it != refused.end();) it = now.count(it->first) ? std::next(it) : refused.erase(it);
    std::this_thread::sleep_for(interval);
  }
}

}  // namespace

void add_exporter_command(CLI::App& app, std::function<int()>* run) {
  auto o = std::make_shared<ExporterOptions>();
  auto* sub = app.add_subcommand(
      "exporter",
      "Serve Prometheus metrics (GET /metrics) for every agent whose socket matches --socket-glob or lies in "
      "--socket-dir, added as its socket appears and dropped when it goes. Runs until SIGTERM. See docs/metrics.md.");
  sub->add_option("--socket-glob", o->globs, "A glob(7) pattern of agent sockets (repeatable), e.g. '/run/qtx/*.sock'");
  sub->add_option("--socket-dir", o->dirs, "A directory whose sockets are agents (repeatable)");
  sub->add_option("--listen", o->listen,
                  "HOST:PORT, [V6ADDR]:PORT or :PORT to serve /metrics on (default 127.0.0.1:9756)");
  sub->add_option("--name-pattern", o->name_pattern,
                  "A regular expression (ECMAScript) searched in the socket path; its first group is the agent label. "
                  "Default: the socket's file name without its extension");
  sub->add_option("--label", o->labels, "NAME=VALUE added to every agent's series (repeatable)");
  sub->add_option("--rescan-interval", o->rescan, "Seconds between scans for sockets (default 5)")
      ->check(CLI::Range(0.05, 3600.0));
  sub->callback([o, run] {
    if (o->globs.empty() && o->dirs.empty()) throw CLI::RequiredError("--socket-glob or --socket-dir");
    *run = [o] { return run_exporter(*o); };
  });
}

}  // namespace qtx::cli
