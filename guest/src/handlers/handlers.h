// Request handlers. Each answers its request exactly once, through
// session.respond() or a Reply, possibly later and from a worker thread.
// They run on the io thread and post anything that may block to the agent's
// worker pool.
#pragma once

#include <cstdint>

#include "qtx/agent/v1/envelope.pb.h"

namespace qtx::agent {

class Session;

// session_handlers.cc
// The agent's identity as the hello answer and Event.agent_started carry it.
void fill_identity(Session& s, v1::AgentIdentity* out);

void handle_hello(Session& s, std::uint64_t id, const v1::HelloRequest& req);
void handle_ping(Session& s, std::uint64_t id, const v1::PingRequest& req);
void handle_info(Session& s, std::uint64_t id, const v1::InfoRequest& req);
void handle_telemetry_config(Session& s, std::uint64_t id, const v1::TelemetryConfigRequest& req);

// file_handlers.cc
void handle_file_stat(Session& s, std::uint64_t id, const v1::FileStatRequest& req);
void handle_file_list(Session& s, std::uint64_t id, const v1::FileListRequest& req);
void handle_file_mkdir(Session& s, std::uint64_t id, const v1::FileMkdirRequest& req);
void handle_file_remove(Session& s, std::uint64_t id, const v1::FileRemoveRequest& req);
void handle_file_set_attr(Session& s, std::uint64_t id, const v1::FileSetAttrRequest& req);
void handle_file_hash(Session& s, std::uint64_t id, const v1::FileHashRequest& req);

// system_handlers.cc
void handle_power(Session& s, std::uint64_t id, const v1::PowerRequest& req);
void handle_freeze(Session& s, std::uint64_t id, const v1::FreezeRequest& req);
void handle_thaw(Session& s, std::uint64_t id, const v1::ThawRequest& req);
void handle_freeze_status(Session& s, std::uint64_t id, const v1::FreezeStatusRequest& req);
void handle_time_get(Session& s, std::uint64_t id, const v1::TimeGetRequest& req);
void handle_time_set(Session& s, std::uint64_t id, const v1::TimeSetRequest& req);
void handle_hostname_get(Session& s, std::uint64_t id, const v1::HostnameGetRequest& req);
void handle_hostname_set(Session& s, std::uint64_t id, const v1::HostnameSetRequest& req);
void handle_network(Session& s, std::uint64_t id, const v1::NetworkRequest& req);
void handle_process_list(Session& s, std::uint64_t id, const v1::ProcessListRequest& req);
void handle_process_kill(Session& s, std::uint64_t id, const v1::ProcessKillRequest& req);

// user_handlers.cc
void handle_set_password(Session& s, std::uint64_t id, const v1::SetPasswordRequest& req);
void handle_ssh_keys(Session& s, std::uint64_t id, const v1::SshKeysRequest& req);

}  // namespace qtx::agent
