// Framing-library micro-benchmarks. Every figure has its baseline in the same
// run: encode vs memcpy of the payload, decode vs memcpy of the stream, the
// resync scan over garbage vs a bare memchr loop over the same bytes, and the
// hostile stream of nested claims beside plain garbage.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>

#include "qtx/wire/crc32c.h"
#include "qtx/wire/decoder.h"
#include "qtx/wire/encoder.h"
#include "qtx/wire/seal.h"
#include "qtx/wire/sha256.h"
#include "support/frames.h"

namespace {

using qtx::wire::FrameDecoder;

constexpr std::size_t kStreamBytes = 4 << 20;  // decode benchmarks move this much per iteration
constexpr std::size_t kReadChunk = 64 * 1024;  // a typical read() from the port

std::string random_bytes(std::size_t n, std::uint32_t seed, bool allow_q) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) {
    c = static_cast<char>(rng());
    if (!allow_q && c == 'Q') c = 'q';
  }
  return s;
}

// A destination inside `base` (which has kAliasSlack spare bytes) placed so
// that (dst - src) mod 4096 == 2048. Buffers allocated back to back otherwise
// land a few bytes apart modulo 4 KiB, and the CPU's 4K-aliasing stalls make
// copies between them 10x slower than the machine's real memcpy.
constexpr std::size_t kAliasSlack = 4096;
char* unaliased(char* base, const char* src) {
  auto delta = (reinterpret_cast<std::uintptr_t>(base) - reinterpret_cast<std::uintptr_t>(src)) % 4096;
  return base + (2048 + 4096 - delta) % 4096;
}

// Takes every frame the decoder offers (with the seal required, the decoder
// has checked it).
class CountingHandler : public FrameDecoder::Handler {
 public:
  bool on_frame(std::string_view payload, std::uint64_t) override {
    bytes += payload.size();
    return true;
  }
  void on_drop(const qtx::wire::Drop& d) override { dropped += d.bytes; }
  std::uint64_t bytes = 0;
  std::uint64_t dropped = 0;
};

// One pass over `stream` as a reader sees it: kReadChunk at a time, then idle.
void feed_in_reads(FrameDecoder& decoder, const std::string& stream) {
  for (std::size_t i = 0; i < stream.size(); i += kReadChunk) {
    decoder.feed(stream.data() + i, std::min(kReadChunk, stream.size() - i));
  }
  decoder.stall_flush();
}

// --- encode ------------------------------------------------------------------

void BM_MemcpyPayload(benchmark::State& state) {
  const std::string payload = random_bytes(state.range(0), 1, true);
  std::string out(payload.size() + 8 + kAliasSlack, '\0');
  char* dst = unaliased(out.data(), payload.data());
  for (auto _ : state) {
    std::memcpy(dst + 8, payload.data(), payload.size());
    benchmark::DoNotOptimize(dst);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * payload.size()));
}

void BM_EncodeFrame(benchmark::State& state) {
  // The payload is placed, like BM_MemcpyPayload's destination, 2 KiB off the
  // output buffer modulo 4 KiB.
  std::string out;
  out.reserve(state.range(0) + 8);
  std::string storage = random_bytes(state.range(0) + kAliasSlack, 1, true);
  const char* src =
      storage.data() +
      (2048 + 4096 -
       (reinterpret_cast<std::uintptr_t>(out.data()) + 8 - reinterpret_cast<std::uintptr_t>(storage.data())) % 4096) %
          4096;
  const std::string_view payload(src, state.range(0));
  for (auto _ : state) {
    out.clear();
    if (!qtx::wire::append_frame(payload, &out).ok()) state.SkipWithError("encode failed");
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * payload.size()));
}

// Header + seal (crc32c of the body) filled in place: what every Envelope costs.
void BM_EncodeSealedFrame(benchmark::State& state) {
  std::string frame(qtx::wire::kSealedFramePrefix, '\0');
  frame += random_bytes(state.range(0), 1, true);
  for (auto _ : state) {
    if (!qtx::wire::finish_sealed_frame(&frame).ok()) state.SkipWithError("encode failed");
    benchmark::DoNotOptimize(frame.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * (frame.size() - 13)));
}

// --- decode ------------------------------------------------------------------

std::string frame_stream(std::size_t payload_size, bool sealed) {
  std::string stream;
  std::string payload = random_bytes(payload_size, 2, true);
  while (stream.size() < kStreamBytes) {
    if (sealed) {
      std::string f(qtx::wire::kSealedFramePrefix, '\0');
      f.append(payload, 0, payload_size - qtx::wire::kSealSize);
      (void)qtx::wire::finish_sealed_frame(&f);
      stream += f;
    } else {
      (void)qtx::wire::append_frame(payload, &stream);
    }
  }
  return stream;
}

void BM_MemcpyStream(benchmark::State& state) {
  // What any reader must do at least: copy each read's bytes once.
  const std::string stream = random_bytes(kStreamBytes, 3, true);
  std::string buf(kReadChunk + kAliasSlack, '\0');
  char* dst = unaliased(buf.data(), stream.data());  // the stream advances by multiples of 4 KiB
  for (auto _ : state) {
    for (std::size_t i = 0; i < stream.size(); i += kReadChunk) {
      std::size_t n = std::min(kReadChunk, stream.size() - i);
      std::memcpy(dst, stream.data() + i, n);
      benchmark::DoNotOptimize(dst);
      benchmark::ClobberMemory();
    }
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * stream.size()));
}

void decode(benchmark::State& state, bool sealed) {
  const std::string stream = frame_stream(state.range(0), sealed);
  CountingHandler handler;
  FrameDecoder decoder(&handler, {.seal = sealed ? qtx::wire::SealCheck::kRequired : qtx::wire::SealCheck::kNone});
  for (auto _ : state) feed_in_reads(decoder, stream);
  if (handler.dropped != 0) state.SkipWithError("decoder dropped bytes of a clean stream");
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * stream.size()));
  state.counters["frames/s"] =
      benchmark::Counter(static_cast<double>(decoder.stats().frames), benchmark::Counter::kIsRate);
}

void BM_DecodeFrames(benchmark::State& state) { decode(state, false); }
void BM_DecodeSealedFrames(benchmark::State& state) { decode(state, true); }

// --- resync scan over garbage --------------------------------------------------

// arg 0: garbage without any 'Q'; arg 1: uniform random bytes ('Q' 1 in 256).
std::string garbage(std::int64_t kind) { return random_bytes(kStreamBytes, 4, kind == 1); }

void BM_MemchrScan(benchmark::State& state) {
  const std::string g = garbage(state.range(0));
  for (auto _ : state) {
    std::size_t hits = 0;
    const char* p = g.data();
    const char* end = p + g.size();
    while (p < end) {
      const void* q = std::memchr(p, 'Q', static_cast<std::size_t>(end - p));
      if (q == nullptr) break;
      ++hits;
      p = static_cast<const char*>(q) + 1;
    }
    benchmark::DoNotOptimize(hits);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * g.size()));
}

void BM_ResyncScan(benchmark::State& state) {
  const std::string g = garbage(state.range(0));
  CountingHandler handler;
  FrameDecoder decoder(&handler);
  for (auto _ : state) feed_in_reads(decoder, g);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * g.size()));
}

// A candidate every 9 bytes, each claiming the rest of the stream (see
// testing::nested_claims): the attack that made resynchronisation quadratic.
// Its rate belongs beside BM_ResyncScan's; bytes_hashed/fed is the work bound.
void BM_ResyncNestedClaims(benchmark::State& state) {
  const std::string g = qtx::testing::nested_claims(static_cast<std::size_t>(state.range(0)));
  CountingHandler handler;
  FrameDecoder decoder(&handler);
  for (auto _ : state) feed_in_reads(decoder, g);
  if (handler.bytes != 0) state.SkipWithError("a nested claim was taken for a frame");
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * g.size()));
  state.counters["hashed/fed"] =
      static_cast<double>(decoder.stats().bytes_hashed) / static_cast<double>(decoder.stats().bytes_fed);
}

void BM_Crc32c(benchmark::State& state) {
  const std::string data = random_bytes(state.range(0), 5, true);
  for (auto _ : state) {
    benchmark::DoNotOptimize(qtx::wire::crc32c::value(data.data(), data.size()));
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * data.size()));
}

void BM_Sha256(benchmark::State& state) {
  const std::string data = random_bytes(state.range(0), 6, true);
  for (auto _ : state) {
    qtx::wire::Sha256 h;
    h.update(data);
    benchmark::DoNotOptimize(h.finish());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * data.size()));
}

}  // namespace

BENCHMARK(BM_MemcpyPayload)->Arg(64)->Arg(1024)->Arg(64 << 10)->Arg(1 << 20);
BENCHMARK(BM_EncodeFrame)->Arg(64)->Arg(1024)->Arg(64 << 10)->Arg(1 << 20);
BENCHMARK(BM_EncodeSealedFrame)->Arg(64)->Arg(1024)->Arg(64 << 10)->Arg(1 << 20);
BENCHMARK(BM_MemcpyStream);
BENCHMARK(BM_DecodeFrames)->Arg(64)->Arg(1024)->Arg(64 << 10)->Arg(1 << 20);
BENCHMARK(BM_DecodeSealedFrames)->Arg(64)->Arg(1024)->Arg(64 << 10)->Arg(1 << 20);
BENCHMARK(BM_MemchrScan)->Arg(0)->Arg(1);
BENCHMARK(BM_ResyncScan)->Arg(0)->Arg(1);
BENCHMARK(BM_ResyncNestedClaims)->Arg(256 << 10)->Arg(kStreamBytes);
BENCHMARK(BM_Crc32c)->Arg(1024)->Arg(1 << 20);
BENCHMARK(BM_Sha256)->Arg(1 << 20);

BENCHMARK_MAIN();
