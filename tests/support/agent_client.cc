#include "agent_client.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "qtx/wire/envelope_codec.h"

namespace qtx::testing {

HostListener::HostListener(std::string path) : path_(std::move(path)) {
  ::unlink(path_.c_str());
  fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path_.c_str(), sizeof(addr.sun_path) - 1);
  if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || ::listen(fd_, 8) != 0) {
    throw std::runtime_error("cannot listen on " + path_ + ": " + std::strerror(errno));
  }
}

HostListener::~HostListener() {
  ::close(fd_);
  ::unlink(path_.c_str());
}

int HostListener::accept(Millis timeout) {
  pollfd p{fd_, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return -1;
  return ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
}

AgentConnection::AgentConnection(int fd) : fd_(fd), decoder_(this) {}

AgentConnection::~AgentConnection() { close(); }

void AgentConnection::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void AgentConnection::send_raw(const std::string& bytes) {
  std::size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw std::runtime_error(std::string("send: ") + std::strerror(errno));
    off += static_cast<std::size_t>(n);
  }
}

void AgentConnection::send(const v1::Envelope& env) {
  std::string frame;
  Status s = wire::append_envelope_frame(env, &frame);
  if (!s) throw std::runtime_error("encode: " + s.to_string());
  send_raw(frame);
}

bool AgentConnection::on_frame(std::string_view payload, std::uint64_t) {
  v1::Envelope env;
  if (!wire::parse_sealed_envelope(payload, &env)) return false;
  if (env.has_event() && env.event().has_agent_started()) {
    announcements.push_back(std::move(env));  // once per session, before anything else
  } else {
    inbox_.push_back(std::move(env));
  }
  return true;
}

void AgentConnection::on_drop(const wire::Drop& d) { dropped_bytes += d.bytes; }

bool AgentConnection::fill(Millis timeout) {
  if (fd_ < 0 || eof_) return false;
  pollfd p{fd_, POLLIN, 0};
  int r = ::poll(&p, 1, static_cast<int>(timeout.count()));
  if (r <= 0) return false;
  char buf[65536];
  ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
  if (n <= 0) {
    eof_ = true;
    decoder_.stall_flush();
    return false;
  }
  decoder_.feed(buf, static_cast<std::size_t>(n));
  return true;
}

std::optional<v1::Envelope> AgentConnection::recv(Millis timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (inbox_.empty()) {
    auto left = std::chrono::duration_cast<Millis>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || !fill(left)) {
      if (inbox_.empty()) return std::nullopt;
    }
  }
  v1::Envelope env = std::move(inbox_.front());
  inbox_.pop_front();
  return env;
}

std::optional<v1::Envelope> AgentConnection::recv_until(const std::function<bool(const v1::Envelope&)>& pred,
                                                        Millis timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<Millis>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    auto env = recv(left);
    if (!env) return std::nullopt;
    if (pred(*env)) return env;
    if (env->has_event()) {
      events.push_back(std::move(*env));
    } else if (env->has_progress() || env->has_credit()) {
      progress.push_back(std::move(*env));
    } else {
      skipped.push_back(std::move(*env));
    }
  }
}

std::optional<v1::Response> AgentConnection::call(std::uint64_t id, const v1::Request& req, Millis timeout) {
  v1::Envelope env;
  env.set_id(id);
  *env.mutable_request() = req;
  send(env);
  auto r = recv_until([id](const v1::Envelope& e) { return e.id() == id && e.has_response(); }, timeout);
  if (!r) return std::nullopt;
  return r->response();
}

std::optional<v1::Response> AgentConnection::hello(std::uint64_t nonce, std::uint64_t id) {
  v1::Request req;
  req.mutable_hello()->set_nonce(nonce);
  req.mutable_hello()->set_protocol_version(v1::PROTOCOL_VERSION_1);
  req.mutable_hello()->set_client("qtx-tests");
  return call(id, req);
}

std::optional<v1::Envelope> session_answer(const v1::Envelope& req, const v1::AgentIdentity& agent) {
  if (!req.has_request()) return std::nullopt;
  v1::Envelope reply;
  reply.set_id(req.id());
  if (req.request().has_hello()) {
    auto* h = reply.mutable_response()->mutable_hello();
    h->set_nonce(req.request().hello().nonce());
    h->set_protocol_version(v1::PROTOCOL_VERSION_1);
    *h->mutable_agent() = agent;
    return reply;
  }
  if (req.request().has_ping()) {
    reply.mutable_response()->mutable_ping()->set_payload(req.request().ping().payload());
    return reply;
  }
  return std::nullopt;
}

std::string describe(const std::optional<v1::Response>& r) {
  if (!r) return "no answer";
  if (r->has_error()) {
    return "error " + std::to_string(r->error().code()) + ": " + r->error().message();
  }
  return "result kind " + std::to_string(static_cast<int>(r->kind_case()));
}

}  // namespace qtx::testing
