// A frame script: how the protocol fuzzers turn their input into a byte
// stream from a hostile peer. The input is a list of steps:
//
//   tag & 3 == 0 or 1   u16 length, then that many bytes: an Envelope body
//                       (serialized without its check field), sent sealed and
//                       framed, so the peer's parser and handlers see it
//   tag & 3 == 2        u8 length, then that many bytes: raw bytes on the wire
//                       (garbage, a torn header, a stale partial frame)
//   tag & 3 == 3        u8 target, u16 length, body: like 0, with the
//                       envelope's id replaced by the id of the target-th
//                       request the peer has made (targets that the harness
//                       does not know keep the body's own id)
//
// A length past the end of the input takes what is left. The seed tools
// write the same format with append_step().
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_input.h"
#include "qtx/wire/encoder.h"
#include "qtx/wire/seal.h"

namespace qtx::fuzz {

struct Step {
  enum class Kind { kSealed, kRaw, kAddressed };
  Kind kind;
  std::uint8_t target = 0;  // kAddressed
  std::string bytes;        // the body (kSealed, kAddressed) or the raw bytes
};

inline std::vector<Step> read_script(FuzzInput& in) {
  std::vector<Step> steps;
  while (!in.empty()) {
    const std::uint8_t tag = in.byte();
    Step s{Step::Kind::kSealed, 0, {}};
    switch (tag & 3) {
      case 2:
        s.kind = Step::Kind::kRaw;
        s.bytes = in.bytes(in.byte());
        break;
      case 3:
        s.kind = Step::Kind::kAddressed;
        s.target = in.byte();
        s.bytes = in.bytes(in.u16());
        break;
      default: s.bytes = in.bytes(in.u16()); break;
    }
    steps.push_back(std::move(s));
  }
  return steps;
}

// One QTX1 frame carrying `body` behind its seal; a body too big for one
// frame is still framed (with its true length), for the peer to refuse.
inline std::string sealed_frame(std::string_view body) {
  std::string payload;
  wire::append_sealed(body, &payload);
  const auto header = wire::frame_header(static_cast<std::uint32_t>(payload.size()));
  return std::string(header.data(), header.size()) + payload;
}

// The inverse of read_script, for writing seeds.
inline void append_step(const Step& s, std::string* out) {
  auto put_u16 = [out](std::size_t n) {
    out->push_back(static_cast<char>(n >> 8 & 0xff));
    out->push_back(static_cast<char>(n & 0xff));
  };
  switch (s.kind) {
    case Step::Kind::kSealed:
      out->push_back('\0');
      put_u16(s.bytes.size());
      break;
    case Step::Kind::kRaw:
      out->push_back('\2');
      out->push_back(static_cast<char>(s.bytes.size()));
      break;
    case Step::Kind::kAddressed:
      out->push_back('\3');
      out->push_back(static_cast<char>(s.target));
      put_u16(s.bytes.size());
      break;
  }
  *out += s.bytes;
}

}  // namespace qtx::fuzz
