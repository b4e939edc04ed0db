#include "vm/injecting_proxy.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "qtx/wire/format.h"

namespace qtx::testing {
namespace {

int unix_socket(const std::string& path, bool listen) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
  const auto* a = reinterpret_cast<const sockaddr*>(&addr);
  const bool ok =
      listen ? (::bind(fd, a, sizeof(addr)) == 0 && ::listen(fd, 1) == 0) : ::connect(fd, a, sizeof(addr)) == 0;
  if (!ok) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool write_all(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    const ssize_t k = ::write(fd, p, n);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return false;
    p += k;
    n -= static_cast<std::size_t>(k);
  }
  return true;
}

std::string header(std::uint32_t length) {
  std::string h(wire::kMagic.data(), wire::kMagicSize);
  for (int shift = 24; shift >= 0; shift -= 8) h.push_back(static_cast<char>((length >> shift) & 0xffu));
  return h;
}

}  // namespace

InjectingProxy::InjectingProxy(std::string listen_path, std::string target_path, std::uint32_t seed)
    : target_path_(std::move(target_path)), rng_(seed | 1u) {
  listen_fd_ = unix_socket(listen_path, true);
  if (listen_fd_ < 0) {
    fail("cannot listen on " + listen_path + ": " + std::strerror(errno));
    return;
  }
  server_ = std::thread([this] { serve(); });
}

InjectingProxy::~InjectingProxy() {
  stopping_ = true;
  // shutdown() wakes the blocked accept and reads; the threads close nothing.
  if (listen_fd_ >= 0) ::shutdown(listen_fd_, SHUT_RDWR);
  for (auto* fd : {&host_fd_, &guest_fd_}) {
    const int f = fd->load();
    if (f >= 0) ::shutdown(f, SHUT_RDWR);
  }
  if (server_.joinable()) server_.join();
  for (int fd : {listen_fd_, host_fd_.load(), guest_fd_.load()}) {
    if (fd >= 0) ::close(fd);
  }
}

std::string InjectingProxy::error() const { return failed_.load() ? error_ : std::string(); }

void InjectingProxy::fail(const std::string& what) {
  if (stopping_ || failed_.load()) return;
  error_ = what;
  failed_ = true;
}

void InjectingProxy::serve() {
  const int host = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
  if (host < 0) return fail(std::string("accept: ") + std::strerror(errno));
  host_fd_ = host;
  const int guest = unix_socket(target_path_, false);
  if (guest < 0) return fail("cannot connect to " + target_path_ + ": " + std::strerror(errno));
  guest_fd_ = guest;
  if (stopping_) ::shutdown(guest, SHUT_RDWR);  // the destructor ran before guest_fd_ was set
  std::thread back([host, guest] {
    std::vector<char> buf(64 * 1024);
    for (;;) {
      const ssize_t n = ::read(guest, buf.data(), buf.size());
      if (n <= 0 || !write_all(host, buf.data(), static_cast<std::size_t>(n))) break;
    }
    ::shutdown(host, SHUT_WR);
  });
  host_to_guest(host, guest);
  back.join();
}

void InjectingProxy::host_to_guest(int host, int guest) {
  std::string pending;
  std::vector<char> buf(64 * 1024);
  for (;;) {
    const ssize_t n = ::read(host, buf.data(), buf.size());
    if (n <= 0) break;
    pending.append(buf.data(), static_cast<std::size_t>(n));
    while (pending.size() >= wire::kHeaderSize) {
      if (std::memcmp(pending.data(), wire::kMagic.data(), wire::kMagicSize) != 0) {
        return fail("the host sent bytes that do not start a QTX1 frame");
      }
      const auto* h = reinterpret_cast<const unsigned char*>(pending.data()) + wire::kMagicSize;
      const std::size_t length =
          (std::size_t{h[0]} << 24) | (std::size_t{h[1]} << 16) | (std::size_t{h[2]} << 8) | h[3];
      if (pending.size() < wire::kHeaderSize + length) break;
      const std::string garbage = next_garbage();
      if (!write_all(guest, garbage.data(), garbage.size()) ||
          !write_all(guest, pending.data(), wire::kHeaderSize + length)) {
        return fail(std::string("write to the guest: ") + std::strerror(errno));
      }
      garbage_ += garbage.size();
      frames_ += 1;
      pending.erase(0, wire::kHeaderSize + length);
    }
  }
  ::shutdown(guest, SHUT_WR);
}

std::string InjectingProxy::next_garbage() {
  auto next = [this] {  // xorshift64
    rng_ ^= rng_ << 13;
    rng_ ^= rng_ >> 7;
    rng_ ^= rng_ << 17;
    return rng_;
  };
  std::string g;
  // The first run, before the handshake, is long: a stale backlog.
  const std::size_t random_len = frames_.load() == 0 ? 1000 : 1 + next() % 300;
  for (std::size_t i = 0; i < random_len; ++i) {
    char c = static_cast<char>(next() & 0xffu);
    if (c == wire::kMagic[0]) c = '.';  // every 'Q' is placed on purpose below
    g.push_back(c);
  }
  switch (shape_++ % 6) {
    case 0: g += std::string(wire::kMagic.data(), wire::kMagicSize); break;      // a bare magic
    case 1: g += header(0); break;                                               // length 0
    case 2: g += header(0x7fffffffu); break;                                     // over any limit
    case 3: g += header(5) + std::string("\x0d\x01\x02\x03\x04", 5); break;      // wrong seal
    case 4: g += std::string(wire::kMagic.data(), wire::kMagicSize - 1); break;  // magic cut short
    default: g += "QQQ"; break;
  }
  return g;
}

}  // namespace qtx::testing
