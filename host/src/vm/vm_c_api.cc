// The C API of the provisioning helpers (qtx/host_vm.h) over qtx/host/vm.h.
#include "qtx/host_vm.h"

#include "c_api_support.h"
#include "qtx/host/vm.h"

namespace {

using namespace qtx::host;
using namespace qtx::host::c_api;

static_assert(QTX_VM_SEEN_READY == static_cast<int>(vm::ReadyReport::Seen::kReady), "C and C++ must agree");

std::string str(const char* s) { return s == nullptr ? std::string() : std::string(s); }

std::vector<std::string> list(const char* const* items) {
  std::vector<std::string> v;
  for (; items != nullptr && *items != nullptr; ++items) v.emplace_back(*items);
  return v;
}

// The structs as released in 0.1: up to their last field then.
constexpr std::size_t kSeedOldest = QTX_STRUCT_SIZE_UP_TO(qtx_vm_seed, search);
constexpr std::size_t kUserOldest = QTX_STRUCT_SIZE_UP_TO(qtx_vm_user, sudo);

// The seed in the library's layout, or the code read_struct left in *err.
int read_seed(const qtx_vm_seed* caller, qtx_vm_seed* seed, std::vector<qtx_vm_user>* users, qtx_error* err) {
  if (caller == nullptr) return fail(err, Error(ErrorKind::kInvalidArgument, "no seed given"));
  if (int rc = read_struct(caller, kSeedOldest, "qtx_vm_seed", seed, err); rc != QTX_OK) return rc;
  if (seed->n_users > 0 && seed->users == nullptr) {
    return fail(err, Error(ErrorKind::kInvalidArgument, "n_users without users"));
  }
  // The array's stride is the caller's struct_size, which may differ from
  // sizeof(qtx_vm_user) when the caller was built with another release.
  const auto* base = reinterpret_cast<const unsigned char*>(seed->users);
  const std::size_t stride = seed->n_users > 0 ? seed->users[0].struct_size : 0;
  if (stride % alignof(qtx_vm_user) != 0) {
    return fail(err, Error(ErrorKind::kInvalidArgument, "users[0].struct_size is not a size of qtx_vm_user"));
  }
  users->resize(seed->n_users);
  for (std::size_t i = 0; i < seed->n_users; ++i) {
    const auto* u = reinterpret_cast<const qtx_vm_user*>(base + i * stride);
    if (u->struct_size != stride) {
      return fail(err, Error(ErrorKind::kInvalidArgument,
                             "users[" + std::to_string(i) + "].struct_size differs from users[0].struct_size"));
    }
    if (int rc = read_struct(u, kUserOldest, "qtx_vm_user", &(*users)[i], err); rc != QTX_OK) return rc;
  }
  seed->users = users->data();
  return QTX_OK;
}

// `s` in the library's layout (read_seed).
Result<vm::SeedOptions> seed_options(const qtx_vm_seed* s) {
  if (s->network_mode < QTX_VM_NETWORK_NONE || s->network_mode > QTX_VM_NETWORK_STATIC) {
    return Error(ErrorKind::kInvalidArgument, "unknown network mode " + std::to_string(s->network_mode));
  }
  vm::SeedOptions o;
  o.hostname = str(s->hostname);
  o.instance_id = str(s->instance_id);
  for (std::size_t i = 0; i < s->n_users; ++i) {
    const qtx_vm_user& u = s->users[i];
    o.users.push_back({str(u.name), list(u.ssh_authorized_keys), str(u.password_hash), u.sudo != 0});
  }
  o.packages = list(s->packages);
  o.install_agent = s->skip_agent_install == 0;
  if (s->agent_iso_label != nullptr) o.agent_iso_label = s->agent_iso_label;
  o.grow_root = s->no_grow_root == 0;
  o.network.mode = static_cast<vm::NetworkConfig::Mode>(s->network_mode);
  o.network.mac = str(s->mac);
  o.network.interface = str(s->interface);
  o.network.addresses = list(s->addresses);
  o.network.gateway4 = str(s->gateway4);
  o.network.gateway6 = str(s->gateway6);
  o.network.dns = list(s->dns);
  o.network.search = list(s->search);
  return o;
}

Error missing(const char* what) { return Error(ErrorKind::kInvalidArgument, std::string(what) + " is NULL"); }

}  // namespace

extern "C" {

int qtx_vm_parse_size(const char* text, uint64_t* bytes, qtx_error* err) noexcept {
  return guarded(err, [&] {
    if (text == nullptr || bytes == nullptr) return fail(err, missing("text or bytes"));
    auto r = vm::parse_size(text);
    if (!r) return fail(err, r.error());
    *bytes = *r;
    return succeed(err);
  });
}

int qtx_vm_create_overlay(const char* backing, const char* output, uint64_t size_bytes, int flags, char** command,
                          int* created, qtx_error* err) noexcept {
  return guarded(err, [&] {
    if (backing == nullptr || output == nullptr) return fail(err, missing("backing or output"));
    vm::OverlayOptions o;
    o.backing = backing;
    o.output = output;
    o.size = size_bytes;
    o.overwrite = (flags & QTX_VM_OVERWRITE) != 0;
    auto r = vm::create_overlay(o);
    if (!r) return fail(err, r.error());
    if (command != nullptr) *command = dup_string(r->command);
    if (created != nullptr) *created = r->created ? 1 : 0;
    return succeed(err);
  });
}

int qtx_vm_render_seed(const qtx_vm_seed* caller_seed, char** meta_data, char** user_data, char** network_config,
                       qtx_error* err) noexcept {
  return guarded(err, [&] {
    qtx_vm_seed seed;
    std::vector<qtx_vm_user> users;
    if (int rc = read_seed(caller_seed, &seed, &users, err); rc != QTX_OK) return rc;
    auto o = seed_options(&seed);
    if (!o) return fail(err, o.error());
    auto r = vm::render_seed(*o);
    if (!r) return fail(err, r.error());
    if (meta_data != nullptr) *meta_data = dup_string(r->meta_data);
    if (user_data != nullptr) *user_data = dup_string(r->user_data);
    if (network_config != nullptr) *network_config = dup_string(r->network_config);
    return succeed(err);
  });
}

int qtx_vm_write_seed_iso(const qtx_vm_seed* caller_seed, const char* output, int flags, char** instance_id,
                          int* created, qtx_error* err) noexcept {
  return guarded(err, [&] {
    if (output == nullptr) return fail(err, missing("output"));
    qtx_vm_seed seed;
    std::vector<qtx_vm_user> users;
    if (int rc = read_seed(caller_seed, &seed, &users, err); rc != QTX_OK) return rc;
    auto o = seed_options(&seed);
    if (!o) return fail(err, o.error());
    vm::SeedIsoOptions iso;
    iso.output = output;
    iso.overwrite = (flags & QTX_VM_OVERWRITE) != 0;
    auto r = vm::write_seed_iso(*o, iso);
    if (!r) return fail(err, r.error());
    if (instance_id != nullptr) *instance_id = dup_string(r->files.instance_id);
    if (created != nullptr) *created = r->created ? 1 : 0;
    return succeed(err);
  });
}

int qtx_vm_channel_wiring(const char* socket_path, const char* port, int host_listens, int format, char** text,
                          qtx_error* err) noexcept {
  return guarded(err, [&] {
    if (socket_path == nullptr || text == nullptr) return fail(err, missing("socket_path or text"));
    vm::ChannelOptions o;
    o.socket = socket_path;
    if (port != nullptr) o.port = port;
    o.host_listens = host_listens != 0;
    std::string out;
    if (format == QTX_VM_WIRING_QEMU) {
      auto r = vm::qemu_channel_args(o);
      if (!r) return fail(err, r.error());
      for (const auto& a : *r) out += a + "\n";
    } else if (format == QTX_VM_WIRING_LIBVIRT) {
      auto r = vm::libvirt_channel_xml(o);
      if (!r) return fail(err, r.error());
      out = *r;
    } else {
      return fail(err, Error(ErrorKind::kInvalidArgument, "unknown wiring format " + std::to_string(format)));
    }
    *text = dup_string(out);
    return succeed(err);
  });
}

int qtx_vm_wait_ready(const char* socket_path, uint32_t timeout_ms, int* seen, qtx_error* err) noexcept {
  return guarded(err, [&] {
    if (socket_path == nullptr) return fail(err, missing("socket_path"));
    auto r = vm::wait_ready(socket_path, ms(timeout_ms));
    if (!r) return fail(err, r.error());
    if (seen != nullptr) *seen = static_cast<int>(r->seen);
    if (r->seen == vm::ReadyReport::Seen::kReady) return succeed(err);
    return fail(err, Error(ErrorKind::kTimeout, std::string("no agent after ") + std::to_string(r->elapsed.count()) +
                                                    " ms (" + vm::seen_name(r->seen) + ")" +
                                                    (r->last_error.empty() ? "" : ": " + r->last_error)));
  });
}

}  // extern "C"
