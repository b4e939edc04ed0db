#include "supervisor.h"

#include <spdlog/spdlog.h>

#include <asio/post.hpp>
#include <unistd.h>

namespace qtx::agent {

Supervisor::Supervisor(AgentContext& agent, Transport& transport)
    : agent_(agent), transport_(transport), backoff_timer_(agent.io) {}

void Supervisor::start() { open(); }

void Supervisor::open() {
  if (stopping_) return;
  transport_.async_open([this](Status s, int fd) { on_open(std::move(s), fd); });
}

void Supervisor::on_open(Status status, int fd) {
  if (stopping_) {
    if (fd >= 0) ::close(fd);
    if (!session_ && on_stopped_) asio::post(agent_.io, std::exchange(on_stopped_, nullptr));
    return;
  }
  if (!status) return retry_later(status.to_string());
  spdlog::info("host connected on {}", transport_.describe());
  session_ = std::make_shared<Session>(agent_, fd, [this](const Session::Outcome& o) { on_session_end(o); });
  agent_.current_session = session_;
  session_->start();
}

void Supervisor::on_session_end(const Session::Outcome& o) {
  session_.reset();
  if (stopping_) {
    spdlog::info("session closed: {}", o.detail);
    if (on_stopped_) asio::post(agent_.io, std::exchange(on_stopped_, nullptr));
    return;
  }
  if (o.handshaken) backoff_ = kMinBackoff;
  if (o.end == Session::End::kHostClosed) {
    spdlog::info("session ended: {}; waiting for the host", o.detail);
    return open();
  }
  retry_later("session ended: " + o.detail);
}

void Supervisor::retry_later(const std::string& why) {
  spdlog::warn("{}; retrying in {} ms", why, backoff_.count());
  backoff_timer_.expires_after(backoff_);
  backoff_ = std::min(backoff_ * 2, kMaxBackoff);
  backoff_timer_.async_wait([this](const asio::error_code& ec) {
    if (!ec) open();
  });
}

void Supervisor::shutdown(unsigned drain_ms, std::function<void()> done) {
  if (stopping_) return;
  stopping_ = true;
  on_stopped_ = std::move(done);
  backoff_timer_.cancel();
  if (session_) {
    session_->drain_and_stop(drain_ms);
    return;
  }
  transport_.cancel();
  // If no open was pending, nothing will call back: finish now.
  asio::post(agent_.io, [this] {
    if (on_stopped_ && !session_) std::exchange(on_stopped_, nullptr)();
  });
}

}  // namespace qtx::agent
