#include "owner_lock.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "qtx/wire/sha256.h"

namespace qtx::host::detail {
namespace {

// "qtx-owner:" + the absolute, normalised path; hashed when too long.
std::string lock_name(const std::string& socket_path) {
  std::error_code ec;
  auto abs = std::filesystem::absolute(socket_path, ec);
  std::string path = ec ? socket_path : abs.lexically_normal().string();
  std::string name = "qtx-owner:" + path;
  if (name.size() + 1 > sizeof(sockaddr_un::sun_path)) {
    name = "qtx-owner:sha256:" + wire::Sha256::hex(wire::Sha256::of(path));
  }
  return name;
}

socklen_t abstract_address(const std::string& name, sockaddr_un* addr) {
  std::memset(addr, 0, sizeof(*addr));
  addr->sun_family = AF_UNIX;
  addr->sun_path[0] = '\0';
  std::memcpy(addr->sun_path + 1, name.data(), name.size());
  return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
}

// The pid of the process listening on `addr`, or 0 when it cannot be told.
pid_t holder_pid(const sockaddr_un& addr, socklen_t len) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return 0;
  pid_t pid = 0;
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), len) == 0) {
    ucred cred{};
    socklen_t n = sizeof(cred);
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &n) == 0) pid = cred.pid;
  }
  ::close(fd);
  return pid;
}

}  // namespace

OwnerLock::~OwnerLock() {
  if (fd_ >= 0) ::close(fd_);
}

OwnerLock& OwnerLock::operator=(OwnerLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

Result<OwnerLock> OwnerLock::acquire(const std::string& socket_path) {
  sockaddr_un addr;
  socklen_t len = abstract_address(lock_name(socket_path), &addr);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Error(ErrorKind::kLocal, std::string("owner lock: socket: ") + std::strerror(errno), 0, errno);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), len) != 0) {
    int err = errno;
    ::close(fd);
    if (err == EADDRINUSE) {
      pid_t pid = holder_pid(addr, len);
      std::string who = pid == ::getpid() ? "this process" : pid > 0 ? "pid " + std::to_string(pid) : "another process";
      return Error(ErrorKind::kAlreadyExists,
                   socket_path + " is already owned by " + who + " (QEMU serves one client per channel)");
    }
    return Error(ErrorKind::kLocal, "owner lock for " + socket_path + ": " + std::strerror(err), 0, err);
  }
  // Listening lets a contender read our pid through SO_PEERCRED.
  if (::listen(fd, 1) != 0) {
    int err = errno;
    ::close(fd);
    return Error(ErrorKind::kLocal, "owner lock for " + socket_path + ": " + std::strerror(err), 0, err);
  }
  return OwnerLock(fd);
}

}  // namespace qtx::host::detail
