// virtio:NAME - the guest end of a virtio-serial port.
//
// Actors, all on the io_context thread:
//   device wait  inotify on /dev (and /dev/virtio-ports) until the port's node
//                exists; hot-plugged ports are picked up the same way.
//   host wait    the open port reports POLLHUP while no host holds the
//                chardev, and keeps reporting it: an epoll or poll wait would
//                return at once, forever (a busy loop, measured at 100% CPU
//                in a real guest). Instead the port is put in O_ASYNC mode:
//                virtio_console sends SIGIO when the host opens or closes the
//                chardev. The SIGIO wait (an asio::signal_set, which queues a
//                signal that arrives while no wait is pending) is armed
//                first and the port's state checked after, so a connect
//                between the two is never lost. O_ASYNC is cleared before
//                the descriptor is handed over. No timers: zero wakeups
//                while idle.
// Each async_open hands over a freshly opened descriptor with a host present.
#pragma once

#include <asio/posix/stream_descriptor.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>

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
  // Ends the device wait to look again (the wait's handler calls try_open).
  void wake(const std::shared_ptr<Attempt>& a);
  // While a port's name is pending, looks again every kNamePoll.
  void poll_pending_name(const std::shared_ptr<Attempt>& a);
  void finish(const std::shared_ptr<Attempt>& a, Status s);
  Status ensure_inotify();
  void drain_inotify();

  asio::io_context& io_;
  std::string name_;
  PortRoots roots_;
  std::string device_;  // last path found, for describe()
  std::unique_ptr<asio::posix::stream_descriptor> inotify_;
  // SIGIO from ports in O_ASYNC mode; kept for the transport's lifetime so
  // a late SIGIO never meets the default action (terminate).
  std::unique_ptr<asio::signal_set> sigio_;
  std::unique_ptr<asio::steady_timer> name_poll_;
  int watch_dev_ = -1;
  int watch_ports_ = -1;
  std::shared_ptr<Attempt> current_;
};

}  // namespace qtx::agent
