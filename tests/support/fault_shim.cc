#include "support/fault_shim.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>

namespace qtx::testing {
namespace {

sockaddr_un address(const std::string& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path.size() >= sizeof a.sun_path) throw std::runtime_error("socket path too long: " + path);
  std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
  return a;
}

bool write_all(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    const ssize_t k = ::send(fd, p, n, MSG_NOSIGNAL);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return false;
    p += k;
    n -= static_cast<std::size_t>(k);
  }
  return true;
}

// Blocking sends that give up after 10 s: a peer that stops reading ends
// the connection instead of hanging the shim's thread (and its destructor).
void limit_send_time(int fd) {
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

void pause_for(unsigned us) {
  timespec ts{static_cast<time_t>(us / 1000000), static_cast<long>(us % 1000000) * 1000};
  while (::nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

}  // namespace

FaultShim::FaultShim(std::string listen_path, std::string agent_path, Plan plan)
    : listen_path_(std::move(listen_path)), agent_path_(std::move(agent_path)), plan_(plan) {
  listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const sockaddr_un a = address(listen_path_);
  ::unlink(listen_path_.c_str());
  if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0 ||
      ::listen(listen_fd_, 4) != 0 || ::pipe2(stop_pipe_, O_CLOEXEC) != 0) {
    throw std::runtime_error("fault shim: cannot listen on " + listen_path_ + ": " + std::strerror(errno));
  }
  thread_ = std::thread([this] { run(); });
}

FaultShim::~FaultShim() {
  char b = 0;
  (void)!::write(stop_pipe_[1], &b, 1);
  thread_.join();
  ::close(listen_fd_);
  ::close(stop_pipe_[0]);
  ::close(stop_pipe_[1]);
  ::unlink(listen_path_.c_str());
}

bool FaultShim::wait_closed(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  return closed_.wait_for(lock, timeout, [this] { return !open_; });
}

void FaultShim::set_open(bool open) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    open_ = open;
  }
  closed_.notify_all();
}

void FaultShim::run() {
  int ends[2] = {-1, -1};  // [kToAgent] reads the host's side, [kToHost] the agent's
  bool first = false;      // the current connection is the first one
  std::uint64_t counted[2] = {0, 0};
  auto close_pair = [&] {
    if (ends[0] < 0) return;
    for (int& fd : ends) {
      ::close(fd);
      fd = -1;
    }
    set_open(false);
  };
  for (;;) {
    pollfd p[4] = {{stop_pipe_[0], POLLIN, 0}, {listen_fd_, POLLIN, 0}, {ends[0], POLLIN, 0}, {ends[1], POLLIN, 0}};
    const int nfds = ends[0] >= 0 ? 4 : 2;
    if (::poll(p, static_cast<nfds_t>(nfds), -1) < 0) continue;
    if (p[0].revents) break;
    if (p[1].revents & POLLIN) {
      const int host = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (host < 0) continue;
      close_pair();
      const int agent = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      const sockaddr_un a = address(agent_path_);
      if (agent < 0 || ::connect(agent, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
        if (agent >= 0) ::close(agent);
        ::close(host);
        continue;
      }
      limit_send_time(host);
      limit_send_time(agent);
      ends[kToAgent] = host;
      ends[kToHost] = agent;
      first = connections_.fetch_add(1) == 0;
      counted[0] = counted[1] = 0;
      set_open(true);
      continue;
    }
    for (int d = 0; d < 2 && ends[0] >= 0; ++d) {
      if (!(p[2 + d].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[4096];
      const ssize_t n = ::read(ends[d], buf, sizeof buf);
      if (n <= 0) {
        close_pair();
        break;
      }
      const int to = ends[1 - d];
      // The bytes of this read that go before the cut, if it falls here.
      std::size_t take = static_cast<std::size_t>(n);
      bool cut_here = false;
      if (first && d == plan_.cut_direction && plan_.cut_after - counted[d] < take) {
        take = static_cast<std::size_t>(plan_.cut_after - counted[d]);
        cut_here = true;
      }
      std::size_t sent = 0;
      while (sent < take) {
        const std::size_t piece = plan_.split ? 1 : take - sent;
        if (!write_all(to, buf + sent, piece)) break;
        sent += piece;
        counted[d] += piece;
        if (first) first_bytes_[d] = counted[d];
        if (plan_.pause_every != 0 && counted[d] % plan_.pause_every == 0) pause_for(plan_.pause_us);
      }
      if (sent < take || cut_here) {
        if (cut_here) cut_ = true;
        close_pair();
        break;
      }
    }
  }
  close_pair();
}

}  // namespace qtx::testing
