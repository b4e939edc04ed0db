// The request table: which request kinds this agent implements, which the
// policy allows, and the handler of each. Every request gets exactly one
// answer: a handler's result, or UNSUPPORTED / DENIED / INVALID_ARGUMENT.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "qtx/agent/v1/envelope.pb.h"

namespace qtx::agent {

class Session;
struct AgentConfig;

// Routes one request (io thread; `id` is non-zero, see Session::acceptable).
// Never throws.
void dispatch_request(Session& session, std::uint64_t id, const v1::Request& request);

// Every implemented request kind, with whether `config` allows it.
std::vector<v1::Capability> capabilities(const AgentConfig& config);

// The names policy.allow and policy.deny take: the implemented request kinds
// (the Request oneof field names), then the kinds of qemu-ga commands that
// have no native request yet (fstrim, suspend, vcpus_set,
// memory_blocks_set; docs/qemu-ga-compat.md); static storage.
const std::vector<std::string_view>& request_kind_names();

}  // namespace qtx::agent
