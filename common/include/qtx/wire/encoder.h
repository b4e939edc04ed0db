// Building QTX1 frames. Every function produces one contiguous buffer per
// frame (or, for gathered writes, a header to send in the same writev as the
// payload), so a frame always reaches the transport in one write.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "qtx/status.h"
#include "qtx/wire/format.h"
#include "qtx/wire/seal.h"

namespace qtx::wire {

// The 8-byte header for a payload of `payload_size` bytes. The caller must
// have checked the size (see check_payload_size).
std::array<char, kHeaderSize> frame_header(std::uint32_t payload_size);

// InvalidArgument when `size` is 0 or above `max_payload`.
Status check_payload_size(std::size_t size, std::uint32_t max_payload = kDefaultMaxPayload);

// Appends header + payload to *out. On error *out is unchanged.
Status append_frame(std::string_view payload, std::string* out, std::uint32_t max_payload = kDefaultMaxPayload);

// Bytes to reserve in front of a serialized Envelope body so that
// finish_sealed_frame can fill in the header and the seal without copying.
inline constexpr std::size_t kSealedFramePrefix = kHeaderSize + kSealSize;

// `frame` holds kSealedFramePrefix placeholder bytes followed by an Envelope
// serialized without its check field. Writes the header and the seal in
// place; on error `frame` is unchanged.
Status finish_sealed_frame(std::string* frame, std::uint32_t max_payload = kDefaultMaxPayload);

}  // namespace qtx::wire
