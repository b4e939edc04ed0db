// Transport: where the agent's connections to the host come from. One
// connection at a time; each is handed over as a file descriptor that the
// session then owns and closes.
//
//   virtio:NAME         the virtio-serial port NAME (default org.quantix.agent.0)
//   unix-listen:PATH    listen on a unix socket; the host connects (tests, benches)
//   unix-connect:PATH   connect to a host listening on a unix socket
//
// All waiting is edge-driven: no polling loops, no timers while idle.
#pragma once

#include <asio/io_context.hpp>

#include <functional>
#include <memory>
#include <string>

#include "qtx/status.h"

namespace qtx::agent {

class Transport {
 public:
  // Called once per async_open, on the io_context's thread: OK with the
  // connected descriptor (the callee owns and closes it), or an error and -1
  // (the supervisor backs off and retries). cancel() reports kCancelled.
  using OpenHandler = std::function<void(Status, int fd)>;

  virtual ~Transport() = default;

  // Waits until the host is there and hands over the connection.
  virtual void async_open(OpenHandler handler) = 0;
  // Abandons a pending async_open (its handler gets kCancelled).
  virtual void cancel() = 0;
  // "virtio:org.quantix.agent.0 (/dev/vport2p1)" and the like, for logs.
  virtual std::string describe() const = 0;
};

// Builds a transport from its spec (see above). InvalidArgument on a bad spec.
Status make_transport(asio::io_context& io, const std::string& spec, std::unique_ptr<Transport>* out);

}  // namespace qtx::agent
