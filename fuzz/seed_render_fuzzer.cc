// Any values as a cloud-init seed's input (qtx::host::vm::render_seed):
// never a crash; a refusal is kInvalidArgument with a reason; an accepted
// seed parses as YAML (yaml-cpp) and every value reads back exactly as
// given, so no input can change the documents' structure.
//
// Input: fields separated by 0x1e, in the order hostname, user name, SSH
// key, password hash, package, network mode (first byte % 3), MAC,
// address, IPv4 gateway, name server.
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "qtx/host/vm.h"

namespace {

namespace vm = ::qtx::host::vm;

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "property violated: %s\n", what.c_str());
  std::abort();
}

void expect_same(const YAML::Node& node, const std::string& want, const char* what) {
  if (!node || node.as<std::string>() != want) fail(std::string(what) + " did not read back as given");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 4096) return 0;
  std::vector<std::string> f(1);
  for (std::size_t i = 0; i < size; ++i) {
    if (data[i] == 0x1e) {
      f.emplace_back();
    } else {
      f.back().push_back(static_cast<char>(data[i]));
    }
  }
  f.resize(10);
  vm::SeedOptions o;
  o.hostname = f[0];
  if (!f[1].empty()) {
    vm::SeedUser u;
    u.name = f[1];
    if (!f[2].empty()) u.ssh_authorized_keys.push_back(f[2]);
    u.password_hash = f[3];
    o.users.push_back(u);
  }
  if (!f[4].empty()) o.packages.push_back(f[4]);
  const int mode = f[5].empty() ? 0 : static_cast<unsigned char>(f[5][0]) % 3;
  o.network.mode = static_cast<vm::NetworkConfig::Mode>(mode);
  if (mode != 0) {
    o.network.mac = f[6];
    if (!f[7].empty()) o.network.addresses.push_back(f[7]);
    o.network.gateway4 = f[8];
    if (!f[9].empty()) o.network.dns.push_back(f[9]);
  }

  auto r = vm::render_seed(o);
  if (!r.ok()) {
    if (r.error().kind() != qtx::host::ErrorKind::kInvalidArgument) fail("a refusal of another kind");
    if (r.error().message().empty()) fail("a refusal without a reason");
    return 0;
  }
  try {
    const YAML::Node meta = YAML::Load(r->meta_data);
    const YAML::Node user = YAML::Load(r->user_data);
    expect_same(meta["instance-id"], r->instance_id, "instance-id");
    expect_same(user["hostname"], o.hostname.substr(0, o.hostname.find('.')), "hostname");
    if (!o.users.empty()) {
      const YAML::Node u = user["users"][0];
      expect_same(u["name"], o.users[0].name, "user name");
      if (!o.users[0].ssh_authorized_keys.empty()) {
        expect_same(u["ssh_authorized_keys"][0], o.users[0].ssh_authorized_keys[0], "SSH key");
      }
      if (!o.users[0].password_hash.empty()) expect_same(u["passwd"], o.users[0].password_hash, "password hash");
    }
    if (!o.packages.empty()) expect_same(user["packages"][0], o.packages[0], "package");
    if (mode != 0) {
      const YAML::Node nic = YAML::Load(r->network_config)["ethernets"]["primary"];
      if (!o.network.addresses.empty()) expect_same(nic["addresses"][0], o.network.addresses[0], "address");
      if (!o.network.gateway4.empty()) expect_same(nic["gateway4"], o.network.gateway4, "gateway");
      if (!o.network.dns.empty()) expect_same(nic["nameservers"]["addresses"][0], o.network.dns[0], "name server");
    } else if (!r->network_config.empty()) {
      fail("a network config without a mode");
    }
  } catch (const YAML::Exception& e) {
    fail(std::string("the rendered seed is not YAML: ") + e.what());
  }
  return 0;
}
