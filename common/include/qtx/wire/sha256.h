// SHA-256 (FIPS 180-4), for end-to-end checks of file transfers on both sides.
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
  std::array<std::uint32_t, 8> h_;
  std::uint64_t length_ = 0;  // bytes hashed
  std::array<std::uint8_t, 64> buf_{};
  std::size_t buffered_ = 0;
};

namespace detail {
// Compression of n 64-byte blocks into state h: the portable code, and the
// dispatcher that uses the CPU's SHA extensions when present.
void sha256_blocks_portable(std::uint32_t* h, const std::uint8_t* p, std::size_t n);
void sha256_blocks(std::uint32_t* h, const std::uint8_t* p, std::size_t n);
bool sha256_accelerated();
}  // namespace detail

}  // namespace qtx::wire
