// file_stat, file_list, file_mkdir, file_remove, file_set_attr, file_hash.
// Each runs on a worker under the policy's PathPolicy and answers once.
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <asio/post.hpp>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>

#include "files/file_ops.h"
#include "files/path_policy.h"
#include "handlers.h"
#include "operation.h"
#include "qtx/wire/sha256.h"
#include "reply.h"
#include "session.h"
#include "system/accounts.h"

namespace qtx::agent {
namespace {

constexpr std::size_t kMaxListEntries = 100000;
// "user:group" longer than this names no account (names are at most 32 bytes).
constexpr std::size_t kMaxOwnerSpec = 256;
// file_hash reads (and checks for a cancel) in steps of this size.
constexpr std::size_t kHashStep = 1 << 20;

v1::Response path_error(const PathError& e) { return error_response(e.code, e.message, e.os_errno); }

// The fields this agent knows, without the unknown ones a host may have
// padded a request with (a queued job keeps its request).
v1::FileStatRequest known_fields(const v1::FileStatRequest& r) {
  v1::FileStatRequest out;
  out.set_path(r.path());
  out.set_follow_symlinks(r.follow_symlinks());
  return out;
}
v1::FileListRequest known_fields(const v1::FileListRequest& r) {
  v1::FileListRequest out;
  out.set_path(r.path());
  return out;
}
v1::FileMkdirRequest known_fields(const v1::FileMkdirRequest& r) {
  v1::FileMkdirRequest out;
  out.set_path(r.path());
  out.set_mode(r.mode());
  out.set_parents(r.parents());
  return out;
}
v1::FileRemoveRequest known_fields(const v1::FileRemoveRequest& r) {
  v1::FileRemoveRequest out;
  out.set_path(r.path());
  out.set_recursive(r.recursive());
  return out;
}
v1::FileSetAttrRequest known_fields(const v1::FileSetAttrRequest& r) {
  v1::FileSetAttrRequest out;
  out.set_path(r.path());
  if (r.has_mode()) out.set_mode(r.mode());
  out.set_owner(r.owner());
  return out;
}

// Runs `work(policy, req)` on a worker with the session's current PathPolicy.
// A path no policy can accept is answered at once, and the job keeps only
// the fields this agent knows: a queued request costs little whatever the
// host padded it with.
template <typename Request, typename Work>
void on_worker(Session& s, std::uint64_t id, const Request& request, Work work) {
  if (request.path().size() >= PATH_MAX) {
    return s.respond(id, error_response(v1::ERROR_CODE_INVALID_ARGUMENT, "path is longer than PATH_MAX", ENAMETOOLONG));
  }
  Request req = known_fields(request);
  Reply reply(s.weak(), id);
  asio::post(s.agent().workers, [reply, policy = file_policy(s.agent().config), req = std::move(req), work] {
    reply.send(work(policy, req));
  });
}

// A file_hash in progress, so that the host's Cancel and the session's end
// reach it: cancel() answers CANCELLED at once and raises `stop`, which the
// worker checks before every step of kHashStep bytes (its own answer is then
// ignored: the Reply answers once).
class HashOperation : public Operation {
 public:
  HashOperation(Reply reply, std::shared_ptr<std::atomic<bool>> stop)
      : reply_(std::move(reply)), stop_(std::move(stop)) {}
  void on_progress(const v1::Progress&) override {}
  void on_credit(std::uint64_t) override {}
  void cancel() override {
    stop_->store(true);
    reply_.error(v1::ERROR_CODE_CANCELLED, "file hash cancelled");
  }

 private:
  Reply reply_;
  std::shared_ptr<std::atomic<bool>> stop_;
};

v1::FileType type_of(mode_t m) {
  if (S_ISREG(m)) return v1::FILE_TYPE_REGULAR;
  if (S_ISDIR(m)) return v1::FILE_TYPE_DIRECTORY;
  if (S_ISLNK(m)) return v1::FILE_TYPE_SYMLINK;
  return v1::FILE_TYPE_OTHER;
}

void fill_stat(const struct stat& st, v1::FileStat* out) {
  out->set_type(type_of(st.st_mode));
  out->set_size(static_cast<std::uint64_t>(st.st_size));
  out->set_mode(st.st_mode & 07777);
  out->set_uid(st.st_uid);
  out->set_gid(st.st_gid);
  out->set_mtime_ns(static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec);
}

void fill_link_target(int dir, const std::string& name, v1::FileStat* out) {
  char buf[4096];
  ssize_t n = ::readlinkat(dir, name.c_str(), buf, sizeof(buf));
  if (n > 0) out->set_symlink_target(std::string(buf, static_cast<std::size_t>(n)));
}

// Removes everything below the open directory `dir`, never following symlinks.
int remove_tree(int dir) {
  int dup = ::openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dup < 0) return errno;
  DIR* d = ::fdopendir(dup);
  if (d == nullptr) {
    ::close(dup);
    return errno;
  }
  std::vector<std::pair<std::string, bool>> entries;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    struct stat st {};
    if (::fstatat(dir, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    entries.emplace_back(n, S_ISDIR(st.st_mode));
  }
  ::closedir(d);
  for (const auto& [n, is_dir] : entries) {
    if (is_dir) {
      int sub = ::openat(dir, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub < 0) return errno;
      int err = remove_tree(sub);
      ::close(sub);
      if (err != 0) return err;
      if (::unlinkat(dir, n.c_str(), AT_REMOVEDIR) != 0) return errno;
    } else if (::unlinkat(dir, n.c_str(), 0) != 0) {
      return errno;
    }
  }
  return 0;
}

}  // namespace

v1::Response make_directories(const PathPolicy& policy, const v1::FileMkdirRequest& req) {
  const mode_t mode = req.mode() ? (req.mode() & 07777) : 0755;
  std::vector<std::string> parts;
  PathError err;
  if (!split_path(req.path(), &parts, &err)) return path_error(err);
  if (parts.empty()) return error_response(v1::ERROR_CODE_ALREADY_EXISTS, "/ exists");
  // With parents, create each missing ancestor in turn, each resolved anew.
  const std::size_t first = req.parents() ? 1 : parts.size();
  for (std::size_t n = first; n <= parts.size(); ++n) {
    std::string prefix;
    for (std::size_t i = 0; i < n; ++i) prefix += "/" + parts[i];
    UniqueFd dir;
    std::string name;
    if (PathError e = policy.resolve_parent(prefix, &dir, &name)) {
      if (req.parents() && e.code == v1::ERROR_CODE_DENIED && n < parts.size()) continue;  // above the root
      return path_error(e);
    }
    if (name == ".") continue;  // a file root itself
    if (::mkdirat(dir.get(), name.c_str(), mode) != 0) {
      const int e = errno;
      struct stat st {};
      const bool is_dir = ::fstatat(dir.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
      if (e == EEXIST && is_dir && (req.parents() || n < parts.size())) continue;
      return errno_response(prefix, e);
    }
  }
  return done_response();
}

void handle_file_stat(Session& s, std::uint64_t id, const v1::FileStatRequest& request) {
  on_worker(s, id, request, [](const PathPolicy& policy, const v1::FileStatRequest& req) {
    UniqueFd dir;
    std::string name;
    if (PathError e = policy.resolve_parent(req.path(), &dir, &name)) return path_error(e);
    struct stat st {};
    if (::fstatat(dir.get(), name.c_str(), &st, policy.at_flags(req.follow_symlinks())) != 0) {
      return errno_response(req.path(), errno);
    }
    v1::Response r;
    auto* out = r.mutable_file_stat();
    out->set_path(req.path());
    fill_stat(st, out);
    if (S_ISLNK(st.st_mode)) fill_link_target(dir.get(), name, out);
    return r;
  });
}

void handle_file_list(Session& s, std::uint64_t id, const v1::FileListRequest& request) {
  const std::size_t budget = s.agent().config.max_message - 4096;
  on_worker(s, id, request, [budget](const PathPolicy& policy, const v1::FileListRequest& req) {
    UniqueFd fd;
    if (PathError e = policy.open(req.path(), O_RDONLY | O_DIRECTORY, 0, &fd)) return path_error(e);
    DIR* d = ::fdopendir(fd.get());
    if (d == nullptr) return errno_response(req.path(), errno);
    const int dfd = fd.release();  // owned by d now
    std::vector<std::string> names;
    while (dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") names.push_back(std::move(n));
    }
    std::sort(names.begin(), names.end());
    v1::Response r;
    auto* list = r.mutable_file_list();
    std::size_t size = 0;
    for (const auto& n : names) {
      if (list->entries_size() == static_cast<int>(kMaxListEntries) || size > budget) {
        list->set_truncated(true);
        break;
      }
      struct stat st {};
      if (::fstatat(dfd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;  // vanished meanwhile
      auto* entry = list->add_entries();
      entry->set_path(n);
      fill_stat(st, entry);
      if (S_ISLNK(st.st_mode)) fill_link_target(dfd, n, entry);
      size += entry->ByteSizeLong() + 4;
    }
    ::closedir(d);
    return r;
  });
}

void handle_file_mkdir(Session& s, std::uint64_t id, const v1::FileMkdirRequest& request) {
  on_worker(s, id, request,
            [](const PathPolicy& policy, const v1::FileMkdirRequest& req) { return make_directories(policy, req); });
}

void handle_file_remove(Session& s, std::uint64_t id, const v1::FileRemoveRequest& request) {
  on_worker(s, id, request, [](const PathPolicy& policy, const v1::FileRemoveRequest& req) {
    UniqueFd dir;
    std::string name;
    if (PathError e = policy.resolve_parent(req.path(), &dir, &name)) return path_error(e);
    if (name == ".") return error_response(v1::ERROR_CODE_INVALID_ARGUMENT, "refusing to remove " + req.path());
    struct stat st {};
    if (::fstatat(dir.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return errno_response(req.path(), errno);
    if (S_ISDIR(st.st_mode)) {
      if (req.recursive()) {
        int sub = ::openat(dir.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0) return errno_response(req.path(), errno);
        int err = remove_tree(sub);
        ::close(sub);
        if (err != 0) return errno_response(req.path(), err);
      }
      if (::unlinkat(dir.get(), name.c_str(), AT_REMOVEDIR) != 0) {
        const int e = errno;
        if (e == ENOTEMPTY || e == EEXIST) {
          return error_response(v1::ERROR_CODE_FAILED_PRECONDITION,
                                req.path() + " is a non-empty directory: ask for a recursive remove", e);
        }
        return errno_response(req.path(), e);
      }
    } else if (::unlinkat(dir.get(), name.c_str(), 0) != 0) {
      return errno_response(req.path(), errno);
    }
    return done_response();
  });
}

void handle_file_set_attr(Session& s, std::uint64_t id, const v1::FileSetAttrRequest& request) {
  if (request.owner().size() > kMaxOwnerSpec) {
    return s.respond(id, error_response(v1::ERROR_CODE_INVALID_ARGUMENT, "owner is not a user or user:group"));
  }
  const AccountFiles accounts = account_files(s.agent().config);
  on_worker(s, id, request, [accounts](const PathPolicy& policy, const v1::FileSetAttrRequest& req) {
    uid_t uid = static_cast<uid_t>(-1);
    gid_t gid = static_cast<gid_t>(-1);
    std::string why;
    if (!req.owner().empty() && !parse_owner(req.owner(), &uid, &gid, &why, accounts)) {
      return error_response(v1::ERROR_CODE_INVALID_ARGUMENT, why);
    }
    // O_PATH does not allow fchmod; O_RDONLY|O_NOFOLLOW (when confined) does,
    // and never acts on a symlink's target outside the roots.
    UniqueFd fd;
    if (PathError e = policy.open(req.path(), O_RDONLY | O_NONBLOCK | O_NOCTTY, 0, &fd)) return path_error(e);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return errno_response(req.path(), errno);
    if (PathError e = policy.check_links(st, req.path())) return path_error(e);
    if (req.has_mode() && ::fchmod(fd.get(), req.mode() & 07777) != 0) return errno_response(req.path(), errno);
    if (!req.owner().empty() && ::fchown(fd.get(), uid, gid) != 0) return errno_response(req.path(), errno);
    return done_response();
  });
}

void handle_file_hash(Session& s, std::uint64_t id, const v1::FileHashRequest& request) {
  if (request.path().size() >= PATH_MAX) {
    return s.respond(id, error_response(v1::ERROR_CODE_INVALID_ARGUMENT, "path is longer than PATH_MAX", ENAMETOOLONG));
  }
  Reply reply(s.weak(), id);
  auto stop = std::make_shared<std::atomic<bool>>(false);
  s.add_operation(id, std::make_shared<HashOperation>(reply, stop));
  asio::post(s.agent().workers, [reply, stop, policy = file_policy(s.agent().config), path = request.path()] {
    if (stop->load()) return;
    UniqueFd fd;
    if (PathError e = policy.open_regular(path, O_RDONLY, 0, &fd)) return reply.send(path_error(e));
    wire::Sha256 h;
    std::vector<char> buf(kHashStep);
    std::uint64_t size = 0;
    for (;;) {
      if (stop->load()) return;  // answered CANCELLED already
      ssize_t n = ::read(fd.get(), buf.data(), buf.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return reply.send(errno_response(path, errno));
      if (n == 0) break;
      h.update(buf.data(), static_cast<std::size_t>(n));
      size += static_cast<std::uint64_t>(n);
    }
    v1::Response r;
    r.mutable_file_hash()->set_sha256(wire::Sha256::bytes(h.finish()));
    r.mutable_file_hash()->set_size(size);
    reply.send(std::move(r));
  });
}

}  // namespace qtx::agent
