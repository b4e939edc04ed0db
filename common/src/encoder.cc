#include "qtx/wire/encoder.h"

#include <cstring>

namespace qtx::wire {

std::array<char, kHeaderSize> frame_header(std::uint32_t payload_size) {
  std::array<char, kHeaderSize> h{};
  std::memcpy(h.data(), kMagic.data(), kMagicSize);
  store_be32(payload_size, h.data() + kMagicSize);
  return h;
}

Status check_payload_size(std::size_t size, std::uint32_t max_payload) {
  if (size == 0) return Status::invalid_argument("frame payload is empty");
  if (size > max_payload) {
    return Status::invalid_argument("frame payload of " + std::to_string(size) + " bytes exceeds the limit of " +
                                    std::to_string(max_payload));
  }
  return Status::OK();
}

Status append_frame(std::string_view payload, std::string* out, std::uint32_t max_payload) {
  Status s = check_payload_size(payload.size(), max_payload);
  if (!s) return s;
  auto h = frame_header(static_cast<std::uint32_t>(payload.size()));
  out->reserve(out->size() + kHeaderSize + payload.size());
  out->append(h.data(), h.size());
  out->append(payload);
  return s;
}

Status finish_sealed_frame(std::string* frame, std::uint32_t max_payload) {
  if (frame->size() < kSealedFramePrefix) {
    return Status::invalid_argument("sealed frame buffer lacks its header and seal prefix");
  }
  std::size_t payload_size = frame->size() - kHeaderSize;
  Status s = check_payload_size(payload_size, max_payload);
  if (!s) return s;
  auto h = frame_header(static_cast<std::uint32_t>(payload_size));
  std::memcpy(frame->data(), h.data(), h.size());
  std::string_view body(frame->data() + kSealedFramePrefix, frame->size() - kSealedFramePrefix);
  write_seal(body, frame->data() + kHeaderSize);
  return s;
}

}  // namespace qtx::wire
