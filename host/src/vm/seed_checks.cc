#include "vm/seed_checks.h"

#include <arpa/inet.h>

#include <cctype>
#include <cstdint>
#include <cstring>
#include <vector>

#include "qtx/base64.h"

namespace qtx::host::vm::checks {
namespace {

bool is_alnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

bool all_of(const std::string& s, const char* extra, bool lower_only = false) {
  for (char c : s) {
    const bool ok =
        (lower_only ? (std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)))
                    : is_alnum(c)) ||
        std::strchr(extra, c) != nullptr;
    if (!ok || c == '\0') return false;
  }
  return true;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  for (;;) {
    const auto at = s.find(sep, start);
    parts.push_back(s.substr(start, at == std::string::npos ? std::string::npos : at - start));
    if (at == std::string::npos) return parts;
    start = at + 1;
  }
}

}  // namespace

std::string hostname(const std::string& name) {
  if (name.empty()) return "is empty";
  if (name.size() > 253) return "is longer than 253 characters";
  for (const auto& label : split(name, '.')) {
    if (label.empty()) return "has an empty label (two dots, or a dot at an end)";
    if (label.size() > 63) return "has a label longer than 63 characters";
    if (!all_of(label, "-")) return "may hold only letters, digits, '-' and '.'";
    if (label.front() == '-' || label.back() == '-') return "has a label that starts or ends with '-'";
  }
  return {};
}

std::string user_name(const std::string& name) {
  if (name.empty() || name.size() > 32) return "must be 1 to 32 characters";
  if (!(std::islower(static_cast<unsigned char>(name[0])) || name[0] == '_')) {
    return "must start with a lower-case letter or '_'";
  }
  if (!all_of(name, "_-", true)) return "may hold only lower-case letters, digits, '_' and '-'";
  if (name == "root") return "is root: give root's keys to a user of its own and use sudo";
  return {};
}

std::string ssh_public_key(const std::string& key) {
  for (char c : key) {
    if (c == '\n' || c == '\r' || c == '\0') return "must be one line";
  }
  const auto parts = split(key, ' ');
  if (parts.size() < 2 || parts[0].empty() || parts[1].empty()) {
    return "must be \"TYPE BASE64 [COMMENT]\" as in a .pub file (options before the type are not accepted)";
  }
  static const char* const kTypes[] = {"ssh-ed25519",
                                       "ssh-rsa",
                                       "ecdsa-sha2-nistp256",
                                       "ecdsa-sha2-nistp384",
                                       "ecdsa-sha2-nistp521",
                                       "sk-ssh-ed25519@openssh.com",
                                       "sk-ecdsa-sha2-nistp256@openssh.com"};
  bool known = false;
  for (const char* t : kTypes) known = known || parts[0] == t;
  if (!known) return "has an unknown key type \"" + parts[0] + "\" (ssh-ed25519, ssh-rsa, ecdsa-sha2-*, sk-*)";
  std::string blob;
  if (!qtx::base64_decode(parts[1], &blob)) return "has a key body that is not base64";
  // The blob starts with the type as an SSH string: u32 length, bytes.
  if (blob.size() < 4) return "has a key body too short to be a key";
  const std::uint32_t n = (static_cast<std::uint32_t>(static_cast<unsigned char>(blob[0])) << 24) |
                          (static_cast<std::uint32_t>(static_cast<unsigned char>(blob[1])) << 16) |
                          (static_cast<std::uint32_t>(static_cast<unsigned char>(blob[2])) << 8) |
                          static_cast<std::uint32_t>(static_cast<unsigned char>(blob[3]));
  if (n != parts[0].size() || blob.size() < 4 + n || blob.compare(4, n, parts[0]) != 0) {
    return "has a key body that is not a " + parts[0] + " key (truncated, or the type does not match)";
  }
  if (blob.size() < 4 + n + 16) return "has a key body too short to be a key";
  return {};
}

std::string password_hash(const std::string& hash) {
  static const char* const kPrefixes[] = {"$6$", "$5$", "$y$", "$gy$", "$2b$", "$2y$"};
  bool known = false;
  for (const char* p : kPrefixes) known = known || hash.rfind(p, 0) == 0;
  if (!known) {
    return "is not a crypt(3) hash ($6$..., $5$..., $y$..., $2b$...): make one with `openssl passwd -6` or "
           "`mkpasswd -m sha-512`; plain passwords are not written to seeds";
  }
  if (!all_of(hash, "$./=")) return "holds characters a crypt(3) hash does not";
  if (hash.size() < 20) return "is too short to be a crypt(3) hash";
  return {};
}

std::string package(const std::string& text) {
  const auto eq = text.find('=');
  const std::string name = text.substr(0, eq);
  if (name.size() < 2 || !std::isalnum(static_cast<unsigned char>(name[0])) || !all_of(name, "+-.", true)) {
    return "is not a package name (lower-case letters, digits, '+', '-', '.'; at least 2 characters)";
  }
  if (eq != std::string::npos) {
    const std::string version = text.substr(eq + 1);
    if (version.empty() || !std::isalnum(static_cast<unsigned char>(version[0])) || !all_of(version, ".+~:-")) {
      return "has a version that is not one (NAME=VERSION)";
    }
  }
  return {};
}

std::string instance_id(const std::string& id) {
  if (id.empty() || id.size() > 128) return "must be 1 to 128 characters";
  if (!all_of(id, "._-")) return "may hold only letters, digits, '.', '_' and '-'";
  return {};
}

std::string volume_label(const std::string& label) {
  if (label.empty() || label.size() > 32) return "must be 1 to 32 characters";
  for (char c : label) {
    if (!(std::isupper(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '_')) {
      return "may hold only A-Z, 0-9 and '_' (an ISO 9660 volume id)";
    }
  }
  return {};
}

std::string mac_address(const std::string& mac) {
  const auto parts = split(mac, ':');
  if (parts.size() != 6) return "must be six hex pairs separated by ':' (52:54:00:12:34:56)";
  for (const auto& p : parts) {
    if (p.size() != 2 || !std::isxdigit(static_cast<unsigned char>(p[0])) ||
        !std::isxdigit(static_cast<unsigned char>(p[1]))) {
      return "must be six hex pairs separated by ':' (52:54:00:12:34:56)";
    }
  }
  if (std::strtoul(parts[0].c_str(), nullptr, 16) & 1) return "is a multicast address, not a NIC's";
  return {};
}

std::string interface_name(const std::string& name) {
  if (name.empty() || name.size() > 15) return "must be 1 to 15 characters";
  if (name == "." || name == ".." || !all_of(name, "_.-")) return "may hold only letters, digits, '_', '.' and '-'";
  return {};
}

std::string dns_domain(const std::string& name) { return hostname(name); }

std::string ip_address(const std::string& text, bool* v6) {
  unsigned char buf[16];
  if (::inet_pton(AF_INET, text.c_str(), buf) == 1) {
    *v6 = false;
    return {};
  }
  if (::inet_pton(AF_INET6, text.c_str(), buf) == 1) {
    *v6 = true;
    return {};
  }
  return "is not an IPv4 or IPv6 address";
}

std::string cidr(const std::string& text, bool* v6) {
  const auto slash = text.find('/');
  if (slash == std::string::npos) return "needs a prefix length (ADDRESS/PREFIX, e.g. 192.0.2.10/24)";
  const std::string addr = text.substr(0, slash), prefix = text.substr(slash + 1);
  if (auto why = ip_address(addr, v6); !why.empty()) return why;
  if (prefix.empty() || prefix.size() > 3) return "has a prefix length that is not a number";
  for (char c : prefix) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return "has a prefix length that is not a number";
  }
  const int n = std::atoi(prefix.c_str());
  const int max = *v6 ? 128 : 32;
  if (n < 1 || n > max) return "has a prefix length outside 1-" + std::to_string(max);
  return {};
}

bool in_subnet(const std::string& address, const std::string& net) {
  const auto slash = net.find('/');
  const std::string base = net.substr(0, slash);
  const int prefix = std::atoi(net.c_str() + slash + 1);
  unsigned char a[16] = {}, b[16] = {};
  const int family = address.find(':') == std::string::npos ? AF_INET : AF_INET6;
  if ((base.find(':') == std::string::npos ? AF_INET : AF_INET6) != family) return false;
  if (::inet_pton(family, address.c_str(), a) != 1 || ::inet_pton(family, base.c_str(), b) != 1) return false;
  for (int bit = 0; bit < prefix; ++bit) {
    const int mask = 0x80 >> (bit % 8);
    if ((a[bit / 8] & mask) != (b[bit / 8] & mask)) return false;
  }
  return true;
}

}  // namespace qtx::host::vm::checks
