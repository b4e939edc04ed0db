// CRC-32C (Castagnoli), the checksum that seals every payload.
#pragma once

#include <cstddef>
#include <cstdint>

namespace qtx::wire::crc32c {

// Returns the crc32c of data[0, n) continuing from `init` (0 to start).
// Uses the SSE4.2 crc32 instruction where the CPU has it.
std::uint32_t extend(std::uint32_t init, const void* data, std::size_t n);

inline std::uint32_t value(const void* data, std::size_t n) { return extend(0, data, n); }

// The crc32c of A followed by B, from crc32c(A), crc32c(B) and B's length,
// without touching the bytes: a few carry-less multiplications mod the
// polynomial, the same cost for any length. With running values
// C(p) = crc32c(data[0, p)), the crc32c of data[a, b) is
// C(b) ^ combine(C(a), 0, b - a), which is how the decoder checks the seal of
// a candidate inside bytes it has already hashed without hashing them again.
std::uint32_t combine(std::uint32_t crc_a, std::uint32_t crc_b, std::uint64_t len_b);

// Masking as in leveldb: a crc stored next to data that is itself checksummed
// is masked so the two are not trivially related.
inline constexpr std::uint32_t kMaskDelta = 0xa282ead8u;
inline std::uint32_t mask(std::uint32_t crc) { return ((crc >> 15) | (crc << 17)) + kMaskDelta; }
inline std::uint32_t unmask(std::uint32_t masked) {
  std::uint32_t rot = masked - kMaskDelta;
  return (rot >> 17) | (rot << 15);
}

}  // namespace qtx::wire::crc32c
