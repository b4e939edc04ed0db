// PathPolicy: resolves host-supplied paths for the file commands.
//
// With no roots configured, paths resolve as the kernel resolves them.
// With roots, a path must be absolute and lie under one of them; it is walked
// one component at a time with openat(O_NOFOLLOW) from the root's descriptor,
// so neither "..", nor a symlink, nor a directory swapped for a symlink while
// we walk can lead outside: every step holds the previous step's descriptor.
// ".." is refused outright; a symlink on the way is refused (DENIED).
//
// Files whose contents a command reads or writes are opened with
// open_regular(): never a FIFO, socket or device (one could block a worker
// for ever), and, under file_roots, never a regular file with a second hard
// link unless policy.file_allow_hard_links (the other link may be outside
// the roots: docs/threat-model.md, section 3).
#pragma once

#include <sys/stat.h>

#include <string>
#include <vector>

#include "qtx/agent/v1/error.pb.h"
#include "qtx/unique_fd.h"

namespace qtx::agent {

// An error for the host: a code and a message (and an errno when one applies).
struct PathError {
  ::qtx::agent::v1::ErrorCode code = ::qtx::agent::v1::ERROR_CODE_UNSPECIFIED;
  std::string message;
  int os_errno = 0;
  explicit operator bool() const { return code != ::qtx::agent::v1::ERROR_CODE_UNSPECIFIED; }
};

struct AgentConfig;

class PathPolicy {
 public:
  explicit PathPolicy(std::vector<std::string> roots, bool allow_hard_links = false)
      : roots_(std::move(roots)), allow_hard_links_(allow_hard_links) {}

  bool confined() const { return !roots_.empty(); }

  // The directory containing `path` (an O_PATH descriptor) and the final
  // component. For a path naming a root itself (or "/"), `name` is "." and
  // `dir` is that directory.
  PathError resolve_parent(const std::string& path, UniqueFd* dir, std::string* name) const;

  // Opens `path`; O_NOFOLLOW is added when confined, so the final component
  // is never a symlink out of the roots.
  PathError open(const std::string& path, int flags, unsigned mode, UniqueFd* out) const;

  // Opens the regular file `path` for reading or writing its contents.
  // Nothing is opened that could block: a name that is not a regular file is
  // refused (INVALID_ARGUMENT) before opening it, and what was opened
  // (O_NONBLOCK, then fstat) is refused too when it is not one after all.
  // When confined, a regular file with more than one link is refused
  // (DENIED) unless hard links are allowed. O_TRUNC takes effect only once
  // those checks passed; O_NONBLOCK is cleared again before returning.
  PathError open_regular(const std::string& path, int flags, unsigned mode, UniqueFd* out) const;
  // The same for `name` in the directory `dir` (from resolve_parent);
  // `path` names it in messages.
  PathError open_regular_at(int dir, const std::string& name, const std::string& path, int flags, unsigned mode,
                            UniqueFd* out) const;

  // DENIED for a regular file with more than one hard link under file_roots
  // (unless allowed): changing its attributes would change the other link's.
  PathError check_links(const struct stat& st, const std::string& path) const;

  // Flags for *at() calls on the final component: AT_SYMLINK_NOFOLLOW when
  // confined (or when the caller asked not to follow), 0 otherwise.
  int at_flags(bool follow_symlinks) const;

 private:
  std::vector<std::string> roots_;
  bool allow_hard_links_;
};

// The policy the configuration sets for the file commands.
PathPolicy file_policy(const AgentConfig& config);

// Reads the regular file `name` in `dir` (or `path`, with dir AT_FDCWD) into
// *text, at most `max_bytes` of it (EFBIG beyond). Never blocks on a FIFO or
// device: those are refused with EINVAL before anything is read. `flags` adds
// to O_RDONLY (O_NOFOLLOW, say). 0 or an errno.
int read_regular_file(int dir, const std::string& name, int flags, std::size_t max_bytes, std::string* text);

// Splits an absolute path into components, dropping "" and ".". False (with
// *error set) for relative paths, NUL bytes, or over-long paths.
bool split_path(const std::string& path, std::vector<std::string>* parts, PathError* error);

}  // namespace qtx::agent
