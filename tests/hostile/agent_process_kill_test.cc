// A host that names, in process_kill, a pid kill(2) would read as a process
// group or as "every process": 0, 2^32-1 (-1), 2^32-N (-N), INT_MAX+1. The
// agent refuses them, signals nothing, and its audit line states the pid and
// signal as sent.
//
// Nothing here can take the machine down if the agent regresses: the wrapped
// pids are sent with SIGWINCH (ignored by default), and the witnesses are two
// children of the test that block it, so a SIGWINCH that reached them stays
// pending, where /proc/PID/status shows it. kill(2) makes a signal pending
// before it returns, and the agent answers after kill(2) returned, so the
// answer is the synchronisation: no waiting.
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "support/agent_fixture.h"

namespace qtx::testing {
namespace {

// A `sleep` child with SIGWINCH blocked (the mask survives execve); in its
// own process group when `own_group`, else in the test's (and the agent's).
pid_t blocked_sleeper(bool own_group) {
  sigset_t winch, old;
  sigemptyset(&winch);
  sigaddset(&winch, SIGWINCH);
  ::pthread_sigmask(SIG_BLOCK, &winch, &old);
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (own_group) ::setpgid(0, 0);
    ::execl("/bin/sleep", "sleep", "300", static_cast<char*>(nullptr));
    _exit(127);
  }
  if (pid > 0 && own_group) ::setpgid(pid, pid);  // either side may win the race; both set the same
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return pid;
}

// Whether `sig` is pending for `pid` (shared or thread-directed).
bool pending(pid_t pid, int sig) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  std::uint64_t mask = 0;
  while (std::getline(f, line)) {
    if (line.rfind("ShdPnd:", 0) == 0 || line.rfind("SigPnd:", 0) == 0) {
      mask |= std::stoull(line.substr(7), nullptr, 16);
    }
  }
  return (mask >> (sig - 1)) & 1u;
}

bool alive(pid_t pid) { return ::waitpid(pid, nullptr, WNOHANG) == 0; }

// The thread ids of `pid`, its own first.
std::vector<pid_t> threads_of(pid_t pid) {
  std::vector<pid_t> tids{pid};
  DIR* d = ::opendir(("/proc/" + std::to_string(pid) + "/task").c_str());
  if (d == nullptr) return tids;
  while (dirent* e = ::readdir(d)) {
    const pid_t tid = static_cast<pid_t>(std::strtol(e->d_name, nullptr, 10));
    if (tid > 0 && tid != pid) tids.push_back(tid);
  }
  ::closedir(d);
  return tids;
}

// A child with SIGWINCH blocked that runs a second thread; the thread's id
// arrives through `*tid` (0 when the child could not start it).
pid_t two_threaded_child(pid_t* tid) {
  int p[2];
  if (::pipe(p) != 0) return -1;
  sigset_t winch, old;
  sigemptyset(&winch);
  sigaddset(&winch, SIGWINCH);
  ::pthread_sigmask(SIG_BLOCK, &winch, &old);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(p[0]);
    pthread_t t;
    int out = p[1];  // lives as long as the child: its main thread never returns
    auto body = [](void* arg) -> void* {
      const pid_t self = static_cast<pid_t>(::syscall(SYS_gettid));
      (void)!::write(*static_cast<int*>(arg), &self, sizeof self);
      for (;;) ::pause();
    };
    if (::pthread_create(&t, nullptr, body, &out) != 0) _exit(126);
    for (;;) ::pause();
  }
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  ::close(p[1]);
  *tid = 0;
  if (pid > 0 && ::read(p[0], tid, sizeof *tid) != static_cast<ssize_t>(sizeof *tid)) *tid = 0;
  ::close(p[0]);
  return pid;
}

class ProcessKillAttack : public AgentFixture {
 protected:
  void SetUp() override {
    same_group_ = blocked_sleeper(false);
    own_group_ = blocked_sleeper(true);
    ASSERT_GT(same_group_, 0);
    ASSERT_GT(own_group_, 0);
    ASSERT_EQ(::getpgid(own_group_), own_group_);
  }
  void TearDown() override {
    AgentFixture::TearDown();
    for (pid_t p : {same_group_, own_group_, threaded_}) {
      if (p > 0 && alive(p)) {
        ::kill(p, SIGKILL);
        ::waitpid(p, nullptr, 0);
      }
    }
  }
  std::optional<v1::Response> kill(std::uint64_t id, std::uint32_t pid, int sig) {
    v1::Request r;
    r.mutable_process_kill()->set_pid(pid);
    r.mutable_process_kill()->set_signal(sig);
    return conn_->call(id, r);
  }
  pid_t same_group_ = -1, own_group_ = -1, threaded_ = -1;
};

TEST_F(ProcessKillAttack, PidsKillWouldReadAsGroupsOrEveryProcessAreRefusedAndSignalNothing) {
  start();
  const struct {
    std::uint32_t pid;
    const char* what;
  } cases[] = {
      {0u, "0: the agent's own process group, which is the test's"},
      {0xffffffffu, "2^32-1: kill(-1), every process"},
      {static_cast<std::uint32_t>(-static_cast<std::int64_t>(own_group_)), "2^32-N: the process group N"},
      {0xfffffffbu, "2^32-5"},
      {static_cast<std::uint32_t>(INT_MAX) + 1u, "INT_MAX+1: INT_MIN"},
      {1u, "init, without policy.process_kill_init"},
      {static_cast<std::uint32_t>(agent_->pid()), "the agent itself"},
  };
  std::uint64_t id = 2;
  for (const auto& c : cases) {
    auto r = kill(id, c.pid, SIGWINCH);
    ASSERT_TRUE(r && r->has_error()) << c.what << ": " << describe(r);
    EXPECT_EQ(r->error().code(), v1::ERROR_CODE_INVALID_ARGUMENT) << c.what << ": " << describe(r);
    EXPECT_FALSE(pending(same_group_, SIGWINCH)) << c.what;
    EXPECT_FALSE(pending(own_group_, SIGWINCH)) << c.what;
    EXPECT_NE(agent_->log().find("audit: process_kill (id " + std::to_string(id) + ") pid " + std::to_string(c.pid) +
                                 " signal " + std::to_string(SIGWINCH) + "\n"),
              std::string::npos)
        << c.what << "\n"
        << agent_->log();
    ++id;
  }
  // Signals outside 1..NSIG-1 are refused too, whatever the pid.
  for (const int sig : {-1, NSIG, 1000}) {
    auto r = kill(id++, static_cast<std::uint32_t>(same_group_), sig);
    ASSERT_TRUE(r && r->has_error()) << sig << ": " << describe(r);
    EXPECT_EQ(r->error().code(), v1::ERROR_CODE_INVALID_ARGUMENT) << sig;
  }
  EXPECT_TRUE(alive(same_group_));
  EXPECT_TRUE(alive(own_group_));
  EXPECT_TRUE(agent_->running());

  // A valid pid signals its target and nothing else.
  auto r = kill(id++, static_cast<std::uint32_t>(same_group_), SIGWINCH);
  ASSERT_TRUE(r && r->has_done()) << describe(r);
  EXPECT_TRUE(pending(same_group_, SIGWINCH));
  EXPECT_FALSE(pending(own_group_, SIGWINCH));
  const std::uint64_t term_id = id++;
  r = kill(term_id, static_cast<std::uint32_t>(own_group_), 0);  // 0: SIGTERM
  ASSERT_TRUE(r && r->has_done()) << describe(r);
  int status = 0;
  ASSERT_EQ(::waitpid(own_group_, &status, 0), own_group_);
  const pid_t was = own_group_;
  own_group_ = -1;
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM) << status;
  EXPECT_TRUE(alive(same_group_));
  EXPECT_NE(agent_->log().find("audit: process_kill (id " + std::to_string(term_id) + ") pid " + std::to_string(was) +
                               " signal " + std::to_string(SIGTERM) + "\n"),
            std::string::npos)
      << agent_->log();
}

// kill(2) given a thread id signals the thread's whole process: a thread of
// the agent named with SIGKILL would end the agent, and a thread of another
// process would signal that process under a name that is not its pid. Every
// pid that is not a process's main thread is refused and signals nothing.
TEST_F(ProcessKillAttack, ThreadIdsAreRefusedAndSignalNothing) {
  start();
  const std::vector<pid_t> agent_threads = threads_of(agent_->pid());
  ASSERT_GE(agent_threads.size(), 2u) << "the agent runs worker threads";
  std::uint64_t id = 2;
  for (std::size_t i = 1; i < agent_threads.size(); ++i) {
    const pid_t tid = agent_threads[i];
    auto r = kill(id++, static_cast<std::uint32_t>(tid), SIGKILL);
    ASSERT_TRUE(r && r->has_error()) << "agent thread " << tid << ": " << describe(r);
    EXPECT_EQ(r->error().code(), v1::ERROR_CODE_INVALID_ARGUMENT) << describe(r);
    EXPECT_EQ(r->error().message(),
              "refusing to signal the agent itself: " + std::to_string(tid) + " is one of its threads");
    expect_ping_answers(id++);
  }
  EXPECT_TRUE(agent_->running());

  pid_t tid = 0;
  threaded_ = two_threaded_child(&tid);
  const pid_t child = threaded_;
  ASSERT_GT(child, 0);
  ASSERT_GT(tid, 0);
  ASSERT_NE(tid, child);
  auto r = kill(id++, static_cast<std::uint32_t>(tid), SIGWINCH);
  ASSERT_TRUE(r && r->has_error()) << describe(r);
  EXPECT_EQ(r->error().code(), v1::ERROR_CODE_INVALID_ARGUMENT) << describe(r);
  EXPECT_EQ(r->error().message(), "not a process id: " + std::to_string(tid) + " is a thread of process " +
                                      std::to_string(child) + "; name the process");
  EXPECT_FALSE(pending(child, SIGWINCH));
  EXPECT_FALSE(pending(tid, SIGWINCH));
  // Its pid is accepted, and the signal reaches it.
  r = kill(id++, static_cast<std::uint32_t>(child), SIGWINCH);
  ASSERT_TRUE(r && r->has_done()) << describe(r);
  EXPECT_TRUE(pending(child, SIGWINCH));
  EXPECT_TRUE(alive(child));
  expect_ping_answers(id++);
}

}  // namespace
}  // namespace qtx::testing
