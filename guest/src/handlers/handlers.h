// Request handlers. Each answers its request exactly once, through
// session.respond() or a Reply, possibly later and from a worker thread.
// They run on the io thread and post anything that may block to the agent's
// worker pool.
#pragma once

#include <cstdint>

#include "qtx/agent/v1/envelope.pb.h"

namespace qtx::agent {

class Session;
namespace v1 = ::qtx::agent::v1;

// session_handlers.cc
void handle_hello(Session& s, std::uint64_t id, const v1::HelloRequest& req);
void handle_ping(Session& s, std::uint64_t id, const v1::PingRequest& req);
void handle_info(Session& s, std::uint64_t id, const v1::InfoRequest& req);
void handle_telemetry_config(Session& s, std::uint64_t id, const v1::TelemetryConfigRequest& req);

}  // namespace qtx::agent
