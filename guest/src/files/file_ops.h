// File operations shared by several handlers.
#pragma once

#include "files/path_policy.h"
#include "qtx/agent/v1/envelope.pb.h"

namespace qtx::agent {

// mkdir (with parents: mkdir -p) under the policy; Response.done or an error.
::qtx::agent::v1::Response make_directories(const PathPolicy& policy, const ::qtx::agent::v1::FileMkdirRequest& req);

}  // namespace qtx::agent
