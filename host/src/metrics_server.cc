// MetricsServer: GET /metrics over cpp-httplib, rendered on the server's
// own threads from what the Manager holds.
#include <httplib.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "bounded_task_queue.h"
#include "qtx/host/manager.h"
#include "qtx/host/metrics.h"

namespace qtx::host {

struct MetricsServer::Impl {
  httplib::Server server;
  std::thread thread;
  std::atomic<bool> finished{false};
  std::string host;
  int port = 0;
};

namespace {

constexpr std::size_t kServerThreads = 2;
constexpr std::size_t kWaitingConnections = 2;

// "HOST:PORT", "[V6]:PORT" or ":PORT" into host and port; false when malformed.
bool split_address(const std::string& address, std::string* host, int* port) {
  const auto colon = address.rfind(':');
  if (colon == std::string::npos) return false;
  std::string h = address.substr(0, colon);
  const std::string p = address.substr(colon + 1);
  if (p.empty() || p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos) return false;
  const int n = std::stoi(p);
  if (n > 65535) return false;
  if (!h.empty() && h.front() == '[') {
    if (h.size() < 3 || h.back() != ']') return false;
    h = h.substr(1, h.size() - 2);
  } else if (h.find(':') != std::string::npos) {
    return false;  // an IPv6 address needs brackets
  }
  *host = h;
  *port = n;
  return true;
}

}  // namespace

MetricsServer::MetricsServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

MetricsServer::~MetricsServer() {
  impl_->server.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

int MetricsServer::port() const { return impl_->port; }

std::string MetricsServer::address() const {
  const bool v6 = impl_->host.find(':') != std::string::npos;
  return (v6 ? "[" + impl_->host + "]" : impl_->host) + ":" + std::to_string(impl_->port);
}

Result<std::unique_ptr<MetricsServer>> MetricsServer::start(const Manager& manager, const std::string& address) {
  const Manager* m = &manager;
  return start([m](MetricsFormat format) { return render_metrics(*m, format); }, address);
}

Result<std::unique_ptr<MetricsServer>> MetricsServer::start(Render render, const std::string& address) {
  auto impl = std::make_unique<Impl>();
  int port = 0;
  if (!split_address(address, &impl->host, &port)) {
    return Error(ErrorKind::kLocal, "metrics address \"" + address + "\" is not HOST:PORT, [V6ADDR]:PORT or :PORT");
  }
  httplib::Server& s = impl->server;
  // Scrapes are few: two threads serve them and two more connections may
  // wait; beyond that the accept loop waits too, and connections stay in the
  // kernel's listen backlog (BoundedTaskQueue: at most 5 accepted sockets).
  // A connection that sends nothing holds a thread for the read timeout.
  s.new_task_queue = [] { return new BoundedTaskQueue(kServerThreads, kWaitingConnections); };
  s.set_read_timeout(std::chrono::seconds(5));
  s.set_write_timeout(std::chrono::seconds(10));
  s.set_payload_max_length(64 * 1024);
  // SO_REUSEADDR only: the library's default adds SO_REUSEPORT, which lets a
  // second server share the port (and half the scrapes) instead of failing.
  s.set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  s.Get("/metrics", [render](const httplib::Request& req, httplib::Response& res) {
    const MetricsFormat format = metrics_format_for_accept(req.get_header_value("Accept"));
    res.set_content(render(format), metrics_content_type(format));
  });
  s.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    res.status = 500;
    res.set_content("rendering the metrics failed\n", "text/plain");
  });
  const std::string bind_host = impl->host.empty() ? "0.0.0.0" : impl->host;
  if (port == 0) {
    port = s.bind_to_any_port(bind_host);
    if (port < 0) return Error(ErrorKind::kLocal, "cannot listen on " + address + " for metrics");
  } else if (!s.bind_to_port(bind_host, port)) {
    return Error(ErrorKind::kLocal, "cannot listen on " + address + " for metrics (in use, or no such address)");
  }
  impl->port = port;
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] {
    raw->server.listen_after_bind();
    raw->finished = true;
  });
  // stop() only ends a loop that has started: wait until it runs, so the
  // destructor never finds it about to start.
  while (!s.is_running() && !raw->finished) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return std::unique_ptr<MetricsServer>(new MetricsServer(std::move(impl)));
}

}  // namespace qtx::host
