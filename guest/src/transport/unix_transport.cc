#include "unix_transport.h"

#include <sys/stat.h>
#include <unistd.h>

#include <asio/error.hpp>

namespace qtx::agent {
namespace {

Status from_error(const asio::error_code& ec, const std::string& what) {
  if (ec == asio::error::operation_aborted) return Status::error(Status::Code::kCancelled, what + ": cancelled");
  return Status::io_error(what + ": " + ec.message());
}

}  // namespace

UnixListenTransport::UnixListenTransport(asio::io_context& io, std::string path)
    : io_(io), path_(std::move(path)), acceptor_(io) {}

UnixListenTransport::~UnixListenTransport() {
  if (acceptor_.is_open()) ::unlink(path_.c_str());
}

Status UnixListenTransport::listen() {
  struct stat st {};
  if (::lstat(path_.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return Status::invalid_argument(path_ + " exists and is not a socket");
    ::unlink(path_.c_str());  // a stale socket from an earlier run
  }
  asio::error_code ec;
  asio::local::stream_protocol::endpoint ep(path_);
  acceptor_.open(ep.protocol(), ec);
  if (!ec) acceptor_.bind(ep, ec);
  if (!ec) acceptor_.listen(1, ec);
  if (ec) {
    acceptor_.close();
    return from_error(ec, "listening on " + path_);
  }
  return Status::OK();
}

void UnixListenTransport::async_open(OpenHandler handler) {
  if (!acceptor_.is_open()) {
    Status s = listen();
    if (!s) {
      asio::post(io_, [handler, s] { handler(s, -1); });
      return;
    }
  }
  auto sock = std::make_shared<asio::local::stream_protocol::socket>(io_);
  acceptor_.async_accept(*sock, [this, sock, handler](const asio::error_code& ec) {
    if (ec) {
      handler(from_error(ec, "accepting on " + path_), -1);
      return;
    }
    asio::error_code rec;
    int fd = sock->release(rec);
    if (fd < 0) {
      handler(from_error(rec, "accepting on " + path_), -1);
      return;
    }
    handler(Status::OK(), fd);
  });
}

void UnixListenTransport::cancel() {
  asio::error_code ignored;
  acceptor_.cancel(ignored);
}

UnixConnectTransport::UnixConnectTransport(asio::io_context& io, std::string path) : io_(io), path_(std::move(path)) {}

void UnixConnectTransport::async_open(OpenHandler handler) {
  auto sock = std::make_shared<asio::local::stream_protocol::socket>(io_);
  pending_ = sock;
  sock->async_connect(asio::local::stream_protocol::endpoint(path_), [this, sock, handler](const asio::error_code& ec) {
    if (pending_ == sock) pending_.reset();
    if (ec) {
      handler(from_error(ec, "connecting to " + path_), -1);
      return;
    }
    // cancel() may have closed the socket after the connect completed.
    asio::error_code rec;
    int fd = sock->is_open() ? sock->release(rec) : -1;
    if (fd < 0) {
      handler(Status::error(Status::Code::kCancelled, "connecting to " + path_ + ": cancelled"), -1);
      return;
    }
    handler(Status::OK(), fd);
  });
}

void UnixConnectTransport::cancel() {
  if (pending_) {
    asio::error_code ignored;
    pending_->close(ignored);
  }
}

}  // namespace qtx::agent
