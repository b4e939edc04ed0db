#include "vm/test_vm.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <future>
#include <optional>
#include <sstream>
#include <thread>
#include <vector>

#include "support/agent_process.h"

namespace qtx::testing {
namespace {

using Clock = std::chrono::steady_clock;
namespace v1 = ::qtx::agent::v1;

host::Error local_error(const std::string& what) {
  return host::Error(host::ErrorKind::kLocal, what + ": " + std::strerror(errno), 0, errno);
}

}  // namespace

GuestArch test_guest_arch(std::string* error) {
  if (error) error->clear();
  const char* v = std::getenv("QTX_VM_ARCH");
  if (!v || !*v || std::strcmp(v, "x86_64") == 0) return GuestArch::kX86_64;
  if (std::strcmp(v, "aarch64") == 0) return GuestArch::kAarch64;
  if (error) *error = std::string("QTX_VM_ARCH is '") + v + "': x86_64 or aarch64";
  return GuestArch::kX86_64;
}

const char* arch_name(GuestArch arch) { return arch == GuestArch::kAarch64 ? "aarch64" : "x86_64"; }

std::string find_qemu(GuestArch arch) {
  for (const char* dir : {"/usr/bin", "/usr/local/bin"}) {
    std::string p = std::string(dir) + "/qemu-system-" + arch_name(arch);
    if (::access(p.c_str(), X_OK) == 0) return p;
  }
  return "";
}

GuestImage GuestImage::busybox(GuestArch arch) {
#ifdef QTX_VM_ARM64_DIR
  const std::string arm64_dir = QTX_VM_ARM64_DIR;
#else
  const std::string arm64_dir = "(no arm64 guest in this build)";
#endif
  const std::string dir = arch == GuestArch::kAarch64 ? arm64_dir : std::string(QTX_VM_DIR);
  GuestImage g;
  g.arch = arch;
  g.kernel = dir + "/vmlinuz";
  g.initrd = dir + "/initramfs.cpio.gz";
  // The virt machine's first serial port is a PL011.
  g.append = std::string(arch == GuestArch::kAarch64 ? "console=ttyAMA0" : "console=ttyS0") + " quiet panic=-1";
  return g;
}

TestVm::TestVm(const std::string& qemu, const std::string& dir, const GuestImage& image)
    : console_(dir + "/console.log"),
      socket_(dir + "/qtx.sock"),
      raw_socket_(dir + "/raw.sock"),
      monitor_(dir + "/monitor.sock") {
  std::vector<std::string> args = {std::string("qemu-system-") + arch_name(image.arch),
                                   "-m",
                                   std::to_string(image.memory_mib),
                                   "-nographic",
                                   "-kernel",
                                   image.kernel,
                                   "-initrd",
                                   image.initrd,
                                   "-append",
                                   image.append,
                                   "-monitor",
                                   "unix:" + monitor_ + ",server=on,wait=off",
                                   "-device",
                                   "virtio-serial-pci,id=vser0",
                                   "-chardev",
                                   "socket,id=raw0,path=" + raw_socket_ + ",server=on,wait=off",
                                   "-device",
                                   "virtserialport,bus=vser0.0,chardev=raw0,name=org.quantix.raw.0"};
  if (image.arch == GuestArch::kAarch64) {
    // pauth-impdef: QEMU's cheap pointer-authentication algorithm; the
    // architected one costs TCG a third of its speed.
    args.insert(args.end(), {"-M", "virt", "-cpu", "max,pauth-impdef=on"});
  }
  if (image.agent_port) {
    args.insert(args.end(), {"-chardev", "socket,id=qtx0,path=" + socket_ + ",server=on,wait=off", "-device",
                             "virtserialport,bus=vser0.0,chardev=qtx0,name=org.quantix.agent.0"});
  }
  if (image.reboot_exits) args.push_back("-no-reboot");
  args.insert(args.end(), image.devices.begin(), image.devices.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_ = ::fork();
  if (pid_ == 0) {
    int out = ::open(console_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int in = ::open("/dev/null", O_RDONLY);
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(out, 2);
    ::execv(qemu.c_str(), argv.data());
    _exit(127);
  }
}

TestVm::~TestVm() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
}

int TestVm::wait_exit(int timeout_ms) {
  int status = AgentProcess::Waiter(pid_).wait(timeout_ms);
  if (status != -1) pid_ = -1;
  return status;
}

std::string TestVm::console() const {
  std::ifstream f(console_);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

bool TestVm::wait_console(const std::string& text, int timeout_ms) const {
  const auto end = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (console().find(text) == std::string::npos) {
    if (Clock::now() >= end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // polling another process's output
  }
  return true;
}

std::string TestVm::hotplug_agent_port() {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", monitor_.c_str());
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    if (fd >= 0) ::close(fd);
    return "cannot reach QEMU's monitor at " + monitor_ + ": " + std::strerror(errno);
  }
  const timeval io_timeout{30, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &io_timeout, sizeof(io_timeout));
  // The human monitor: a banner, then "(qemu) " before every command.
  auto until_prompt = [fd]() -> std::string {
    std::string got;
    char buf[512];
    while (got.find("(qemu) ") == std::string::npos) {
      const ssize_t n = ::read(fd, buf, sizeof(buf));
      if (n <= 0) return got + " [monitor closed]";
      got.append(buf, static_cast<std::size_t>(n));
    }
    return got.substr(0, got.find("(qemu) "));
  };
  std::string answers;
  until_prompt();
  for (const std::string& cmd :
       {"chardev-add socket,id=qtx0,path=" + socket_ + ",server=on,wait=off",
        std::string("device_add virtserialport,bus=vser0.0,chardev=qtx0,name=org.quantix.agent.0")}) {
    const std::string line = cmd + "\n";
    if (::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
      answers += "cannot write to QEMU's monitor: " + std::string(std::strerror(errno));
      break;
    }
    std::string reply = until_prompt();
    // The monitor echoes the command with terminal escapes; any other text
    // after the echo is an error message.
    const auto echo = reply.find(cmd);
    if (echo != std::string::npos) reply.erase(0, echo + cmd.size());
    for (std::size_t i = 0; i < reply.size(); ++i) {
      if (reply[i] == '\x1b') {  // ESC [ parameters final-letter
        std::size_t j = i + 1;
        if (j < reply.size() && reply[j] == '[') ++j;
        while (j < reply.size() && !std::isalpha(static_cast<unsigned char>(reply[j]))) ++j;
        i = j;
      } else if (reply[i] != '\r' && reply[i] != '\n') {
        answers += reply[i];
      }
    }
  }
  ::close(fd);
  return answers;
}

std::string guest_sh(host::Agent& agent, const std::string& script, std::chrono::milliseconds timeout) {
  v1::ExecRequest ex;
  ex.add_argv("/bin/sh");
  ex.add_argv("-c");
  ex.add_argv(script);
  auto r = agent.exec(ex, {}, {.timeout = timeout});
  if (!r) return "exec failed: " + r.error().to_string();
  return r->stdout_data;
}

host::Result<double> dd_through_raw_port(host::Agent& agent, const TestVm& vm, bool to_guest, std::size_t bytes) {
  constexpr std::size_t kBlock = 64 * 1024;
  const std::size_t blocks = bytes / kBlock;
  // One open of the port for the whole script (a virtio port opens once).
  // Until the host's 'S' arrives, reads return 0 (no host yet) or the byte.
  std::string script =
      "dev=; for d in /sys/class/virtio-ports/*; do "
      "[ \"$(cat $d/name)\" = org.quantix.raw.0 ] && dev=/dev/${d##*/}; done; "
      "exec 3<>$dev || exit 2; "
      "until [ \"$(dd bs=1 count=1 <&3 2>/dev/null)\" = S ]; do sleep 0.05; done; ";
  if (to_guest) {
    script += "printf A >&3; dd of=/dev/null bs=64k count=" + std::to_string(blocks) +
              " iflag=fullblock <&3 2>/dev/null || exit 3; printf D >&3";
  } else {
    script += "dd if=/dev/zero bs=64k count=" + std::to_string(blocks) + " >&3 2>/dev/null || exit 3";
  }

  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return local_error("socket");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", vm.raw_socket().c_str());
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    auto e = local_error("connect " + vm.raw_socket());
    ::close(fd);
    return e;
  }
  // A guest that never answers fails the measurement instead of hanging it.
  const timeval io_timeout{120, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &io_timeout, sizeof(io_timeout));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &io_timeout, sizeof(io_timeout));
  std::promise<host::Result<host::ExecOutcome>> exec_done;
  v1::ExecRequest ex;
  ex.add_argv("/bin/sh");
  ex.add_argv("-c");
  ex.add_argv(script);
  agent.exec(ex, {}, {.timeout = std::chrono::seconds(120)},
             [&exec_done](host::Result<host::ExecOutcome> r) { exec_done.set_value(std::move(r)); });

  auto read_exact = [fd](char* p, std::size_t n, Clock::time_point* first) -> bool {
    while (n > 0) {
      const ssize_t k = ::read(fd, p, n);
      if (k <= 0) return false;
      if (first && *first == Clock::time_point{}) *first = Clock::now();
      p += k;
      n -= static_cast<std::size_t>(k);
    }
    return true;
  };
  std::optional<host::Error> failure;
  double mb_per_s = 0;
  if (::write(fd, "S", 1) != 1) failure = local_error("write to the raw port");
  if (!failure && to_guest) {
    char ack = 0;
    std::vector<char> block(kBlock, '\x5a');
    if (!read_exact(&ack, 1, nullptr) || ack != 'A') failure = local_error("the guest's dd did not start");
    const auto t0 = Clock::now();
    for (std::size_t i = 0; !failure && i < blocks; ++i) {
      if (::write(fd, block.data(), block.size()) != static_cast<ssize_t>(block.size())) {
        failure = local_error("write to the raw port");
      }
    }
    char done = 0;
    if (!failure && (!read_exact(&done, 1, nullptr) || done != 'D')) failure = local_error("the guest's dd failed");
    mb_per_s = static_cast<double>(blocks * kBlock) / 1e6 / std::chrono::duration<double>(Clock::now() - t0).count();
  } else if (!failure) {
    std::vector<char> sink(blocks * kBlock);
    Clock::time_point first{};
    if (!read_exact(sink.data(), sink.size(), &first)) failure = local_error("read from the raw port");
    mb_per_s = static_cast<double>(sink.size()) / 1e6 / std::chrono::duration<double>(Clock::now() - first).count();
  }
  // Closing our end makes the guest's reads return 0, so a failed script ends.
  ::close(fd);
  auto r = exec_done.get_future().get();
  if (!r) return r.error();
  if (r->result.exit_code() != 0) {
    return host::Error(host::ErrorKind::kGuestFailed,
                       "dd in the guest exited with " + std::to_string(r->result.exit_code()) + ": " + r->stderr_data);
  }
  if (failure) return *failure;
  return mb_per_s;
}

}  // namespace qtx::testing
