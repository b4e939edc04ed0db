// Helpers for building byte streams in tests, fuzzers and benchmarks.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "qtx/wire/decoder.h"
#include "qtx/wire/encoder.h"
#include "qtx/wire/format.h"
#include "qtx/wire/seal.h"

namespace qtx::testing {

// header + payload, for any payload size (no limit check: tests build bad frames too).
inline std::string frame(std::string_view payload) {
  auto h = wire::frame_header(static_cast<std::uint32_t>(payload.size()));
  std::string out(h.data(), h.size());
  out.append(payload);
  return out;
}

// A frame whose header claims `length` bytes, followed by `payload` as given.
inline std::string raw_frame(std::uint32_t length, std::string_view payload) {
  auto h = wire::frame_header(length);
  std::string out(h.data(), h.size());
  out.append(payload);
  return out;
}

// Seal + body: what parse_envelope's seal check accepts.
inline std::string sealed(std::string_view body) {
  std::string out;
  wire::append_sealed(body, &out);
  return out;
}

// The attack on resynchronisation by nested claims: a candidate every 9 bytes
// ("QTX1", a length, the seal's tag), each claiming a payload that runs to
// the end of the stream, then `tail` (which every claim covers). Each seal
// fails, so a decoder that hashed each claim anew would do work quadratic in
// the size; `bytes` (at least 9) is the length of the nested part.
inline std::string nested_claims(std::size_t bytes, std::string_view tail = {}) {
  const std::size_t count = bytes / 9;
  const std::size_t total = count * 9 + tail.size();
  std::string out;
  out.reserve(total);
  for (std::size_t k = 0; k < count; ++k) {
    const auto claim = static_cast<std::uint32_t>(total - 9 * k - wire::kHeaderSize);
    out.append(wire::kMagic.data(), wire::kMagicSize);
    char len[4];
    wire::store_be32(claim, len);
    out.append(len, 4);
    out.push_back(wire::kSealTag);
  }
  out.append(tail);
  return out;
}

// Records every callback of a FrameDecoder; accepts payloads that pass
// `accept` (everything by default).
class Recorder : public wire::FrameDecoder::Handler {
 public:
  enum class Accept { kAll, kSealed };
  explicit Recorder(Accept mode = Accept::kAll) : mode_(mode) {}

  bool on_frame(std::string_view payload, std::uint64_t offset) override {
    if (mode_ == Accept::kSealed && !wire::verify_seal(payload)) return false;
    frames.emplace_back(payload);
    frame_offsets.push_back(offset);
    log += "F" + std::to_string(offset) + ":" + std::to_string(payload.size()) + ";";
    return true;
  }
  void on_drop(const wire::Drop& d) override {
    drops.push_back(d);
    log +=
        "D" + std::to_string(d.offset) + ":" + std::to_string(d.bytes) + ":" + wire::drop_reason_name(d.reason) + ";";
  }

  std::uint64_t dropped(wire::DropReason r) const {
    std::uint64_t n = 0;
    for (const auto& d : drops) n += d.reason == r ? d.bytes : 0;
    return n;
  }
  std::uint64_t dropped_total() const {
    std::uint64_t n = 0;
    for (const auto& d : drops) n += d.bytes;
    return n;
  }

  std::vector<std::string> frames;
  std::vector<std::uint64_t> frame_offsets;
  std::vector<wire::Drop> drops;
  std::string log;  // every callback in order, for comparing chunkings

 private:
  Accept mode_;
};

}  // namespace qtx::testing
