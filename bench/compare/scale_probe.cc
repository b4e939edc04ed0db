// scale_probe: instructions per ping with N connections, for checking that
// a call's work does not grow with the number of other agents. Run under
// callgrind; the costs are zeroed before the measured pings and dumped
// after them (client requests), into OUT.1:
//
//   valgrind --tool=callgrind --callgrind-out-file=OUT build/bin/scale_probe N PINGS
//
// N simulated agents (an AgentSwarm, each a socket the host adopts) are
// connected and ready, with keepalive at one hour so that no keepalive
// fires during the pings while every link's keepalive timer is armed (the
// timer queue holds N entries, as it does in service). Then PINGS pings run
// one at a time, round-robin over all N agents. Instructions per ping: the
// collected total (every thread of this process) divided by PINGS; the
// swarm's process is not collected.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#include "qtx/host/manager.h"
#include "support/agent_swarm.h"

#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#else
#define CALLGRIND_ZERO_STATS
#define CALLGRIND_DUMP_STATS_AT(what)
#endif

int main(int argc, char** argv) {
  using namespace std::chrono_literals;
  namespace host = qtx::host;
  if (argc != 3) {
    std::fprintf(stderr, "usage: scale_probe N PINGS\n");
    return 2;
  }
  const int n = std::atoi(argv[1]);
  const int pings = std::atoi(argv[2]);
  if (n < 1 || pings < 1) return 2;
  rlimit nofile{};
  ::getrlimit(RLIMIT_NOFILE, &nofile);
  nofile.rlim_cur = nofile.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &nofile);

  qtx::agent::v1::AgentIdentity identity;
  identity.set_instance_id("scale-probe");
  qtx::testing::AgentSwarm swarm(identity);
  host::Manager manager;
  std::vector<std::shared_ptr<host::Agent>> agents;
  for (int fd : swarm.connect(static_cast<std::size_t>(n))) {
    host::AgentOptions o;
    o.endpoint = host::Endpoint::adopt(fd);
    o.keepalive_interval = 3600s;
    o.keepalive_timeout = 7200s;
    o.handshake_timeout = 600s;  // valgrind slows both processes down
    auto a = manager.add(o);
    if (!a) {
      std::fprintf(stderr, "%s\n", a.error().to_string().c_str());
      return 1;
    }
    agents.push_back(a.value());
  }
  for (auto& a : agents) {
    if (!a->wait_ready(600s)) return 1;
  }
  // A warm-up round, so that every link has sent once (lazily made state).
  for (auto& a : agents) {
    if (!a->ping({}, {})) return 1;
  }
  CALLGRIND_ZERO_STATS;  // every thread's costs so far
  for (int i = 0; i < pings; ++i) {
    if (!agents[static_cast<std::size_t>(i % n)]->ping({}, {})) return 1;
  }
  CALLGRIND_DUMP_STATS_AT("pings");
  std::printf("%d agents, %d pings\n", n, pings);
  return 0;
}
