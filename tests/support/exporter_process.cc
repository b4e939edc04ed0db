#include "support/exporter_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

namespace qtx::testing {

ExporterProcess::ExporterProcess(const std::string& qtx_binary, const std::vector<std::string>& args,
                                 const std::string& log_path)
    : log_path_(log_path) {
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return;
  pid_ = ::fork();
  if (pid_ == 0) {
    int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(log, 2);
    ::dup2(out[1], 1);
    std::vector<std::string> all = {qtx_binary, "exporter"};
    all.insert(all.end(), args.begin(), args.end());
    all.push_back("--listen");
    all.push_back("127.0.0.1:0");
    std::vector<char*> argv;
    for (auto& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(qtx_binary.c_str(), argv.data());
    _exit(127);
  }
  ::close(out[1]);
  // "listening on 127.0.0.1:PORT\n"
  std::string line;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (line.find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    pollfd p{out[0], POLLIN, 0};
    if (::poll(&p, 1, 1000) <= 0) continue;
    char buf[256];
    ssize_t n = ::read(out[0], buf, sizeof buf);
    if (n <= 0) break;
    line.append(buf, static_cast<std::size_t>(n));
  }
  ::close(out[0]);
  const auto colon = line.rfind(':');
  if (line.rfind("listening on ", 0) == 0 && colon != std::string::npos) port_ = std::atoi(line.c_str() + colon + 1);
}

ExporterProcess::~ExporterProcess() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  int status = 0;
  ::waitpid(pid_, &status, 0);
}

std::string ExporterProcess::log() const {
  std::ifstream in(log_path_);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::optional<std::string> http_get(int port, const std::string& path, const std::string& accept) {
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(std::chrono::seconds(5));
  client.set_read_timeout(std::chrono::seconds(10));
  httplib::Headers headers;
  if (!accept.empty()) headers.emplace("Accept", accept);
  auto res = client.Get(path, headers);
  if (!res || res->status != 200) return std::nullopt;
  return res->body;
}

bool eventually(const std::function<bool()>& check, int attempts, std::chrono::milliseconds pause) {
  for (int i = 0; i < attempts; ++i) {
    if (check()) return true;
    std::this_thread::sleep_for(pause);
  }
  return false;
}

int free_tcp_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  ::close(fd);
  return port;
}

}  // namespace qtx::testing
