// The remaining commands through libqtx-host: accounts and SSH keys on
// temporary files, hostname in a private UTS namespace, time, and freeze on
// a loop-mounted scratch filesystem (root only).
#include <gtest/gtest.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "support/host_fixture.h"

namespace qtx::testing {
namespace {

using host::ErrorKind;

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

class HostSystem : public HostFixture {};

TEST_F(HostSystem, PasswordAndSshKeys) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to chown the user's files";
  const std::string home = dir() + "/home/alice";
  ASSERT_EQ(std::system(("mkdir -p '" + home + "'").c_str()), 0);
  std::ofstream(dir() + "/passwd") << "root:x:0:0:root:/root:/bin/sh\nalice:x:65534:65534:Alice:" << home
                                   << ":/bin/sh\n";
  std::ofstream(dir() + "/group") << "root:x:0:\nnogroup:x:65534:\n";
  std::ofstream(dir() + "/shadow") << "root:*:19000:0:99999:7:::\nalice:!:19000:0:99999:7:::\n";
  ::chown(home.c_str(), 65534, 65534);
  start_agent("[system]\npasswd_file = \"" + dir() + "/passwd\"\nshadow_file = \"" + dir() + "/shadow\"\ngroup_file = \"" +
              dir() + "/group\"\n");
  auto agent = connect();
  ASSERT_TRUE(agent);

  v1::SetPasswordRequest pw;
  pw.set_user("alice");
  pw.set_password("$6$salt$prehashed");
  pw.set_crypted(true);
  ASSERT_TRUE(agent->set_password(pw).ok());
  EXPECT_NE(slurp(dir() + "/shadow").find("alice:$6$salt$prehashed:"), std::string::npos);
  pw.set_user("bob");
  auto nobody = agent->set_password(pw);
  ASSERT_FALSE(nobody.ok());
  EXPECT_EQ(nobody.error().kind(), ErrorKind::kNotFound);

  const std::string key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKeyKeyKeyKeyKeyKeyKeyKeyKey alice@host";
  v1::SshKeysRequest keys;
  keys.set_user("alice");
  keys.set_action(v1::SshKeysRequest::ACTION_LIST);
  auto none = agent->ssh_keys(keys);
  ASSERT_TRUE(none.ok()) << none.error().to_string();
  EXPECT_EQ(none->keys_size(), 0);
  keys.set_action(v1::SshKeysRequest::ACTION_ADD);
  keys.add_keys(key);
  auto added = agent->ssh_keys(keys);
  ASSERT_TRUE(added.ok()) << added.error().to_string();
  ASSERT_EQ(added->keys_size(), 1);
  EXPECT_EQ(added->keys(0), key);
  EXPECT_EQ(slurp(home + "/.ssh/authorized_keys"), key + "\n");
  keys.set_action(v1::SshKeysRequest::ACTION_REMOVE);
  auto removed = agent->ssh_keys(keys);
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(removed->keys_size(), 0);
}

TEST_F(HostSystem, HostnameAndTime) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root for a private UTS namespace";
  start_agent("[system]\nhostname_file = \"" + dir() + "/hostname\"\n", /*own_uts_namespace=*/true);
  auto agent = connect();
  ASSERT_TRUE(agent);
  v1::HostnameSetRequest set;
  set.set_hostname("guest-07.example");
  set.set_persist(true);
  ASSERT_TRUE(agent->hostname_set(set).ok());
  auto got = agent->hostname_get({});
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->hostname(), "guest-07.example");
  EXPECT_EQ(slurp(dir() + "/hostname"), "guest-07.example\n");
  set.set_hostname("bad_name");
  auto bad = agent->hostname_set(set);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().kind(), ErrorKind::kInvalidArgument);

  // An implausible clock is refused (a real set would change this machine's).
  v1::TimeSetRequest t;
  t.set_unix_time_ns(12345);
  auto refused = agent->time_set(t);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().kind(), ErrorKind::kInvalidArgument);
}

TEST_F(HostSystem, FreezeAndThaw) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to mount and freeze";
  const std::string mnt = dir() + "/mnt", img = dir() + "/fs.img";
  const std::string cmd = "truncate -s 16M '" + img + "' && mkfs.ext4 -q '" + img + "' && mkdir -p '" + mnt +
                          "' && mount -o loop '" + img + "' '" + mnt + "' 2>/dev/null";
  if (std::system(cmd.c_str()) != 0) GTEST_SKIP() << "cannot loop-mount a scratch filesystem here";
  // Whatever the test does, the scratch filesystem ends thawed and unmounted.
  struct Unmount {
    std::string mnt;
    ~Unmount() {
      int fd = ::open(mnt.c_str(), O_RDONLY);
      if (fd >= 0) {
        ::ioctl(fd, FITHAW, 0);
        ::close(fd);
      }
      ::umount2(mnt.c_str(), MNT_DETACH);
    }
  } unmount{mnt};
  start_agent("[agent]\nstate_dir = \"" + dir() + "/state\"\n[freeze]\nhooks_dir = \"" + dir() + "/hooks\"\n");
  auto agent = connect();
  ASSERT_TRUE(agent);
  v1::FreezeRequest f;
  f.add_mountpoints(mnt);
  f.set_timeout_ms(60000);
  auto frozen = agent->freeze(f);
  ASSERT_TRUE(frozen.ok()) << frozen.error().to_string();
  ASSERT_EQ(frozen->frozen_size(), 1);
  EXPECT_EQ(frozen->frozen(0), mnt);
  auto status = agent->freeze_status({});
  ASSERT_TRUE(status.ok());
  EXPECT_TRUE(status->frozen());
  auto again = agent->freeze(f);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().kind(), ErrorKind::kFailedPrecondition) << again.error().to_string();
  ASSERT_TRUE(agent->thaw({}).ok());
  status = agent->freeze_status({});
  ASSERT_TRUE(status.ok());
  EXPECT_FALSE(status->frozen());
}

}  // namespace
}  // namespace qtx::testing
