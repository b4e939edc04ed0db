// Local accounts from /etc/passwd and /etc/group, parsed directly: the agent
// is a static binary and glibc's NSS modules are not available to it, so only
// local ("files") accounts are known. That covers cloud images and installers;
// directory-service users are not resolved (documented in docs/agent.md).
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace qtx::agent {

struct UserEntry {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
  std::string home;
  std::string shell;
};

struct AccountFiles {
  std::string passwd = "/etc/passwd";
  std::string group = "/etc/group";
};

struct AgentConfig;
// The account files the configuration names.
AccountFiles account_files(const AgentConfig& config);

std::optional<UserEntry> find_user(const std::string& name, const AccountFiles& files = AccountFiles());
std::optional<gid_t> find_group(const std::string& name, const AccountFiles& files = AccountFiles());
// Supplementary groups of `user` (the groups listing it as a member), plus `primary`.
std::vector<gid_t> groups_of(const std::string& user, gid_t primary, const AccountFiles& files = AccountFiles());

// "user", "user:group", "uid:gid" (numbers) -> ids. False with *error set
// when a name is unknown or the spec is malformed. A missing group means the
// user's primary group.
bool parse_owner(const std::string& spec, uid_t* uid, gid_t* gid, std::string* error,
                 const AccountFiles& files = AccountFiles());

}  // namespace qtx::agent
