#include "vm_commands.h"

#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "qtx/host/vm.h"
#include "qtx/quote.h"

namespace qtx::cli {
namespace {

namespace vm = host::vm;
using host::Error;
using host::ErrorKind;

constexpr int kExitOk = 0, kExitFailed = 1, kExitUsage = 2, kExitNoAgent = 3;

int report_error(bool json, const Error& e) {
  if (json) {
    std::printf("{\"error\":{\"kind\":%s,\"message\":%s}}\n", json_quote(host::error_kind_name(e.kind())).c_str(),
                json_quote(e.message()).c_str());
  }
  std::fprintf(stderr, "qtx: %s\n", e.message().c_str());
  return e.kind() == ErrorKind::kInvalidArgument ? kExitUsage : kExitFailed;
}

struct OverlayArgs {
  std::string backing, output, size = "0";
  bool force = false;
};

int run_overlay(bool json, const OverlayArgs& a) {
  auto size = vm::parse_size(a.size);
  if (!size) return report_error(json, size.error());
  vm::OverlayOptions o;
  o.backing = a.backing;
  o.output = a.output;
  o.size = *size;
  o.overwrite = a.force;
  auto r = vm::create_overlay(o);
  if (!r) return report_error(json, r.error());
  if (json) {
    std::printf(
        "{\"output\":%s,\"created\":%s,\"backing_format\":%s,\"backing_size\":%llu,\"size\":%llu,\"command\":%s}\n",
        json_quote(a.output).c_str(), r->created ? "true" : "false", json_quote(r->backing_format).c_str(),
        static_cast<unsigned long long>(r->backing_size), static_cast<unsigned long long>(r->size),
        json_quote(r->command).c_str());
    return kExitOk;
  }
  std::printf("%s: %s\n", r->created ? "ran" : "unchanged, already made by", r->command.c_str());
  std::printf("%s: qcow2 overlay, %llu bytes, on %s (%s)\n", a.output.c_str(), static_cast<unsigned long long>(r->size),
              a.backing.c_str(), r->backing_format.c_str());
  return kExitOk;
}

struct SeedArgs {
  vm::SeedOptions seed;
  vm::SeedUser user;
  std::vector<std::string> key_files;
  std::vector<std::string> gateways;
  bool dhcp = false, no_agent = false, no_grow = false, force = false, print = false;
  std::string output;
};

int run_seed(bool json, SeedArgs a) {
  for (const auto& f : a.key_files) {
    std::ifstream in(f);
    if (!in) return report_error(json, Error(ErrorKind::kInvalidArgument, "cannot read SSH key file " + f));
    std::string line;
    while (std::getline(in, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty() || line[0] == '#') continue;
      a.user.ssh_authorized_keys.push_back(line);
    }
  }
  if (!a.user.name.empty()) {
    a.seed.users.push_back(a.user);
  } else if (!a.user.ssh_authorized_keys.empty() || !a.user.password_hash.empty() || a.user.sudo) {
    return report_error(json, Error(ErrorKind::kInvalidArgument, "SSH keys, a password and --sudo need --user NAME"));
  }
  auto& n = a.seed.network;
  const bool any_static = !n.addresses.empty();
  if (a.dhcp && any_static)
    return report_error(json, Error(ErrorKind::kInvalidArgument, "--dhcp and --address exclude each other"));
  if (a.dhcp) n.mode = vm::NetworkConfig::Mode::kDhcp;
  if (any_static) n.mode = vm::NetworkConfig::Mode::kStatic;
  for (const auto& gw : a.gateways) {
    std::string& slot = gw.find(':') == std::string::npos ? n.gateway4 : n.gateway6;
    if (!slot.empty()) {
      return report_error(json, Error(ErrorKind::kInvalidArgument, "--gateway given twice for one address family"));
    }
    slot = gw;
  }
  a.seed.install_agent = !a.no_agent;
  a.seed.grow_root = !a.no_grow;

  if (a.print) {
    auto files = vm::render_seed(a.seed);
    if (!files) return report_error(json, files.error());
    std::printf("--- meta-data\n%s--- user-data\n%s", files->meta_data.c_str(), files->user_data.c_str());
    if (!files->network_config.empty()) std::printf("--- network-config\n%s", files->network_config.c_str());
    return kExitOk;
  }
  if (a.output.empty()) return report_error(json, Error(ErrorKind::kInvalidArgument, "give OUT.iso, or --print"));
  vm::SeedIsoOptions iso;
  iso.output = a.output;
  iso.overwrite = a.force;
  auto r = vm::write_seed_iso(a.seed, iso);
  if (!r) return report_error(json, r.error());
  if (json) {
    std::printf("{\"output\":%s,\"created\":%s,\"instance_id\":%s}\n", json_quote(a.output).c_str(),
                r->created ? "true" : "false", json_quote(r->files.instance_id).c_str());
  } else {
    std::printf("%s: %s NoCloud seed (volume id cidata), instance %s%s\n", a.output.c_str(),
                r->created ? "wrote" : "unchanged,", r->files.instance_id.c_str(),
                r->files.network_config.empty() ? "" : ", with network-config");
  }
  return kExitOk;
}

struct WiringArgs {
  vm::ChannelOptions channel;
  bool libvirt = false;
  bool qemu = false;  // the default; the flag is there to say so
};

int run_wiring(bool json, const WiringArgs& a) {
  if (a.libvirt) {
    auto x = vm::libvirt_channel_xml(a.channel);
    if (!x) return report_error(json, x.error());
    if (json) {
      std::printf("{\"libvirt_xml\":%s}\n", json_quote(*x).c_str());
    } else {
      std::printf("%s", x->c_str());
    }
    return kExitOk;
  }
  auto args = vm::qemu_channel_args(a.channel);
  if (!args) return report_error(json, args.error());
  std::string line;
  for (std::size_t i = 0; i < args->size(); ++i) {
    if (json) {
      line += (i ? "," : "") + json_quote((*args)[i]);
    } else {
      // Shell-ready: one option and its value per line, continued.
      line += (*args)[i];
      line += i % 2 == 0 ? " " : (i + 1 < args->size() ? " \\\n" : "\n");
    }
  }
  if (json) {
    std::printf("{\"qemu_args\":[%s]}\n", line.c_str());
  } else {
    std::printf("%s", line.c_str());
  }
  return kExitOk;
}

struct WaitArgs {
  std::string socket;
  double timeout = 60;
};

int run_wait_ready(bool json, const WaitArgs& a) {
  auto r = vm::wait_ready(a.socket, std::chrono::milliseconds(static_cast<long long>(a.timeout * 1000)));
  if (!r) return report_error(json, r.error());
  const double secs = static_cast<double>(r->elapsed.count()) / 1000.0;
  if (json) {
    std::printf("{\"seen\":%s,\"elapsed_ms\":%lld,\"agent_version\":%s,\"instance_id\":%s,\"last_error\":%s}\n",
                json_quote(vm::seen_name(r->seen)).c_str(), static_cast<long long>(r->elapsed.count()),
                json_quote(r->agent_version).c_str(), json_quote(r->instance_id).c_str(),
                json_quote(r->last_error).c_str());
    return r->seen == vm::ReadyReport::Seen::kReady ? kExitOk : kExitNoAgent;
  }
  switch (r->seen) {
    case vm::ReadyReport::Seen::kReady:
      std::printf("ready after %.1f s: qtx-agent %s, instance %s\n", secs, guest_text(r->agent_version).c_str(),
                  guest_text(r->instance_id).c_str());
      return kExitOk;
    case vm::ReadyReport::Seen::kSocketAbsent:
      std::fprintf(stderr,
                   "qtx: no agent after %.1f s: socket %s never appeared. Is the VM running, with the agent channel "
                   "wired to that path? (qtx vm wiring)\n",
                   secs, a.socket.c_str());
      break;
    case vm::ReadyReport::Seen::kNoConnection:
      std::fprintf(stderr,
                   "qtx: no agent after %.1f s: socket %s is there, but nothing accepted a connection on it (a stale "
                   "socket of a VM that is gone, or QEMU is not serving it)\n",
                   secs, a.socket.c_str());
      break;
    case vm::ReadyReport::Seen::kNoHandshake:
      std::fprintf(stderr,
                   "qtx: no agent after %.1f s: connected to %s, but no agent answered. Is the guest still booting, "
                   "and is qtx-agent installed and running in it?\n",
                   secs, a.socket.c_str());
      break;
  }
  if (!r->last_error.empty()) std::fprintf(stderr, "qtx: last error: %s\n", r->last_error.c_str());
  return kExitNoAgent;
}

}  // namespace

void add_vm_commands(CLI::App& app, const bool& json, std::function<int()>* run) {
  auto* vmc =
      app.add_subcommand("vm", "Provision a VM for the agent: overlay disk, cloud-init seed, channel wiring, wait");
  vmc->require_subcommand(1);

  auto overlay = std::make_shared<OverlayArgs>();
  auto* ov = vmc->add_subcommand("overlay",
                                 "Create a qcow2 overlay on a cloud image (the image is never written). Size 0 or "
                                 "absent: the image's own size.");
  ov->add_option("--backing", overlay->backing, "The cloud image (its format is detected)")->required();
  ov->add_option("--size", overlay->size, "Virtual size: 20G, 512M, bytes; 0 inherits the image's (default 0)");
  ov->add_flag("--force", overlay->force, "Replace an existing, different file at OUT");
  ov->add_option("output", overlay->output, "OUT.qcow2")->required();
  ov->callback([overlay, &json, run] { *run = [overlay, &json] { return run_overlay(json, *overlay); }; });

  auto seed = std::make_shared<SeedArgs>();
  auto* sd = vmc->add_subcommand("seed",
                                 "Write a cloud-init NoCloud seed ISO (volume id cidata) that sets the hostname, a "
                                 "user with SSH keys, the network, grows the root filesystem and installs the agent "
                                 "from the agent ISO");
  sd->add_option("--hostname", seed->seed.hostname, "The guest's hostname (a dotted name also sets the FQDN)")
      ->required();
  sd->add_option("--instance-id", seed->seed.instance_id, "cloud-init instance id (default: derived from the seed)");
  sd->add_option("--user", seed->user.name, "A user to create");
  sd->add_option("--ssh-key", seed->user.ssh_authorized_keys,
                 "An authorized key of --user (\"ssh-ed25519 AAAA... c\")");
  sd->add_option("--ssh-key-file", seed->key_files, "A file of authorized keys for --user (a .pub file)");
  sd->add_option("--password-hash", seed->user.password_hash,
                 "--user's password as a crypt(3) hash (openssl passwd -6)");
  sd->add_flag("--sudo", seed->user.sudo, "Give --user passwordless sudo");
  sd->add_option("--package", seed->seed.packages, "A package to install at first boot (repeatable)");
  sd->add_flag("--no-agent", seed->no_agent, "Do not install the agent from the agent ISO");
  sd->add_option("--agent-label", seed->seed.agent_iso_label, "The agent ISO's volume id (default QTX_AGENT_TOOLS)");
  sd->add_flag("--no-grow", seed->no_grow, "Do not grow the root partition and filesystem to the disk");
  sd->add_flag("--dhcp", seed->dhcp, "network-config: DHCP on the NIC given by --mac or --interface");
  sd->add_option("--address", seed->seed.network.addresses, "network-config: a static ADDRESS/PREFIX (repeatable)");
  sd->add_option("--gateway", seed->gateways, "network-config: the default gateway (IPv4 or IPv6; repeatable)");
  sd->add_option("--dns", seed->seed.network.dns, "network-config: a name server (repeatable)");
  sd->add_option("--search", seed->seed.network.search, "network-config: a DNS search domain (repeatable)");
  sd->add_option("--mac", seed->seed.network.mac, "network-config: the NIC's MAC address");
  sd->add_option("--interface", seed->seed.network.interface, "network-config: the NIC's name (when no --mac)");
  sd->add_flag("--force", seed->force, "Replace an existing, different file at OUT");
  sd->add_flag("--print", seed->print, "Print the seed's files instead of writing the ISO");
  sd->add_option("output", seed->output, "OUT.iso");
  sd->callback([seed, &json, run] { *run = [seed, &json] { return run_seed(json, *seed); }; });

  auto wiring = std::make_shared<WiringArgs>();
  auto* wr = vmc->add_subcommand("wiring", "Print the agent channel's QEMU arguments (default) or libvirt XML");
  wr->add_option("--socket", wiring->channel.socket, "The host side's unix socket (absolute path)")->required();
  wr->add_option("--port", wiring->channel.port, "The virtio-serial port name (default org.quantix.agent.0)");
  auto* as_libvirt = wr->add_flag("--libvirt", wiring->libvirt, "The <channel> element for the domain XML");
  wr->add_flag("--qemu", wiring->qemu, "QEMU arguments (the default)")->excludes(as_libvirt);
  wr->add_flag("--host-listens", wiring->channel.host_listens,
               "The host listens on the socket and QEMU connects (qtx --listen); default: QEMU serves it");
  wr->callback([wiring, &json, run] { *run = [wiring, &json] { return run_wiring(json, *wiring); }; });

  auto wait = std::make_shared<WaitArgs>();
  auto* wt = vmc->add_subcommand("wait-ready",
                                 "Wait for the VM's agent and say how far it got: socket absent, no connection, "
                                 "no handshake, or ready (exit 0; otherwise 3)");
  wt->add_option("--socket", wait->socket, "QEMU's socket for the agent channel")->required();
  wt->add_option("--timeout", wait->timeout, "Seconds to wait (default 60)")->check(CLI::PositiveNumber);
  wt->callback([wait, &json, run] { *run = [wait, &json] { return run_wait_ready(json, *wait); }; });
}

}  // namespace qtx::cli
