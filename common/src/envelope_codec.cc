#include "qtx/wire/envelope_codec.h"

#include "qtx/wire/encoder.h"
#include "qtx/wire/seal.h"

namespace qtx::wire {

Status append_envelope_frame(const agent::v1::Envelope& env, std::string* out, std::uint32_t max_payload) {
  if (env.check() != 0) return Status::internal("envelope to send already carries a seal");
  const std::size_t body = env.ByteSizeLong();
  Status s = check_payload_size(kSealSize + body, max_payload);
  if (!s) return s;
  std::string frame;
  frame.reserve(kSealedFramePrefix + body);
  frame.resize(kSealedFramePrefix);
  if (!env.AppendToString(&frame)) return Status::internal("envelope failed to serialize");
  s = finish_sealed_frame(&frame, max_payload);
  if (!s) return s;
  if (out->empty()) {
    *out = std::move(frame);
  } else {
    out->append(frame);
  }
  return s;
}

bool parse_envelope(std::string_view payload, agent::v1::Envelope* env) {
  return verify_seal(payload) && parse_sealed_envelope(payload, env);
}

bool parse_sealed_envelope(std::string_view payload, agent::v1::Envelope* env) {
  if (!env->ParseFromArray(payload.data(), static_cast<int>(payload.size()))) return false;
  return env->body_case() != agent::v1::Envelope::BODY_NOT_SET;
}

}  // namespace qtx::wire
