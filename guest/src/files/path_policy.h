// PathPolicy: resolves host-supplied paths for the file commands.
//
// With no roots configured, paths resolve as the kernel resolves them.
// With roots, a path must be absolute and lie under one of them; it is walked
// one component at a time with openat(O_NOFOLLOW) from the root's descriptor,
// so neither "..", nor a symlink, nor a directory swapped for a symlink while
// we walk can lead outside: every step holds the previous step's descriptor.
// ".." is refused outright; a symlink on the way is refused (DENIED).
#pragma once

#include <string>
#include <vector>

#include "qtx/agent/v1/error.pb.h"
#include "util/unique_fd.h"

namespace qtx::agent {

// An error for the host: a code and a message (and an errno when one applies).
struct PathError {
  ::qtx::agent::v1::ErrorCode code = ::qtx::agent::v1::ERROR_CODE_UNSPECIFIED;
  std::string message;
  int os_errno = 0;
  explicit operator bool() const { return code != ::qtx::agent::v1::ERROR_CODE_UNSPECIFIED; }
};

class PathPolicy {
 public:
  explicit PathPolicy(std::vector<std::string> roots) : roots_(std::move(roots)) {}

  bool confined() const { return !roots_.empty(); }

  // The directory containing `path` (an O_PATH descriptor) and the final
  // component. For a path naming a root itself (or "/"), `name` is "." and
  // `dir` is that directory.
  PathError resolve_parent(const std::string& path, UniqueFd* dir, std::string* name) const;

  // Opens `path`; O_NOFOLLOW is added when confined, so the final component
  // is never a symlink out of the roots.
  PathError open(const std::string& path, int flags, unsigned mode, UniqueFd* out) const;

  // Flags for *at() calls on the final component: AT_SYMLINK_NOFOLLOW when
  // confined (or when the caller asked not to follow), 0 otherwise.
  int at_flags(bool follow_symlinks) const;

 private:
  std::vector<std::string> roots_;
};

// Splits an absolute path into components, dropping "" and ".". False (with
// *error set) for relative paths, NUL bytes, or over-long paths.
bool split_path(const std::string& path, std::vector<std::string>* parts, PathError* error);

}  // namespace qtx::agent
