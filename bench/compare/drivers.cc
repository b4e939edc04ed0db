#include "drivers.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>

namespace qtx::bench {
namespace {

namespace v1 = ::qtx::agent::v1;
using namespace std::chrono_literals;

class QtxDriver : public Driver {
 public:
  explicit QtxDriver(std::shared_ptr<host::Agent> agent) : agent_(std::move(agent)) {}
  void set_checksums(bool on) override { verify_ = on; }

  bool ping() override { return check(agent_->ping({})); }

  bool pings(int n, int window) override {
    std::mutex mu;
    std::condition_variable cv;
    int in_flight = 0, done = 0;
    bool ok = true;
    for (int sent = 0; sent < n; ++sent) {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return in_flight < window; });
      ++in_flight;
      lock.unlock();
      agent_->ping({}, {}, [&](host::Result<v1::PingResponse> r) {
        std::lock_guard<std::mutex> g(mu);
        if (!r) ok = false;
        --in_flight;
        ++done;
        cv.notify_all();
      });
    }
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return done == n; });
    if (!ok) error_ = "a pipelined ping failed";
    return ok;
  }

  bool read_file(const std::string& path, std::size_t, std::string* out) override {
    v1::FileReadRequest r;
    r.set_path(path);
    host::TransferOptions t;
    t.verify_sha256 = verify_;
    return check(agent_->download_bytes(r, out, t));
  }

  bool write_file(const std::string& path, const std::string& data, std::size_t) override {
    v1::FileWriteRequest w;
    w.set_path(path);
    host::TransferOptions t;
    t.verify_sha256 = verify_;
    return check(agent_->upload_bytes(data, w, t));
  }

  bool exec(const std::vector<std::string>& argv, int* exit_code, std::size_t* out_bytes, std::string* out) override {
    v1::ExecRequest ex;
    for (const auto& a : argv) ex.add_argv(a);
    auto r = agent_->exec(ex);
    if (!check(r)) return false;
    *exit_code = r->result.exit_code();
    *out_bytes = r->stdout_data.size();
    if (out != nullptr) *out = std::move(r->stdout_data);
    return true;
  }

  std::string last_error() const override { return error_; }

 private:
  template <class T>
  bool check(const host::Result<T>& r) {
    if (!r) error_ = r.error().to_string();
    return r.ok();
  }
  std::shared_ptr<host::Agent> agent_;
  bool verify_ = true;
  std::string error_;
};

class QgaDriver : public Driver {
 public:
  explicit QgaDriver(int fd) : client_(fd) {}
  bool sync() { return client_.sync(); }

  bool ping() override { return client_.call("{\"execute\":\"guest-ping\"}", nullptr, &error_); }
  bool pings(int n, int window) override {
    return client_.pipelined("{\"execute\":\"guest-ping\"}", n, window, &error_);
  }
  bool read_file(const std::string& path, std::size_t chunk, std::string* out) override {
    return client_.read_file(path, chunk, out, &error_);
  }
  bool write_file(const std::string& path, const std::string& data, std::size_t chunk) override {
    return client_.write_file(path, data, chunk, &error_);
  }
  bool exec(const std::vector<std::string>& argv, int* exit_code, std::size_t* out_bytes, std::string* out) override {
    std::string data;
    std::vector<std::string> args(argv.begin() + 1, argv.end());
    if (!client_.exec(argv[0], args, exit_code, &data, &error_)) return false;
    *out_bytes = data.size();
    if (out != nullptr) *out = std::move(data);
    return true;
  }
  std::string last_error() const override { return error_; }

 private:
  QgaClient client_;
  std::string error_;
};

}  // namespace

std::unique_ptr<Driver> connect_qtx(host::Manager& manager, const std::string& socket,
                                    std::shared_ptr<host::Agent>* agent) {
  host::AgentOptions o;
  o.endpoint = host::Endpoint::connect(socket);
  o.reconnect_min = 10ms;
  o.keepalive_interval = 0ms;  // nothing but the measured traffic on the channel
  auto a = manager.add(o);
  if (!a) {
    std::fprintf(stderr, "agent_compare: %s\n", a.error().to_string().c_str());
    return nullptr;
  }
  if (auto r = a.value()->wait_ready(60s); !r) {
    std::fprintf(stderr, "agent_compare: qtx-agent on %s: %s\n", socket.c_str(), r.error().to_string().c_str());
    return nullptr;
  }
  if (agent != nullptr) *agent = a.value();
  return std::make_unique<QtxDriver>(a.value());
}

std::unique_ptr<Driver> connect_qga(const std::string& socket) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", socket.c_str());
  for (int attempt = 0; attempt < 3000; ++attempt) {  // up to 30 s for the socket to appear
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
      // A silent agent fails the run instead of hanging it.
      const timeval io_timeout{120, 0};
      ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &io_timeout, sizeof(io_timeout));
      auto d = std::make_unique<QgaDriver>(fd);
      if (d->sync()) return d;
      std::fprintf(stderr, "agent_compare: qemu-ga on %s did not answer guest-sync-delimited\n", socket.c_str());
      return nullptr;
    }
    ::close(fd);
    ::usleep(10000);
  }
  std::fprintf(stderr, "agent_compare: nothing accepted connections on %s\n", socket.c_str());
  return nullptr;
}

}  // namespace qtx::bench
