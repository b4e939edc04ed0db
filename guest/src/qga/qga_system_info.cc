// Read-only facts about the guest, each answered at once on the io thread
// (uname(2), a few small files, utmp, /sys/class/net).
#include <spdlog/spdlog.h>
#include <sys/utsname.h>
#include <utmpx.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>

#include "qga/qga_command_table.h"
#include "telemetry/collector.h"

namespace qtx::agent::qga {
namespace {

Outcome host_name(CommandEnv&, const Json& args) {
  if (auto bad = check_params(args, {})) return *bad;
  struct utsname u {};
  ::uname(&u);
  return ok({{"host-name", u.nodename}});
}

Outcome get_time(CommandEnv&, const Json& args) {
  if (auto bad = check_params(args, {})) return *bad;
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return ok(static_cast<std::int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec);
}

// As qemu-ga (GLib's local time zone): the abbreviation in force now and its
// offset from UTC in seconds; TZ is honoured as GLib honours it.
Outcome timezone(CommandEnv&, const Json& args) {
  if (auto bad = check_params(args, {})) return *bad;
  ::tzset();
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::localtime_r(&now, &tm);
  Json r = Json::object();
  if (tm.tm_zone != nullptr && tm.tm_zone[0] != '\0') r["zone"] = tm.tm_zone;
  r["offset"] = static_cast<std::int64_t>(tm.tm_gmtoff);
  return ok(std::move(r));
}

// os-release's KEY=value lines; values may be quoted ("..." or '...') with
// backslash escapes inside double quotes. At most 64 KiB is read.
std::map<std::string, std::string> read_os_release() {
  std::map<std::string, std::string> out;
  for (const char* path : {"/etc/os-release", "/usr/lib/os-release"}) {
    std::ifstream f(path);
    if (!f) continue;
    std::string line;
    std::size_t total = 0;
    while (std::getline(f, line) && (total += line.size()) < 65536) {
      const auto eq = line.find('=');
      if (eq == std::string::npos || line[0] == '#') continue;
      std::string key = line.substr(0, eq), raw = line.substr(eq + 1), value;
      if (!raw.empty() && (raw[0] == '"' || raw[0] == '\'')) {
        const char q = raw[0];
        for (std::size_t i = 1; i < raw.size() && raw[i] != q; ++i) {
          if (q == '"' && raw[i] == '\\' && i + 1 < raw.size()) ++i;
          value += raw[i];
        }
      } else {
        value = raw;
      }
      out[key] = value;
    }
    break;
  }
  return out;
}

Outcome osinfo(CommandEnv&, const Json& args) {
  if (auto bad = check_params(args, {})) return *bad;
  Json r = Json::object();
  struct utsname u {};
  if (::uname(&u) == 0) {
    r["kernel-release"] = u.release;
    r["kernel-version"] = u.version;
    r["machine"] = u.machine;
  }
  const auto rel = read_os_release();
  static const std::pair<const char*, const char*> kKeys[] = {{"ID", "id"},
                                                              {"NAME", "name"},
                                                              {"PRETTY_NAME", "pretty-name"},
                                                              {"VERSION", "version"},
                                                              {"VERSION_ID", "version-id"},
                                                              {"VARIANT", "variant"},
                                                              {"VARIANT_ID", "variant-id"}};
  for (const auto& [key, field] : kKeys) {
    auto it = rel.find(key);
    if (it != rel.end()) r[field] = it->second;
  }
  return ok(std::move(r));
}

// Logged-in users from utmp, each once with its earliest login (seconds,
// fractional), as qemu-ga reports them.
Outcome users(CommandEnv&, const Json& args) {
  if (auto bad = check_params(args, {})) return *bad;
  std::vector<std::pair<std::string, double>> seen;
  ::setutxent();
  while (const utmpx* e = ::getutxent()) {
    if (e->ut_type != USER_PROCESS) continue;
    const std::string user(e->ut_user, ::strnlen(e->ut_user, sizeof(e->ut_user)));
    const double when = static_cast<double>(e->ut_tv.tv_sec) + static_cast<double>(e->ut_tv.tv_usec) / 1e6;
    auto it = std::find_if(seen.begin(), seen.end(), [&](const auto& s) { return s.first == user; });
    if (it == seen.end()) {
      seen.emplace_back(user, when);
    } else {
      it->second = std::min(it->second, when);
    }
    if (seen.size() >= 4096) break;  // bounds the answer and the quadratic search
  }
  ::endutxent();
  Json r = Json::array();
  for (const auto& [user, when] : seen) r.push_back({{"user", user}, {"login-time", when}});
  return ok(std::move(r));
}

void add_address(Json* list, const char* type, const std::string& addr_prefix) {
  const auto slash = addr_prefix.rfind('/');
  if (slash == std::string::npos) return;
  list->push_back({{"ip-address-type", type},
                   {"ip-address", addr_prefix.substr(0, slash)},
                   {"prefix", std::atoi(addr_prefix.c_str() + slash + 1)}});
}

// Every interface in /sys/class/net; addresses and statistics only for those
// with an address, as qemu-ga (which walks getifaddrs) reports them.
Outcome network_interfaces(CommandEnv&, const Json& args) {
  if (auto bad = check_params(args, {})) return *bad;
  google::protobuf::RepeatedPtrField<v1::NetworkInterface> ifs;
  collect_interfaces("/sys", &ifs);
  Json r = Json::array();
  for (const auto& i : ifs) {
    Json e = Json::object();
    e["name"] = i.name();
    if (!i.mac().empty()) e["hardware-address"] = i.mac();
    Json addrs = Json::array();
    for (const auto& a : i.ipv4()) add_address(&addrs, "ipv4", a);
    for (const auto& a : i.ipv6()) add_address(&addrs, "ipv6", a);
    if (!addrs.empty()) {
      e["ip-addresses"] = std::move(addrs);
      e["statistics"] = {{"rx-bytes", i.rx_bytes()},     {"rx-packets", i.rx_packets()}, {"rx-errs", i.rx_errors()},
                         {"rx-dropped", i.rx_dropped()}, {"tx-bytes", i.tx_bytes()},     {"tx-packets", i.tx_packets()},
                         {"tx-errs", i.tx_errors()},     {"tx-dropped", i.tx_dropped()}};
    }
    r.push_back(std::move(e));
  }
  return ok(std::move(r));
}

}  // namespace

void add_system_info_commands(std::vector<Command>* out) {
  out->insert(out->end(), {
                              {"guest-get-host-name", "hostname_get", host_name},
                              {"guest-get-osinfo", "info", osinfo},
                              {"guest-get-time", "time_get", get_time},
                              {"guest-get-timezone", "info", timezone},
                              {"guest-get-users", "info", users},
                              {"guest-network-get-interfaces", "network", network_interfaces},
                          });
}

}  // namespace qtx::agent::qga
