// The cloud-init seed as rendered by qtx::host::vm::render_seed: parsed back
// with a YAML parser and checked field by field, and every kind of bad input
// refused with kInvalidArgument before anything is written. Also the size
// parser and the channel wiring.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

#include "qtx/host/vm.h"

namespace qtx::testing {
namespace {

namespace vm = ::qtx::host::vm;
using host::ErrorKind;

const std::string kEd25519 =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g alice@desk";
const std::string kHash =
    "$6$saltsalt$kVnGquVX3dLNHEe5h2cVKnN9MgT.0DTlwtfJvGbPJKoF7gCT/bF7TEhvfK6rFzQUjGk2VjVAYcJRHDm0HXd7P1";

vm::SeedOptions full_seed() {
  vm::SeedOptions s;
  s.hostname = "web1.example.com";
  s.users.push_back({"alice", {kEd25519}, kHash, true});
  s.packages = {"nginx", "curl=7.88.1-10+deb12u5"};
  s.network.mode = vm::NetworkConfig::Mode::kStatic;
  s.network.mac = "52:54:00:AB:cd:01";
  s.network.addresses = {"10.0.2.50/24", "fd00::50/64"};
  s.network.gateway4 = "10.0.2.2";
  s.network.gateway6 = "fd00::1";
  s.network.dns = {"10.0.2.3"};
  s.network.search = {"example.com"};
  return s;
}

TEST(VmSeed, RendersValidYamlWithEveryRequestedField) {
  auto files = vm::render_seed(full_seed());
  ASSERT_TRUE(files.ok()) << files.error().to_string();

  ASSERT_EQ(files->user_data.rfind("#cloud-config\n", 0), 0u);
  const YAML::Node user = YAML::Load(files->user_data);
  EXPECT_EQ(user["hostname"].as<std::string>(), "web1");
  EXPECT_EQ(user["fqdn"].as<std::string>(), "web1.example.com");
  ASSERT_EQ(user["users"].size(), 1u);
  const YAML::Node alice = user["users"][0];
  EXPECT_EQ(alice["name"].as<std::string>(), "alice");
  EXPECT_EQ(alice["passwd"].as<std::string>(), kHash);
  EXPECT_FALSE(alice["lock_passwd"].as<bool>());
  EXPECT_EQ(alice["sudo"].as<std::string>(), "ALL=(ALL) NOPASSWD:ALL");
  ASSERT_EQ(alice["ssh_authorized_keys"].size(), 1u);
  EXPECT_EQ(alice["ssh_authorized_keys"][0].as<std::string>(), kEd25519);
  EXPECT_TRUE(user["package_update"].as<bool>());
  ASSERT_EQ(user["packages"].size(), 2u);
  EXPECT_EQ(user["packages"][1].as<std::string>(), "curl=7.88.1-10+deb12u5");
  EXPECT_EQ(user["growpart"]["mode"].as<std::string>(), "auto");
  EXPECT_EQ(user["growpart"]["devices"][0].as<std::string>(), "/");
  EXPECT_TRUE(user["resize_rootfs"].as<bool>());
  ASSERT_EQ(user["runcmd"].size(), 1u);
  ASSERT_EQ(user["runcmd"][0].size(), 3u);
  EXPECT_EQ(user["runcmd"][0][0].as<std::string>(), "sh");
  EXPECT_NE(user["runcmd"][0][2].as<std::string>().find("/dev/disk/by-label/QTX_AGENT_TOOLS /run/qtx-iso && sh "
                                                        "/run/qtx-iso/install.sh"),
            std::string::npos);

  const YAML::Node meta = YAML::Load(files->meta_data);
  EXPECT_EQ(meta["local-hostname"].as<std::string>(), "web1");
  EXPECT_EQ(meta["instance-id"].as<std::string>(), files->instance_id);
  EXPECT_EQ(files->instance_id.rfind("qtx-", 0), 0u);
  EXPECT_EQ(files->instance_id.size(), 20u);

  const YAML::Node net = YAML::Load(files->network_config);
  EXPECT_EQ(net["version"].as<int>(), 2);
  const YAML::Node nic = net["ethernets"]["primary"];
  EXPECT_EQ(nic["match"]["macaddress"].as<std::string>(), "52:54:00:ab:cd:01");
  EXPECT_FALSE(nic["dhcp4"].as<bool>());
  ASSERT_EQ(nic["addresses"].size(), 2u);
  EXPECT_EQ(nic["addresses"][0].as<std::string>(), "10.0.2.50/24");
  EXPECT_EQ(nic["addresses"][1].as<std::string>(), "fd00::50/64");
  EXPECT_EQ(nic["gateway4"].as<std::string>(), "10.0.2.2");
  EXPECT_EQ(nic["gateway6"].as<std::string>(), "fd00::1");
  EXPECT_EQ(nic["nameservers"]["addresses"][0].as<std::string>(), "10.0.2.3");
  EXPECT_EQ(nic["nameservers"]["search"][0].as<std::string>(), "example.com");
}

TEST(VmSeed, TheSameSeedGivesTheSameFilesAndAChangedOneANewInstance) {
  auto a = vm::render_seed(full_seed());
  auto b = vm::render_seed(full_seed());
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->meta_data, b->meta_data);
  EXPECT_EQ(a->user_data, b->user_data);
  EXPECT_EQ(a->network_config, b->network_config);
  auto changed = full_seed();
  changed.network.addresses[0] = "10.0.2.51/24";
  auto c = vm::render_seed(changed);
  ASSERT_TRUE(c.ok());
  EXPECT_NE(c->instance_id, a->instance_id);
  changed.instance_id = "i-given.1";
  auto d = vm::render_seed(changed);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->instance_id, "i-given.1");
  EXPECT_EQ(YAML::Load(d->meta_data)["instance-id"].as<std::string>(), "i-given.1");
}

TEST(VmSeed, MinimalSeedHasNoNetworkConfigAndLocksNoPassword) {
  vm::SeedOptions s;
  s.hostname = "yes";  // a YAML 1.1 boolean when unquoted
  s.install_agent = false;
  s.grow_root = false;
  auto files = vm::render_seed(s);
  ASSERT_TRUE(files.ok()) << files.error().to_string();
  EXPECT_EQ(files->network_config, "");
  const YAML::Node user = YAML::Load(files->user_data);
  EXPECT_EQ(user["hostname"].as<std::string>(), "yes");
  EXPECT_FALSE(user["fqdn"]);
  EXPECT_FALSE(user["users"]);
  EXPECT_FALSE(user["packages"]);
  EXPECT_FALSE(user["runcmd"]);
  EXPECT_EQ(user["growpart"]["mode"].as<std::string>(), "off");
  EXPECT_FALSE(user["resize_rootfs"].as<bool>());
}

TEST(VmSeed, DhcpByInterfaceName) {
  vm::SeedOptions s;
  s.hostname = "db";
  s.network.mode = vm::NetworkConfig::Mode::kDhcp;
  s.network.interface = "ens3";
  auto files = vm::render_seed(s);
  ASSERT_TRUE(files.ok()) << files.error().to_string();
  const YAML::Node nic = YAML::Load(files->network_config)["ethernets"]["primary"];
  EXPECT_EQ(nic["match"]["name"].as<std::string>(), "ens3");
  EXPECT_TRUE(nic["dhcp4"].as<bool>());
  EXPECT_FALSE(nic["addresses"]);
}

TEST(VmSeed, AKeyCommentCannotChangeTheDocument) {
  auto s = full_seed();
  const std::string key = kEd25519 + " \"quoted\" # not: a comment\\";
  s.users[0].ssh_authorized_keys = {key};
  auto files = vm::render_seed(s);
  ASSERT_TRUE(files.ok()) << files.error().to_string();
  EXPECT_EQ(YAML::Load(files->user_data)["users"][0]["ssh_authorized_keys"][0].as<std::string>(), key);
}

TEST(VmSeed, TheAgentIsoShipsTheSameInstallCommand) {
  // iso/cloud-init.yaml is for users who write their own user-data.
  const YAML::Node shipped = YAML::LoadFile(std::string(QTX_SOURCE_DIR) + "/iso/cloud-init.yaml");
  vm::SeedOptions s;
  s.hostname = "vm1";
  auto files = vm::render_seed(s);
  ASSERT_TRUE(files.ok());
  const YAML::Node rendered = YAML::Load(files->user_data);
  ASSERT_EQ(shipped["runcmd"].size(), 1u);
  ASSERT_EQ(shipped["runcmd"][0].size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(shipped["runcmd"][0][i].as<std::string>(), rendered["runcmd"][0][i].as<std::string>());
  }
}

struct BadInput {
  const char* name;
  void (*edit)(vm::SeedOptions&);
  const char* message;  // a part of the error's message
};

const BadInput kBadInputs[] = {
    {"no hostname", [](vm::SeedOptions& s) { s.hostname = ""; }, "needs a hostname"},
    {"hostname with underscore", [](vm::SeedOptions& s) { s.hostname = "web_1"; }, "only letters, digits"},
    {"hostname label with leading dash", [](vm::SeedOptions& s) { s.hostname = "-web"; }, "starts or ends with '-'"},
    {"hostname with empty label", [](vm::SeedOptions& s) { s.hostname = "web..example"; }, "empty label"},
    {"hostname label over 63", [](vm::SeedOptions& s) { s.hostname = std::string(64, 'a'); }, "longer than 63"},
    {"bad instance id", [](vm::SeedOptions& s) { s.instance_id = "a b"; }, "instance id"},
    {"user name upper case", [](vm::SeedOptions& s) { s.users[0].name = "Alice"; }, "lower-case"},
    {"user root", [](vm::SeedOptions& s) { s.users[0].name = "root"; }, "is root"},
    {"duplicate user", [](vm::SeedOptions& s) { s.users.push_back(s.users[0]); }, "given twice"},
    {"key of unknown type", [](vm::SeedOptions& s) { s.users[0].ssh_authorized_keys = {"ssh-dss AAAAB3NzaC1kc3M="}; },
     "unknown key type"},
    {"key not base64", [](vm::SeedOptions& s) { s.users[0].ssh_authorized_keys = {"ssh-ed25519 AAAA!!!!"}; },
     "not base64"},
    {"key body of another type",
     [](vm::SeedOptions& s) { s.users[0].ssh_authorized_keys = {"ssh-rsa " + kEd25519.substr(12, 68)}; },
     "not a ssh-rsa key"},
    {"key truncated", [](vm::SeedOptions& s) { s.users[0].ssh_authorized_keys = {"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5"}; },
     "too short"},
    {"key on two lines", [](vm::SeedOptions& s) { s.users[0].ssh_authorized_keys = {kEd25519 + "\nssh-rsa x"}; },
     "one line"},
    {"key with options", [](vm::SeedOptions& s) { s.users[0].ssh_authorized_keys = {"no-pty " + kEd25519}; },
     "unknown key type"},
    {"plain password", [](vm::SeedOptions& s) { s.users[0].password_hash = "hunter2hunter2hunter2"; },
     "not a crypt(3) hash"},
    {"bad package", [](vm::SeedOptions& s) { s.packages = {"nginx; rm -rf /"}; }, "not a package name"},
    {"bad agent label", [](vm::SeedOptions& s) { s.agent_iso_label = "qtx tools"; }, "ISO 9660 volume id"},
    {"address without prefix", [](vm::SeedOptions& s) { s.network.addresses = {"10.0.2.50"}; }, "needs a prefix"},
    {"address out of range", [](vm::SeedOptions& s) { s.network.addresses = {"10.0.2.300/24"}; },
     "not an IPv4 or IPv6"},
    {"prefix too long", [](vm::SeedOptions& s) { s.network.addresses = {"10.0.2.50/33"}; }, "outside 1-32"},
    {"prefix not a number", [](vm::SeedOptions& s) { s.network.addresses = {"10.0.2.50/2a"}; }, "not a number"},
    {"gateway off subnet", [](vm::SeedOptions& s) { s.network.gateway4 = "10.0.3.1"; }, "none of the addresses"},
    {"IPv6 gateway as IPv4", [](vm::SeedOptions& s) { s.network.gateway4 = "fd00::1"; }, "is IPv6"},
    {"bad name server", [](vm::SeedOptions& s) { s.network.dns = {"dns.example.com"}; }, "name server"},
    {"bad search domain", [](vm::SeedOptions& s) { s.network.search = {"bad domain"}; }, "search domain"},
    {"bad MAC", [](vm::SeedOptions& s) { s.network.mac = "52:54:00:12:34"; }, "six hex pairs"},
    {"multicast MAC", [](vm::SeedOptions& s) { s.network.mac = "01:00:5e:00:00:01"; }, "multicast"},
    {"MAC and interface", [](vm::SeedOptions& s) { s.network.interface = "eth0"; }, "one of the two"},
    {"static without address",
     [](vm::SeedOptions& s) {
       s.network.addresses.clear();
       s.network.gateway4.clear();
       s.network.gateway6.clear();
     },
     "at least one"},
    {"dhcp with address", [](vm::SeedOptions& s) { s.network.mode = vm::NetworkConfig::Mode::kDhcp; },
     "for a static network config"},
    {"settings without mode", [](vm::SeedOptions& s) { s.network.mode = vm::NetworkConfig::Mode::kNone; },
     "without a network mode"},
    {"bad interface",
     [](vm::SeedOptions& s) {
       s.network.mac.clear();
       s.network.interface = "eth0/1";
     },
     "interface name"},
};

TEST(VmSeed, EveryBadInputIsRefusedWithWhatIsWrong) {
  for (const auto& bad : kBadInputs) {
    auto s = full_seed();
    bad.edit(s);
    auto files = vm::render_seed(s);
    ASSERT_FALSE(files.ok()) << bad.name;
    EXPECT_EQ(files.error().kind(), ErrorKind::kInvalidArgument) << bad.name;
    EXPECT_NE(files.error().message().find(bad.message), std::string::npos)
        << bad.name << ": " << files.error().message();
  }
}

TEST(VmSize, ParsesBinaryUnitsAndRefusesTheRest) {
  EXPECT_EQ(*vm::parse_size("0"), 0u);
  EXPECT_EQ(*vm::parse_size("4096"), 4096u);
  EXPECT_EQ(*vm::parse_size("512K"), 512u * 1024);
  EXPECT_EQ(*vm::parse_size("20G"), 20ull << 30);
  EXPECT_EQ(*vm::parse_size("20GiB"), 20ull << 30);
  EXPECT_EQ(*vm::parse_size("1.5T"), 3ull << 39);
  EXPECT_EQ(*vm::parse_size("10M"), 10u << 20);
  for (const char* bad : {"", "G", "-1G", "10X", "10GG", "1.3K", "0x10", " 1G", "1e30T"}) {
    auto r = vm::parse_size(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().kind(), ErrorKind::kInvalidArgument) << bad;
  }
}

TEST(VmWiring, QemuArgumentsAndLibvirtXml) {
  vm::ChannelOptions o;
  o.socket = "/run/vms/a,b/agent.sock";
  auto args = vm::qemu_channel_args(o);
  ASSERT_TRUE(args.ok()) << args.error().to_string();
  EXPECT_EQ(*args,
            (std::vector<std::string>{"-chardev", "socket,id=qtx0,path=/run/vms/a,,b/agent.sock,server=on,wait=off",
                                      "-device", "virtio-serial-pci,id=qtx0-serial", "-device",
                                      "virtserialport,bus=qtx0-serial.0,chardev=qtx0,name=org.quantix.agent.0"}));
  o.host_listens = true;
  EXPECT_EQ((*vm::qemu_channel_args(o))[1], "socket,id=qtx0,path=/run/vms/a,,b/agent.sock,server=off,reconnect=1");

  o.socket = "/var/lib/libvirt/qemu/channel/target/vm1&'.sock";
  o.host_listens = false;
  auto xml = vm::libvirt_channel_xml(o);
  ASSERT_TRUE(xml.ok());
  EXPECT_EQ(*xml,
            "<channel type='unix'>\n"
            "  <source mode='bind' path='/var/lib/libvirt/qemu/channel/target/vm1&amp;&apos;.sock'/>\n"
            "  <target type='virtio' name='org.quantix.agent.0'/>\n"
            "</channel>\n");

  for (const std::string& bad :
       {std::string("relative.sock"), std::string(""), "/" + std::string(120, 'a'), std::string("/tmp/a\nb")}) {
    o.socket = bad;
    auto r = vm::qemu_channel_args(o);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().kind(), ErrorKind::kInvalidArgument);
  }
  o.socket = "/tmp/a.sock";
  o.port = "Org.Bad Name";
  EXPECT_EQ(vm::libvirt_channel_xml(o).error().kind(), ErrorKind::kInvalidArgument);
}

}  // namespace
}  // namespace qtx::testing
