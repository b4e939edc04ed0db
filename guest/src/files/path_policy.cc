#include "path_policy.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "agent_config.h"

namespace qtx::agent {
namespace {

using v1::ERROR_CODE_DENIED;
using v1::ERROR_CODE_INVALID_ARGUMENT;

PathError error(v1::ErrorCode code, std::string message, int err = 0) {
  return PathError{code, std::move(message), err};
}

PathError os_error(const std::string& what, int err) {
  v1::ErrorCode code = v1::ERROR_CODE_IO;
  if (err == ENOENT) code = v1::ERROR_CODE_NOT_FOUND;
  if (err == ENOTDIR || err == ENAMETOOLONG || err == ELOOP) code = ERROR_CODE_INVALID_ARGUMENT;
  return error(code, what + ": " + std::strerror(err), err);
}

std::string join(const std::vector<std::string>& parts, std::size_t n) {
  std::string out;
  for (std::size_t i = 0; i < n; ++i) out += "/" + parts[i];
  return out.empty() ? "/" : out;
}

}  // namespace

bool split_path(const std::string& path, std::vector<std::string>* parts, PathError* err) {
  parts->clear();
  if (path.empty() || path[0] != '/') {
    *err = error(ERROR_CODE_INVALID_ARGUMENT, "paths must be absolute: \"" + path + "\"");
    return false;
  }
  if (path.find('\0') != std::string::npos) {
    *err = error(ERROR_CODE_INVALID_ARGUMENT, "path contains a NUL byte");
    return false;
  }
  if (path.size() >= PATH_MAX) {
    *err = error(ERROR_CODE_INVALID_ARGUMENT, "path is longer than PATH_MAX", ENAMETOOLONG);
    return false;
  }
  std::size_t i = 0;
  while (i < path.size()) {
    std::size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    std::string part = path.substr(i, j - i);
    if (!part.empty() && part != ".") parts->push_back(std::move(part));
    i = j + 1;
  }
  return true;
}

int PathPolicy::at_flags(bool follow_symlinks) const {
  return (confined() || !follow_symlinks) ? AT_SYMLINK_NOFOLLOW : 0;
}

PathError PathPolicy::resolve_parent(const std::string& path, UniqueFd* dir, std::string* name) const {
  std::vector<std::string> parts;
  PathError err;
  if (!split_path(path, &parts, &err)) return err;

  if (!confined()) {
    const std::string parent = parts.empty() ? "/" : join(parts, parts.size() - 1);
    int fd = ::open(parent.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return os_error(parent, errno);
    dir->reset(fd);
    *name = parts.empty() ? "." : parts.back();
    return {};
  }

  for (const auto& p : parts) {
    if (p == "..") return error(ERROR_CODE_DENIED, "\"..\" is not allowed in paths under file_roots: " + path);
  }
  // The longest root that is a component-wise prefix of the path.
  const std::string* best = nullptr;
  std::vector<std::string> best_parts;
  std::string best_root;
  for (const auto& root : roots_) {
    std::vector<std::string> rp;
    PathError ignored;
    if (!split_path(root, &rp, &ignored) || rp.size() > parts.size()) continue;
    if (!std::equal(rp.begin(), rp.end(), parts.begin())) continue;
    if (best == nullptr || rp.size() > best_parts.size()) {
      best = &root;
      best_parts = rp;
      best_root = root;
    }
  }
  if (best == nullptr) return error(ERROR_CODE_DENIED, "outside the allowed file roots: " + path);

  UniqueFd cur(::open(best_root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!cur.valid()) return os_error("file root " + best_root, errno);
  if (parts.size() == best_parts.size()) {  // the root itself
    *dir = std::move(cur);
    *name = ".";
    return {};
  }
  for (std::size_t i = best_parts.size(); i + 1 < parts.size(); ++i) {
    int fd = ::openat(cur.get(), parts[i].c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      const int e = errno;
      struct stat st {};
      if (e == ENOTDIR && ::fstatat(cur.get(), parts[i].c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
          S_ISLNK(st.st_mode)) {
        return error(ERROR_CODE_DENIED, "path goes through a symlink under file_roots: " + join(parts, i + 1));
      }
      return os_error(join(parts, i + 1), e);
    }
    cur.reset(fd);
  }
  *dir = std::move(cur);
  *name = parts.back();
  return {};
}

PathError PathPolicy::open(const std::string& path, int flags, unsigned mode, UniqueFd* out) const {
  UniqueFd dir;
  std::string name;
  if (PathError e = resolve_parent(path, &dir, &name)) return e;
  if (confined()) flags |= O_NOFOLLOW;
  int fd = ::openat(dir.get(), name.c_str(), flags | O_CLOEXEC, mode);
  if (fd < 0) {
    const int e = errno;
    if (e == ELOOP && confined())
      return error(ERROR_CODE_DENIED, "refusing to follow a symlink under file_roots: " + path, e);
    return os_error(path, e);
  }
  out->reset(fd);
  return {};
}

PathError PathPolicy::check_links(const struct stat& st, const std::string& path) const {
  if (!confined() || allow_hard_links_ || !S_ISREG(st.st_mode) || st.st_nlink <= 1) return {};
  return error(ERROR_CODE_DENIED, path + " has " + std::to_string(st.st_nlink) +
                                      " hard links: refused under file_roots (policy.file_allow_hard_links)");
}

PathError PathPolicy::open_regular(const std::string& path, int flags, unsigned mode, UniqueFd* out) const {
  UniqueFd dir;
  std::string name;
  if (PathError e = resolve_parent(path, &dir, &name)) return e;
  if (name == ".") return error(ERROR_CODE_INVALID_ARGUMENT, path + " is not a regular file");
  return open_regular_at(dir.get(), name, path, flags, mode, out);
}

PathError PathPolicy::open_regular_at(int dir, const std::string& name, const std::string& path, int flags,
                                      unsigned mode, UniqueFd* out) const {
  const PathError not_regular = error(ERROR_CODE_INVALID_ARGUMENT, path + " is not a regular file");
  struct stat st {};
  // A look first, so that a device is not even opened (opening one can act).
  if (::fstatat(dir, name.c_str(), &st, confined() ? AT_SYMLINK_NOFOLLOW : 0) == 0) {
    if (S_ISLNK(st.st_mode))
      return error(ERROR_CODE_DENIED, "refusing to follow a symlink under file_roots: " + path, ELOOP);
    if (!S_ISREG(st.st_mode)) return not_regular;
  }
  if (confined()) flags |= O_NOFOLLOW;
  const bool truncate = (flags & O_TRUNC) != 0;
  UniqueFd fd(::openat(dir, name.c_str(), (flags & ~O_TRUNC) | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, mode));
  if (!fd.valid()) {
    const int e = errno;
    if (e == ELOOP && confined())
      return error(ERROR_CODE_DENIED, "refusing to follow a symlink under file_roots: " + path, e);
    if (e == ENXIO) return not_regular;  // a FIFO without a reader, swapped in since the look
    return os_error(path, e);
  }
  // What was opened is what counts: the name may have changed since the look.
  if (::fstat(fd.get(), &st) != 0) return os_error(path, errno);
  if (!S_ISREG(st.st_mode)) return not_regular;
  if (PathError e = check_links(st, path)) return e;
  if (truncate && ::ftruncate(fd.get(), 0) != 0) return os_error(path, errno);
  const int fl = ::fcntl(fd.get(), F_GETFL);
  if (fl >= 0) ::fcntl(fd.get(), F_SETFL, fl & ~O_NONBLOCK);
  *out = std::move(fd);
  return {};
}

PathPolicy file_policy(const AgentConfig& config) {
  return PathPolicy(config.file_roots, config.file_allow_hard_links);
}

int read_regular_file(int dir, const std::string& name, int flags, std::size_t max_bytes, std::string* text) {
  text->clear();
  UniqueFd fd(::openat(dir, name.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC | flags));
  if (!fd.valid()) return errno;
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return errno;
  if (!S_ISREG(st.st_mode)) return EINVAL;
  char buf[8192];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    if (n == 0) return 0;
    if (text->size() + static_cast<std::size_t>(n) > max_bytes) return EFBIG;
    text->append(buf, static_cast<std::size_t>(n));
  }
}

}  // namespace qtx::agent
