#include "support/qga_peers.h"

#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

extern char** environ;

namespace qtx::testing {

QgaClient::QgaClient(const std::string& path) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  for (;;) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path.c_str());
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0) return;
    ::close(fd_);
    fd_ = -1;
    if (std::chrono::steady_clock::now() > deadline) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

QgaClient::~QgaClient() {
  if (fd_ >= 0) ::close(fd_);
}

void QgaClient::send(const std::string& bytes) {
  std::size_t off = 0;
  while (off < bytes.size()) {
    const ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return;
    off += static_cast<std::size_t>(n);
  }
}

std::string QgaClient::line() {
  for (;;) {
    const auto nl = buf_.find('\n');
    if (nl != std::string::npos) {
      std::string l = buf_.substr(0, nl);
      buf_.erase(0, nl + 1);
      return l;
    }
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 20000) <= 0) return "";
    char b[65536];
    const ssize_t n = ::read(fd_, b, sizeof(b));
    if (n <= 0) return "";
    buf_.append(b, static_cast<std::size_t>(n));
  }
}

QgaJson QgaClient::call(const std::string& request) {
  send(request);
  std::string l = line();
  if (!l.empty() && static_cast<unsigned char>(l[0]) == 0xFF) l.erase(0, 1);
  return QgaJson::parse(l, nullptr, false);
}

bool QemuGa::installed() { return ::access(kPath, X_OK) == 0; }

QemuGa::QemuGa(const std::string& socket, const std::string& state_dir) {
  std::vector<std::string> args = {kPath, "-m", "unix-listen", "-p", socket, "-t", state_dir};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  if (::posix_spawn(&pid_, argv[0], nullptr, nullptr, argv.data(), environ) != 0) pid_ = -1;
}

QemuGa::~QemuGa() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  ::waitpid(pid_, nullptr, 0);
}

QgaJson qga_shape(const QgaJson& v) {
  if (v.is_object()) {
    QgaJson s = QgaJson::object();
    for (const auto& [k, m] : v.items()) s[k] = qga_shape(m);
    return s;
  }
  if (v.is_array()) return v.empty() ? QgaJson::array() : QgaJson::array({qga_shape(v[0])});
  if (v.is_number_integer()) return "integer";
  if (v.is_number()) return "number";
  if (v.is_string()) return "string";
  if (v.is_boolean()) return "boolean";
  return "null";
}

std::string qga_canonical(const QgaJson& v) { return nlohmann::json(v).dump(); }

}  // namespace qtx::testing
