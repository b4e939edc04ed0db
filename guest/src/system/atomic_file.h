// Replacing a small system file atomically: a temporary beside it with the
// same mode and owner, fsync, rename over the original, fsync the directory.
// A crash leaves either the old file or the new one, never a torn mix.
#pragma once

#include <string>

namespace qtx::agent {

// Returns 0 or an errno. `mode`/`uid`/`gid` are used when the file does not
// exist yet; an existing file's are kept. Symlinks are never followed.
int replace_file(const std::string& path, const std::string& contents, unsigned mode = 0644, int uid = -1,
                 int gid = -1);

// Like replace_file, relative to an open directory (O_NOFOLLOW throughout).
// With `force_attrs`, mode/uid/gid apply even when the file exists.
int replace_file_at(int dir_fd, const std::string& name, const std::string& contents, unsigned mode, int uid, int gid,
                    bool force_attrs = false);

}  // namespace qtx::agent
