#include "agent_fixture.h"

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>

namespace qtx::testing {

void AgentFixture::start(const std::string& config, const std::string& name, bool own_uts_namespace) {
  listener_ = std::make_unique<HostListener>("/tmp/qtx-it-" + std::to_string(::getpid()) + "-" + name + ".sock");
  agent_ = std::make_unique<AgentProcess>(listener_->path(), config, "debug", own_uts_namespace);
  conn_ = accept_next();
  ASSERT_TRUE(conn_);
  ASSERT_TRUE(conn_->hello());
}

std::unique_ptr<AgentConnection> AgentFixture::accept_next() {
  int fd = listener_->accept(Millis(10000));
  EXPECT_GE(fd, 0) << "the agent did not connect; its log:\n" << agent_->log();
  return fd >= 0 ? std::make_unique<AgentConnection>(fd) : nullptr;
}

void AgentFixture::TearDown() {
  conn_.reset();
  if (agent_ && agent_->running()) {
    int status = agent_->signal_and_wait(SIGTERM);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << agent_->log();
  }
  if (!scratch_dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(scratch_dir_, ec);
  }
}

void AgentFixture::expect_ping_answers(std::uint64_t id, Millis timeout) {
  v1::Request ping;
  ping.mutable_ping()->set_payload("still here");
  auto r = conn_->call(id, ping, timeout);
  ASSERT_TRUE(r && r->has_ping()) << describe(r) << "\nagent log:\n" << agent_->log();
  EXPECT_EQ(r->ping().payload(), "still here");
}

const std::string& AgentFixture::scratch_dir() {
  if (scratch_dir_.empty()) {
    char tmpl[] = "/tmp/qtx-test.XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) ADD_FAILURE() << "mkdtemp failed";
    scratch_dir_ = tmpl;
  }
  return scratch_dir_;
}

// Counts stream bytes for operation `id`, fails the test if they exceed the
// window, and grants them back once half the window is used.
void AgentFixture::account_stream(std::uint64_t id, std::size_t bytes, std::uint64_t window, std::uint64_t* unacked) {
  *unacked += bytes;
  EXPECT_LE(*unacked, window) << "the agent sent beyond its credit";
  if (*unacked >= window / 2) {
    v1::Envelope credit;
    credit.set_id(id);
    credit.mutable_credit()->set_bytes(*unacked);
    conn_->send(credit);
    *unacked = 0;
  }
}

AgentFixture::ExecRun AgentFixture::exec(std::uint64_t id, v1::ExecRequest req, std::uint64_t window) {
  ExecRun run;
  req.set_output_window(window);
  v1::Envelope env;
  env.set_id(id);
  *env.mutable_request()->mutable_exec() = req;
  conn_->send(env);
  std::uint64_t unacked = 0;
  for (;;) {
    auto e = conn_->recv_until([id](const v1::Envelope& x) { return x.id() == id; }, Millis(30000));
    if (!e) {
      ADD_FAILURE() << "no answer to exec " << id << "; agent log:\n" << agent_->log();
      return run;
    }
    if (e->has_response()) {
      run.response = e->response();
      return run;
    }
    if (!e->has_progress() || !e->progress().has_exec_output()) continue;
    const auto& o = e->progress().exec_output();
    if (o.pid() != 0) run.pid = o.pid();
    (o.stream() == v1::ExecOutput::STREAM_STDERR ? run.err : run.out) += o.data();
    account_stream(id, o.data().size(), window, &unacked);
  }
}

std::optional<v1::Response> AgentFixture::write_file(std::uint64_t id, v1::FileWriteRequest req,
                                                     const std::string& data, std::size_t chunk) {
  v1::Envelope env;
  env.set_id(id);
  *env.mutable_request()->mutable_file_write() = req;
  conn_->send(env);
  std::uint64_t credit = 0;
  std::size_t pos = 0;
  bool sent_last = false;
  const std::uint64_t base = (req.append() || req.atomic()) ? 0 : req.offset();
  while (true) {
    while (!sent_last && credit > 0) {
      const std::size_t n = std::min<std::size_t>({chunk, static_cast<std::size_t>(credit), data.size() - pos});
      v1::Envelope c;
      c.set_id(id);
      auto* fc = c.mutable_progress()->mutable_file_chunk();
      fc->set_offset(base + pos);
      fc->set_data(data.substr(pos, n));
      pos += n;
      credit -= n;
      sent_last = pos == data.size();
      fc->set_last(sent_last);
      conn_->send(c);
    }
    auto e = conn_->recv_until([id](const v1::Envelope& x) { return x.id() == id; }, Millis(30000));
    if (!e) return std::nullopt;
    if (e->has_response()) return e->response();
    if (e->has_credit()) credit += e->credit().bytes();
  }
}

AgentFixture::ReadRun AgentFixture::read_file(std::uint64_t id, v1::FileReadRequest req, std::uint64_t window) {
  ReadRun run;
  req.set_window(window);
  v1::Envelope env;
  env.set_id(id);
  *env.mutable_request()->mutable_file_read() = req;
  conn_->send(env);
  std::uint64_t unacked = 0;
  for (;;) {
    auto e = conn_->recv_until([id](const v1::Envelope& x) { return x.id() == id; }, Millis(30000));
    if (!e) return run;
    if (e->has_response()) {
      run.response = e->response();
      return run;
    }
    if (!e->has_progress() || !e->progress().has_file_chunk()) continue;
    EXPECT_EQ(e->progress().file_chunk().offset(), req.offset() + run.data.size());
    run.data += e->progress().file_chunk().data();
    account_stream(id, e->progress().file_chunk().data().size(), window, &unacked);
  }
}

}  // namespace qtx::testing
