// The remaining commands through libqtx-host: accounts and SSH keys on
// temporary files, hostname in a private UTS namespace, time, and freeze on
// a loop-mounted scratch filesystem (root only).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
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
  start_agent("[system]\npasswd_file = \"" + dir() + "/passwd\"\nshadow_file = \"" + dir() +
              "/shadow\"\ngroup_file = \"" + dir() + "/group\"\n");
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

// A full filesystem on either side: the transfer fails with ENOSPC named,
// nothing partial is left on the full side, and the connection serves on.
TEST_F(HostSystem, DiskFullOnEitherSideLeavesNothingPartial) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to mount a small tmpfs";
  const std::string full = dir() + "/full";
  ASSERT_EQ(::mkdir(full.c_str(), 0755), 0);
  if (::mount("tmpfs", full.c_str(), "tmpfs", 0, "size=1m") != 0) GTEST_SKIP() << "cannot mount a tmpfs here";
  struct Unmount {
    std::string mnt;
    ~Unmount() { ::umount2(mnt.c_str(), MNT_DETACH); }
  } unmount{full};
  auto listing = [&full] {
    std::string names;
    for (const auto& e : std::filesystem::directory_iterator(full)) names += e.path().filename().string() + " ";
    return names;
  };
  start_agent();
  auto agent = connect();
  ASSERT_TRUE(agent);

  // Guest side full: 2 MiB into 1 MiB.
  v1::FileWriteRequest w;
  w.set_path(full + "/big.bin");
  auto up = agent->upload_bytes(std::string(2 << 20, 'x'), w);
  ASSERT_FALSE(up.ok());
  EXPECT_EQ(up.error().kind(), ErrorKind::kGuestFailed) << up.error().to_string();
  EXPECT_EQ(up.error().os_errno(), ENOSPC) << up.error().to_string();
  EXPECT_EQ(listing(), "");

  // Host side full: a 2 MiB download into 1 MiB.
  const std::string remote = dir() + "/remote.bin";
  {
    std::ofstream f(remote, std::ios::binary);
    f << std::string(2 << 20, 'y');
  }
  v1::FileReadRequest r;
  r.set_path(remote);
  auto down = agent->download_file(r, full + "/back.bin");
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.error().kind(), ErrorKind::kLocal) << down.error().to_string();
  EXPECT_EQ(down.error().os_errno(), ENOSPC) << down.error().to_string();
  EXPECT_EQ(listing(), "");

  // Room again: the same connection carries the next transfer.
  w.set_path(full + "/small.bin");
  auto small = agent->upload_bytes(std::string(100 * 1024, 'z'), w);
  ASSERT_TRUE(small.ok()) << small.error().to_string();
  EXPECT_EQ(slurp(full + "/small.bin"), std::string(100 * 1024, 'z'));
  EXPECT_EQ(agent->stats().handshakes, 1u);
}

}  // namespace
}  // namespace qtx::testing
