// unix-listen:PATH and unix-connect:PATH transports.
#pragma once

#include <asio/local/stream_protocol.hpp>

#include "transport.h"

namespace qtx::agent {

// Listens on PATH (replacing a stale socket file) and hands over one accepted
// connection per async_open. Blocking in accept costs nothing while idle.
class UnixListenTransport : public Transport {
 public:
  UnixListenTransport(asio::io_context& io, std::string path);
  ~UnixListenTransport() override;
  void async_open(OpenHandler handler) override;
  void cancel() override;
  std::string describe() const override { return "unix-listen:" + path_; }

 private:
  Status listen();

  asio::io_context& io_;
  std::string path_;
  asio::local::stream_protocol::acceptor acceptor_;
};

// Connects to PATH once per async_open; a refused or missing socket is an
// error and the supervisor's backoff paces the retries.
class UnixConnectTransport : public Transport {
 public:
  UnixConnectTransport(asio::io_context& io, std::string path);
  void async_open(OpenHandler handler) override;
  void cancel() override;
  std::string describe() const override { return "unix-connect:" + path_; }

 private:
  asio::io_context& io_;
  std::string path_;
  std::shared_ptr<asio::local::stream_protocol::socket> pending_;
};

}  // namespace qtx::agent
