#include "qga/qga_session.h"

#include <spdlog/spdlog.h>

#include <asio/post.hpp>
#include <asio/write.hpp>

namespace qtx::agent::qga {

QgaSession::QgaSession(AgentContext& agent, std::shared_ptr<QgaState> state, int fd,
                       std::function<void(bool, std::string)> on_end)
    : agent_(agent),
      env_{agent, std::move(state)},
      port_(agent.io, fd),
      on_end_(std::move(on_end)),
      protocol_([this](const std::string& name, const Json& args, Reply reply) { run(name, args, std::move(reply)); },
                [this](std::string answer) { enqueue(std::move(answer)); }),
      read_buf_(new char[kReadSize]),
      write_timer_(agent.io) {}

void QgaSession::start() {
  asio::error_code ignored;
  port_.non_blocking(true, ignored);
  do_read();
}

void QgaSession::stop(bool host_closed, std::string detail) {
  if (stopped_) return;
  stopped_ = true;
  write_timer_.cancel();
  asio::error_code ignored;
  port_.close(ignored);
  asio::post(agent_.io, [cb = on_end_, host_closed, detail = std::move(detail)] { cb(host_closed, detail); });
}

void QgaSession::run(const std::string& name, const Json& args, Reply reply) {
  run_command(env_, name, args, [weak = weak_from_this(), reply = std::move(reply)](Outcome o) {
    auto self = weak.lock();
    if (!self || self->stopped_) return;
    reply(std::move(o));
    self->do_read();  // resumes a reader paused while the command ran
  });
}

void QgaSession::do_read() {
  if (stopped_ || reading_ || outbox_bytes_ >= kSoftLimit || protocol_.busy()) return;
  reading_ = true;
  port_.async_read_some(asio::buffer(read_buf_.get(), kReadSize),
                        [self = shared_from_this()](const asio::error_code& ec, std::size_t n) {
                          self->reading_ = false;
                          if (self->stopped_) return;
                          if (ec == asio::error::eof || ec == asio::error::connection_reset) {
                            return self->stop(true, ec.message());
                          }
                          if (ec) return self->stop(false, "read error: " + ec.message());
                          self->protocol_.feed(self->read_buf_.get(), n);
                          self->do_read();
                        });
}

void QgaSession::enqueue(std::string answer) {
  if (stopped_) return;
  outbox_bytes_ += answer.size();
  outbox_.push_back(std::move(answer));
  write_next();
}

void QgaSession::write_next() {
  if (stopped_ || writing_ || outbox_.empty()) return;
  writing_ = true;
  write_timer_.expires_after(std::chrono::milliseconds(agent_.config.write_timeout_ms));
  write_timer_.async_wait([self = shared_from_this()](const asio::error_code& ec) {
    if (ec || self->stopped_) return;
    self->stop(false, "write timed out (the host stopped reading)");
  });
  asio::async_write(port_, asio::buffer(outbox_.front()),
                    [self = shared_from_this()](const asio::error_code& ec, std::size_t) {
                      self->writing_ = false;
                      if (self->stopped_) return;
                      self->write_timer_.cancel();
                      if (ec == asio::error::broken_pipe || ec == asio::error::connection_reset) {
                        return self->stop(true, ec.message());
                      }
                      if (ec) return self->stop(false, "write error: " + ec.message());
                      self->outbox_bytes_ -= self->outbox_.front().size();
                      self->outbox_.pop_front();
                      self->write_next();
                      self->do_read();  // resumes a reader paused by the outbox
                    });
}

}  // namespace qtx::agent::qga
