#include "qga/qga_service.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>

#include "transport/port_discovery.h"

namespace qtx::agent::qga {

QgaService::QgaService(AgentContext& agent, std::unique_ptr<Transport> transport)
    : agent_(agent), transport_(std::move(transport)), retry_timer_(agent.io) {}

QgaService::~QgaService() { stop(); }

void QgaService::start() { open(); }

void QgaService::stop() {
  if (stopping_) return;
  stopping_ = true;
  retry_timer_.cancel();
  transport_->cancel();
  if (session_) session_->stop(false, "shutdown");
  session_.reset();
}

void QgaService::open() {
  if (stopping_) return;
  transport_->async_open([this](Status s, int fd) {
    if (stopping_) {
      if (fd >= 0) ::close(fd);
      return;
    }
    if (!s) return retry_later("qemu-ga port " + transport_->describe() + ": " + s.to_string());
    spdlog::info("qemu-ga protocol: host connected on {}", transport_->describe());
    session_ = std::make_shared<QgaSession>(agent_, state_, fd,
                                            [this](bool host_closed, std::string d) { on_end(host_closed, d); });
    session_->start();
  });
}

void QgaService::on_end(bool host_closed, const std::string& detail) {
  if (stopping_) return;
  session_.reset();
  if (host_closed) {
    retry_ = kMinRetry;
    spdlog::info("qemu-ga protocol: session ended ({}); waiting for the host", detail);
    return open();
  }
  retry_later("qemu-ga protocol: session ended (" + detail + ")");
}

void QgaService::retry_later(const std::string& why) {
  spdlog::warn("{}; retrying in {} ms", why, retry_.count());
  retry_timer_.expires_after(retry_);
  retry_ = std::min(retry_ * 2, kMaxRetry);
  retry_timer_.async_wait([this](const asio::error_code& ec) {
    if (!ec) open();
  });
}

bool qga_wanted(const AgentConfig& config) {
  if (config.qga_enabled == "false") return false;
  if (config.qga_enabled == "true") return true;
  const std::string prefix = "virtio:";
  if (config.qga_transport.compare(0, prefix.size(), prefix) != 0) return true;
  return !find_virtio_port(config.qga_transport.substr(prefix.size())).empty();
}

}  // namespace qtx::agent::qga
