// SHA-256 (FIPS 180-4), for end-to-end checks of file transfers on both
// sides. Nettle's implementation (docs/benchmarks.md, "SHA-256: Nettle's"):
// this header keeps Nettle's headers out of its users; the state is
// Nettle's sha256_ctx, held in ctx_ (its size checked when sha256.cc builds).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace qtx::wire {

class Sha256 {
 public:
  using Digest = std::array<std::uint8_t, 32>;

  Sha256();
  void update(const void* data, std::size_t n);
  void update(std::string_view s) { update(s.data(), s.size()); }
  Digest finish();  // the object must not be used afterwards

  static Digest of(std::string_view s);
  static std::string hex(const Digest& d);
  static std::string bytes(const Digest& d) { return std::string(reinterpret_cast<const char*>(d.data()), d.size()); }

 private:
  // A struct sha256_ctx: plain C data, so copying the bytes copies the state.
  alignas(8) unsigned char ctx_[112];
};

}  // namespace qtx::wire
