// The QTX1 frame format: the one place its constants live.
// The format itself is specified in docs/wire-format.md.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace qtx::wire {

// The four bytes every frame starts with: 51 54 58 01, "QTX" and the byte
// 0x01 (not the character '1'; "QTX1" is only the format's name).
inline constexpr std::array<char, 4> kMagic = {'Q', 'T', 'X', '\x01'};
inline constexpr std::size_t kMagicSize = kMagic.size();

// Magic followed by the payload length, u32 big-endian.
inline constexpr std::size_t kHeaderSize = kMagicSize + 4;

// Largest payload a receiver accepts unless configured lower.
inline constexpr std::uint32_t kDefaultMaxPayload = 16u * 1024 * 1024;

// Idle time after which a partial frame is abandoned and rescanned.
inline constexpr unsigned kDefaultStallTimeoutMs = 1000;

// Smallest max_message (largest frame payload) a peer may be configured with.
inline constexpr std::uint32_t kMinMaxPayload = 64u * 1024;

// Bytes an Envelope carrying one stream data piece (ExecInput, FileChunk)
// adds around its data, at most: the seal, the id, the message headers, an
// offset and the flags. A piece of max_message minus this always fits.
inline constexpr std::size_t kMaxPieceOverhead = 128;

// The stdin credit the agent grants every streamed-stdin exec without a
// Credit message (docs/wire-format.md, section 4); more comes as Credit.
// Hosts rely on it: it may grow, never shrink.
inline constexpr std::uint64_t kStdinWindow = 1u * 1024 * 1024;

inline void store_be32(std::uint32_t v, char* out) {
  out[0] = static_cast<char>(v >> 24);
  out[1] = static_cast<char>(v >> 16);
  out[2] = static_cast<char>(v >> 8);
  out[3] = static_cast<char>(v);
}

inline std::uint32_t load_be32(const char* in) {
  const auto* p = reinterpret_cast<const unsigned char*>(in);
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | std::uint32_t{p[3]};
}

}  // namespace qtx::wire
