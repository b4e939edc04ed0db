#include "atomic_file.h"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "qtx/unique_fd.h"

namespace qtx::agent {

int replace_file_at(int dir, const std::string& name, const std::string& contents, unsigned mode, int uid, int gid,
                    bool force_attrs) {
  struct stat old {};
  const bool found = ::fstatat(dir, name.c_str(), &old, AT_SYMLINK_NOFOLLOW) == 0;
  if (found && !S_ISREG(old.st_mode) && !S_ISLNK(old.st_mode)) return EINVAL;
  // A symlink is replaced by a regular file, never followed.
  const bool exists = found && S_ISREG(old.st_mode) && !force_attrs;
  unsigned char r[6] = {};
  (void)::getrandom(r, sizeof(r), 0);
  char suffix[16];
  std::snprintf(suffix, sizeof(suffix), "%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2], r[3], r[4], r[5]);
  const std::string temp = "." + name + ".qtx-" + suffix;
  UniqueFd fd(::openat(dir, temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd.valid()) return errno;
  auto fail = [&](int err) {
    ::unlinkat(dir, temp.c_str(), 0);
    return err;
  };
  std::size_t done = 0;
  while (done < contents.size()) {
    ssize_t n = ::write(fd.get(), contents.data() + done, contents.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(errno);
    done += static_cast<std::size_t>(n);
  }
  const uid_t u = exists ? old.st_uid : static_cast<uid_t>(uid);
  const gid_t g = exists ? old.st_gid : static_cast<gid_t>(gid);
  if ((exists || uid >= 0 || gid >= 0) && ::fchown(fd.get(), u, g) != 0) return fail(errno);
  if (::fchmod(fd.get(), exists ? (old.st_mode & 07777) : mode) != 0) return fail(errno);
  if (::fsync(fd.get()) != 0) return fail(errno);
  if (::renameat(dir, temp.c_str(), dir, name.c_str()) != 0) return fail(errno);
  ::fsync(dir);
  return 0;
}

int replace_file(const std::string& path, const std::string& contents, unsigned mode, int uid, int gid) {
  const auto slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  const std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  UniqueFd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!d.valid()) return errno;
  return replace_file_at(d.get(), name, contents, mode, uid, gid);
}

}  // namespace qtx::agent
