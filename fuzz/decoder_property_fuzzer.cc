// Property: for garbage G (arbitrary bytes, truncated real frames, stray
// magics) followed by valid frames F1..Fn, decoding G‖F1..Fn in any chunking,
// then a stall flush, yields F1..Fn in order, none lost; and every byte is
// either in a delivered frame or reported dropped, exactly once.
//
// The validator accepts exactly the payloads of F1..Fn (an ideal seal). Those
// payloads start with 0xA5 and never contain 0x51 ('Q'), so no frame that
// starts in G can reach into F1..Fn and still validate: the property is exact.
// Frames that lie wholly inside G may be delivered before F1..Fn.
//
// Half the inputs run the decoder as every peer-facing one runs (the seal
// required, the payloads sealed), where work must also stay linear: bytes
// hashed within the decoder's bound and no byte offered to the handler twice.
// There a candidate in G that carries a matching seal over F1..Fn is a frame
// the sender meant (dropped whole when the validator refuses it): the loss
// check does not apply to such an input, which random garbage never makes.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include "fuzz_input.h"
#include "qtx/wire/decoder.h"
#include "qtx/wire/encoder.h"
#include "qtx/wire/seal.h"

namespace {

using qtx::wire::FrameDecoder;

constexpr std::size_t kMaxInput = 64 * 1024;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "property violated: %s\n", what);
  std::abort();
}

std::string frame_of(const std::string& payload) {
  auto h = qtx::wire::frame_header(static_cast<std::uint32_t>(payload.size()));
  return std::string(h.data(), h.size()) + payload;
}

class ExactSet : public FrameDecoder::Handler {
 public:
  explicit ExactSet(const std::set<std::string>* valid) : valid_(valid) {}
  bool on_frame(std::string_view payload, std::uint64_t) override {
    offered += payload.size();
    if (valid_->count(std::string(payload)) == 0) {
      foreign_sealed_frames++;
      return false;
    }
    frames.emplace_back(payload);
    return true;
  }
  void on_drop(const qtx::wire::Drop& d) override {
    if (d.bytes == 0) fail("empty drop report");
    if (d.offset != next_drop_min_) {
      if (d.offset < next_drop_min_) fail("drop reports overlap or go backwards");
    }
    next_drop_min_ = d.offset + d.bytes;
    dropped += d.bytes;
  }
  std::vector<std::string> frames;
  std::uint64_t dropped = 0;
  std::uint64_t offered = 0;                // payload bytes handed to on_frame
  std::uint64_t foreign_sealed_frames = 0;  // offered, not among F1..Fn

 private:
  const std::set<std::string>* valid_;
  std::uint64_t next_drop_min_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > kMaxInput) return 0;
  qtx::fuzz::FuzzInput in(data, size);

  // The valid frames.
  const bool sealed = in.byte() & 1;
  const std::size_t n = 1 + in.byte() % 8;
  std::vector<std::string> payloads;
  std::size_t longest = 0;
  for (std::size_t i = 0; i < n; ++i) {
    std::string body = in.bytes(in.byte() % 96);
    for (char& c : body) {
      if (c == 'Q') c = 'R';
    }
    std::string payload = std::string("\xA5", 1) + static_cast<char>(i) + body;
    if (sealed) {
      std::string with_seal;
      qtx::wire::append_sealed(payload, &with_seal);
      payload = std::move(with_seal);
    }
    payloads.push_back(std::move(payload));
    longest = std::max(longest, payloads.back().size());
  }
  std::set<std::string> valid(payloads.begin(), payloads.end());

  // The decoder's limit: the default, or just enough for the valid frames.
  FrameDecoder::Options options;
  options.seal = sealed ? qtx::wire::SealCheck::kRequired : qtx::wire::SealCheck::kNone;
  if (in.byte() & 1) options.max_payload = static_cast<std::uint32_t>(longest + in.byte());

  // The garbage: segments of raw bytes, stray magics and truncated frames.
  std::string garbage;
  const std::size_t segments = in.byte() % 16;
  for (std::size_t s = 0; s < segments && garbage.size() < 8192; ++s) {
    switch (in.byte() % 4) {
      case 0: garbage += in.bytes(in.byte()); break;
      case 1: garbage += std::string("QTX\x01", 4).substr(0, 1 + in.byte() % 4); break;
      case 2: {  // a truncated (or whole) copy of one of the valid frames
        std::string f = frame_of(payloads[in.byte() % n]);
        garbage += f.substr(0, in.byte() % (f.size() + 1));
        break;
      }
      default: {  // a header claiming an arbitrary length, and a few bytes
        auto h = qtx::wire::frame_header(static_cast<std::uint32_t>(in.u16()) << (in.byte() % 16));
        garbage.append(h.data(), h.size());
        garbage += in.bytes(in.byte() % 32);
        break;
      }
    }
  }

  std::string stream = garbage;
  for (const auto& p : payloads) stream += frame_of(p);

  // Feed in chunks the input chooses, then let the line go idle.
  ExactSet handler(&valid);
  FrameDecoder decoder(&handler, options);
  std::size_t pos = 0;
  while (pos < stream.size()) {
    std::size_t chunk = in.empty() ? stream.size() - pos : 1 + in.byte() % 64;
    chunk = std::min(chunk, stream.size() - pos);
    decoder.feed(stream.data() + pos, chunk);
    pos += chunk;
  }
  decoder.stall_flush();

  if (decoder.buffered() != 0 || !decoder.idle()) fail("bytes left after a stall flush");
  const auto& st = decoder.stats();
  if (sealed) {
    if (st.bytes_hashed > qtx::wire::kMaxHashedPerByteFed * st.bytes_fed + qtx::wire::kSealCheckpointSpacing) {
      fail("more bytes hashed than the linear bound allows");
    }
    if (handler.offered > st.bytes_fed) fail("a payload byte was offered to the handler twice");
  }
  if (!sealed || handler.foreign_sealed_frames == 0) {
    if (handler.frames.size() < n) fail("a valid frame was lost");
    for (std::size_t i = 0; i < n; ++i) {
      if (handler.frames[handler.frames.size() - n + i] != payloads[i]) fail("valid frames out of order");
    }
  }
  if (st.bytes_fed != stream.size()) fail("bytes_fed");
  if (st.dropped_total() != handler.dropped) fail("stats and reports disagree");
  if (st.frame_bytes + st.dropped_total() != st.bytes_fed) fail("a byte was neither delivered nor dropped");
  return 0;
}
