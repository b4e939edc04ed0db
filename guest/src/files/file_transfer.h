// Streamed file transfers with credit-based flow control.
//
// Read (agent -> host): the agent sends Progress.file_chunk messages while it
// holds credit and the outbox has room, then Response.file_read with the
// byte count and sha256. Write (host -> agent): the agent opens the file (a
// temporary beside it for an atomic replace), grants Credit, writes chunks in
// order and grants credit again as they land, and on the last chunk fsyncs,
// renames into place and answers Response.file_write.
//
// Disk I/O and hashing run on a worker, one job per transfer at a time, so
// the io thread only frames and sends. A transfer that fails or is cancelled
// leaves no temporary behind, and an atomic replace leaves the old file
// intact until the rename.
#pragma once

#include <cstdint>

#include "qtx/agent/v1/envelope.pb.h"

namespace qtx::agent {

class Session;

void start_file_read(Session& s, std::uint64_t id, const ::qtx::agent::v1::FileReadRequest& req);
void start_file_write(Session& s, std::uint64_t id, const ::qtx::agent::v1::FileWriteRequest& req);

// Defaults when the request leaves them 0.
inline constexpr std::uint32_t kDefaultChunk = 256 * 1024;
inline constexpr std::uint64_t kDefaultWindow = 8u * 1024 * 1024;

}  // namespace qtx::agent
