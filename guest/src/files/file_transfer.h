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
//
// Memory. A transfer counts against limits.max_open_transfers from the
// moment its request is dispatched (a burst is answered BUSY beyond the
// limit). All reads together hold at most half the outbox (the room streams
// get) plus one chunk of file data, read or queued: a read reserves its
// chunk in the session before reading it, and a chunk is at most half the
// outbox. All writes together hold at most kWriteMemory bytes of the host's
// data: each write's window, the credit it grants, is an equal share
// (write_window). Nothing else is buffered per transfer.
#pragma once

#include <algorithm>
#include <cstdint>

#include "agent_config.h"
#include "qtx/agent/v1/envelope.pb.h"

namespace qtx::agent {

class Session;

void start_file_read(Session& s, std::uint64_t id, const ::qtx::agent::v1::FileReadRequest& req);
void start_file_write(Session& s, std::uint64_t id, const ::qtx::agent::v1::FileWriteRequest& req);

// Defaults when the request leaves them 0.
inline constexpr std::uint32_t kDefaultChunk = 256 * 1024;
inline constexpr std::uint64_t kDefaultWindow = 8u * 1024 * 1024;  // a read's credit

// The host data all writes together may hold, and the bounds of one
// write's share of it.
inline constexpr std::uint64_t kWriteMemory = 32u * 1024 * 1024;
inline constexpr std::uint64_t kMinWriteWindow = 64 * 1024;
inline constexpr std::uint64_t kMaxWriteWindow = 8u * 1024 * 1024;

// The window of one write: kWriteMemory shared by max_open_transfers,
// within [kMinWriteWindow, kMaxWriteWindow] (4 MiB with the default 8).
inline std::uint64_t write_window(const AgentConfig& config) {
  const std::uint64_t share = kWriteMemory / std::max<std::uint64_t>(1, config.max_open_transfers);
  return std::min(kMaxWriteWindow, std::max(kMinWriteWindow, share));
}

}  // namespace qtx::agent
