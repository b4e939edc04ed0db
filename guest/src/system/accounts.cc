#include "accounts.h"

#include <fcntl.h>

#include <cstdlib>
#include <sstream>

#include "agent_config.h"
#include "files/path_policy.h"

namespace qtx::agent {
namespace {

// Larger account files than this are not read (local accounts only).
constexpr std::size_t kMaxAccountFile = 64u << 20;

// The account file's text; empty when it cannot be read, is not a regular
// file (a FIFO would block the worker) or is over kMaxAccountFile.
std::istringstream account_file(const std::string& path) {
  std::string text;
  if (read_regular_file(AT_FDCWD, path, 0, kMaxAccountFile, &text) != 0) text.clear();
  return std::istringstream(text);
}

std::vector<std::string> split(const std::string& line, char sep) {
  std::vector<std::string> out;
  std::string field;
  std::istringstream in(line);
  while (std::getline(in, field, sep)) out.push_back(field);
  if (!line.empty() && line.back() == sep) out.emplace_back();
  return out;
}

bool parse_id(const std::string& s, unsigned long* out) {
  if (s.empty() || s.size() > 10) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  *out = std::strtoul(s.c_str(), nullptr, 10);
  return *out < 0xffffffffUL;
}

}  // namespace

AccountFiles account_files(const AgentConfig& config) { return AccountFiles{config.passwd_file, config.group_file}; }

std::optional<UserEntry> find_user(const std::string& name, const AccountFiles& files) {
  if (name.empty()) return std::nullopt;
  std::istringstream f = account_file(files.passwd);
  std::string line;
  while (std::getline(f, line)) {
    auto fields = split(line, ':');
    if (fields.size() < 7 || fields[0] != name) continue;
    unsigned long uid = 0, gid = 0;
    if (!parse_id(fields[2], &uid) || !parse_id(fields[3], &gid)) continue;
    return UserEntry{fields[0], static_cast<uid_t>(uid), static_cast<gid_t>(gid), fields[5], fields[6]};
  }
  return std::nullopt;
}

std::optional<gid_t> find_group(const std::string& name, const AccountFiles& files) {
  std::istringstream f = account_file(files.group);
  std::string line;
  while (std::getline(f, line)) {
    auto fields = split(line, ':');
    unsigned long gid = 0;
    if (fields.size() >= 3 && fields[0] == name && parse_id(fields[2], &gid)) return static_cast<gid_t>(gid);
  }
  return std::nullopt;
}

std::vector<gid_t> groups_of(const std::string& user, gid_t primary, const AccountFiles& files) {
  std::vector<gid_t> out{primary};
  std::istringstream f = account_file(files.group);
  std::string line;
  while (std::getline(f, line)) {
    auto fields = split(line, ':');
    unsigned long gid = 0;
    if (fields.size() < 4 || !parse_id(fields[2], &gid)) continue;
    for (const auto& member : split(fields[3], ',')) {
      if (member == user && static_cast<gid_t>(gid) != primary) out.push_back(static_cast<gid_t>(gid));
    }
  }
  return out;
}

bool parse_owner(const std::string& spec, uid_t* uid, gid_t* gid, std::string* error, const AccountFiles& files) {
  const auto colon = spec.find(':');
  const std::string user = spec.substr(0, colon);
  const std::string group = colon == std::string::npos ? "" : spec.substr(colon + 1);
  unsigned long n = 0;
  if (parse_id(user, &n)) {
    *uid = static_cast<uid_t>(n);
    *gid = static_cast<gid_t>(n);
  } else if (auto u = find_user(user, files)) {
    *uid = u->uid;
    *gid = u->gid;
  } else {
    *error = "no such user: " + user;
    return false;
  }
  if (colon == std::string::npos) return true;
  if (parse_id(group, &n)) {
    *gid = static_cast<gid_t>(n);
  } else if (auto g = find_group(group, files)) {
    *gid = *g;
  } else {
    *error = "no such group: " + group;
    return false;
  }
  return true;
}

}  // namespace qtx::agent
