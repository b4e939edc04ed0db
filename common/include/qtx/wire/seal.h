// Sealed payloads: a serialized qtx.agent.v1.Envelope whose first field is
// `fixed32 check = 1`, holding the masked crc32c of the bytes after it.
// See docs/wire-format.md, section 3. No protobuf dependency: the seal is
// plain bytes, so the decoder's validator runs before any parsing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace qtx::wire {

// 0x0D (field 1, fixed32) + 4 bytes of masked crc32c, little-endian.
inline constexpr std::size_t kSealSize = 5;
inline constexpr char kSealTag = '\x0d';

// Appends the seal for `body` (an Envelope serialized without its check
// field) followed by `body` itself to *out.
void append_sealed(std::string_view body, std::string* out);

// Writes the 5-byte seal for `body` to out[0, kSealSize).
void write_seal(std::string_view body, char* out);

// The crc32c a 5-byte seal at `seal` claims for the bytes after it (unmasked).
std::uint32_t sealed_crc(const char* seal);

// True when `payload` starts with a seal that matches the rest of it.
bool verify_seal(std::string_view payload);

}  // namespace qtx::wire
