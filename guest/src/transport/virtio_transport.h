// virtio:NAME - the guest end of a virtio-serial port.
//
// Actors, all on the io_context thread:
//   device wait  inotify on /dev (and /dev/virtio-ports) until the port's node
//                exists; hot-plugged ports are picked up the same way.
//   host wait    the open port reports POLLHUP while no host holds the
//                chardev. The driver wakes the port's wait queue when a host
//                connects, which Asio's edge-triggered epoll reports. A wait op
//                is never speculative in Asio, so each wait is armed first and
//                the port's state checked after: an edge between the two is
//                never lost. No timers: zero wakeups while idle.
// Each async_open hands over a freshly opened descriptor with a host present.
#pragma once

#include <asio/posix/stream_descriptor.hpp>

#include <memory>

#include "port_discovery.h"
#include "transport.h"

namespace qtx::agent {

class VirtioTransport : public Transport {
 public:
  VirtioTransport(asio::io_context& io, std::string port_name, PortRoots roots = PortRoots());
  ~VirtioTransport() override;

  void async_open(OpenHandler handler) override;
  void cancel() override;
  std::string describe() const override;

  // True when the open port `fd` has a host on the other end (no POLLHUP).
  static bool host_connected(int fd);

 private:
  struct Attempt;
  void try_open(const std::shared_ptr<Attempt>& a);
  void wait_for_device(const std::shared_ptr<Attempt>& a);
  void wait_for_host(const std::shared_ptr<Attempt>& a);
  void finish(const std::shared_ptr<Attempt>& a, Status s);
  Status ensure_inotify();
  void drain_inotify();

  asio::io_context& io_;
  std::string name_;
  PortRoots roots_;
  std::string device_;  // last path found, for describe()
  std::unique_ptr<asio::posix::stream_descriptor> inotify_;
  int watch_dev_ = -1;
  int watch_ports_ = -1;
  std::shared_ptr<Attempt> current_;
};

}  // namespace qtx::agent
