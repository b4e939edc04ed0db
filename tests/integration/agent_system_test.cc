// power, time, hostname, network, processes, users and SSH keys, freeze:
// against temporary files, a private UTS namespace and a loop-mounted
// filesystem, never the machine's own.
#include <crypt.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "support/agent_fixture.h"

namespace qtx::testing {
namespace {

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

class System : public AgentFixture {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/qtx-system.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    AgentFixture::TearDown();
    remove_dir();
  }
  void remove_dir() { (void)std::system(("rm -rf '" + dir_ + "'").c_str()); }
  // The next freeze-state event (it may have arrived before the response it
  // belongs to, and then waits in conn_->events).
  std::optional<v1::Envelope> freeze_event(bool frozen) {
    for (auto it = conn_->events.begin(); it != conn_->events.end(); ++it) {
      if (it->event().has_freeze_state() && it->event().freeze_state().frozen() == frozen) {
        auto e = *it;
        conn_->events.erase(it);
        return e;
      }
    }
    return conn_->recv_until([frozen](const v1::Envelope& e) {
      return e.event().has_freeze_state() && e.event().freeze_state().frozen() == frozen;
    });
  }
  std::optional<v1::Response> call(std::uint64_t id, const v1::Request& r) { return conn_->call(id, r); }
  std::string dir_;
};

TEST_F(System, PowerAnswersFirstThenRunsTheConfiguredCommand) {
  const std::string fifo = dir_ + "/power.fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  int rd = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK);
  ASSERT_GE(rd, 0);
  // The command prints first, as systemctl does, once the agent has long
  // let go of it: its output must go somewhere that cannot kill it.
  start("[power]\npoweroff = [\"/bin/sh\", \"-c\", \"sleep 0.2; echo chatter; echo more >&2; echo poweroff > " + fifo +
        "\"]\n");
  v1::Request req;
  req.mutable_power()->set_action(v1::PowerRequest::ACTION_POWEROFF);
  req.mutable_power()->set_delay_ms(50);
  auto r = call(2, req);
  ASSERT_TRUE(r && r->has_done()) << describe(r);
  pollfd p{rd, POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 10000), 1) << "the power command did not run; log:\n" << agent_->log();
  char buf[32] = {};
  ASSERT_GT(::read(rd, buf, sizeof(buf) - 1), 0);
  EXPECT_STREQ(buf, "poweroff\n");
  ::close(rd);
  req.mutable_power()->set_action(v1::PowerRequest::ACTION_UNSPECIFIED);
  r = call(3, req);
  ASSERT_TRUE(r && r->has_error());
  EXPECT_EQ(r->error().code(), v1::ERROR_CODE_INVALID_ARGUMENT);
}

TEST_F(System, TimeGetIsTheGuestClockAndImplausibleSetsAreRefused) {
  start();
  const auto before = std::chrono::system_clock::now().time_since_epoch();
  v1::Request get;
  get.mutable_time_get();
  auto r = call(2, get);
  const auto after = std::chrono::system_clock::now().time_since_epoch();
  ASSERT_TRUE(r && r->has_time_get());
  EXPECT_GE(r->time_get().unix_time_ns(), std::chrono::duration_cast<std::chrono::nanoseconds>(before).count());
  EXPECT_LE(r->time_get().unix_time_ns(), std::chrono::duration_cast<std::chrono::nanoseconds>(after).count());
  v1::Request set;
  set.mutable_time_set()->set_unix_time_ns(12345);
  r = call(3, set);
  ASSERT_TRUE(r && r->has_error());
  EXPECT_EQ(r->error().code(), v1::ERROR_CODE_INVALID_ARGUMENT);
}

TEST_F(System, HostnameSetInAPrivateNamespaceAndPersisted) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root for a private UTS namespace";
  const std::string file = dir_ + "/hostname";
  start("[system]\nhostname_file = \"" + file + "\"\n", "h", /*own_uts_namespace=*/true);
  v1::Request set;
  set.mutable_hostname_set()->set_hostname("guest-01.example");
  set.mutable_hostname_set()->set_persist(true);
  auto r = call(2, set);
  ASSERT_TRUE(r && r->has_done()) << describe(r);
  EXPECT_EQ(slurp(file), "guest-01.example\n");
  v1::Request get;
  get.mutable_hostname_get();
  r = call(3, get);
  ASSERT_TRUE(r && r->has_hostname_get());
  EXPECT_EQ(r->hostname_get().hostname(), "guest-01.example");
  struct utsname u {};
  ::uname(&u);
  EXPECT_NE(std::string(u.nodename), "guest-01.example");  // ours is untouched
  for (const char* bad : {"", "-lead", "trail-", "under_score", "a..b", "spa ce"}) {
    set.mutable_hostname_set()->set_hostname(bad);
    r = call(4, set);
    ASSERT_TRUE(r && r->has_error()) << bad;
    EXPECT_EQ(r->error().code(), v1::ERROR_CODE_INVALID_ARGUMENT) << bad;
  }
}

TEST_F(System, NetworkAndProcesses) {
  start();
  v1::Request net;
  net.mutable_network();
  auto r = call(2, net);
  ASSERT_TRUE(r && r->has_network());
  bool lo = false;
  for (const auto& i : r->network().interfaces()) {
    if (i.name() == "lo") {
      lo = true;
      ASSERT_GE(i.ipv4_size(), 1);
      EXPECT_EQ(i.ipv4(0), "127.0.0.1/8");
    }
  }
  EXPECT_TRUE(lo);

  v1::Request ps;
  ps.mutable_process_list();
  r = call(3, ps);
  ASSERT_TRUE(r && r->has_process_list());
  bool self = false;
  for (const auto& p : r->process_list().processes()) {
    if (p.pid() == static_cast<std::uint32_t>(agent_->pid())) {
      self = true;
      EXPECT_EQ(p.name(), "qtx-agent");
      EXPECT_EQ(p.ppid(), static_cast<std::uint32_t>(::getpid()));
      EXPECT_GT(p.rss_bytes(), 0u);
      ASSERT_GE(p.cmdline_size(), 1);
    }
  }
  EXPECT_TRUE(self);
}

TEST_F(System, ProcessKill) {
  start();
  pid_t child = ::fork();
  if (child == 0) {
    ::execl("/bin/sleep", "sleep", "30", static_cast<char*>(nullptr));
    _exit(127);
  }
  v1::Request kill;
  kill.mutable_process_kill()->set_pid(static_cast<std::uint32_t>(child));
  auto r = call(2, kill);
  ASSERT_TRUE(r && r->has_done());
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGTERM);
  r = call(3, kill);  // reaped now: gone
  ASSERT_TRUE(r && r->has_error());
  EXPECT_EQ(r->error().code(), v1::ERROR_CODE_NOT_FOUND);
  kill.mutable_process_kill()->set_pid(1);
  r = call(4, kill);
  ASSERT_TRUE(r && r->has_error());
  EXPECT_EQ(r->error().code(), v1::ERROR_CODE_INVALID_ARGUMENT);
}

class Accounts : public System {
 protected:
  void start_with_accounts() {
    home_ = dir_ + "/home/alice";
    ASSERT_EQ(std::system(("mkdir -p '" + home_ + "'").c_str()), 0);
    std::ofstream(dir_ + "/passwd") << "root:x:0:0:root:/root:/bin/sh\nalice:x:65534:65534:Alice:" << home_
                                    << ":/bin/sh\n";
    std::ofstream(dir_ + "/group") << "root:x:0:\nnogroup:x:65534:\n";
    std::ofstream(dir_ + "/shadow") << "root:*:19000:0:99999:7:::\nalice:!:19000:0:99999:7:::\n";
    ::chmod((dir_ + "/shadow").c_str(), 0640);
    ::chown(home_.c_str(), 65534, 65534);
    start("[system]\npasswd_file = \"" + dir_ + "/passwd\"\nshadow_file = \"" + dir_ + "/shadow\"\ngroup_file = \"" +
          dir_ + "/group\"\n");
  }
  std::string home_;
};

TEST_F(Accounts, SetPasswordHashesIntoShadow) {
  start_with_accounts();
  v1::Request req;
  req.mutable_set_password()->set_user("alice");
  req.mutable_set_password()->set_password("s3cret pass");
  auto r = call(2, req);
  ASSERT_TRUE(r && r->has_done()) << describe(r);
  const std::string shadow = slurp(dir_ + "/shadow");
  EXPECT_EQ(shadow.substr(0, shadow.find('\n')), "root:*:19000:0:99999:7:::");
  const auto line = shadow.substr(shadow.find("alice:"));
  const std::string hash = line.substr(6, line.find(':', 6) - 6);
  ASSERT_EQ(hash.rfind("$6$", 0), 0u) << hash;
  crypt_data data{};
  EXPECT_EQ(std::string(::crypt_r("s3cret pass", hash.c_str(), &data)), hash);
  const long today = static_cast<long>(std::time(nullptr) / 86400);
  EXPECT_NE(line.find(":" + std::to_string(today) + ":0:99999:7:::"), std::string::npos) << line;
  struct stat st {};
  ASSERT_EQ(::stat((dir_ + "/shadow").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u);

  req.mutable_set_password()->set_password("$6$abc$prehashed");
  req.mutable_set_password()->set_crypted(true);
  r = call(3, req);
  ASSERT_TRUE(r && r->has_done());
  EXPECT_NE(slurp(dir_ + "/shadow").find("alice:$6$abc$prehashed:"), std::string::npos);

  req.mutable_set_password()->set_user("bob");
  r = call(4, req);
  ASSERT_TRUE(r && r->has_error());
  EXPECT_EQ(r->error().code(), v1::ERROR_CODE_NOT_FOUND);
  req.mutable_set_password()->set_user("alice");
  req.mutable_set_password()->set_password("not:a:hash");
  r = call(5, req);
  ASSERT_TRUE(r && r->has_error());
  EXPECT_EQ(r->error().code(), v1::ERROR_CODE_INVALID_ARGUMENT);
}

TEST_F(Accounts, SshKeysListOfAUserWithoutKeysIsAnEmptyAnswer) {
  start_with_accounts();
  v1::Request req;
  req.mutable_ssh_keys()->set_action(v1::SshKeysRequest::ACTION_LIST);
  req.mutable_ssh_keys()->set_user("alice");
  auto r = call(2, req);
  ASSERT_TRUE(r && r->has_ssh_keys()) << describe(r);
  EXPECT_EQ(r->ssh_keys().keys_size(), 0);
}

TEST_F(Accounts, SshKeysAddListRemoveWithOwnershipAndNoSymlinkFollowing) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to chown";
  start_with_accounts();
  const std::string k1 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKey1Key1Key1Key1Key1 alice@one";
  const std::string k2 = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQKey2Key2 alice@two";
  v1::Request add;
  add.mutable_ssh_keys()->set_action(v1::SshKeysRequest::ACTION_ADD);
  add.mutable_ssh_keys()->set_user("alice");
  add.mutable_ssh_keys()->add_keys(k1);
  add.mutable_ssh_keys()->add_keys(k2);
  auto r = call(2, add);
  ASSERT_TRUE(r && r->has_ssh_keys()) << describe(r);
  EXPECT_EQ(r->ssh_keys().keys_size(), 2);
  EXPECT_EQ(slurp(home_ + "/.ssh/authorized_keys"), k1 + "\n" + k2 + "\n");
  struct stat st {};
  ASSERT_EQ(::stat((home_ + "/.ssh").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  EXPECT_EQ(st.st_uid, 65534u);
  ASSERT_EQ(::stat((home_ + "/.ssh/authorized_keys").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_uid, 65534u);

  // The same key with another comment is not added twice.
  add.mutable_ssh_keys()->clear_keys();
  add.mutable_ssh_keys()->add_keys("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKey1Key1Key1Key1Key1 other-comment");
  r = call(3, add);
  ASSERT_TRUE(r && r->has_ssh_keys());
  EXPECT_EQ(r->ssh_keys().keys_size(), 2);

  v1::Request rm;
  rm.mutable_ssh_keys()->set_action(v1::SshKeysRequest::ACTION_REMOVE);
  rm.mutable_ssh_keys()->set_user("alice");
  rm.mutable_ssh_keys()->add_keys(k1);
  r = call(4, rm);
  ASSERT_TRUE(r && r->has_ssh_keys());
  ASSERT_EQ(r->ssh_keys().keys_size(), 1);
  EXPECT_EQ(r->ssh_keys().keys(0), k2);

  v1::Request list;
  list.mutable_ssh_keys()->set_action(v1::SshKeysRequest::ACTION_LIST);
  list.mutable_ssh_keys()->set_user("alice");
  r = call(5, list);
  ASSERT_TRUE(r && r->has_ssh_keys());
  EXPECT_EQ(r->ssh_keys().keys_size(), 1);

  add.mutable_ssh_keys()->clear_keys();
  add.mutable_ssh_keys()->add_keys("not a key");
  r = call(6, add);
  ASSERT_TRUE(r && r->has_error());
  EXPECT_EQ(r->error().code(), v1::ERROR_CODE_INVALID_ARGUMENT);

  // A user's symlink in place of authorized_keys is replaced, not followed.
  std::ofstream(dir_ + "/target") << "precious\n";
  ::unlink((home_ + "/.ssh/authorized_keys").c_str());
  ASSERT_EQ(::symlink((dir_ + "/target").c_str(), (home_ + "/.ssh/authorized_keys").c_str()), 0);
  add.mutable_ssh_keys()->clear_keys();
  add.mutable_ssh_keys()->add_keys(k1);
  r = call(7, add);
  ASSERT_TRUE(r && r->has_ssh_keys()) << describe(r);
  EXPECT_EQ(slurp(dir_ + "/target"), "precious\n");
  ASSERT_EQ(::lstat((home_ + "/.ssh/authorized_keys").c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
}

// A scratch ext4 filesystem, loop-mounted, to freeze.
class Freeze : public System {
 protected:
  void SetUp() override {
    System::SetUp();
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to mount and freeze";
    mnt_ = dir_ + "/mnt";
    const std::string img = dir_ + "/fs.img";
    const std::string cmd = "truncate -s 16M '" + img + "' && mkfs.ext4 -q '" + img + "' && mkdir -p '" + mnt_ +
                            "' && mount -o loop '" + img + "' '" + mnt_ + "' 2>/dev/null";
    if (std::system(cmd.c_str()) != 0) GTEST_SKIP() << "cannot loop-mount a scratch filesystem here";
    mounted_ = true;
    hooks_ = dir_ + "/hooks";
    ::mkdir(hooks_.c_str(), 0755);
    std::ofstream(hooks_ + "/10-log") << "#!/bin/sh\necho \"$1\" >> " << dir_ << "/hook.log\n";
    ::chmod((hooks_ + "/10-log").c_str(), 0755);
    config_ = "[agent]\nstate_dir = \"" + dir_ + "/state\"\n[freeze]\nhooks_dir = \"" + hooks_ + "\"\n";
  }
  void TearDown() override {
    if (mounted_) {
      int fd = ::open(mnt_.c_str(), O_RDONLY);
      if (fd >= 0) {
        ::ioctl(fd, FITHAW, 0);  // whatever happened, leave it thawed
        ::close(fd);
      }
    }
    AgentFixture::TearDown();
    if (mounted_) ::umount2(mnt_.c_str(), MNT_DETACH);
    remove_dir();
  }
  v1::Request freeze_request(std::uint32_t timeout_ms = 60000) {
    v1::Request f;
    f.mutable_freeze()->add_mountpoints(mnt_);
    f.mutable_freeze()->set_timeout_ms(timeout_ms);
    return f;
  }
  bool writable() {
    // A write to a frozen filesystem blocks: probe with a child and a deadline.
    pid_t pid = ::fork();
    if (pid == 0) {
      int fd = ::open((mnt_ + "/probe").c_str(), O_WRONLY | O_CREAT, 0644);
      _exit(fd >= 0 && ::write(fd, "x", 1) == 1 && ::fsync(fd) == 0 ? 0 : 1);
    }
    AgentProcess::Waiter w(pid);
    int status = w.wait(2000);
    if (status == -1) {
      ::kill(pid, SIGKILL);  // left blocked in the kernel until the thaw
      return false;
    }
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }
  std::string mnt_, hooks_, config_;
  bool mounted_ = false;
};

TEST_F(Freeze, FreezeRunsHooksRefusesWritesAndThaws) {
  start(config_);
  auto r = call(2, freeze_request());
  ASSERT_TRUE(r && r->has_freeze()) << describe(r) << agent_->log();
  ASSERT_EQ(r->freeze().frozen_size(), 1);
  EXPECT_EQ(r->freeze().frozen(0), mnt_);
  auto ev = freeze_event(true);
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->event().freeze_state().reason(), "request");

  v1::Request st;
  st.mutable_freeze_status();
  r = call(3, st);
  ASSERT_TRUE(r && r->has_freeze_status());
  EXPECT_TRUE(r->freeze_status().frozen());
  EXPECT_GT(r->freeze_status().auto_thaw_unix_ms(), 0);

  v1::Request mk;
  mk.mutable_file_mkdir()->set_path(dir_ + "/elsewhere");
  r = call(4, mk);
  ASSERT_TRUE(r && r->has_error());
  EXPECT_EQ(r->error().code(), v1::ERROR_CODE_FAILED_PRECONDITION);
  r = call(5, freeze_request());
  ASSERT_TRUE(r && r->has_error());
  EXPECT_EQ(r->error().code(), v1::ERROR_CODE_FAILED_PRECONDITION);

  v1::Request thaw;
  thaw.mutable_thaw();
  r = call(6, thaw);
  ASSERT_TRUE(r && r->has_done()) << describe(r);
  EXPECT_TRUE(writable());
  EXPECT_EQ(slurp(dir_ + "/hook.log"), "freeze\nthaw\n");
  r = call(7, st);
  ASSERT_TRUE(r && r->has_freeze_status());
  EXPECT_FALSE(r->freeze_status().frozen());
  r = call(8, thaw);  // thawing a thawed system is fine
  ASSERT_TRUE(r && r->has_done());
}

TEST_F(Freeze, AutomaticThawAfterTheTimeout) {
  start(config_);
  auto r = call(2, freeze_request(300));
  ASSERT_TRUE(r && r->has_freeze());
  auto ev = freeze_event(false);
  ASSERT_TRUE(ev) << agent_->log();
  EXPECT_EQ(ev->event().freeze_state().reason(), "auto-thaw");
  EXPECT_TRUE(writable());
}

TEST_F(Freeze, StateSurvivesAnAgentRestart) {
  start(config_);
  auto r = call(2, freeze_request());
  ASSERT_TRUE(r && r->has_freeze());
  agent_->signal_and_wait(SIGKILL);  // first, or it would reconnect before dying
  conn_.reset();
  agent_ = std::make_unique<AgentProcess>(listener_->path(), config_);
  conn_ = accept_next();
  ASSERT_TRUE(conn_ && conn_->hello());
  v1::Request st;
  st.mutable_freeze_status();
  r = call(3, st);
  ASSERT_TRUE(r && r->has_freeze_status());
  EXPECT_TRUE(r->freeze_status().frozen());
  ASSERT_EQ(r->freeze_status().mountpoints_size(), 1);
  EXPECT_EQ(r->freeze_status().mountpoints(0), mnt_);
  v1::Request thaw;
  thaw.mutable_thaw();
  r = call(4, thaw);
  ASSERT_TRUE(r && r->has_done());
  EXPECT_TRUE(writable());
}

// freeze.max_timeout_ms bounds the automatic thaw a request may ask for: at
// the limit the freeze happens, one millisecond above it nothing does.
TEST_F(Freeze, ARequestedTimeoutUpToTheConfiguredLimitIsAccepted) {
  start(config_ + "timeout_ms = 2000\nmax_timeout_ms = 5000\n");
  auto r = call(2, freeze_request(5001));
  ASSERT_TRUE(r && r->has_error()) << describe(r);
  EXPECT_EQ(r->error().code(), v1::ERROR_CODE_INVALID_ARGUMENT);
  EXPECT_TRUE(writable());
  struct stat st {};
  EXPECT_NE(::stat((dir_ + "/hook.log").c_str(), &st), 0);  // no hook ran
  r = call(3, freeze_request(5000));
  ASSERT_TRUE(r && r->has_freeze()) << describe(r) << agent_->log();
  ASSERT_EQ(r->freeze().frozen_size(), 1);
  v1::Request thaw;
  thaw.mutable_thaw();
  r = call(4, thaw);
  ASSERT_TRUE(r && r->has_done()) << describe(r);
  EXPECT_TRUE(writable());
  EXPECT_EQ(slurp(dir_ + "/hook.log"), "freeze\nthaw\n");
}

TEST_F(Freeze, AFailingFreezeHookFreezesNothing) {
  std::ofstream(hooks_ + "/20-fail") << "#!/bin/sh\n[ \"$1\" = freeze ] && exit 3\nexit 0\n";
  ::chmod((hooks_ + "/20-fail").c_str(), 0755);
  start(config_);
  auto r = call(2, freeze_request());
  ASSERT_TRUE(r && r->has_error());
  EXPECT_EQ(r->error().code(), v1::ERROR_CODE_FAILED_PRECONDITION);
  EXPECT_TRUE(writable());
  EXPECT_EQ(slurp(dir_ + "/hook.log"), "freeze\nthaw\n");  // hooks that ran are undone
}

}  // namespace
}  // namespace qtx::testing
