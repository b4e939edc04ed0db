// SHA-256 as the file transfers use it: Nettle's sha256 (Debian's build:
// x86-64 assembly, SHA-NI chosen at run time), which qtx::wire::Sha256 wraps.
// Run natively and under qemu-x86_64 (docs/benchmarks.md, "SHA-256").
#include <benchmark/benchmark.h>
#include <nettle/sha2.h>

#include <cstdint>
#include <random>
#include <string>

namespace {

std::string random_bytes(std::size_t n) {
  std::mt19937 rng(6);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

void BM_Sha256Nettle(benchmark::State& state) {
  const std::string data = random_bytes(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) {
    sha256_ctx ctx;
    sha256_init(&ctx);
    sha256_update(&ctx, data.size(), reinterpret_cast<const std::uint8_t*>(data.data()));
    std::uint8_t digest[SHA256_DIGEST_SIZE];
    sha256_digest(&ctx, sizeof(digest), digest);
    benchmark::DoNotOptimize(digest);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * data.size()));
}

}  // namespace

BENCHMARK(BM_Sha256Nettle)->Arg(64 << 10)->Arg(1 << 20);

BENCHMARK_MAIN();
