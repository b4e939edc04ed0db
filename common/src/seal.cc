#include "qtx/wire/seal.h"

#include <cstdint>

#include "qtx/wire/crc32c.h"

namespace qtx::wire {
namespace {

std::uint32_t load_le32(const char* in) {
  const auto* p = reinterpret_cast<const unsigned char*>(in);
  return std::uint32_t{p[0]} | (std::uint32_t{p[1]} << 8) | (std::uint32_t{p[2]} << 16) | (std::uint32_t{p[3]} << 24);
}

}  // namespace

void write_seal(std::string_view body, char* out) {
  std::uint32_t crc = crc32c::mask(crc32c::value(body.data(), body.size()));
  out[0] = kSealTag;
  out[1] = static_cast<char>(crc);
  out[2] = static_cast<char>(crc >> 8);
  out[3] = static_cast<char>(crc >> 16);
  out[4] = static_cast<char>(crc >> 24);
}

void append_sealed(std::string_view body, std::string* out) {
  char seal[kSealSize];
  write_seal(body, seal);
  out->append(seal, kSealSize);
  out->append(body);
}

std::uint32_t sealed_crc(const char* seal) { return crc32c::unmask(load_le32(seal + 1)); }

bool verify_seal(std::string_view payload) {
  if (payload.size() < kSealSize || payload[0] != kSealTag) return false;
  std::uint32_t expected = sealed_crc(payload.data());
  return crc32c::value(payload.data() + kSealSize, payload.size() - kSealSize) == expected;
}

}  // namespace qtx::wire
