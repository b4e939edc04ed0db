// The test guest under QEMU (TCG): one process per Vm, killed by the
// destructor. The guest has two virtio-serial ports on one controller, each
// on a chardev socket that QEMU serves (server=on,wait=off):
//   org.quantix.agent.0  on socket()      the agent's port
//   org.quantix.raw.0    on raw_socket()  a bare port for measuring the
//                                         transport itself with dd
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "qtx/host/agent.h"

namespace qtx::testing {

// The guest's architecture: x86-64 on qemu-system-x86_64 (a PC), arm64 on
// qemu-system-aarch64 -M virt -cpu max; both under TCG.
enum class GuestArch { kX86_64, kAarch64 };
// The architecture the busybox guest of the real-VM suite runs: $QTX_VM_ARCH
// (x86_64 or aarch64), x86-64 when unset. Anything else is reported through
// `error` (empty when the value is good) and taken as x86-64.
GuestArch test_guest_arch(std::string* error = nullptr);
const char* arch_name(GuestArch arch);

// The installed qemu-system-x86_64 or qemu-system-aarch64, or "" when there
// is none.
std::string find_qemu(GuestArch arch = GuestArch::kX86_64);

// What to boot: a kernel and initrd from the host's files, and the rest of
// the machine.
struct GuestImage {
  GuestArch arch = GuestArch::kX86_64;
  std::string kernel, initrd, append;
  int memory_mib = 256;
  bool reboot_exits = true;          // -no-reboot: a guest reboot ends QEMU
  bool agent_port = true;            // false: plug it later with hotplug_agent_port()
  std::vector<std::string> devices;  // further QEMU arguments (disks, a CD-ROM)

  // The busybox test guest (tests/vm/guest) of `arch`: built into
  // QTX_VM_DIR (x86-64) or QTX_VM_ARM64_DIR (arm64).
  static GuestImage busybox(GuestArch arch = test_guest_arch());
};

class TestVm {
 public:
  // Boots `image`; the console log and the sockets go to `dir`.
  TestVm(const std::string& qemu, const std::string& dir, const GuestImage& image = GuestImage::busybox());
  ~TestVm();
  TestVm(const TestVm&) = delete;
  TestVm& operator=(const TestVm&) = delete;

  // QEMU's exit status, or -1 if it is still running after `timeout_ms`.
  int wait_exit(int timeout_ms);
  // Waits until the guest's console contains `text`; false after `timeout_ms`.
  bool wait_console(const std::string& text, int timeout_ms) const;
  std::string console() const;
  const std::string& socket() const { return socket_; }
  const std::string& raw_socket() const { return raw_socket_; }
  // Plugs the agent's port into the running VM (chardev on socket()) through
  // QEMU's monitor; what the monitor answered, empty on success.
  std::string hotplug_agent_port();

 private:
  pid_t pid_ = -1;
  std::string console_, socket_, raw_socket_, monitor_;
};

// Runs `script` with /bin/sh -c in the guest through `agent`: its stdout
// (add 2>&1 for stderr), or "exec failed: <error>".
std::string guest_sh(host::Agent& agent, const std::string& script,
                     std::chrono::milliseconds timeout = std::chrono::seconds(120));

// Moves `bytes` through the raw port with dd in the guest (64 KiB blocks,
// started through `agent`) and returns the rate in MB/s measured on the host
// from the first bulk byte to the last (guest->host) or to the guest's
// report that dd finished (host->guest). Returns an Error when the guest
// side or the socket fails.
host::Result<double> dd_through_raw_port(host::Agent& agent, const TestVm& vm, bool to_guest, std::size_t bytes);

}  // namespace qtx::testing
