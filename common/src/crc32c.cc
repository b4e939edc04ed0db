#include "qtx/wire/crc32c.h"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace qtx::wire::crc32c {
namespace {

constexpr std::uint32_t kPoly = 0x82f63b78u;  // reflected Castagnoli polynomial

// table[k][b]: crc of byte b followed by k zero bytes (slicing-by-4).
struct Tables {
  std::array<std::array<std::uint32_t, 256>, 4> t{};
  constexpr Tables() {
    for (std::uint32_t b = 0; b < 256; ++b) {
      std::uint32_t c = b;
      for (int i = 0; i < 8; ++i) c = (c >> 1) ^ ((c & 1u) ? kPoly : 0u);
      t[0][b] = c;
    }
    for (std::uint32_t b = 0; b < 256; ++b) {
      for (std::size_t k = 1; k < 4; ++k) t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xffu];
    }
  }
};
constexpr Tables kTables;

std::uint32_t extend_portable(std::uint32_t crc, const unsigned char* p, std::size_t n) {
  const auto& t = kTables.t;
  while (n >= 4) {
    std::uint32_t w;
    std::memcpy(&w, p, 4);  // little-endian host assumed (x86-64, aarch64)
    crc ^= w;
    crc = t[3][crc & 0xffu] ^ t[2][(crc >> 8) & 0xffu] ^ t[1][(crc >> 16) & 0xffu] ^ t[0][crc >> 24];
    p += 4;
    n -= 4;
  }
  while (n-- > 0) crc = (crc >> 8) ^ t[0][(crc ^ *p++) & 0xffu];
  return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) std::uint32_t extend_sse42(std::uint32_t crc, const unsigned char* p, std::size_t n) {
  std::uint64_t c = crc;
  while (n >= 8) {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    c = _mm_crc32_u64(c, w);
    p += 8;
    n -= 8;
  }
  auto c32 = static_cast<std::uint32_t>(c);
  while (n-- > 0) c32 = _mm_crc32_u8(c32, *p++);
  return c32;
}

bool have_sse42() {
  static const bool have = __builtin_cpu_supports("sse4.2");
  return have;
}
#endif

// Polynomials mod P in the reflected representation the register uses: bit 31
// is x^0, bit 0 is x^31.
constexpr std::uint32_t kOne = 1u << 31;

std::uint32_t multiply_mod_p(std::uint32_t a, std::uint32_t b) {
  std::uint32_t product = 0;
  for (int i = 0; i < 32; ++i) {
    product ^= (a & (kOne >> i)) ? b : 0u;
    b = (b >> 1) ^ ((b & 1u) ? kPoly : 0u);  // b *= x
  }
  return product;
}

// powers[j][v] = x^(8 * v * 256^j) mod P: appending n zero bytes multiplies
// the crc by x^(8n), the product of one entry per byte of n.
struct ZeroPowers {
  std::array<std::array<std::uint32_t, 256>, 8> powers{};
  ZeroPowers() {
    std::uint32_t base = kOne >> 8;  // x^8: one zero byte
    for (auto& table : powers) {
      table[0] = kOne;
      for (std::size_t v = 1; v < 256; ++v) table[v] = multiply_mod_p(table[v - 1], base);
      base = multiply_mod_p(table[255], base);  // x^(8 * 256^(j+1))
    }
  }
};

}  // namespace

std::uint32_t combine(std::uint32_t crc_a, std::uint32_t crc_b, std::uint64_t len_b) {
  static const ZeroPowers kZeroPowers;
  // The pre- and post-inversions of the two crcs cancel: crc(A || B) is
  // crc(A) * x^(8 |B|) + crc(B) mod P (as zlib's crc32_combine has it).
  std::uint32_t shifted = crc_a;
  for (const auto& table : kZeroPowers.powers) {
    const auto v = static_cast<std::size_t>(len_b & 0xffu);
    if (v != 0) shifted = multiply_mod_p(table[v], shifted);
    len_b >>= 8;
    if (len_b == 0) break;
  }
  return shifted ^ crc_b;
}

std::uint32_t extend(std::uint32_t init, const void* data, std::size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
  std::uint32_t crc = ~init;
#if defined(__x86_64__)
  if (have_sse42()) return ~extend_sse42(crc, p, n);
#endif
  return ~extend_portable(crc, p, n);
}

}  // namespace qtx::wire::crc32c
