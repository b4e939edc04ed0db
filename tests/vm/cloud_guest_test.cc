// The provisioning helpers on a real cloud-style guest (CTest label
// vm-cloud): a Debian 12 image with cloud-init, built by debootstrap
// (tests/vm/cloud-guest) and used read-only as the backing file. Through
// libqtx-host only: an overlay with size 0, a NoCloud seed with a static
// address, a user with an SSH key and the agent's install, the agent
// channel wired by qemu_channel_args, then wait_ready. Through the agent:
// cloud-init finished without errors, and the hostname, the key, the
// address, the default route and the grown root partition are as asked.
// The backing image is byte-for-byte unchanged afterwards.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "qtx/host/vm.h"
#include "qtx/wire/sha256.h"
#include "support/host_fixture.h"
#include "vm/test_vm.h"

namespace qtx::testing {
namespace {

using namespace std::chrono_literals;
namespace vm = ::qtx::host::vm;

const std::string kKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g ops@host";
const std::string kMac = "52:54:00:12:34:56";

std::string file_sha256(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  wire::Sha256 h;
  char buf[1 << 16];
  while (f.read(buf, sizeof(buf)) || f.gcount() > 0) h.update(buf, static_cast<std::size_t>(f.gcount()));
  return wire::Sha256::hex(h.finish());
}

class CloudGuest : public HostFixture {
 protected:
  void SetUp() override {
    HostFixture::SetUp();
    qemu_ = find_qemu();
    if (qemu_.empty()) GTEST_SKIP() << "qemu-system-x86_64 is not installed: the real-VM tests need it";
    backing_ = std::string(QTX_CLOUD_GUEST_DIR) + "/disk.qcow2";
    ASSERT_EQ(::access(backing_.c_str(), R_OK), 0)
        << backing_ << " is missing: ctest -L vm-cloud builds it (root, debootstrap)";
  }
  std::string qemu_, backing_;
};

TEST_F(CloudGuest, OverlaySeedAndWiringFromTheLibraryBringUpAConfiguredGuestWithTheAgent) {
  const std::string backing_sum = file_sha256(backing_);

  vm::OverlayOptions disk;
  disk.backing = backing_;
  disk.output = dir() + "/vm1.qcow2";
  disk.size = 0;  // inherit the image's 3 GiB
  auto overlay = vm::create_overlay(disk);
  ASSERT_TRUE(overlay.ok()) << overlay.error().to_string();
  std::printf("[ overlay ] %s\n", overlay->command.c_str());
  EXPECT_EQ(overlay->size, 3ull << 30);

  vm::SeedOptions seed;
  seed.hostname = "vm1.example.test";
  seed.users.push_back({"ops", {kKey}, "", true});
  seed.network.mode = vm::NetworkConfig::Mode::kStatic;
  seed.network.mac = kMac;
  seed.network.addresses = {"10.0.2.50/24"};  // QEMU's user network; its DHCP would give .15
  seed.network.gateway4 = "10.0.2.2";
  seed.network.dns = {"10.0.2.3"};
  vm::SeedIsoOptions iso;
  iso.output = dir() + "/seed.iso";
  auto written = vm::write_seed_iso(seed, iso);
  ASSERT_TRUE(written.ok()) << written.error().to_string();

  vm::ChannelOptions channel;
  channel.socket = dir() + "/vm1.agent.sock";
  auto wiring = vm::qemu_channel_args(channel);
  ASSERT_TRUE(wiring.ok()) << wiring.error().to_string();

  GuestImage image;
  image.kernel = std::string(QTX_CLOUD_GUEST_DIR) + "/vmlinuz";
  image.initrd = std::string(QTX_CLOUD_GUEST_DIR) + "/initrd.img";
  image.append = "root=/dev/vda1 ro console=ttyS0 quiet panic=-1";
  image.memory_mib = 1024;
  image.agent_port = false;  // wired below, by the library
  image.devices = {"-drive", "file=" + disk.output + ",if=virtio,format=qcow2",
                   "-drive", "file=" + iso.output + ",media=cdrom,readonly=on",
                   "-drive", "file=" + std::string(QTX_AGENT_ISO) + ",media=cdrom,readonly=on",
                   "-nic",   "user,model=virtio-net-pci,mac=" + kMac};
  image.devices.insert(image.devices.end(), wiring->begin(), wiring->end());

  const auto start = std::chrono::steady_clock::now();
  TestVm guest(qemu_, dir(), image);
  auto report = vm::wait_ready(channel.socket, 900s);
  ASSERT_TRUE(report.ok()) << report.error().to_string();
  ASSERT_EQ(report->seen, vm::ReadyReport::Seen::kReady)
      << vm::seen_name(report->seen) << ": " << report->last_error << "\nconsole:\n"
      << guest.console();
  const double to_ready = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  auto o = options();
  o.endpoint = host::Endpoint::connect(channel.socket);
  auto agent = connect(o);
  ASSERT_TRUE(agent);
  const std::string uptime = guest_sh(*agent, "cut -d' ' -f1 /proc/uptime");
  std::printf("[ figure ] VM start to agent ready (cloud-init first boot, TCG): %.1f s; guest uptime then %s", to_ready,
              uptime.c_str());

  // cloud-init ran every stage, and none failed.
  EXPECT_EQ(guest_sh(*agent, "cloud-init status --wait >/dev/null; cloud-init status", 600s), "status: done\n")
      << guest_sh(*agent, "tail -40 /var/log/cloud-init-output.log 2>&1");
  EXPECT_EQ(guest_sh(*agent, "cat /var/lib/cloud/data/instance-id"), written->files.instance_id + "\n");
  EXPECT_EQ(guest_sh(*agent, "hostname; hostname -f"), "vm1\nvm1.example.test\n");
  EXPECT_EQ(guest_sh(*agent, "cat /home/ops/.ssh/authorized_keys"), kKey + "\n");
  EXPECT_EQ(guest_sh(*agent, "stat -c '%U %a' /home/ops/.ssh/authorized_keys"), "ops 600\n");
  EXPECT_EQ(guest_sh(*agent, "sudo -l -U ops | grep -c 'NOPASSWD: ALL'"), "1\n");
  EXPECT_EQ(guest_sh(*agent, "ip -4 -o addr show scope global | awk '{print $4}'"), "10.0.2.50/24\n");
  EXPECT_EQ(guest_sh(*agent, "ip -4 route show default | cut -d' ' -f1-3"), "default via 10.0.2.2\n");
  // growpart and resize_rootfs: the 1.5 GiB partition now fills the 3 GiB disk.
  const double root_gib = std::atof(guest_sh(*agent, "df -B1 --output=size / | tail -1").c_str()) / (1 << 30);
  EXPECT_GT(root_gib, 2.8) << guest_sh(*agent, "lsblk 2>&1; grep -i growpart /var/log/cloud-init.log | tail -5");
  EXPECT_EQ(guest_sh(*agent, "systemctl is-active qtx-agent.service"), "active\n");

  v1::PowerRequest off;
  off.set_action(v1::PowerRequest::ACTION_POWEROFF);
  ASSERT_TRUE(agent->power(off).ok());
  const int status = guest.wait_exit(300000);
  ASSERT_NE(status, -1) << "the guest did not power off; console:\n" << guest.console();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;

  // The image is untouched, and provisioning again changes nothing.
  EXPECT_EQ(file_sha256(backing_), backing_sum);
  auto overlay_again = vm::create_overlay(disk);
  ASSERT_TRUE(overlay_again.ok()) << overlay_again.error().to_string();
  EXPECT_FALSE(overlay_again->created);
  auto seed_again = vm::write_seed_iso(seed, iso);
  ASSERT_TRUE(seed_again.ok()) << seed_again.error().to_string();
  EXPECT_FALSE(seed_again->created);
}

}  // namespace
}  // namespace qtx::testing
