// The provisioning helpers (qtx/host/vm.h) against the real tools: overlays
// made by qemu-img and read back with qemu-img info, seed ISOs made by
// xorriso and read back from the image, and wait-ready against every stage
// a VM's socket can be in, up to the real agent.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "qtx/host/vm.h"
#include "qtx/wire/sha256.h"
#include "support/host_fixture.h"

namespace qtx::testing {
namespace {

namespace vm = ::qtx::host::vm;
using host::ErrorKind;
using namespace std::chrono_literals;

std::string sh(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(("(" + cmd + ") 2>&1").c_str(), "r");
  if (p == nullptr) return "popen failed";
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  ::pclose(p);
  return out;
}

bool have(const char* tool) { return sh(std::string("command -v ") + tool + " >/dev/null && echo yes") == "yes\n"; }

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

bool exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

// A field of `qemu-img info --output=json` (string or number), as text.
std::string info_field(const std::string& image, const std::string& field) {
  return sh("qemu-img info --output=json '" + image + "' | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"" +
            field + "\"])'");
}

class VmProvision : public HostFixture {
 protected:
  void SetUp() override {
    HostFixture::SetUp();
    if (!have("qemu-img") || !have("xorriso")) GTEST_SKIP() << "qemu-img and xorriso are needed (scripts/setup.sh)";
    base_ = dir() + "/base.qcow2";
    ASSERT_EQ(sh("qemu-img create -q -f qcow2 '" + base_ + "' 64M && echo ok"), "ok\n");
  }
  vm::OverlayOptions overlay(std::uint64_t size = 0) {
    vm::OverlayOptions o;
    o.backing = base_;
    o.output = dir() + "/vm1.qcow2";
    o.size = size;
    return o;
  }
  std::string base_;
};

TEST_F(VmProvision, SizeZeroStillCreatesTheOverlayWithTheBackingSize) {
  const auto before = wire::Sha256::hex(wire::Sha256::of(read_file(base_)));
  auto r = vm::create_overlay(overlay(0));
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_TRUE(r->created);
  EXPECT_EQ(r->backing_format, "qcow2");
  EXPECT_EQ(r->backing_size, 64u << 20);
  EXPECT_EQ(r->size, 64u << 20);
  EXPECT_EQ(r->command, "qemu-img create -q -f qcow2 -b " + base_ + " -F qcow2 " + dir() + "/vm1.qcow2");
  const std::string out = dir() + "/vm1.qcow2";
  EXPECT_EQ(info_field(out, "format"), "qcow2\n");
  EXPECT_EQ(info_field(out, "virtual-size"), std::to_string(64u << 20) + "\n");
  EXPECT_EQ(info_field(out, "full-backing-filename"), base_ + "\n");
  EXPECT_EQ(info_field(out, "backing-filename-format"), "qcow2\n");
  EXPECT_EQ(wire::Sha256::hex(wire::Sha256::of(read_file(base_))), before);  // the image is never written
}

TEST_F(VmProvision, RunningItAgainChangesNothing) {
  ASSERT_TRUE(vm::create_overlay(overlay(0)).ok());
  const std::string out = dir() + "/vm1.qcow2";
  ASSERT_EQ(sh("echo guest-data | dd of='" + out + "' bs=1 seek=4000000 conv=notrunc status=none && echo ok"),
            "ok\n");  // stands in for what the guest wrote
  const std::string written = read_file(out);
  auto again = vm::create_overlay(overlay(0));
  ASSERT_TRUE(again.ok()) << again.error().to_string();
  EXPECT_FALSE(again->created);
  EXPECT_EQ(read_file(out), written);
}

TEST_F(VmProvision, ALargerSizeGrowsAndASmallerOneIsRefused) {
  auto big = vm::create_overlay(overlay(128u << 20));
  ASSERT_TRUE(big.ok()) << big.error().to_string();
  EXPECT_EQ(info_field(dir() + "/vm1.qcow2", "virtual-size"), std::to_string(128u << 20) + "\n");
  EXPECT_EQ(big->command.substr(big->command.size() - 10), " 134217728");

  auto o = overlay(32u << 20);
  o.output = dir() + "/small.qcow2";
  auto small = vm::create_overlay(o);
  ASSERT_FALSE(small.ok());
  EXPECT_EQ(small.error().kind(), ErrorKind::kInvalidArgument);
  EXPECT_NE(small.error().message().find("smaller than the backing image's virtual size (67108864 bytes)"),
            std::string::npos)
      << small.error().message();
  EXPECT_FALSE(exists(o.output));
}

TEST_F(VmProvision, AMissingBackingImageIsNamedWithWhereToGetOne) {
  auto o = overlay(0);
  o.backing = dir() + "/no-such-image.qcow2";
  auto r = vm::create_overlay(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind(), ErrorKind::kNotFound);
  EXPECT_NE(r.error().message().find(o.backing + " does not exist: download a cloud image"), std::string::npos)
      << r.error().message();
  EXPECT_FALSE(exists(o.output));
}

TEST_F(VmProvision, AnApplicationIgnoringSigchldGetsAnErrorNotAFalseSuccess) {
  // With SIGCHLD at SIG_IGN, a tool's exit status cannot be read back.
  struct sigaction ignore {
  }, before{};
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(::sigaction(SIGCHLD, &ignore, &before), 0);
  auto r = vm::create_overlay(overlay(0));
  ::sigaction(SIGCHLD, &before, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind(), ErrorKind::kLocal);
  EXPECT_NE(r.error().message().find("its exit status is lost"), std::string::npos) << r.error().message();
  EXPECT_NE(r.error().message().find("SIGCHLD"), std::string::npos) << r.error().message();
  EXPECT_EQ(r.error().os_errno(), ECHILD);
}

TEST_F(VmProvision, TheBackingFormatIsDetectedNotGuessed) {
  const std::string raw = dir() + "/base.img";
  ASSERT_EQ(sh("truncate -s 16M '" + raw + "' && echo ok"), "ok\n");
  auto o = overlay(0);
  o.backing = raw;
  auto r = vm::create_overlay(o);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->backing_format, "raw");
  EXPECT_EQ(info_field(o.output, "backing-filename-format"), "raw\n");
}

TEST_F(VmProvision, ARelativeBackingPathIsStoredAbsolute) {
  ASSERT_EQ(::mkdir((dir() + "/vms").c_str(), 0755), 0);
  char cwd[4096];
  ASSERT_NE(::getcwd(cwd, sizeof(cwd)), nullptr);
  ASSERT_EQ(::chdir(dir().c_str()), 0);
  vm::OverlayOptions o;
  o.backing = "base.qcow2";  // relative to here, not to vms/
  o.output = "vms/vm1.qcow2";
  auto r = vm::create_overlay(o);
  ASSERT_EQ(::chdir(cwd), 0);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(info_field(dir() + "/vms/vm1.qcow2", "full-backing-filename"), base_ + "\n");
}

TEST_F(VmProvision, ADifferentFileInTheWayIsKeptUnlessOverwriteIsAsked) {
  const std::string out = dir() + "/vm1.qcow2";
  ASSERT_EQ(sh("printf precious > '" + out + "' && echo ok"), "ok\n");
  auto r = vm::create_overlay(overlay(0));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind(), ErrorKind::kAlreadyExists);
  EXPECT_EQ(read_file(out), "precious");
  auto o = overlay(0);
  o.overwrite = true;
  auto forced = vm::create_overlay(o);
  ASSERT_TRUE(forced.ok()) << forced.error().to_string();
  EXPECT_TRUE(forced->created);
  EXPECT_EQ(info_field(out, "format"), "qcow2\n");
  // An overlay of another size is also "different".
  auto other = vm::create_overlay(overlay(128u << 20));
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.error().kind(), ErrorKind::kAlreadyExists);
}

vm::SeedOptions seed() {
  vm::SeedOptions s;
  s.hostname = "vm1";
  s.users.push_back({"ops",
                     {"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g ops@host"},
                     "",
                     false});
  s.network.mode = vm::NetworkConfig::Mode::kStatic;
  s.network.mac = "52:54:00:12:34:56";
  s.network.addresses = {"10.0.2.50/24"};
  s.network.gateway4 = "10.0.2.2";
  return s;
}

TEST_F(VmProvision, SeedIsoHoldsTheRenderedFilesUnderVolumeIdCidata) {
  vm::SeedIsoOptions o;
  o.output = dir() + "/seed.iso";
  auto r = vm::write_seed_iso(seed(), o);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_TRUE(r->created);
  EXPECT_NE(sh("xorriso -indev '" + o.output + "' -pvd_info").find("Volume Id    : cidata"), std::string::npos);
  const std::string out = dir() + "/extracted";
  ASSERT_EQ(sh("xorriso -osirrox on -indev '" + o.output + "' -extract / '" + out + "' >/dev/null 2>&1 && echo ok"),
            "ok\n");
  EXPECT_EQ(read_file(out + "/meta-data"), r->files.meta_data);
  EXPECT_EQ(read_file(out + "/user-data"), r->files.user_data);
  EXPECT_EQ(read_file(out + "/network-config"), r->files.network_config);
  EXPECT_EQ(sh("ls '" + out + "'"), "meta-data\nnetwork-config\nuser-data\n");
}

TEST_F(VmProvision, TheSameSeedTwiceLeavesTheSameBytesAndADifferentOneNeedsOverwrite) {
  vm::SeedIsoOptions o;
  o.output = dir() + "/seed.iso";
  ASSERT_TRUE(vm::write_seed_iso(seed(), o).ok());
  const std::string first = read_file(o.output);
  auto again = vm::write_seed_iso(seed(), o);
  ASSERT_TRUE(again.ok()) << again.error().to_string();
  EXPECT_FALSE(again->created);
  EXPECT_EQ(read_file(o.output), first);

  auto changed = seed();
  changed.hostname = "vm2";
  auto refused = vm::write_seed_iso(changed, o);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().kind(), ErrorKind::kAlreadyExists);
  EXPECT_EQ(read_file(o.output), first);
  o.overwrite = true;
  auto replaced = vm::write_seed_iso(changed, o);
  ASSERT_TRUE(replaced.ok()) << replaced.error().to_string();
  EXPECT_TRUE(replaced->created);
  EXPECT_NE(read_file(o.output), first);
  EXPECT_EQ(sh("ls '" + dir() + "' | grep -c tmp-"), "0\n");  // no temporary file left
}

TEST_F(VmProvision, ABadSeedWritesNothing) {
  auto bad = seed();
  bad.network.gateway4 = "192.168.1.1";
  vm::SeedIsoOptions o;
  o.output = dir() + "/seed.iso";
  auto r = vm::write_seed_iso(bad, o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind(), ErrorKind::kInvalidArgument);
  EXPECT_EQ(r.error().message(),
            "gateway \"192.168.1.1\" is in none of the addresses' subnets: the guest could not reach it");
  EXPECT_FALSE(exists(o.output));
}

// wait_ready, through each stage a VM's socket can be in.
TEST_F(VmProvision, WaitReadyTellsHowFarItGot) {
  const std::string path = dir() + "/vm.sock";
  auto absent = vm::wait_ready(path, 300ms);
  ASSERT_TRUE(absent.ok());
  EXPECT_EQ(absent->seen, vm::ReadyReport::Seen::kSocketAbsent);
  EXPECT_GE(absent->elapsed, 300ms);

  // A socket file nobody listens on (a VM that is gone).
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ::close(fd);
  auto stale = vm::wait_ready(path, 300ms);
  ASSERT_TRUE(stale.ok());
  EXPECT_EQ(stale->seen, vm::ReadyReport::Seen::kNoConnection);
  EXPECT_NE(stale->last_error.find("refused"), std::string::npos) << stale->last_error;

  // Something accepts connections but never answers (a guest without the agent).
  ::unlink(path.c_str());
  fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(fd, 8), 0);
  auto silent = vm::wait_ready(path, 500ms);
  ::close(fd);
  ASSERT_TRUE(silent.ok());
  EXPECT_EQ(silent->seen, vm::ReadyReport::Seen::kNoHandshake);

  start_agent();
  auto ready = vm::wait_ready(socket_path(), 10s);
  ASSERT_TRUE(ready.ok());
  EXPECT_EQ(ready->seen, vm::ReadyReport::Seen::kReady) << ready->last_error;
  EXPECT_FALSE(ready->agent_version.empty());
  EXPECT_FALSE(ready->instance_id.empty());
  EXPECT_STREQ(vm::seen_name(ready->seen), "ready");
}

TEST_F(VmProvision, WaitReadyOnASocketThatAlreadyHasAnOwnerIsAnError) {
  start_agent();
  auto agent = connect();
  auto r = vm::wait_ready(socket_path(), 1s);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind(), ErrorKind::kAlreadyExists);
}

}  // namespace
}  // namespace qtx::testing
