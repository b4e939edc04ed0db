#include "dispatcher.h"

#include <spdlog/spdlog.h>

#include <csignal>
#include <exception>

#include "exec/exec_op.h"
#include "files/file_transfer.h"
#include "freeze/freeze_manager.h"
#include "handlers/handlers.h"
#include "qtx/quote.h"
#include "reply.h"
#include "session.h"

namespace qtx::agent {
namespace {

using Kind = v1::Request::KindCase;

struct RequestKind {
  Kind kind;
  const char* name;     // the Request oneof field name
  bool always_allowed;  // the session cannot work without it
  bool state_changing;  // gets an audit log line
  void (*handle)(Session&, std::uint64_t, const v1::Request&);
  bool writes_files = false;  // refused while filesystems are frozen
};

#define QTX_HANDLER(field) [](Session& s, std::uint64_t id, const v1::Request& r) { handle_##field(s, id, r.field()); }

const RequestKind kKinds[] = {
    {Kind::kHello, "hello", true, false, QTX_HANDLER(hello)},
    {Kind::kPing, "ping", true, false, QTX_HANDLER(ping)},
    {Kind::kInfo, "info", false, false, QTX_HANDLER(info)},
    {Kind::kTelemetryConfig, "telemetry_config", false, false, QTX_HANDLER(telemetry_config)},
    {Kind::kExec, "exec", false, false,  // audited with its argv by start_exec
     [](Session& s, std::uint64_t id, const v1::Request& r) { start_exec(s, id, r.exec()); }},
    {Kind::kFileStat, "file_stat", false, false, QTX_HANDLER(file_stat)},
    {Kind::kFileList, "file_list", false, false, QTX_HANDLER(file_list)},
    {Kind::kFileMkdir, "file_mkdir", false, true, QTX_HANDLER(file_mkdir), true},
    {Kind::kFileRemove, "file_remove", false, true, QTX_HANDLER(file_remove), true},
    {Kind::kFileRead, "file_read", false, false,
     [](Session& s, std::uint64_t id, const v1::Request& r) { start_file_read(s, id, r.file_read()); }},
    {Kind::kFileWrite, "file_write", false, true,
     [](Session& s, std::uint64_t id, const v1::Request& r) { start_file_write(s, id, r.file_write()); }, true},
    {Kind::kFileSetAttr, "file_set_attr", false, true, QTX_HANDLER(file_set_attr), true},
    {Kind::kFileHash, "file_hash", false, false, QTX_HANDLER(file_hash)},
    {Kind::kPower, "power", false, true, QTX_HANDLER(power)},
    {Kind::kFreeze, "freeze", false, false, QTX_HANDLER(freeze)},
    {Kind::kThaw, "thaw", false, false, QTX_HANDLER(thaw)},
    {Kind::kFreezeStatus, "freeze_status", false, false, QTX_HANDLER(freeze_status)},
    {Kind::kSetPassword, "set_password", false, false, QTX_HANDLER(set_password), true},
    {Kind::kSshKeys, "ssh_keys", false, false, QTX_HANDLER(ssh_keys), true},
    {Kind::kTimeGet, "time_get", false, false, QTX_HANDLER(time_get)},
    {Kind::kTimeSet, "time_set", false, false, QTX_HANDLER(time_set)},
    {Kind::kHostnameGet, "hostname_get", false, false, QTX_HANDLER(hostname_get)},
    {Kind::kHostnameSet, "hostname_set", false, false, QTX_HANDLER(hostname_set), true},
    {Kind::kNetwork, "network", false, false, QTX_HANDLER(network)},
    {Kind::kProcessList, "process_list", false, false, QTX_HANDLER(process_list)},
    {Kind::kProcessKill, "process_kill", false, true, QTX_HANDLER(process_kill)},
};

#undef QTX_HANDLER

const RequestKind* find_kind(Kind k) {
  for (const auto& e : kKinds) {
    if (e.kind == k) return &e;
  }
  return nullptr;
}

// The object a state-changing request acts on, for its audit line.
std::string describe_target(const v1::Request& r) {
  switch (r.kind_case()) {
    case Kind::kFileMkdir: return r.file_mkdir().path();
    case Kind::kFileRemove: return r.file_remove().path() + (r.file_remove().recursive() ? " (recursive)" : "");
    case Kind::kFileWrite: return r.file_write().path();
    case Kind::kFileSetAttr: return r.file_set_attr().path();
    case Kind::kPower: return "action " + std::to_string(r.power().action());
    case Kind::kProcessKill:  // the pid as sent, the signal as it will be sent (0: SIGTERM)
      return "pid " + std::to_string(r.process_kill().pid()) + " signal " +
             std::to_string(r.process_kill().signal() ? r.process_kill().signal() : SIGTERM);
    default: return "";
  }
}

bool allowed(const RequestKind& k, const AgentConfig& config) { return k.always_allowed || config.allows(k.name); }

}  // namespace

void dispatch_request(Session& session, std::uint64_t id, const v1::Request& request) {
  if (session.has_operation(id)) {
    session.refuse_duplicate(id, error_response(v1::ERROR_CODE_INVALID_ARGUMENT,
                                                "request id " + std::to_string(id) + " is already in use"));
    return;
  }
  const RequestKind* k = find_kind(request.kind_case());
  if (k == nullptr) {
    session.respond(id, error_response(v1::ERROR_CODE_UNSUPPORTED,
                                       "this agent does not support that request (kind " +
                                           std::to_string(static_cast<int>(request.kind_case())) + ")"));
    return;
  }
  if (!allowed(*k, session.agent().config)) {
    spdlog::info("audit: denied {} (id {}) by policy", k->name, id);
    session.respond(id, error_response(v1::ERROR_CODE_DENIED, std::string("denied by the guest's policy: ") + k->name));
    return;
  }
  if (k->writes_files && session.agent().freeze->frozen()) {
    session.respond(id, error_response(v1::ERROR_CODE_FAILED_PRECONDITION,
                                       std::string("filesystems are frozen: thaw before ") + k->name));
    return;
  }
  if (!k->always_allowed && !session.agent().workers.has_room()) {
    const auto& pool = session.agent().workers;
    session.respond(id,
                    error_response(v1::ERROR_CODE_BUSY, "the agent's workers are busy (" + std::to_string(pool.jobs()) +
                                                            " jobs queued or running, limit " +
                                                            std::to_string(pool.max_jobs()) + "): retry later"));
    return;
  }
  if (k->state_changing) spdlog::info("audit: {} (id {}) {}", k->name, id, printable(describe_target(request)));
  try {
    k->handle(session, id, request);
  } catch (const std::exception& e) {
    // A handler bug must not take the daemon down; the host gets an answer.
    spdlog::error("handler {} failed: {}", k->name, e.what());
    session.respond(id, error_response(v1::ERROR_CODE_INTERNAL, std::string(k->name) + " failed: " + e.what()));
  }
}

std::vector<v1::Capability> capabilities(const AgentConfig& config) {
  std::vector<v1::Capability> out;
  for (const auto& k : kKinds) {
    v1::Capability c;
    c.set_name(k.name);
    c.set_allowed(allowed(k, config));
    out.push_back(std::move(c));
  }
  return out;
}

// Policy kinds of commands the qemu-ga port has before the native protocol
// has a request for them; that request will take the same name, so a policy
// written today keeps its meaning.
const char* const kQgaOnlyKinds[] = {"fstrim", "suspend", "vcpus_set", "memory_blocks_set"};

const std::vector<std::string_view>& request_kind_names() {
  static const std::vector<std::string_view> names = [] {
    std::vector<std::string_view> v;
    for (const auto& k : kKinds) v.emplace_back(k.name);
    for (const char* k : kQgaOnlyKinds) v.emplace_back(k);
    return v;
  }();
  return names;
}

}  // namespace qtx::agent
