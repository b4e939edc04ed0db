// qtx::host::Manager: the agents of many VMs in one process, on one I/O
// thread.
//
// A Manager owns the I/O thread and every connection on it. add() makes this
// process the single owner of a VM's socket: a second add() of the same
// path, here or in another process, fails with kAlreadyExists (naming the
// owner's pid) instead of queueing behind QEMU's one client.
//
// Lifetimes. Agents are shared handles: one may outlive its Manager, but
// once the Manager is destroyed every Agent is closed and its calls fail
// with kClosed. Destroying the Manager from its own I/O thread (from a
// callback) is not allowed.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "qtx/host/agent.h"
#include "qtx/host/error.h"
#include "qtx/host/export.h"

namespace qtx::host {

namespace detail {
class IoThread;
struct ManagerAccess;
}  // namespace detail

class QTX_HOST_API Manager {
 public:
  Manager();
  ~Manager();
  Manager(const Manager&) = delete;
  Manager& operator=(const Manager&) = delete;

  // Starts connecting at once. kAlreadyExists when the socket already has an
  // owner; kLocal for an unusable endpoint (empty path, bad fd, bad option).
  Result<std::shared_ptr<Agent>> add(AgentOptions options);
  // Closes the agent (same as Agent::close) and forgets it.
  void remove(const std::shared_ptr<Agent>& agent);
  // The open agent on this socket path (as given to add), or null.
  std::shared_ptr<Agent> find(const std::string& socket_path) const;
  // Closes the agent on this socket path; false when there is none.
  bool remove(const std::string& socket_path);
  std::vector<std::shared_ptr<Agent>> agents() const;
  std::size_t size() const;

  // True on this Manager's I/O thread (inside callbacks).
  bool on_io_thread() const;

 private:
  friend struct detail::ManagerAccess;
  std::shared_ptr<detail::IoThread> io_;
};

}  // namespace qtx::host
