// cloud-init NoCloud seeds: checking the input and rendering meta-data,
// user-data and network-config. Every string is written as a YAML
// double-quoted scalar, so no value can change the document's structure
// (a hostname of "yes", a key comment with ": ", a password hash with "#").
#include <cctype>
#include <string>

#include "qtx/host/vm.h"
#include "qtx/quote.h"
#include "qtx/wire/sha256.h"
#include "vm/seed_checks.h"

namespace qtx::host::vm {
namespace {

Error invalid(const std::string& what, const std::string& value, const std::string& why) {
  return Error(ErrorKind::kInvalidArgument, what + " \"" + value + "\" " + why);
}

// The agent's installer, run from the agent ISO at the first boot. The
// disc is found by its volume id once udev has settled; the installer's
// exit status is cloud-init's (a failure shows in `cloud-init status`).
std::string install_command(const std::string& label) {
  return "udevadm settle --timeout=30 || true; mkdir -p /run/qtx-iso && mount -o ro /dev/disk/by-label/" + label +
         " /run/qtx-iso && sh /run/qtx-iso/install.sh; status=$?; umount /run/qtx-iso 2>/dev/null; exit $status";
}

Result<std::string> render_network(const NetworkConfig& n) {
  if (n.mode == NetworkConfig::Mode::kNone) {
    if (!n.mac.empty() || !n.interface.empty() || !n.addresses.empty() || !n.gateway4.empty() || !n.gateway6.empty() ||
        !n.dns.empty() || !n.search.empty()) {
      return Error(ErrorKind::kInvalidArgument, "network settings given without a network mode (dhcp or static)");
    }
    return std::string();
  }
  if (n.mac.empty() == n.interface.empty()) {
    return Error(ErrorKind::kInvalidArgument,
                 "the network config needs the NIC: its MAC address or its interface name (one of the two)");
  }
  if (!n.mac.empty()) {
    if (auto why = checks::mac_address(n.mac); !why.empty()) return invalid("MAC address", n.mac, why);
  } else if (auto why = checks::interface_name(n.interface); !why.empty()) {
    return invalid("interface name", n.interface, why);
  }
  const bool is_static = n.mode == NetworkConfig::Mode::kStatic;
  if (is_static && n.addresses.empty()) {
    return Error(ErrorKind::kInvalidArgument, "a static network config needs at least one ADDRESS/PREFIX");
  }
  if (!is_static && (!n.addresses.empty() || !n.gateway4.empty() || !n.gateway6.empty())) {
    return Error(ErrorKind::kInvalidArgument, "addresses and gateways are for a static network config, not dhcp");
  }
  for (const auto& a : n.addresses) {
    bool v6 = false;
    if (auto why = checks::cidr(a, &v6); !why.empty()) return invalid("address", a, why);
  }
  for (const auto* gw : {&n.gateway4, &n.gateway6}) {
    if (gw->empty()) continue;
    bool v6 = false;
    if (auto why = checks::ip_address(*gw, &v6); !why.empty()) return invalid("gateway", *gw, why);
    if (v6 != (gw == &n.gateway6))
      return invalid("gateway", *gw,
                     v6 ? "is IPv6: give it as the IPv6 gateway" : "is IPv4: give it as the IPv4 gateway");
    bool reachable = false;
    for (const auto& a : n.addresses) reachable = reachable || checks::in_subnet(*gw, a);
    if (!reachable)
      return invalid("gateway", *gw, "is in none of the addresses' subnets: the guest could not reach it");
  }
  for (const auto& d : n.dns) {
    bool v6 = false;
    if (auto why = checks::ip_address(d, &v6); !why.empty()) return invalid("name server", d, why);
  }
  for (const auto& s : n.search) {
    if (auto why = checks::dns_domain(s); !why.empty()) return invalid("search domain", s, why);
  }

  std::string y = "# cloud-init network config, version 2 (written by qtx)\nversion: 2\nethernets:\n  primary:\n";
  if (!n.mac.empty()) {
    std::string lower = n.mac;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    y += "    match:\n      macaddress: " + yaml_quote(lower) + "\n";
  } else {
    y += "    match:\n      name: " + yaml_quote(n.interface) + "\n";
  }
  y += std::string("    dhcp4: ") + (is_static ? "false" : "true") + "\n";
  if (is_static) {
    y += "    addresses:\n";
    for (const auto& a : n.addresses) y += "      - " + yaml_quote(a) + "\n";
    // gateway4/6 rather than a default route: every renderer of every
    // cloud-init in use (ENI, networkd, netplan, sysconfig) takes them.
    if (!n.gateway4.empty()) y += "    gateway4: " + yaml_quote(n.gateway4) + "\n";
    if (!n.gateway6.empty()) y += "    gateway6: " + yaml_quote(n.gateway6) + "\n";
  }
  if (!n.dns.empty() || !n.search.empty()) {
    y += "    nameservers:\n";
    if (!n.dns.empty()) {
      y += "      addresses:\n";
      for (const auto& d : n.dns) y += "        - " + yaml_quote(d) + "\n";
    }
    if (!n.search.empty()) {
      y += "      search:\n";
      for (const auto& s : n.search) y += "        - " + yaml_quote(s) + "\n";
    }
  }
  return y;
}

Result<std::string> render_user_data(const SeedOptions& o) {
  std::string y = "#cloud-config\n# Written by qtx: first-boot setup of this VM and its guest agent.\n";
  const auto dot = o.hostname.find('.');
  y += "hostname: " + yaml_quote(o.hostname.substr(0, dot)) + "\n";
  if (dot != std::string::npos) y += "fqdn: " + yaml_quote(o.hostname) + "\n";
  y += "manage_etc_hosts: true\n";
  if (!o.users.empty()) {
    y += "users:\n";
    for (const auto& u : o.users) {
      if (auto why = checks::user_name(u.name); !why.empty()) return invalid("user name", u.name, why);
      y += "  - name: " + yaml_quote(u.name) + "\n    shell: \"/bin/bash\"\n";
      if (u.password_hash.empty()) {
        y += "    lock_passwd: true\n";
      } else {
        if (auto why = checks::password_hash(u.password_hash); !why.empty()) {
          return Error(ErrorKind::kInvalidArgument, "the password of " + u.name + " " + why);
        }
        y += "    lock_passwd: false\n    passwd: " + yaml_quote(u.password_hash) + "\n";
      }
      if (u.sudo) y += "    sudo: \"ALL=(ALL) NOPASSWD:ALL\"\n";
      if (!u.ssh_authorized_keys.empty()) {
        y += "    ssh_authorized_keys:\n";
        for (const auto& k : u.ssh_authorized_keys) {
          if (auto why = checks::ssh_public_key(k); !why.empty()) {
            return Error(ErrorKind::kInvalidArgument, "SSH key " +
                                                          std::to_string(&k - u.ssh_authorized_keys.data() + 1) +
                                                          " of " + u.name + " " + why);
          }
          y += "      - " + yaml_quote(k) + "\n";
        }
      }
    }
    for (std::size_t i = 0; i < o.users.size(); ++i) {
      for (std::size_t j = 0; j < i; ++j) {
        if (o.users[i].name == o.users[j].name) return invalid("user", o.users[i].name, "is given twice");
      }
    }
  }
  if (!o.packages.empty()) {
    y += "package_update: true\npackages:\n";
    for (const auto& p : o.packages) {
      if (auto why = checks::package(p); !why.empty()) return invalid("package", p, why);
      y += "  - " + yaml_quote(p) + "\n";
    }
  }
  if (o.grow_root) {
    // cloud-init's own modules find the root device and its partition; a
    // fixed `resize2fs /dev/sda1` breaks on virtio (vda), NVMe and LVM.
    y += "growpart:\n  mode: \"auto\"\n  devices:\n    - \"/\"\n  ignore_growroot_disabled: false\nresize_rootfs: "
         "true\n";
  } else {
    y += "growpart:\n  mode: \"off\"\nresize_rootfs: false\n";
  }
  if (o.install_agent) {
    if (auto why = checks::volume_label(o.agent_iso_label); !why.empty()) {
      return invalid("agent ISO volume id", o.agent_iso_label, why);
    }
    y += "runcmd:\n  - [\"sh\", \"-c\", " + yaml_quote(install_command(o.agent_iso_label)) + "]\n";
  }
  return y;
}

}  // namespace

Result<SeedFiles> render_seed(const SeedOptions& o) {
  if (o.hostname.empty()) return Error(ErrorKind::kInvalidArgument, "a seed needs a hostname");
  if (auto why = checks::hostname(o.hostname); !why.empty()) return invalid("hostname", o.hostname, why);
  if (!o.instance_id.empty()) {
    if (auto why = checks::instance_id(o.instance_id); !why.empty()) return invalid("instance id", o.instance_id, why);
  }
  auto user_data = render_user_data(o);
  if (!user_data) return user_data.error();
  auto network = render_network(o.network);
  if (!network) return network.error();

  SeedFiles files;
  files.user_data = std::move(user_data.value());
  files.network_config = std::move(network.value());
  std::string id = o.instance_id;
  if (id.empty()) {
    // Derived from everything else: a changed seed is a new instance to
    // cloud-init (its per-instance modules run again), the same seed is not.
    wire::Sha256 h;
    h.update(o.hostname);
    h.update(std::string_view("\0", 1));
    h.update(files.user_data);
    h.update(std::string_view("\0", 1));
    h.update(files.network_config);
    id = "qtx-" + wire::Sha256::hex(h.finish()).substr(0, 16);
  }
  files.instance_id = id;
  files.meta_data = "instance-id: " + yaml_quote(id) +
                    "\nlocal-hostname: " + yaml_quote(o.hostname.substr(0, o.hostname.find('.'))) + "\n";
  return files;
}

}  // namespace qtx::host::vm
