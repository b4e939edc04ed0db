// The host library with thousands of connections: what each costs, counted
// (heap bytes, allocations, frames), never timed. The agents are simulated
// (AgentSwarm: one process serving every socket) and answer with a real
// qtx-agent's identity, so the host stores what it would in service.
#include <gtest/gtest.h>
#include <malloc.h>
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <new>
#include <vector>

#include "qtx/host/manager.h"
#include "support/agent_process.h"
#include "support/agent_swarm.h"

// A sanitizer's runtime defines operator new itself (and its allocator
// makes mallinfo2 meaningless): there the test is skipped.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define QTX_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
#define QTX_SANITIZED 1
#endif
#endif

// Every allocation in the process (the library's included), for counting
// the work of a call. Sized and aligned forms fall back to these.
static std::atomic<std::uint64_t> g_allocations{0};

#ifndef QTX_SANITIZED
void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#endif

namespace qtx::testing {
namespace {

namespace host = ::qtx::host;
namespace v1 = ::qtx::agent::v1;
using namespace std::chrono_literals;

constexpr std::size_t kAgents = 2000;
constexpr int kPings = 400;

v1::AgentIdentity real_identity() {
  char tmpl[] = "/tmp/qtx-scale-test.XXXXXX";
  EXPECT_NE(::mkdtemp(tmpl), nullptr);
  const std::string path = std::string(tmpl) + "/agent.sock";
  AgentProcess agent("unix-listen:" + path, "[telemetry]\ninterval_ms = 3600000\n", "warn");
  host::Manager manager;
  host::AgentOptions o;
  o.endpoint = host::Endpoint::connect(path);
  o.reconnect_min = 10ms;
  auto a = manager.add(o);
  EXPECT_TRUE(a.ok());
  auto ready = a.value()->wait_ready(30s);
  EXPECT_TRUE(ready.ok()) << agent.log();
  return ready ? ready.value() : v1::AgentIdentity();
}

// Agents adopting `n` of the swarm's sockets, each ready; no keepalive, so
// that nothing but the test's own calls runs.
std::vector<std::shared_ptr<host::Agent>> connect(host::Manager& manager, AgentSwarm& swarm, std::size_t n) {
  std::vector<std::shared_ptr<host::Agent>> agents;
  agents.reserve(n);
  for (int fd : swarm.connect(n)) {
    host::AgentOptions o;
    o.endpoint = host::Endpoint::adopt(fd);
    o.keepalive_interval = 0ms;
    auto a = manager.add(o);
    EXPECT_TRUE(a.ok()) << a.error().to_string();
    if (a) agents.push_back(a.value());
  }
  for (auto& a : agents) EXPECT_TRUE(a->wait_ready(60s).ok()) << a->name();
  return agents;
}

std::uint64_t frames_out(const std::vector<std::shared_ptr<host::Agent>>& agents) {
  std::uint64_t n = 0;
  for (const auto& a : agents) n += a->stats().frames_out;
  return n;
}

// Allocations (the whole process) for kPings pings, one at a time, over the
// agents round-robin; every agent is pinged once before.
std::uint64_t allocations_for_pings(const std::vector<std::shared_ptr<host::Agent>>& agents) {
  for (auto& a : agents) EXPECT_TRUE(a->ping({}, {}).ok());
  const std::uint64_t before = g_allocations.load();
  for (int i = 0; i < kPings; ++i) {
    EXPECT_TRUE(agents[static_cast<std::size_t>(i) % agents.size()]->ping({}, {}).ok());
  }
  return g_allocations.load() - before;
}

TEST(HostScale, ThousandsOfConnectionsCostBoundedHeapAndCallsDoNotTouchOtherAgents) {
#ifdef QTX_SANITIZED
  GTEST_SKIP() << "counts heap bytes and allocations: not under a sanitizer's allocator";
#endif
  if (::mallinfo2().uordblks == 0) GTEST_SKIP() << "no mallinfo2 figures";
  rlimit nofile{};
  ::getrlimit(RLIMIT_NOFILE, &nofile);
  nofile.rlim_cur = nofile.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &nofile);
  if (nofile.rlim_cur < kAgents + 200) GTEST_SKIP() << "needs " << kAgents + 200 << " descriptors";

  const v1::AgentIdentity identity = real_identity();
  ASSERT_GT(identity.capabilities_size(), 10) << "the real agent's identity";
  AgentSwarm swarm(identity);  // before any Manager thread of this test runs

  std::uint64_t few_allocations = 0;
  {
    host::Manager manager;
    auto few = connect(manager, swarm, 10);
    ASSERT_EQ(few.size(), 10u);
    few_allocations = allocations_for_pings(few);
  }

  host::Manager manager;
  ::malloc_trim(0);
  const auto heap0 = ::mallinfo2().uordblks;
  auto agents = connect(manager, swarm, kAgents);
  ASSERT_EQ(agents.size(), kAgents);
  const auto heap1 = ::mallinfo2().uordblks - agents.capacity() * sizeof(agents[0]);
  const double per_connection = static_cast<double>(heap1 - heap0) / kAgents;
  // docs/benchmarks.md, "host scale": at most 4 KiB of host memory each.
  EXPECT_LT(per_connection, 4096.0) << "heap bytes per ready connection";
  std::printf("[ figure ] heap per connection at %zu connections: %.0f bytes\n", kAgents, per_connection);

  // A call on one agent: exactly its request goes out, on that agent only.
  const std::uint64_t out0 = frames_out(agents);
  const auto target0 = agents[7]->stats().frames_out;
  ASSERT_TRUE(agents[7]->ping({}, {}).ok());
  EXPECT_EQ(agents[7]->stats().frames_out, target0 + 1);
  EXPECT_EQ(frames_out(agents), out0 + 1);

  // The same calls allocate as much with 2,000 connections as with 10:
  // nothing per call is sized by the number of links. Within a handful:
  // Asio recycles a handler's memory through a small per-thread cache, and
  // which thread frees it first (the caller's or the I/O thread) varies.
  const std::uint64_t many_allocations = allocations_for_pings(agents);
  const std::uint64_t apart =
      many_allocations > few_allocations ? many_allocations - few_allocations : few_allocations - many_allocations;
  EXPECT_LE(apart, 4u) << "allocations for " << kPings << " pings: 10 connections " << few_allocations << ", "
                       << kAgents << " " << many_allocations;
  std::printf("[ figure ] allocations per ping: %.2f (10 connections), %.2f (%zu)\n",
              static_cast<double>(few_allocations) / kPings, static_cast<double>(many_allocations) / kPings, kAgents);
}

}  // namespace
}  // namespace qtx::testing
