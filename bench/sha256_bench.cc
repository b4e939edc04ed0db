// SHA-256 as the file transfers use it: qtx::wire::Sha256 beside Nettle's
// sha256 (Debian's build: x86-64 assembly, SHA-NI chosen at run time), on
// the same buffers in the same run. BM_Sha256Portable is our code without
// the CPU's SHA extensions, the path a CPU (or an emulator) without them takes.
#include <benchmark/benchmark.h>
#include <nettle/sha2.h>

#include <cstdint>
#include <random>
#include <string>

#include "qtx/wire/sha256.h"

namespace {

std::string random_bytes(std::size_t n) {
  std::mt19937 rng(6);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

void BM_Sha256Qtx(benchmark::State& state) {
  const std::string data = random_bytes(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) {
    qtx::wire::Sha256 h;
    h.update(data);
    benchmark::DoNotOptimize(h.finish());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * data.size()));
  state.SetLabel(qtx::wire::detail::sha256_accelerated() ? "sha-ni" : "portable");
}

void BM_Sha256Portable(benchmark::State& state) {
  const std::string data = random_bytes(static_cast<std::size_t>(state.range(0)));
  const auto* p = reinterpret_cast<const std::uint8_t*>(data.data());
  for (auto _ : state) {
    std::uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                          0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    qtx::wire::detail::sha256_blocks_portable(h, p, data.size() / 64);
    benchmark::DoNotOptimize(h);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * data.size()));
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

BENCHMARK(BM_Sha256Qtx)->Arg(64 << 10)->Arg(1 << 20);
BENCHMARK(BM_Sha256Portable)->Arg(64 << 10)->Arg(1 << 20);
BENCHMARK(BM_Sha256Nettle)->Arg(64 << 10)->Arg(1 << 20);

BENCHMARK_MAIN();
