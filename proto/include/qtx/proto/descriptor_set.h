// The serialized google.protobuf.FileDescriptorSet of qtx.agent.v1
// (generated at build time from proto/). For host-side tools only.
#pragma once

#include <string_view>

namespace qtx::proto {

std::string_view descriptor_set();

}  // namespace qtx::proto
