#include "reply.h"

#include <asio/post.hpp>
#include <atomic>
#include <cstring>

#include "session.h"

namespace qtx::agent {

struct Reply::State {
  State(std::weak_ptr<Session> s, asio::io_context& io_ctx, std::uint64_t request_id)
      : session(std::move(s)), io(io_ctx), id(request_id) {}
  ~State() {
    if (!answered.load()) {
      post(error_response(v1::ERROR_CODE_INTERNAL, "the agent dropped this request"));
    }
  }
  bool claim() { return !answered.exchange(true); }
  void post(v1::Response r) {
    asio::post(io, [s = session, id = id, r = std::move(r)]() mutable {
      if (auto live = s.lock()) live->respond(id, std::move(r));
    });
  }

  std::weak_ptr<Session> session;
  asio::io_context& io;
  std::uint64_t id;
  std::atomic<bool> answered{false};
};

Reply::Reply(std::weak_ptr<Session> session, std::uint64_t id) {
  auto live = session.lock();
  // A Reply is made by a handler of a live session, on the io thread.
  state_ = std::make_shared<State>(session, live->agent().io, id);
}

void Reply::send(v1::Response response) const {
  if (state_->claim()) state_->post(std::move(response));
}

void Reply::error(v1::ErrorCode code, std::string message, int os_errno) const {
  send(error_response(code, std::move(message), os_errno));
}

void Reply::done() const { send(done_response()); }

v1::Response done_response() {
  v1::Response r;
  r.mutable_done();
  return r;
}

std::uint64_t Reply::id() const { return state_->id; }
bool Reply::answered() const { return state_->answered.load(); }

v1::Response error_response(v1::ErrorCode code, std::string message, int os_errno) {
  v1::Response r;
  auto* e = r.mutable_error();
  e->set_code(code);
  e->set_message(std::move(message));
  e->set_os_errno(os_errno);
  return r;
}

v1::Response errno_response(const std::string& what, int err) {
  v1::ErrorCode code = v1::ERROR_CODE_IO;
  switch (err) {
    case ENOENT: code = v1::ERROR_CODE_NOT_FOUND; break;
    case EEXIST: code = v1::ERROR_CODE_ALREADY_EXISTS; break;
    case EINVAL:
    case ENAMETOOLONG:
    case ENOTDIR:
    case EISDIR:
    case ELOOP: code = v1::ERROR_CODE_INVALID_ARGUMENT; break;
    case EBUSY:
    case EAGAIN: code = v1::ERROR_CODE_BUSY; break;
    default: break;
  }
  return error_response(code, what + ": " + std::strerror(err), err);
}

}  // namespace qtx::agent
