// Raw bytes into the decoder with the real seal check, fed whole and in
// input-chosen chunks with stall flushes and resets at chosen points: never a
// crash, identical callbacks for both chunkings, every byte accounted for,
// and work linear in the bytes fed (bytes hashed within the decoder's bound,
// no byte offered to the handler twice).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "fuzz_input.h"
#include "qtx/wire/decoder.h"
#include "qtx/wire/seal.h"

namespace {

using qtx::wire::FrameDecoder;

constexpr std::size_t kMaxInput = 64 * 1024;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "property violated: %s\n", what);
  std::abort();
}

class Logger : public FrameDecoder::Handler {
 public:
  bool on_frame(std::string_view payload, std::uint64_t offset) override {
    if (!qtx::wire::verify_seal(payload)) fail("the decoder offered a payload whose seal does not match");
    offered += payload.size();
    log += "F" + std::to_string(offset) + ":" + std::to_string(payload.size()) + ";";
    return true;
  }
  void on_drop(const qtx::wire::Drop& d) override {
    log += "D" + std::to_string(d.offset) + ":" + std::to_string(d.bytes) + ":" +
           std::to_string(static_cast<int>(d.reason)) + ";";
  }
  std::string log;
  std::uint64_t offered = 0;  // payload bytes handed to on_frame
};

void check_accounting(const FrameDecoder& d, const Logger& logger) {
  const auto& s = d.stats();
  if (s.bytes_fed != s.frame_bytes + s.dropped_total()) fail("a byte was neither delivered nor dropped");
  if (s.bytes_hashed > qtx::wire::kMaxHashedPerByteFed * s.bytes_fed + qtx::wire::kSealCheckpointSpacing) {
    fail("more bytes hashed than the linear bound allows");
  }
  if (logger.offered > s.bytes_fed) fail("a payload byte was offered to the handler twice");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 4 || size > kMaxInput) return 0;
  qtx::fuzz::FuzzInput control(data, 4);
  const std::uint8_t chunk_seed = control.byte();
  const std::uint8_t event_every = control.byte();  // 0: no stall/reset events in between
  const std::uint16_t max_payload = control.u16();
  FrameDecoder::Options options;
  if (max_payload != 0) options.max_payload = max_payload;
  const char* stream = reinterpret_cast<const char*>(data + 4);
  const std::size_t n = size - 4;

  // Events (stall flushes and resets) happen at the same stream offsets in both
  // runs: every `event_every * 64` bytes.
  const std::size_t event_gap = event_every == 0 ? n + 1 : std::size_t{event_every} * 64;

  auto run = [&](bool chunked) {
    Logger logger;
    FrameDecoder d(&logger, options);
    std::size_t pos = 0;
    std::size_t k = 0;
    while (pos < n) {
      std::size_t next_event = (pos / event_gap + 1) * event_gap;
      std::size_t chunk = chunked ? 1 + (chunk_seed + 31 * k++) % 97 : n - pos;
      chunk = std::min({chunk, n - pos, next_event - pos});
      d.feed(stream + pos, chunk);
      pos += chunk;
      if (pos == next_event) {
        if ((pos / event_gap) % 2) {
          d.stall_flush();
        } else {
          d.reset();
        }
        check_accounting(d, logger);
      }
    }
    d.stall_flush();
    check_accounting(d, logger);
    if (d.buffered() != 0) fail("bytes left after a stall flush");
    return logger.log;
  };

  if (run(false) != run(true)) fail("chunking changed the result");
  return 0;
}
