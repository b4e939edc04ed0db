#include "vm_transport.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <thread>

#include "proc_stats.h"
#include "vm/test_vm.h"

namespace qtx::bench {
namespace {

namespace v1 = ::qtx::agent::v1;
using namespace std::chrono_literals;

// A shell line run in the guest through the qtx agent; its output.
std::string guest_sh(host::Agent& agent, const std::string& script) {
  std::string out = testing::guest_sh(agent, script, std::chrono::seconds(60));
  if (out.rfind("exec failed: ", 0) == 0) die("guest: " + out);
  return out;
}

// The /dev node of the guest's port named `name`.
std::string port_lookup(const std::string& name) {
  return "dev=; for d in /sys/class/virtio-ports/*; do [ \"$(cat $d/name)\" = " + name +
         " ] && dev=/dev/${d##*/}; done; ";
}

int connect_unix(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) die("connect " + path);
  const timeval io_timeout{60, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &io_timeout, sizeof(io_timeout));
  return fd;
}

// Round trips through a `cat` that echoes the bare port in the guest.
Samples raw_port_echo(host::Agent& agent, const testing::TestVm& vm, const Plan& plan) {
  const int fd = connect_unix(vm.raw_socket());
  // Reads of the port return 0 until the host is there: the guest waits for
  // the host's 'S', answers 'R', and becomes the echo.
  const std::string script = port_lookup("org.quantix.raw.0") +
                             "exec 3<>$dev || exit 2; "
                             "until [ \"$(dd bs=1 count=1 <&3 2>/dev/null)\" = S ]; do sleep 0.05; done; "
                             "printf R >&3; exec cat <&3 >&3";
  v1::ExecRequest ex;
  ex.add_argv("/bin/sh");
  ex.add_argv("-c");
  ex.add_argv(script);
  std::promise<void> ended;
  agent.exec(ex, {}, {.timeout = 600s}, [&ended](host::Result<host::ExecOutcome>) { ended.set_value(); });
  char r = 0;
  if (::write(fd, "S", 1) != 1 || ::read(fd, &r, 1) != 1 || r != 'R') die("the guest's echo did not start");
  echo_round_trips(fd, 50);  // warm-up
  Samples p50;
  for (int rep = 0; rep < plan.reps; ++rep) p50.add(percentile(echo_round_trips(fd, plan.pings), 0.5));
  ::close(fd);  // the guest's cat reads end-of-file and exits
  ended.get_future().wait();
  return p50;
}

}  // namespace

bool run_vm(testing::GuestArch arch, const Plan& plan, const std::string& dir, std::vector<Metric>* out,
            std::vector<Series>* chunk_plot, std::vector<Series>* window_plot, std::string* accel) {
  const bool arm64 = arch == testing::GuestArch::kAarch64;
  const std::string transport = arm64 ? "vm-arm64" : "vm";
  const std::string qemu = testing::find_qemu(arch);
  if (qemu.empty()) {
    std::fprintf(stderr, "agent_compare: qemu-system-%s is not installed\n", testing::arch_name(arch));
    return false;
  }
  testing::GuestImage image = testing::GuestImage::busybox(arch);
  if (::access(image.initrd.c_str(), R_OK) != 0) {
    std::fprintf(stderr, "agent_compare: no benchmark guest at %s: %s and rebuild\n", image.initrd.c_str(),
                 arm64 ? "run scripts/fetch-guest-packages.sh (it fetches qemu-guest-agent:arm64) with the arm64 "
                         "agent on (QTX_BUILD_ARM64_AGENT)"
                       : "install qemu-guest-agent");
    return false;
  }
  image.memory_mib = 1024;
  const std::string qga_socket = dir + "/vm-qga.sock";
  image.devices = {"-chardev", "socket,id=qga0,path=" + qga_socket + ",server=on,wait=off", "-device",
                   "virtserialport,bus=vser0.0,chardev=qga0,name=org.qemu.guest_agent.0"};
  const std::string accel_now = arm64 ? "TCG, 1 vCPU, arm64 guest (qemu-system-aarch64 -M virt -cpu max)"
                                      : "TCG, 1 vCPU (QEMU's default: no KVM)";
  *accel = accel->rfind("TCG", 0) == 0 ? *accel + "; " + accel_now : accel_now;
  std::printf("%s transport: %s with %s, both agents on virtio-serial ports of one controller\n", transport.c_str(),
              qemu.c_str(), image.initrd.c_str());
  std::fflush(stdout);

  testing::TestVm vm(qemu, dir, image);
  host::Manager manager;
  std::shared_ptr<host::Agent> agent;
  auto q = connect_qtx(manager, vm.socket(), &agent);
  if (!q) {
    std::fprintf(stderr, "agent_compare: no qtx-agent in the VM; console:\n%s\n", vm.console().c_str());
    return false;
  }
  if (guest_sh(*agent, "for i in $(seq 100); do pidof qemu-ga >/dev/null && break; sleep 0.1; done; pidof qemu-ga")
          .empty()) {
    std::fprintf(stderr, "agent_compare: qemu-ga is not running in the guest; console:\n%s\n", vm.console().c_str());
    return false;
  }
  auto g = connect_qga(qga_socket);
  if (!g) return false;

  // The transport itself: round trip and throughput of the bare port.
  const Samples floor = raw_port_echo(*agent, vm, plan);
  Samples ceiling_read, ceiling_write;  // guest->host, host->guest
  for (int rep = 0; rep < plan.reps; ++rep) {
    auto up = testing::dd_through_raw_port(*agent, vm, false, plan.mib << 20);
    auto down = testing::dd_through_raw_port(*agent, vm, true, plan.mib << 20);
    if (!up || !down) die("dd through the bare port: " + (up ? down.error() : up.error()).to_string());
    ceiling_read.add(*up);
    ceiling_write.add(*down);
  }

  AgentFigures qf, gf;
  auto guest_kib = [&](const char* field, const char* process) {
    return std::atof(
        guest_sh(*agent, std::string("awk '/") + field + "/ {print $2}' /proc/$(pidof " + process + ")/status")
            .c_str());
  };
  Metric rss_idle = make_metric(transport, "agent RSS in the guest, idle", "KiB", false);
  Metric anon_idle = make_metric(transport, "agent anonymous memory (RssAnon) in the guest, idle", "KiB", false);
  Metric rss_peak = make_metric(transport, "agent RSS in the guest, peak through transfers", "KiB", false);
  rss_idle.qtx.add(guest_kib("VmRSS", "qtx-agent"));
  rss_idle.qga.add(guest_kib("VmRSS", "qemu-ga"));
  anon_idle.qtx.add(guest_kib("RssAnon", "qtx-agent"));
  anon_idle.qga.add(guest_kib("RssAnon", "qemu-ga"));
  measure_agent(*q, false, plan, "/tmp", &qf);
  measure_agent(*g, true, plan, "/tmp", &gf);
  rss_peak.qtx.add(guest_kib("VmHWM", "qtx-agent"));
  rss_peak.qga.add(guest_kib("VmHWM", "qemu-ga"));

  add_common_metrics(transport, plan, qf, gf, floor.median(), ceiling_read.median(), ceiling_write.median(), out);
  for (auto* m : {&rss_idle, &anon_idle, &rss_peak}) {
    m->goal = "<= qemu-ga";
    m->met = m->qtx.median() <= m->qga.median() ? 1 : 0;
  }
  anon_idle.note = "RSS less the pages mapped from files (the binary, shared libraries)";
  rss_idle.note = "qtx-agent is static: its RSS is mostly clean pages of its own text, read ahead in 64 KiB runs";
  out->push_back(rss_idle);
  out->push_back(anon_idle);
  out->push_back(rss_peak);

  // Idle with no host on its port: each agent's context switches in the
  // guest, read through the other agent while its own host is away.
  auto switches_of = [](Driver& via, const char* process) {
    int code = -1;
    std::size_t n = 0;
    std::string count;
    const std::string script =
        std::string("cat /proc/$(pidof ") + process + ")/task/*/status | awk '/ctxt_switches/ {s += $2} END {print s}'";
    if (!via.exec({"/bin/sh", "-c", script}, &code, &n, &count) || code != 0) die("reading " + std::string(process));
    return std::atof(count.c_str());
  };
  Metric idle = make_metric(transport, "wakeups/s in the guest, no host connected", "1/s", false);
  {
    // qemu-ga alone: its client gone, counted through qtx.
    g.reset();
    std::this_thread::sleep_for(1s);
    const double before = switches_of(*q, "qemu-ga");
    std::this_thread::sleep_for(std::chrono::duration<double>(plan.idle_seconds));
    idle.qga.add((switches_of(*q, "qemu-ga") - before) / plan.idle_seconds);
  }
  {
    // qtx alone: its host gone, counted through qemu-ga.
    g = connect_qga(qga_socket);
    if (!g) die("qemu-ga did not come back");
    manager.remove(agent);
    q.reset();
    agent.reset();
    std::this_thread::sleep_for(1s);  // the agent has seen its host go
    const double before = switches_of(*g, "qtx-agent");
    std::this_thread::sleep_for(std::chrono::duration<double>(plan.idle_seconds));
    idle.qtx.add((switches_of(*g, "qtx-agent") - before) / plan.idle_seconds);
  }
  idle.goal = "<= 1/s";
  idle.met = idle.qtx.median() <= 1.0 ? 1 : 0;
  idle.note = "context switches of every thread over " + std::to_string(static_cast<int>(plan.idle_seconds)) +
              " s with no client on the agent's port, read through the other agent";
  out->push_back(idle);
  host::Manager manager2;
  auto q2 = connect_qtx(manager2, vm.socket(), &agent);
  if (!q2) die("qtx-agent did not come back");

  const std::string label = arm64 ? " (arm64 VM)" : " (VM)";
  plot_series(plan, qf, gf, label, chunk_plot, window_plot);
  // Ceilings in the plot: the bare port's read throughput.
  Series ceiling{"bare port dd, guest to host" + label, {}, {}};
  for (std::size_t chunk : plan.qga_chunks) {
    ceiling.x.push_back(static_cast<double>(chunk >> 10));
    ceiling.y.push_back(ceiling_read.median());
  }
  chunk_plot->push_back(ceiling);

  v1::PowerRequest off;
  off.set_action(v1::PowerRequest::ACTION_POWEROFF);
  (void)agent->power(off);
  vm.wait_exit(60000);
  return true;
}

}  // namespace qtx::bench
