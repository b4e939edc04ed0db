// exec through the real agent process.
#include <sys/stat.h>
#include <unistd.h>

#include <set>

#include "support/agent_fixture.h"

namespace qtx::testing {
namespace {

v1::ExecRequest argv(std::initializer_list<const char*> args) {
  v1::ExecRequest req;
  for (const char* a : args) req.add_argv(a);
  return req;
}

class Exec : public AgentFixture {};

TEST_F(Exec, StreamsStdoutAndStderrAndReportsTheExitCode) {
  start();
  auto run = exec(2, argv({"/bin/sh", "-c", "echo out; echo err >&2; exit 3"}));
  ASSERT_TRUE(run.response && run.response->has_exec()) << describe(run.response);
  EXPECT_EQ(run.out, "out\n");
  EXPECT_EQ(run.err, "err\n");
  const auto& r = run.response->exec();
  EXPECT_EQ(r.exit_code(), 3);
  EXPECT_EQ(r.status_case(), v1::ExecResult::kExitCode);
  EXPECT_FALSE(r.timed_out());
  EXPECT_FALSE(r.truncated());
  EXPECT_EQ(r.stdout_bytes(), 4u);
  EXPECT_EQ(r.stderr_bytes(), 4u);
  EXPECT_EQ(r.pid(), run.pid);
}

TEST_F(Exec, FindsProgramsOnPathWithoutAShell) {
  start();
  // No shell: the metacharacters reach echo as they are.
  auto run = exec(2, argv({"echo", "a;", "$HOME", "|", "b"}));
  ASSERT_TRUE(run.response && run.response->has_exec());
  EXPECT_EQ(run.out, "a; $HOME | b\n");
  EXPECT_EQ(run.response->exec().exit_code(), 0);
}

TEST_F(Exec, StdinEnvAndCwd) {
  start();
  auto req = argv({"/bin/sh", "-c", "cat; echo \"$FOO\"; pwd"});
  req.set_stdin("from stdin\n");
  req.add_env("FOO=bar");
  req.add_env("PATH=/usr/bin:/bin");
  req.set_cwd("/tmp");
  auto run = exec(2, req);
  ASSERT_TRUE(run.response && run.response->has_exec());
  EXPECT_EQ(run.out, "from stdin\nbar\n/tmp\n");
}

TEST_F(Exec, StreamedStdin) {
  start();
  auto req = argv({"/bin/cat"});
  req.set_stdin_stream(true);
  v1::Envelope env;
  env.set_id(2);
  *env.mutable_request()->mutable_exec() = req;
  env.mutable_request()->mutable_exec()->set_output_window(1 << 20);
  conn_->send(env);
  for (const char* part : {"one ", "two ", "three"}) {
    v1::Envelope in;
    in.set_id(2);
    in.mutable_progress()->mutable_exec_input()->set_data(part);
    conn_->send(in);
  }
  v1::Envelope eof;
  eof.set_id(2);
  eof.mutable_progress()->mutable_exec_input()->set_eof(true);
  conn_->send(eof);
  auto r = conn_->recv_until([](const v1::Envelope& e) { return e.id() == 2 && e.has_response(); });
  ASSERT_TRUE(r && r->response().has_exec());
  std::string out;
  for (const auto& p : conn_->progress) out += p.progress().exec_output().data();
  EXPECT_EQ(out, "one two three");
}

TEST_F(Exec, LargeOutputFollowsTheCreditWindow) {
  start();
  // 10 MiB through a 256 KiB window: the fixture checks the window is never exceeded.
  auto run = exec(2, argv({"/bin/sh", "-c", "head -c 10485760 /dev/zero"}), 256 * 1024);
  ASSERT_TRUE(run.response && run.response->has_exec());
  EXPECT_EQ(run.out.size(), 10485760u);
  EXPECT_EQ(run.response->exec().stdout_bytes(), 10485760u);
  EXPECT_EQ(run.response->exec().exit_code(), 0);
}

TEST_F(Exec, StdoutAndStderrTogetherStayWithinOneCredit) {
  start();
  // Both streams at once through a window that is not a multiple of the
  // agent's read size: their reads share the credit (the fixture checks it).
  auto run =
      exec(2, argv({"/bin/sh", "-c", "head -c 3000000 /dev/zero & head -c 3000000 /dev/zero >&2; wait"}), 100000);
  ASSERT_TRUE(run.response && run.response->has_exec());
  EXPECT_EQ(run.out.size() + run.err.size(), 6000000u);
  EXPECT_EQ(run.response->exec().exit_code(), 0);
}

TEST_F(Exec, OutputBeyondTheLimitIsTruncatedAndTheProgramFinishes) {
  start();
  auto req = argv({"/bin/sh", "-c", "head -c 1000000 /dev/zero"});
  req.set_output_limit(1000);
  auto run = exec(2, req);
  ASSERT_TRUE(run.response && run.response->has_exec());
  EXPECT_EQ(run.out.size(), 1000u);
  EXPECT_TRUE(run.response->exec().truncated());
  EXPECT_EQ(run.response->exec().stdout_bytes(), 1000000u);
  EXPECT_EQ(run.response->exec().exit_code(), 0);
}

TEST_F(Exec, ASilentStderrHoldsNoCreditThatStdoutNeeds) {
  // Each pipe's pending read used to set credit aside. A credit that came
  // while stdout's read was pending went to stderr's; once stderr held more
  // than half the window, stdout could never send the half window after
  // which a host grants more, and both sides waited for the other.
  start();
  auto req = argv({"/bin/sh", "-c", "head -c 40960 /dev/zero; read go; head -c 1048576 /dev/zero"});
  req.set_stdin_stream(true);
  req.set_output_window(65536);
  req.set_timeout_ms(20000);
  v1::Envelope env;
  env.set_id(2);
  *env.mutable_request()->mutable_exec() = req;
  conn_->send(env);
  std::size_t out = 0;
  while (out < 40960) {
    auto e = conn_->recv_until([](const v1::Envelope& x) { return x.id() == 2; });
    ASSERT_TRUE(e && e->has_progress()) << "agent log:\n" << agent_->log();
    out += e->progress().exec_output().data().size();
  }
  ASSERT_EQ(out, 40960u);
  // stdout's next read is pending (the program waits on stdin) when this
  // credit, more than half the window, arrives.
  v1::Envelope credit;
  credit.set_id(2);
  credit.mutable_credit()->set_bytes(40960);
  conn_->send(credit);
  v1::Envelope go;
  go.set_id(2);
  go.mutable_progress()->mutable_exec_input()->set_data("go\n");
  go.mutable_progress()->mutable_exec_input()->set_eof(true);
  conn_->send(go);
  // From here a host that grants whenever half the window is unacknowledged.
  // (The program writes more than its pipe holds, so it cannot exit and
  // close stderr, which used to give that credit back.)
  std::uint64_t unacked = 0;
  std::optional<v1::Response> response;
  while (!response) {
    auto e = conn_->recv_until([](const v1::Envelope& x) { return x.id() == 2; });
    ASSERT_TRUE(e) << "stalled after " << out << " bytes; agent log:\n" << agent_->log();
    if (e->has_response()) {
      response = e->response();
      break;
    }
    const std::size_t n = e->progress().exec_output().data().size();
    out += n;
    unacked += n;
    if (unacked >= 32768) {
      credit.mutable_credit()->set_bytes(unacked);
      conn_->send(credit);
      unacked = 0;
    }
  }
  ASSERT_TRUE(response->has_exec()) << describe(response);
  EXPECT_EQ(out, 40960u + 1048576u);
  EXPECT_EQ(response->exec().exit_code(), 0);
  EXPECT_FALSE(response->exec().timed_out());
}

TEST_F(Exec, TimeoutKillsTheProcessGroup) {
  start();
  auto req = argv({"/bin/sh", "-c", "sleep 30 & sleep 30"});
  req.set_timeout_ms(200);
  auto run = exec(2, req);
  ASSERT_TRUE(run.response && run.response->has_exec());
  EXPECT_TRUE(run.response->exec().timed_out());
  EXPECT_EQ(run.response->exec().signal(), SIGKILL);
}

TEST_F(Exec, CancelKillsAndAnswersCancelled) {
  start();
  v1::Envelope env;
  env.set_id(2);
  *env.mutable_request()->mutable_exec() = argv({"/bin/sleep", "30"});
  conn_->send(env);
  v1::Envelope cancel;
  cancel.set_id(2);
  cancel.mutable_cancel();
  conn_->send(cancel);
  auto r = conn_->recv_until([](const v1::Envelope& e) { return e.id() == 2 && e.has_response(); });
  ASSERT_TRUE(r);
  // The cancel may arrive while the spawn is still on a worker: it is answered
  // at once all the same, and the process is killed once it exists.
  ASSERT_TRUE(r->response().has_error()) << describe(r->response());
  EXPECT_EQ(r->response().error().code(), v1::ERROR_CODE_CANCELLED);
}

// A request that reuses the id of a running exec is refused, and the exec
// keeps its id: its stdin, credit and cancel still reach it.
TEST_F(Exec, ARequestReusingARunningExecsIdLeavesTheExecReachable) {
  start();
  auto req = argv({"/bin/cat"});
  req.set_stdin_stream(true);
  v1::Envelope env;
  env.set_id(2);
  *env.mutable_request()->mutable_exec() = req;
  conn_->send(env);
  v1::Envelope in;
  in.set_id(2);
  in.mutable_progress()->mutable_exec_input()->set_data("before");
  conn_->send(in);
  auto echoed = conn_->recv_until([](const v1::Envelope& e) { return e.id() == 2 && e.has_progress(); });
  ASSERT_TRUE(echoed);  // the exec is running, not pending
  EXPECT_EQ(echoed->progress().exec_output().data(), "before");

  v1::Envelope again;
  again.set_id(2);
  again.mutable_request()->mutable_ping();
  conn_->send(again);
  auto refused = conn_->recv_until([](const v1::Envelope& e) { return e.id() == 2 && e.has_response(); });
  ASSERT_TRUE(refused && refused->response().has_error());
  EXPECT_EQ(refused->response().error().code(), v1::ERROR_CODE_INVALID_ARGUMENT);
  EXPECT_EQ(refused->response().error().message(), "request id 2 is already in use");

  in.mutable_progress()->mutable_exec_input()->set_data("after");
  conn_->send(in);
  echoed = conn_->recv_until([](const v1::Envelope& e) { return e.id() == 2 && e.has_progress(); });
  ASSERT_TRUE(echoed) << "stdin no longer reaches the exec";
  EXPECT_EQ(echoed->progress().exec_output().data(), "after");
  v1::Envelope cancel;
  cancel.set_id(2);
  cancel.mutable_cancel();
  conn_->send(cancel);
  auto r = conn_->recv_until([](const v1::Envelope& e) { return e.id() == 2 && e.has_response(); });
  ASSERT_TRUE(r) << "the cancel no longer reaches the exec";
  ASSERT_TRUE(r->response().has_error()) << describe(r->response());
  EXPECT_EQ(r->response().error().code(), v1::ERROR_CODE_CANCELLED);
}

TEST_F(Exec, BadRequestsGetClearErrors) {
  start();
  auto run = exec(2, v1::ExecRequest());
  ASSERT_TRUE(run.response && run.response->has_error());
  EXPECT_EQ(run.response->error().code(), v1::ERROR_CODE_INVALID_ARGUMENT);

  run = exec(3, argv({"no-such-program-qtx"}));
  ASSERT_TRUE(run.response && run.response->has_error());
  EXPECT_EQ(run.response->error().code(), v1::ERROR_CODE_NOT_FOUND);
  EXPECT_EQ(run.response->error().message(), "command not found: no-such-program-qtx");

  auto req = argv({"/bin/true"});
  req.set_cwd("/nonexistent-qtx");
  run = exec(4, req);
  ASSERT_TRUE(run.response && run.response->has_error());
  EXPECT_EQ(run.response->error().code(), v1::ERROR_CODE_NOT_FOUND);
  EXPECT_EQ(run.response->error().message(), "chdir /bin/true: No such file or directory");

  req = argv({"/bin/true"});
  req.set_user("no-such-user-qtx");
  run = exec(5, req);
  ASSERT_TRUE(run.response && run.response->has_error());
  EXPECT_EQ(run.response->error().code(), v1::ERROR_CODE_NOT_FOUND);

  req = argv({"/bin/true"});
  req.add_env("NOEQUALS");
  run = exec(6, req);
  ASSERT_TRUE(run.response && run.response->has_error());
  EXPECT_EQ(run.response->error().code(), v1::ERROR_CODE_INVALID_ARGUMENT);
}

TEST_F(Exec, RunsAsANamedUser) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to change user";
  start();
  auto req = argv({"/bin/sh", "-c", "id -u; id -g; echo $HOME"});
  req.set_user("nobody");
  auto run = exec(2, req);
  ASSERT_TRUE(run.response && run.response->has_exec()) << describe(run.response);
  EXPECT_EQ(run.out.substr(0, run.out.find('\n')), "65534");
}

TEST_F(Exec, ConcurrencyLimitAnswersBusy) {
  start("[limits]\nmax_concurrent_execs = 1\n");
  v1::Envelope env;
  env.set_id(2);
  *env.mutable_request()->mutable_exec() = argv({"/bin/sleep", "30"});
  conn_->send(env);
  auto r = exec(3, argv({"/bin/true"}));
  ASSERT_TRUE(r.response && r.response->has_error());
  EXPECT_EQ(r.response->error().code(), v1::ERROR_CODE_BUSY);
  v1::Envelope cancel;
  cancel.set_id(2);
  cancel.mutable_cancel();
  conn_->send(cancel);
}

// The one slot is given back by an exec that ran and by one that never
// started: each next exec is admitted.
TEST_F(Exec, TheSlotIsFreeAgainAfterAnExecEndsOrFailsToStart) {
  start("[limits]\nmax_concurrent_execs = 1\n");
  for (int i = 0; i < 3; ++i) {
    auto ran = exec(2 + 2 * i, argv({"/bin/true"}));
    ASSERT_TRUE(ran.response && ran.response->has_exec()) << describe(ran.response);
    auto missing = exec(3 + 2 * i, argv({"qtx-no-such-command"}));
    ASSERT_TRUE(missing.response && missing.response->has_error());
    EXPECT_EQ(missing.response->error().code(), v1::ERROR_CODE_NOT_FOUND);
  }
}

TEST_F(Exec, DeniedByPolicyStartsNothing) {
  start("[policy]\ndeny = [\"exec\"]\n");
  const std::string marker = "/tmp/qtx-denied-" + std::to_string(::getpid());
  auto run = exec(2, argv({"/usr/bin/touch", marker.c_str()}));
  ASSERT_TRUE(run.response && run.response->has_error());
  EXPECT_EQ(run.response->error().code(), v1::ERROR_CODE_DENIED);
  struct stat st {};
  EXPECT_NE(::stat(marker.c_str(), &st), 0);
}

TEST_F(Exec, ManyConcurrentExecsAllAnswer) {
  start();
  for (std::uint64_t id = 10; id < 18; ++id) {
    v1::Envelope env;
    env.set_id(id);
    auto* e = env.mutable_request()->mutable_exec();
    e->add_argv("/bin/echo");
    e->add_argv(std::to_string(id));
    e->set_output_window(1 << 20);
    conn_->send(env);
  }
  std::set<std::uint64_t> answered;
  while (answered.size() < 8) {
    auto r = conn_->recv_until([](const v1::Envelope& e) { return e.has_response(); });
    ASSERT_TRUE(r);
    ASSERT_TRUE(r->response().has_exec()) << describe(r->response());
    EXPECT_EQ(r->response().exec().exit_code(), 0);
    answered.insert(r->id());
  }
  EXPECT_EQ(*answered.begin(), 10u);
  EXPECT_EQ(*answered.rbegin(), 17u);
}

}  // namespace
}  // namespace qtx::testing
