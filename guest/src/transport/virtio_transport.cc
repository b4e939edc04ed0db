#include "virtio_transport.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <signal.h>

#include <asio/error.hpp>
#include <asio/post.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>

namespace qtx::agent {

// One async_open in progress.
struct VirtioTransport::Attempt {
  explicit Attempt(asio::io_context& io, OpenHandler h) : port(io), handler(std::move(h)) {}
  asio::posix::stream_descriptor port;
  OpenHandler handler;
  std::string path;
  bool done = false;
  bool woken = false;       // the device wait was cancelled to look again, not to give up
  int name_polls_left = 0;  // while a port's name is pending (see poll_pending_name)
};

namespace {
// A port's name normally follows its node within milliseconds; under
// emulation, within a second or two. Looked for this often, this long.
constexpr std::chrono::milliseconds kNamePoll{20};
constexpr int kNamePolls = 500;  // 10 s after each device event
}  // namespace

VirtioTransport::VirtioTransport(asio::io_context& io, std::string port_name, PortRoots roots)
    : io_(io), name_(std::move(port_name)), roots_(std::move(roots)) {}

VirtioTransport::~VirtioTransport() { cancel(); }

std::string VirtioTransport::describe() const {
  return "virtio:" + name_ + (device_.empty() ? "" : " (" + device_ + ")");
}

bool VirtioTransport::host_connected(int fd) {
  pollfd p{fd, POLLIN | POLLOUT, 0};
  if (::poll(&p, 1, 0) < 0) return false;
  return (p.revents & (POLLHUP | POLLERR | POLLNVAL)) == 0;
}

void VirtioTransport::async_open(OpenHandler handler) {
  auto a = std::make_shared<Attempt>(io_, std::move(handler));
  a->name_polls_left = kNamePolls;  // at start, a port may be there with its name still to come
  current_ = a;
  try_open(a);
}

void VirtioTransport::cancel() {
  if (current_ && !current_->done) finish(current_, Status::error(Status::Code::kCancelled, "cancelled"));
}

void VirtioTransport::try_open(const std::shared_ptr<Attempt>& a) {
  if (a->done) return;
  a->path = find_virtio_port(name_, roots_);
  if (a->path.empty()) return wait_for_device(a);
  if (name_poll_) name_poll_->cancel();
  int fd = ::open(a->path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    if (errno == ENOENT || errno == ENODEV || errno == ENXIO) return wait_for_device(a);
    const int err = errno;
    std::string why =
        err == EBUSY ? "the port is open in another process (is another agent running?)" : std::strerror(err);
    return finish(a, Status::io_error("opening " + a->path + ": " + why));
  }
  device_ = a->path;
  asio::error_code ec;
  a->port.assign(fd, ec);
  if (ec) {
    ::close(fd);
    return finish(a, Status::io_error("registering " + a->path + ": " + ec.message()));
  }
  wait_for_host(a);
}

Status VirtioTransport::ensure_inotify() {
  if (!inotify_) {
    int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) return Status::io_error(std::string("inotify_init1: ") + std::strerror(errno));
    inotify_ = std::make_unique<asio::posix::stream_descriptor>(io_, fd);
  }
  const int fd = inotify_->native_handle();
  const std::uint32_t mask = IN_CREATE | IN_MOVED_TO | IN_ATTRIB | IN_ONLYDIR;
  if (watch_dev_ < 0) watch_dev_ = ::inotify_add_watch(fd, roots_.dev.c_str(), mask);
  if (watch_ports_ < 0) {
    // Appears when udev makes the first symlink; the /dev watch reports that.
    watch_ports_ = ::inotify_add_watch(fd, (roots_.dev + "/virtio-ports").c_str(), mask);
  }
  if (watch_dev_ < 0) return Status::io_error("watching " + roots_.dev + ": " + std::strerror(errno));
  return Status::OK();
}

void VirtioTransport::drain_inotify() {
  char buf[4096];
  while (::read(inotify_->native_handle(), buf, sizeof(buf)) > 0) {
  }
}

void VirtioTransport::wait_for_device(const std::shared_ptr<Attempt>& a) {
  Status s = ensure_inotify();
  if (!s) return finish(a, s);
  a->woken = false;
  inotify_->async_wait(asio::posix::descriptor_base::wait_read, [this, a](const asio::error_code& ec) {
    if (a->done) return;
    if (ec && !(ec == asio::error::operation_aborted && a->woken)) {
      return finish(a, Status::io_error("waiting for the port: " + ec.message()));
    }
    a->woken = false;
    if (!ec) a->name_polls_left = kNamePolls;  // a device event: a name may follow
    drain_inotify();
    try_open(a);
  });
  // Armed first, checked second: a port that appeared meanwhile is not missed.
  if (!find_virtio_port(name_, roots_).empty()) return wake(a);
  // A port whose name has not arrived yet makes no event when it does
  // (without udev): look again until it has one, for a bounded time.
  if (a->name_polls_left > 0 && virtio_port_name_pending(roots_)) poll_pending_name(a);
}

void VirtioTransport::wake(const std::shared_ptr<Attempt>& a) {
  a->woken = true;
  inotify_->cancel();
}

void VirtioTransport::poll_pending_name(const std::shared_ptr<Attempt>& a) {
  if (!name_poll_) name_poll_ = std::make_unique<asio::steady_timer>(io_);
  name_poll_->expires_after(kNamePoll);
  name_poll_->async_wait([this, a](const asio::error_code& ec) {
    if (ec || a->done || a->woken) return;
    --a->name_polls_left;
    if (!find_virtio_port(name_, roots_).empty()) return wake(a);
    if (a->name_polls_left > 0 && virtio_port_name_pending(roots_)) poll_pending_name(a);
  });
}

namespace {

// O_ASYNC on or off for `fd`, with this process as the owner of its SIGIO.
bool set_async(int fd, bool on) {
  if (on && ::fcntl(fd, F_SETOWN, ::getpid()) != 0) return false;
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0) return false;
  return ::fcntl(fd, F_SETFL, on ? (flags | O_ASYNC) : (flags & ~O_ASYNC)) == 0;
}

}  // namespace

void VirtioTransport::wait_for_host(const std::shared_ptr<Attempt>& a) {
  if (!sigio_) sigio_ = std::make_unique<asio::signal_set>(io_, SIGIO);
  if (!set_async(a->port.native_handle(), true)) {
    return finish(a, Status::io_error("waiting for the host on " + a->path + ": O_ASYNC: " + std::strerror(errno)));
  }
  sigio_->async_wait([this, a](const asio::error_code& ec, int) {
    if (a->done) return;
    if (ec) return finish(a, Status::io_error("waiting for the host on " + a->path + ": " + ec.message()));
    if (host_connected(a->port.native_handle())) return finish(a, Status::OK());
    struct stat st {};
    if (::stat(a->path.c_str(), &st) != 0) {  // hot-unplugged while we waited
      asio::error_code ignored;
      a->port.close(ignored);
      return wait_for_device(a);
    }
    wait_for_host(a);
  });
  if (host_connected(a->port.native_handle())) finish(a, Status::OK());
}

void VirtioTransport::finish(const std::shared_ptr<Attempt>& a, Status s) {
  if (a->done) return;
  a->done = true;
  if (inotify_) inotify_->cancel();
  if (name_poll_) name_poll_->cancel();
  if (sigio_) {
    asio::error_code ignored;
    sigio_->cancel(ignored);
  }
  int fd = -1;
  if (a->port.is_open()) {
    set_async(a->port.native_handle(), false);  // no SIGIO for the session's own traffic
    if (s) {
      fd = a->port.release();  // cancels the pending wait (its handler sees done); does not throw
    } else {
      asio::error_code ignored;
      a->port.close(ignored);
    }
  }
  if (current_ == a) current_.reset();
  asio::post(io_, [a, s, fd] { a->handler(s, fd); });
}

}  // namespace qtx::agent
