// The agent ISO's installer in a real systemd guest (CTest label
// vm-systemd): a Debian 12 guest built by debootstrap
// (tests/vm/systemd-guest) boots under QEMU with the agent ISO as a CD-ROM
// and the agent's virtio-serial port; its first-boot unit runs install.sh
// from the disc. From the host, through libqtx-host: the agent becomes
// ready, its unit is active under systemd, and a reboot brings it back with
// no action. The guest's disk is an overlay: the cached image stays clean.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "support/host_fixture.h"
#include "vm/test_vm.h"

namespace qtx::testing {
namespace {

using namespace std::chrono_literals;
using host::ErrorKind;

double after(const std::string& text, const std::string& marker) {
  const auto at = text.find(marker);
  return at == std::string::npos ? -1 : std::atof(text.c_str() + at + marker.size());
}

class SystemdGuest : public HostFixture {
 protected:
  void SetUp() override {
    HostFixture::SetUp();
    qemu_ = find_qemu();
    if (qemu_.empty()) GTEST_SKIP() << "qemu-system-x86_64 is not installed: the real-VM tests need it";
    const std::string image = std::string(QTX_SYSTEMD_GUEST_DIR) + "/disk.img";
    ASSERT_EQ(::access(image.c_str(), R_OK), 0)
        << image << " is missing: build it with cmake --build build --target qtx_systemd_guest (root, debootstrap)";
    const std::string overlay = dir() + "/disk.qcow2";
    const std::string cmd = "qemu-img create -q -f qcow2 -F raw -b '" + image + "' '" + overlay + "'";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    guest_.kernel = std::string(QTX_SYSTEMD_GUEST_DIR) + "/vmlinuz";
    guest_.initrd = std::string(QTX_SYSTEMD_GUEST_DIR) + "/initrd.img";
    guest_.append = "root=/dev/vda rw console=ttyS0 quiet panic=-1";
    guest_.memory_mib = 1024;
    guest_.reboot_exits = false;
    guest_.devices = {"-drive", "file=" + overlay + ",if=virtio,format=qcow2", "-drive",
                      "file=" + std::string(QTX_AGENT_ISO) + ",media=cdrom,readonly=on"};
  }
  std::string qemu_;
  GuestImage guest_;
};

TEST_F(SystemdGuest, InstallerFromTheIsoLeavesAnAgentThatSystemdStartsAndBringsBackAfterReboot) {
  TestVm vm(qemu_, dir(), guest_);
  Mailbox<std::string> restarts;
  host::AgentOptions o = options();
  o.endpoint = host::Endpoint::connect(vm.socket());
  o.handshake_timeout = 2000ms;
  o.callbacks.on_agent_restarted = [&restarts](const v1::AgentIdentity& now, const v1::AgentIdentity&) {
    restarts.post(now.boot_id());
  };
  auto added = manager_->add(o);
  ASSERT_TRUE(added.ok()) << added.error().to_string();
  auto agent = added.value();

  // The first boot runs the installer from the disc; the host waits.
  auto ready = agent->wait_ready(600s);
  ASSERT_TRUE(ready.ok()) << ready.error().to_string() << "\nconsole:\n" << vm.console();
  const std::string boot1 = ready->boot_id();
  const std::string uptime = guest_sh(*agent, "cut -d' ' -f1 /proc/uptime");
  // The agent can be ready before the installer's last lines reach the console.
  ASSERT_TRUE(vm.wait_console("qtx-firstboot: install.sh exited with", 60000)) << vm.console();
  const std::string console = vm.console();
  const double started = after(console, "qtx-firstboot: install.sh starting at ");
  ASSERT_GE(started, 0) << console;
  std::printf("[ figure ] installer start to agent ready: %.1f s (guest uptime %.1f s at ready)\n",
              std::atof(uptime.c_str()) - started, std::atof(uptime.c_str()));
  EXPECT_NE(console.find("qtx-agent installed for systemd"), std::string::npos) << console;
  EXPECT_NE(console.find("qtx-agent is running (pid "), std::string::npos) << console;
  EXPECT_NE(console.find("qtx-firstboot: install.sh exited with 0"), std::string::npos) << console;

  EXPECT_EQ(guest_sh(*agent, "cat /proc/1/comm"), "systemd\n");
  EXPECT_EQ(guest_sh(*agent, "systemctl is-active qtx-agent.service"), "active\n");
  EXPECT_EQ(guest_sh(*agent, "readlink -f /dev/virtio-ports/org.quantix.agent.0 | cut -c1-10"), "/dev/vport\n");
  EXPECT_EQ(guest_sh(*agent, "systemctl show -p MainPID --value qtx-agent.service | xargs -I{} cat /proc/{}/comm"),
            "qtx-agent\n");
  // The second run inside the guest changes nothing.
  EXPECT_EQ(guest_sh(*agent,
                     "mount -o ro /dev/disk/by-label/QTX_AGENT_TOOLS /mnt && sh /mnt/install.sh --no-start; "
                     "umount /mnt"),
            "qtx-agent is already installed and up to date (systemd): nothing to do\n");

  // A reboot: the agent comes back by itself (udev pulls its unit in again).
  v1::PowerRequest reboot;
  reboot.set_action(v1::PowerRequest::ACTION_REBOOT);
  ASSERT_TRUE(agent->power(reboot).ok());
  auto boot2 = restarts.take([&boot1](const std::string& b) { return b != boot1; }, 600s);
  ASSERT_TRUE(boot2) << vm.console();
  ASSERT_TRUE(agent->wait_ready(120s).ok()) << vm.console();
  EXPECT_EQ(agent->identity()->boot_id(), *boot2);
  EXPECT_EQ(guest_sh(*agent, "systemctl is-active qtx-agent.service"), "active\n");
  EXPECT_EQ(guest_sh(*agent, "test -e /var/lib/qtx-firstboot.done && echo done"), "done\n");

  v1::PowerRequest off;
  off.set_action(v1::PowerRequest::ACTION_POWEROFF);
  ASSERT_TRUE(agent->power(off).ok());
  const int status = vm.wait_exit(300000);
  ASSERT_NE(status, -1) << "the guest did not power off; console:\n" << vm.console();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

TEST_F(SystemdGuest, WithoutThePortTheAgentWaitsUnstartedAndStartsWhenThePortIsHotPlugged) {
  guest_.agent_port = false;
  TestVm vm(qemu_, dir(), guest_);
  ASSERT_TRUE(vm.wait_console("qtx-firstboot: install.sh exited with 0", 600000)) << vm.console();
  EXPECT_NE(vm.console().find("note: no virtio-serial port org.quantix.agent.0 in this VM yet; the agent starts when "
                              "it appears"),
            std::string::npos)
      << vm.console();
  EXPECT_EQ(vm.hotplug_agent_port(), "");
  host::AgentOptions o = options();
  o.endpoint = host::Endpoint::connect(vm.socket());
  auto added = manager_->add(o);
  ASSERT_TRUE(added.ok()) << added.error().to_string();
  auto agent = added.value();
  ASSERT_TRUE(agent->wait_ready(120s).ok()) << vm.console();
  EXPECT_EQ(guest_sh(*agent, "systemctl is-active qtx-agent.service"), "active\n");
  // Started once, by the port's arrival: never before it.
  EXPECT_EQ(guest_sh(*agent, "journalctl -b -u qtx-agent.service -o cat | grep -c 'starting (instance'"), "1\n");
  v1::PowerRequest off;
  off.set_action(v1::PowerRequest::ACTION_POWEROFF);
  ASSERT_TRUE(agent->power(off).ok());
  ASSERT_NE(vm.wait_exit(300000), -1) << "the guest did not power off; console:\n" << vm.console();
}

}  // namespace
}  // namespace qtx::testing
