#include "support/agent_swarm.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>

#include "qtx/wire/envelope_codec.h"
#include "support/agent_client.h"

namespace qtx::testing {
namespace {

// Descriptors per SCM_RIGHTS message (the kernel takes at most 253).
constexpr std::size_t kFdsPerMessage = 200;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "agent swarm: %s: %s\n", what, std::strerror(errno));
  std::exit(1);
}

// The server process: one epoll loop over the control socket and every
// connection. A connection lives until its host end closes or errs.
class Server {
 public:
  Server(int control, const v1::AgentIdentity& identity) : control_(control), identity_(identity) {
    epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (epoll_ < 0) fail("epoll_create1");
    watch(control_, EPOLLIN);
  }

  void run() {
    epoll_event events[256];
    for (;;) {
      const int n = ::epoll_wait(epoll_, events, 256, -1);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) fail("epoll_wait");
      for (int i = 0; i < n; ++i) {
        const int fd = events[i].data.fd;
        if (fd == control_) {
          if (!receive()) return;
          continue;
        }
        auto it = peers_.find(fd);
        if (it == peers_.end()) continue;
        Peer& p = *it->second;
        bool alive = true;
        if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) alive = p.read(buffer_, sizeof(buffer_));
        if (alive) alive = p.flush();
        if (!alive) {
          ::close(fd);  // also leaves the epoll set
          peers_.erase(it);
        } else if (p.wants_out != !p.out.empty()) {
          p.wants_out = !p.out.empty();
          modify(fd, EPOLLIN | (p.wants_out ? EPOLLOUT : 0u));
        }
      }
    }
  }

 private:
  struct Peer : wire::FrameDecoder::Handler {
    Peer(int f, v1::AgentIdentity a) : fd(f), agent(std::move(a)), decoder(this) {}

    bool read(char* buf, std::size_t size) {
      const ssize_t n = ::read(fd, buf, size);
      if (n < 0) return errno == EAGAIN || errno == EINTR;
      if (n == 0) return false;
      decoder.feed(buf, static_cast<std::size_t>(n));
      return true;
    }
    bool flush() {
      while (!out.empty()) {
        const ssize_t n = ::send(fd, out.data(), out.size(), MSG_NOSIGNAL);
        if (n < 0) return errno == EAGAIN || errno == EINTR;
        out.erase(0, static_cast<std::size_t>(n));
      }
      return true;
    }
    bool on_frame(std::string_view payload, std::uint64_t) override {
      v1::Envelope req;
      if (!wire::parse_sealed_envelope(payload, &req)) return false;
      if (auto reply = session_answer(req, agent)) {
        if (!wire::append_envelope_frame(*reply, &out).ok()) return false;
      }
      return true;
    }
    void on_drop(const wire::Drop&) override {}

    int fd;
    v1::AgentIdentity agent;
    wire::FrameDecoder decoder;
    std::string out;  // answers not yet taken by the socket
    bool wants_out = false;
  };

  void watch(int fd, std::uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    if (::epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev) != 0) fail("epoll_ctl add");
  }
  void modify(int fd, std::uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    if (::epoll_ctl(epoll_, EPOLL_CTL_MOD, fd, &ev) != 0) fail("epoll_ctl mod");
  }

  // Takes the descriptors of one control message; false at its end.
  bool receive() {
    char byte;
    iovec iov{&byte, 1};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kFdsPerMessage)];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    const ssize_t n = ::recvmsg(control_, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) return true;
    if (n <= 0) return false;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (std::size_t i = 0; i < count; ++i) {
        int fd;
        std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
        v1::AgentIdentity agent = identity_;
        agent.set_instance_id(identity_.instance_id() + "-" + std::to_string(fd));
        peers_.emplace(fd, std::make_unique<Peer>(fd, std::move(agent)));
        watch(fd, EPOLLIN);
      }
    }
    return true;
  }

  int control_;
  const v1::AgentIdentity identity_;
  int epoll_ = -1;
  std::unordered_map<int, std::unique_ptr<Peer>> peers_;
  char buffer_[64 * 1024];
};

}  // namespace

AgentSwarm::AgentSwarm(const v1::AgentIdentity& identity) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) fail("socketpair");
  pid_ = ::fork();
  if (pid_ < 0) fail("fork");
  if (pid_ == 0) {
    ::close(sv[0]);
    auto server = std::make_unique<Server>(sv[1], identity);
    server->run();
    ::_exit(0);  // nothing of the parent's (atexit, test framework) runs here
  }
  ::close(sv[1]);
  control_ = sv[0];
}

AgentSwarm::~AgentSwarm() {
  ::close(control_);
  int status;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
}

std::vector<int> AgentSwarm::connect(std::size_t n) {
  std::vector<int> hosts;
  hosts.reserve(n);
  while (hosts.size() < n) {
    const std::size_t batch = std::min(kFdsPerMessage, n - hosts.size());
    std::vector<int> agents;
    for (std::size_t i = 0; i < batch; ++i) {
      int sv[2];
      if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) fail("socketpair");
      hosts.push_back(sv[0]);
      agents.push_back(sv[1]);
    }
    char byte = 0;
    iovec iov{&byte, 1};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kFdsPerMessage)] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * batch);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * batch);
    std::memcpy(CMSG_DATA(c), agents.data(), sizeof(int) * batch);
    ssize_t sent;
    do {
      sent = ::sendmsg(control_, &msg, MSG_NOSIGNAL);
    } while (sent < 0 && errno == EINTR);
    if (sent != 1) fail("sending descriptors to the server");
    for (int fd : agents) ::close(fd);  // the server holds them now
  }
  return hosts;
}

}  // namespace qtx::testing
