#include "qtx/wire/sha256.h"

#include <algorithm>
#include <cstring>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif

namespace qtx::wire {
namespace {

constexpr std::uint32_t kK[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

inline std::uint32_t rotr(std::uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

void portable_block(std::uint32_t* h, const std::uint8_t* p) {
  std::uint32_t w[64];
  for (int i = 0; i < 16; ++i) {
    w[i] = (std::uint32_t{p[4 * i]} << 24) | (std::uint32_t{p[4 * i + 1]} << 16) |
           (std::uint32_t{p[4 * i + 2]} << 8) | std::uint32_t{p[4 * i + 3]};
  }
  for (int i = 16; i < 64; ++i) {
    const std::uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
    const std::uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  std::uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
  for (int i = 0; i < 64; ++i) {
    const std::uint32_t t1 = hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + kK[i] + w[i];
    const std::uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
    hh = g;
    g = f;
    f = e;
    e = d + t1;
    d = c;
    c = b;
    b = a;
    a = t1 + t2;
  }
  h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
}

#if defined(__x86_64__)
// The SHA extensions (SHA-NI): four rounds per sha256rnds2 pair. State is
// kept as ABEF/CDGH as the instructions want it.
#define QTX_SHA_GROUP(g, cur, prev, next, older)                                      \
  msg = _mm_add_epi32(cur, _mm_loadu_si128(reinterpret_cast<const __m128i*>(kK + 4 * (g)))); \
  state1 = _mm_sha256rnds2_epu32(state1, state0, msg);                                 \
  if ((g) >= 3 && (g) <= 14) {                                                         \
    next = _mm_add_epi32(next, _mm_alignr_epi8(cur, prev, 4));                         \
    next = _mm_sha256msg2_epu32(next, cur);                                            \
  }                                                                                    \
  msg = _mm_shuffle_epi32(msg, 0x0E);                                                  \
  state0 = _mm_sha256rnds2_epu32(state0, state1, msg);                                 \
  if ((g) >= 1 && (g) <= 12) prev = _mm_sha256msg1_epu32(prev, cur);                   \
  (void)(older)

__attribute__((target("sha,sse4.1,ssse3"))) void blocks_shani(std::uint32_t* h, const std::uint8_t* p,
                                                              std::size_t n) {
  const __m128i mask = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
  __m128i tmp = _mm_loadu_si128(reinterpret_cast<const __m128i*>(h));
  __m128i state1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(h + 4));
  tmp = _mm_shuffle_epi32(tmp, 0xB1);                // CDAB
  state1 = _mm_shuffle_epi32(state1, 0x1B);          // EFGH
  __m128i state0 = _mm_alignr_epi8(tmp, state1, 8);  // ABEF
  state1 = _mm_blend_epi16(state1, tmp, 0xF0);       // CDGH
  for (; n > 0; --n, p += 64) {
    const __m128i abef = state0, cdgh = state1;
    __m128i msg;
    __m128i m0 = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)), mask);
    __m128i m1 = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16)), mask);
    __m128i m2 = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 32)), mask);
    __m128i m3 = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 48)), mask);
    // Group g works on m[g%4]; "prev" is m[(g+3)%4], "next" is m[(g+1)%4].
    QTX_SHA_GROUP(0, m0, m3, m1, m2);
    QTX_SHA_GROUP(1, m1, m0, m2, m3);
    QTX_SHA_GROUP(2, m2, m1, m3, m0);
    QTX_SHA_GROUP(3, m3, m2, m0, m1);
    QTX_SHA_GROUP(4, m0, m3, m1, m2);
    QTX_SHA_GROUP(5, m1, m0, m2, m3);
    QTX_SHA_GROUP(6, m2, m1, m3, m0);
    QTX_SHA_GROUP(7, m3, m2, m0, m1);
    QTX_SHA_GROUP(8, m0, m3, m1, m2);
    QTX_SHA_GROUP(9, m1, m0, m2, m3);
    QTX_SHA_GROUP(10, m2, m1, m3, m0);
    QTX_SHA_GROUP(11, m3, m2, m0, m1);
    QTX_SHA_GROUP(12, m0, m3, m1, m2);
    QTX_SHA_GROUP(13, m1, m0, m2, m3);
    QTX_SHA_GROUP(14, m2, m1, m3, m0);
    QTX_SHA_GROUP(15, m3, m2, m0, m1);
    state0 = _mm_add_epi32(state0, abef);
    state1 = _mm_add_epi32(state1, cdgh);
  }
  tmp = _mm_shuffle_epi32(state0, 0x1B);        // FEBA
  state1 = _mm_shuffle_epi32(state1, 0xB1);     // DCHG
  state0 = _mm_blend_epi16(tmp, state1, 0xF0);  // DCBA
  state1 = _mm_alignr_epi8(state1, tmp, 8);     // HGFE
  _mm_storeu_si128(reinterpret_cast<__m128i*>(h), state0);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(h + 4), state1);
}
#undef QTX_SHA_GROUP

bool cpu_has_shani() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
  const bool sse41 = (c & (1u << 19)) != 0, ssse3 = (c & (1u << 9)) != 0;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  return sse41 && ssse3 && (b & (1u << 29)) != 0;
}
#endif

}  // namespace

namespace detail {

void sha256_blocks_portable(std::uint32_t* h, const std::uint8_t* p, std::size_t n) {
  for (; n > 0; --n, p += 64) portable_block(h, p);
}

bool sha256_accelerated() {
#if defined(__x86_64__)
  static const bool have = cpu_has_shani();
  return have;
#else
  return false;
#endif
}

void sha256_blocks(std::uint32_t* h, const std::uint8_t* p, std::size_t n) {
#if defined(__x86_64__)
  if (sha256_accelerated()) return blocks_shani(h, p, n);
#endif
  sha256_blocks_portable(h, p, n);
}

}  // namespace detail

Sha256::Sha256()
    : h_{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19} {}

void Sha256::update(const void* data, std::size_t n) {
  const auto* p = static_cast<const std::uint8_t*>(data);
  length_ += n;
  if (buffered_ != 0) {
    const std::size_t take = std::min(n, buf_.size() - buffered_);
    std::memcpy(buf_.data() + buffered_, p, take);
    buffered_ += take;
    p += take;
    n -= take;
    if (buffered_ < buf_.size()) return;
    detail::sha256_blocks(h_.data(), buf_.data(), 1);
    buffered_ = 0;
  }
  if (n >= 64) {
    detail::sha256_blocks(h_.data(), p, n / 64);
    p += n / 64 * 64;
    n %= 64;
  }
  std::memcpy(buf_.data(), p, n);
  buffered_ = n;
}

Sha256::Digest Sha256::finish() {
  const std::uint64_t bits = length_ * 8;
  const std::uint8_t pad = 0x80;
  update(&pad, 1);
  const std::uint8_t zero = 0;
  while (buffered_ != 56) update(&zero, 1);
  std::uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<std::uint8_t>(bits >> (56 - 8 * i));
  update(len, 8);
  Digest d;
  for (int i = 0; i < 8; ++i) {
    d[4 * i] = static_cast<std::uint8_t>(h_[i] >> 24);
    d[4 * i + 1] = static_cast<std::uint8_t>(h_[i] >> 16);
    d[4 * i + 2] = static_cast<std::uint8_t>(h_[i] >> 8);
    d[4 * i + 3] = static_cast<std::uint8_t>(h_[i]);
  }
  return d;
}

Sha256::Digest Sha256::of(std::string_view s) {
  Sha256 h;
  h.update(s);
  return h.finish();
}

std::string Sha256::hex(const Digest& d) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (auto b : d) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

}  // namespace qtx::wire
