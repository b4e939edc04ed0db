// The qtx tool as users run it: a process with arguments, against the real
// agent, checked by exit code, stdout and stderr.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <random>
#include <sstream>
#include <vector>

#include "support/agent_client.h"
#include "support/host_fixture.h"

namespace qtx::testing {
namespace {

struct Run {
  int code = -1;
  std::string out, err;
};

// Runs qtx with `args`, feeding `input` on stdin; waits for it to exit.
Run qtx(const std::vector<std::string>& args, const std::string& input = "") {
  int in[2], out[2], err[2];
  EXPECT_EQ(::pipe2(in, O_CLOEXEC), 0);
  EXPECT_EQ(::pipe2(out, O_CLOEXEC), 0);
  EXPECT_EQ(::pipe2(err, O_CLOEXEC), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(QTX_CLI_BINARY));
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(QTX_CLI_BINARY, argv.data());
    _exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  if (!input.empty()) {
    EXPECT_EQ(::write(in[1], input.data(), input.size()), static_cast<ssize_t>(input.size()));
  }
  ::close(in[1]);
  Run r;
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  int open_fds = 2;
  while (open_fds > 0) {
    if (::poll(fds, 2, 30000) <= 0) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buf[65536];
      ssize_t n = ::read(fds[i].fd, buf, sizeof(buf));
      if (n <= 0) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      } else {
        (i == 0 ? r.out : r.err).append(buf, static_cast<std::size_t>(n));
      }
    }
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

class Cli : public HostFixture {
 protected:
  std::vector<std::string> with_socket(std::vector<std::string> args) {
    args.insert(args.begin(), {"--socket", socket_path()});
    return args;
  }
};

TEST_F(Cli, PingAndInfo) {
  start_agent();
  auto r = qtx(with_socket({"ping"}));
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("pong from " + socket_path() + " in ", 0), 0u) << r.out;
  r = qtx(with_socket({"--json", "info"}));
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("{\"agent\":{\"version\":\"", 0), 0u) << r.out;
}

TEST_F(Cli, NoAgentIsExit3WithTheReason) {
  auto r = qtx(with_socket({"--connect-timeout", "0.2", "ping"}));
  EXPECT_EQ(r.code, 3);
  EXPECT_EQ(r.err, "qtx: no agent on " + socket_path() + ": no such socket (is the VM running?)\n");
  EXPECT_EQ(r.out, "");
}

TEST_F(Cli, ExecStreamsOutputAndExitsWithTheCommandsCode) {
  start_agent();
  auto r = qtx(with_socket({"exec", "--", "/bin/sh", "-c", "echo hi; echo oops >&2; exit 7"}));
  EXPECT_EQ(r.code, 7);
  EXPECT_EQ(r.out, "hi\n");
  EXPECT_EQ(r.err, "oops\n");
  r = qtx(with_socket({"exec", "--stdin", "--", "/bin/cat"}), "fed through stdin");
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out, "fed through stdin");
  r = qtx(with_socket({"--json", "exec", "--", "/bin/sh", "-c", "printf x; kill -9 $$"}));
  EXPECT_EQ(r.code, 128 + 9);
  EXPECT_NE(r.out.find("\"signal\":9"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"stdout\":\"x\""), std::string::npos) << r.out;
}

TEST_F(Cli, CopyInAndOutVerified) {
  start_agent();
  std::string data(3 * 1024 * 1024 + 5, '\0');
  std::mt19937 rng(7);
  for (auto& c : data) c = static_cast<char>(rng());
  std::ofstream(dir() + "/in.bin", std::ios::binary) << data;
  auto r = qtx(with_socket({"cp", dir() + "/in.bin", ":" + dir() + "/guest.bin"}));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find(std::to_string(data.size()) + " bytes, sha256 "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("(verified)"), std::string::npos);
  r = qtx(with_socket({"cp", ":" + dir() + "/guest.bin", dir() + "/out.bin"}));
  ASSERT_EQ(r.code, 0) << r.err;
  std::ifstream f(dir() + "/out.bin", std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  EXPECT_EQ(ss.str(), data);

  r = qtx(with_socket({"cp", ":" + dir() + "/absent", dir() + "/x"}));
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err.rfind("qtx: ", 0), 0u);
  r = qtx(with_socket({"cp", "a", "b"}));
  EXPECT_EQ(r.code, 2);
}

TEST_F(Cli, DeniedIsExit4) {
  start_agent("[policy]\ndeny = [\"exec\"]\n");
  auto r = qtx(with_socket({"exec", "--", "/bin/true"}));
  EXPECT_EQ(r.code, 4);
  EXPECT_EQ(r.err, "qtx: denied by the guest's policy: exec\n");
}

TEST_F(Cli, ASecondProcessIsToldWhoOwnsTheSocket) {
  start_agent();
  auto agent = connect();
  ASSERT_TRUE(agent);
  auto r = qtx(with_socket({"ping"}));
  EXPECT_EQ(r.code, 3);
  EXPECT_EQ(r.err, "qtx: " + socket_path() + " is already owned by pid " + std::to_string(::getpid()) +
                       " (QEMU serves one client per channel)\n");
}

TEST_F(Cli, ASocketThatNeverAnswersIsExit3WithTheHandshakeReason) {
  HostListener silent(socket_path());  // connects succeed, nothing answers
  auto r = qtx(with_socket({"--connect-timeout", "0.3", "ping"}));
  EXPECT_EQ(r.code, 3);
  EXPECT_EQ(r.err, "qtx: the agent on " + socket_path() + " did not answer the handshake within 300 ms\n");
}

TEST_F(Cli, ExecOptionsBeforeTheSeparator) {
  start_agent();
  auto r = qtx(with_socket({"exec", "--env", "A=1", "--", "/bin/sh", "-c", "echo $A"}));
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "1\n");
}

TEST_F(Cli, UsageErrorsExit2) {
  EXPECT_EQ(qtx(with_socket({"cp", "--mode", "xyz", "a", ":b"})).code, 2);
  EXPECT_EQ(qtx({"frobnicate"}).code, 2);
  auto r = qtx({"ping"});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, "qtx: no socket given: use --socket PATH or set QTX_SOCKET\n");
}

}  // namespace
}  // namespace qtx::testing
