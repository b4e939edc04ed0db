// OwnerLock: makes this process the single owner of a VM's channel socket.
//
// QEMU's chardev socket serves one client; a second one queues silently
// behind the first. The lock is a listening socket in the abstract unix
// namespace named after the socket path: binding it fails while another
// owner (in this process or any other in the network namespace) holds it,
// and the kernel releases it when the owner exits, however it exits. The
// holder's pid is read back with SO_PEERCRED for the error message.
//
// Two different paths to the same socket (symlinks, bind mounts) are not
// recognised as the same.
#pragma once

#include <string>

#include "qtx/host/error.h"

namespace qtx::host::detail {

class OwnerLock {
 public:
  OwnerLock() = default;
  ~OwnerLock();
  OwnerLock(OwnerLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  OwnerLock& operator=(OwnerLock&& other) noexcept;

  // kAlreadyExists ("... is already owned by pid N") or kLocal.
  static Result<OwnerLock> acquire(const std::string& socket_path);

  bool held() const { return fd_ >= 0; }

 private:
  explicit OwnerLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace qtx::host::detail
