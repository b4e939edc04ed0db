// Finding a virtio-serial port by name. udev makes /dev/virtio-ports/NAME a
// symlink to /dev/vportNpM; minimal guests without udev only have the node,
// and its name is in /sys/class/virtio-ports/vportNpM/name.
#pragma once

#include <string>

namespace qtx::agent {

struct PortRoots {
  std::string dev = "/dev";
  std::string sys = "/sys";
};

// The device path for port `name`, or "" when no such port exists (yet).
std::string find_virtio_port(const std::string& name, const PortRoots& roots = PortRoots());

// True while some port has no name yet. The kernel creates the port (and,
// through devtmpfs, its /dev node) first and its sysfs `name` only when the
// host's name message arrives; nothing a file watch sees marks that moment
// in a guest without udev.
bool virtio_port_name_pending(const PortRoots& roots = PortRoots());

}  // namespace qtx::agent
