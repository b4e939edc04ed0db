// Envelope <-> sealed QTX1 frame. The only place that turns protocol
// messages into frames and back, for the guest and the host alike.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "qtx/agent/v1/envelope.pb.h"
#include "qtx/status.h"
#include "qtx/wire/format.h"

namespace qtx::wire {

// Appends one frame carrying `env`, sealed, to *out. `env.check()` must be 0
// (the seal is computed here). InvalidArgument when the envelope serializes
// to more than `max_payload` bytes; *out is then unchanged.
Status append_envelope_frame(const agent::v1::Envelope& env, std::string* out,
                             std::uint32_t max_payload = kDefaultMaxPayload);

// The validator for FrameDecoder::Handler::on_frame: true when `payload`
// carries a valid seal, parses as an Envelope and has a body. *env is
// unspecified on false.
bool parse_envelope(std::string_view payload, agent::v1::Envelope* env);

// The same for a payload a FrameDecoder with SealCheck::kRequired (the
// default) delivered: the decoder checked the seal, so it is not hashed again.
bool parse_sealed_envelope(std::string_view payload, agent::v1::Envelope* env);

}  // namespace qtx::wire
