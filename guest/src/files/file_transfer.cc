#include "file_transfer.h"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <asio/post.hpp>
#include <cerrno>
#include <deque>
#include <memory>
#include <spdlog/spdlog.h>

#include "files/file_ops.h"
#include "files/path_policy.h"
#include "operation.h"
#include "qtx/quote.h"
#include "qtx/wire/sha256.h"
#include "reply.h"
#include "session.h"
#include "system/accounts.h"

namespace qtx::agent {
namespace {

// Room for the envelope around a chunk's data.
constexpr std::size_t kChunkOverhead = 256;

v1::Response path_error(const PathError& e) { return error_response(e.code, e.message, e.os_errno); }

// Counts an open transfer against the limit for as long as it lives. Taken
// when the request is dispatched, before any work is queued, so a burst of
// requests cannot pass the check before the first of them is counted. It is
// shared by the setup's jobs and then the operation, and always released on
// the io thread: a worker job moves its reference into the post back.
class TransferSlot {
 public:
  explicit TransferSlot(AgentContext& a) : agent_(&a) { ++agent_->open_transfers; }
  ~TransferSlot() { --agent_->open_transfers; }
  TransferSlot(const TransferSlot&) = delete;
  TransferSlot& operator=(const TransferSlot&) = delete;

 private:
  AgentContext* agent_;
};

// A slot for request `id`, or null after answering BUSY.
std::shared_ptr<TransferSlot> take_transfer_slot(Session& s, std::uint64_t id) {
  const auto& c = s.agent().config;
  if (s.agent().open_transfers >= c.max_open_transfers) {
    s.respond(id, error_response(v1::ERROR_CODE_BUSY,
                                 "too many open transfers (limit " + std::to_string(c.max_open_transfers) + ")"));
    return nullptr;
  }
  return std::make_shared<TransferSlot>(s.agent());
}

// A read's chunk: as asked (or the default), within one message and within
// half the outbox, the room streams get (see Session::reserve_stream).
std::uint32_t chunk_limit(const AgentContext& a, std::uint32_t requested) {
  std::uint64_t chunk = requested ? requested : kDefaultChunk;
  chunk = std::min<std::uint64_t>(chunk, a.config.max_message - kChunkOverhead);
  chunk = std::min<std::uint64_t>(chunk, a.config.outbox_bytes / 2);
  return static_cast<std::uint32_t>(std::max<std::uint64_t>(1, chunk));
}

// --- read --------------------------------------------------------------------

class FileReadOp : public Operation, public std::enable_shared_from_this<FileReadOp> {
 public:
  FileReadOp(Session& s, std::uint64_t id, const v1::FileReadRequest& req, UniqueFd fd, std::uint64_t file_size,
             std::shared_ptr<TransferSlot> slot)
      : session_(s.weak()),
        agent_(s.agent()),
        slot_(std::move(slot)),
        id_(id),
        fd_(std::move(fd)),
        offset_(req.offset()),
        remaining_(req.length() ? req.length() : (file_size > req.offset() ? file_size - req.offset() : 0)),
        chunk_(chunk_limit(s.agent(), req.chunk_size())),
        credit_(req.window() ? req.window() : kDefaultWindow),
        file_size_(file_size),
        hashing_(!req.skip_sha256()) {}

  void start() { pump(); }

  void on_progress(const v1::Progress&) override {}
  void on_credit(std::uint64_t bytes) override {
    credit_ += bytes;
    pump();
  }
  void on_outbox_room() override { pump(); }
  void cancel() override {
    if (finished_) return;
    finished_ = true;
    if (auto s = session_.lock()) s->respond(id_, error_response(v1::ERROR_CODE_CANCELLED, "file read cancelled"));
  }

 private:
  void pump() {
    auto s = session_.lock();
    if (!s || s->stopped() || finished_ || reading_) return;
    if (remaining_ == 0) return finish(*s);
    if (credit_ == 0) return;  // resumed by on_credit
    const std::uint64_t n = std::min<std::uint64_t>({chunk_, credit_, remaining_});
    // The chunk's bytes count against the outbox from before the read until
    // they are queued in it: all reads together hold at most the stream room
    // plus one chunk, however many run.
    if (!s->reserve_stream(n)) return;  // resumed by on_outbox_room
    reserved_ = n;
    reading_ = true;
    // Worker jobs hand their reference back to the io thread (moved into
    // the post), so the operation always dies there: see TransferSlot.
    asio::post(agent_.workers, [self = shared_from_this(), n]() mutable {
      auto data = std::make_shared<std::string>(n, '\0');
      std::size_t got = 0;
      int err = 0;
      while (got < n) {
        ssize_t r = ::pread(self->fd_.get(), data->data() + got, n - got, static_cast<off_t>(self->offset_ + got));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
          err = errno;
          break;
        }
        if (r == 0) break;  // the file shrank
        got += static_cast<std::size_t>(r);
      }
      data->resize(got);
      if (self->hashing_) self->hash_.update(*data);  // one job at a time: the hash sees chunks in order
      auto& io = self->agent_.io;
      asio::post(io, [self = std::move(self), data, err] { self->on_chunk(std::move(*data), err); });
    });
  }

  void on_chunk(std::string data, int err) {
    reading_ = false;
    auto s = session_.lock();
    if (!s) return;
    s->release_stream(reserved_);
    reserved_ = 0;
    if (s->stopped() || finished_) return;
    if (err != 0) {
      finished_ = true;
      return s->respond(id_, errno_response("reading", err));
    }
    const bool eof = data.empty();
    if (!eof) {
      v1::Envelope env;
      env.set_id(id_);
      auto* chunk = env.mutable_progress()->mutable_file_chunk();
      chunk->set_offset(offset_);
      offset_ += data.size();
      credit_ -= data.size();
      remaining_ -= data.size();
      sent_ += data.size();
      chunk->set_data(std::move(data));
      s->send(env);
    }
    if (eof) remaining_ = 0;
    pump();
  }

  void finish(Session& s) {
    finished_ = true;
    v1::Response r;
    auto* out = r.mutable_file_read();
    out->set_bytes(sent_);
    if (hashing_) out->set_sha256(wire::Sha256::bytes(hash_.finish()));
    out->set_file_size(file_size_);
    s.respond(id_, std::move(r));
  }

  std::weak_ptr<Session> session_;
  AgentContext& agent_;
  std::shared_ptr<TransferSlot> slot_;
  std::uint64_t id_;
  UniqueFd fd_;
  std::uint64_t offset_;
  std::uint64_t remaining_;
  std::uint64_t chunk_;
  std::uint64_t credit_;
  std::uint64_t file_size_;
  std::uint64_t sent_ = 0;
  std::uint64_t reserved_ = 0;  // of the session's stream room, while a read job runs
  const bool hashing_;          // false: skip_sha256, the answer carries none
  wire::Sha256 hash_;           // touched only by the one worker job in flight
  bool reading_ = false;
  bool finished_ = false;
};

// --- write -------------------------------------------------------------------

// What the worker opened for a write.
struct WriteTarget {
  UniqueFd dir;      // parent directory
  std::string name;  // final name in dir
  std::string temp;  // temporary name in dir (atomic), else ""
  UniqueFd fd;
  bool set_owner = false;
  uid_t uid = 0;
  gid_t gid = 0;
};

std::string temp_name(const std::string& name) {
  unsigned char r[6] = {};
  (void)::getrandom(r, sizeof(r), 0);
  char hex[13];
  for (int i = 0; i < 6; ++i) std::snprintf(hex + 2 * i, 3, "%02x", r[i]);
  return "." + name.substr(0, 200) + ".qtx-" + std::string(hex, 12);
}

class FileWriteOp : public Operation, public std::enable_shared_from_this<FileWriteOp> {
 public:
  FileWriteOp(Session& s, std::uint64_t id, const v1::FileWriteRequest& req, std::shared_ptr<WriteTarget> target,
              std::shared_ptr<TransferSlot> slot)
      : session_(s.weak()),
        agent_(s.agent()),
        slot_(std::move(slot)),
        id_(id),
        req_(req),
        target_(std::move(target)),
        next_offset_(req.append() || req.atomic() ? 0 : req.offset()),
        window_(write_window(s.agent().config)) {}

  void start(Session& s) { grant(s, window_); }

  void on_progress(const v1::Progress& p) override {
    auto s = session_.lock();
    if (!s || failed_ || !p.has_file_chunk()) return;
    const auto& c = p.file_chunk();
    if (c.data().size() > outstanding_credit_) {
      return abort_with(error_response(v1::ERROR_CODE_INVALID_ARGUMENT, "file write: data beyond the granted credit"));
    }
    if (!req_.append() && c.offset() != next_offset_) {
      return abort_with(error_response(v1::ERROR_CODE_INVALID_ARGUMENT, "file write: chunk at offset " +
                                                                            std::to_string(c.offset()) + ", expected " +
                                                                            std::to_string(next_offset_)));
    }
    if (last_seen_) {
      return abort_with(error_response(v1::ERROR_CODE_INVALID_ARGUMENT, "file write: data after the last chunk"));
    }
    // An empty chunk that is not the last carries nothing: not queued, and
    // no Credit answers it.
    if (c.data().empty() && !c.last()) return;
    outstanding_credit_ -= c.data().size();
    next_offset_ += c.data().size();
    last_seen_ = c.last();
    // Small chunks join the last queued one (they follow it in the file), so
    // the queue holds at most window_ / kCoalesceBelow + 1 entries and the
    // memory of a write stays within about twice its window, whatever the
    // message sizes.
    if (!queue_.empty() && queue_.back().data.size() < kCoalesceBelow) {
      queue_.back().data.append(c.data());
      queue_.back().last = c.last();
    } else {
      queue_.push_back(Chunk{c.offset(), c.data(), c.last()});
    }
    pump();
  }
  void on_credit(std::uint64_t) override {}
  void cancel() override {
    if (failed_ || done_) return;
    abort_with(error_response(v1::ERROR_CODE_CANCELLED, "file write cancelled"));
  }

 private:
  static constexpr std::size_t kCoalesceBelow = 64 * 1024;

  struct Chunk {
    std::uint64_t offset;
    std::string data;
    bool last;
  };

  void grant(Session& s, std::uint64_t bytes) {
    outstanding_credit_ += bytes;
    v1::Envelope env;
    env.set_id(id_);
    env.mutable_credit()->set_bytes(bytes);
    s.send(env);
  }

  void pump() {
    if (writing_ || queue_.empty() || failed_) return;
    writing_ = true;
    auto chunk = std::make_shared<Chunk>(std::move(queue_.front()));
    queue_.pop_front();
    const bool positional = !req_.append() && !req_.atomic();
    asio::post(agent_.workers, [self = shared_from_this(), chunk, positional]() mutable {
      int err = 0;
      std::size_t done = 0;
      while (done < chunk->data.size()) {
        ssize_t n = positional ? ::pwrite(self->target_->fd.get(), chunk->data.data() + done, chunk->data.size() - done,
                                          static_cast<off_t>(chunk->offset + done))
                               : ::write(self->target_->fd.get(), chunk->data.data() + done, chunk->data.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
          err = errno;
          break;
        }
        done += static_cast<std::size_t>(n);
      }
      if (err == 0) {
        if (!self->req_.skip_sha256()) self->hash_.update(chunk->data);
        self->written_ += chunk->data.size();
      }
      if (err == 0 && chunk->last) err = self->finalize();
      auto& io = self->agent_.io;
      asio::post(io, [self = std::move(self), chunk, err] { self->on_written(chunk->data.size(), chunk->last, err); });
    });
  }

  // Worker: make the written bytes durable and put the file in place.
  int finalize() {
    WriteTarget& t = *target_;
    if (!req_.atomic() && !req_.append() && req_.truncate()) {
      if (::ftruncate(t.fd.get(), static_cast<off_t>(req_.offset() + written_)) != 0) return errno;
    }
    if (t.set_owner && ::fchown(t.fd.get(), t.uid, t.gid) != 0) return errno;
    if (::fsync(t.fd.get()) != 0) return errno;
    if (!t.temp.empty()) {
      if (::renameat(t.dir.get(), t.temp.c_str(), t.dir.get(), t.name.c_str()) != 0) return errno;
      t.temp.clear();
      ::fsync(t.dir.get());  // the rename itself durable; failure here is not the data's
    }
    return 0;
  }

  void on_written(std::size_t bytes, bool last, int err) {
    writing_ = false;
    if (failed_) return cleanup_then_answer();  // deferred until this job was done with the target
    auto s = session_.lock();
    if (!s || s->stopped()) return;
    if (err != 0) return abort_with(errno_response("writing " + req_.path(), err));
    if (last) {
      done_ = true;
      v1::Response r;
      r.mutable_file_write()->set_bytes(written_);
      if (!req_.skip_sha256()) r.mutable_file_write()->set_sha256(wire::Sha256::bytes(hash_.finish()));
      spdlog::info("audit: file_write {} ({} bytes)", printable(req_.path()), written_);
      return s->respond(id_, std::move(r));
    }
    grant(*s, bytes);
    pump();
  }

  // Stops taking data, removes the temporary once no job of ours uses the
  // target, and only then answers: when the host sees the answer, no
  // temporary is left.
  void abort_with(v1::Response answer) {
    failed_ = true;
    queue_.clear();
    answer_ = std::move(answer);
    if (!writing_) cleanup_then_answer();
  }

  void cleanup_then_answer() {
    asio::post(agent_.workers, [self = shared_from_this()]() mutable {
      auto& t = *self->target_;
      if (!t.temp.empty()) ::unlinkat(t.dir.get(), t.temp.c_str(), 0);
      t.temp.clear();
      auto& io = self->agent_.io;
      asio::post(io, [self = std::move(self)] {
        if (auto s = self->session_.lock()) s->respond(self->id_, std::move(self->answer_));
      });
    });
  }

  std::weak_ptr<Session> session_;
  AgentContext& agent_;
  std::shared_ptr<TransferSlot> slot_;
  std::uint64_t id_;
  v1::FileWriteRequest req_;
  std::shared_ptr<WriteTarget> target_;
  std::uint64_t next_offset_;
  std::uint64_t window_;  // the most of the host's data this write holds (queued or being written)
  std::uint64_t outstanding_credit_ = 0;
  std::deque<Chunk> queue_;
  v1::Response answer_;        // the error to send once the cleanup is done
  wire::Sha256 hash_;          // worker side, one job at a time
  std::uint64_t written_ = 0;  // worker side, read on the io thread after the job's post
  bool writing_ = false;
  bool last_seen_ = false;
  bool failed_ = false;
  bool done_ = false;
};

}  // namespace

void start_file_read(Session& s, std::uint64_t id, const v1::FileReadRequest& req) {
  auto slot = take_transfer_slot(s, id);
  if (!slot) return;
  PathPolicy policy = file_policy(s.agent().config);
  auto weak = s.weak();
  auto pending = std::make_shared<PendingOperation>(weak, id, 0);
  s.add_operation(id, pending);
  asio::post(s.agent().workers,
             [weak, id, req, pending, slot, policy = std::move(policy), &agent = s.agent()]() mutable {
               auto fd = std::make_shared<UniqueFd>();
               PathError e = policy.open_regular(req.path(), O_RDONLY, 0, fd.get());
               struct stat st {};
               int err = 0;
               if (!e && ::fstat(fd->get(), &st) != 0) err = errno;
               asio::post(agent.io, [weak, id, req, fd, e, err, st, pending, slot = std::move(slot)]() mutable {
                 auto live = weak.lock();
                 if (!live || live->stopped() || pending->cancelled()) return;
                 if (e) return live->respond(id, path_error(e));
                 if (err) return live->respond(id, errno_response(req.path(), err));
                 if (!S_ISREG(st.st_mode)) {
                   return live->respond(id, error_response(v1::ERROR_CODE_INVALID_ARGUMENT,
                                                           req.path() + " is not a regular file"));
                 }
                 auto op = std::make_shared<FileReadOp>(*live, id, req, std::move(*fd),
                                                        static_cast<std::uint64_t>(st.st_size), std::move(slot));
                 live->add_operation(id, op);
                 pending->hand_over(*op);
                 op->start();
               });
             });
}

void start_file_write(Session& s, std::uint64_t id, const v1::FileWriteRequest& req) {
  if (req.atomic() && req.append()) {
    return s.respond(id, error_response(v1::ERROR_CODE_INVALID_ARGUMENT, "atomic and append exclude each other"));
  }
  auto slot = take_transfer_slot(s, id);
  if (!slot) return;
  PathPolicy policy = file_policy(s.agent().config);
  auto weak = s.weak();
  auto pending = std::make_shared<PendingOperation>(weak, id, write_window(s.agent().config));
  s.add_operation(id, pending);
  const AccountFiles accounts = account_files(s.agent().config);
  asio::post(s.agent().workers, [weak, id, req, pending, slot, accounts, policy = std::move(policy),
                                 &agent = s.agent()]() mutable {
    auto t = std::make_shared<WriteTarget>();
    v1::Response error;
    bool failed = false;
    auto fail = [&](v1::Response r) {
      error = std::move(r);
      failed = true;
    };
    std::string why;
    if (!req.owner().empty() && !parse_owner(req.owner(), &t->uid, &t->gid, &why, accounts)) {
      fail(error_response(v1::ERROR_CODE_INVALID_ARGUMENT, why));
    } else {
      t->set_owner = !req.owner().empty();
    }
    if (!failed && req.create_parents()) {
      const auto slash = req.path().find_last_of('/');
      if (slash != std::string::npos && slash > 0) {
        v1::FileMkdirRequest mk;
        mk.set_path(req.path().substr(0, slash));
        mk.set_parents(true);
        v1::Response r = make_directories(policy, mk);
        if (r.has_error()) fail(std::move(r));
      }
    }
    if (!failed) {
      if (PathError e = policy.resolve_parent(req.path(), &t->dir, &t->name)) fail(path_error(e));
      else if (t->name == ".") fail(error_response(v1::ERROR_CODE_INVALID_ARGUMENT, req.path() + " is a directory"));
    }
    if (!failed && req.expected_size() > 0) {
      struct statvfs v {};
      if (::fstatvfs(t->dir.get(), &v) == 0 &&
          static_cast<std::uint64_t>(v.f_bavail) * v.f_frsize < req.expected_size()) {
        fail(errno_response("not enough space for " + req.path(), ENOSPC));
      }
    }
    if (!failed) {
      const mode_t mode = req.mode() ? (req.mode() & 07777) : 0644;
      const int nofollow = policy.confined() ? O_NOFOLLOW : 0;
      int fd = -1;
      if (req.atomic()) {
        t->temp = temp_name(t->name);
        fd = ::openat(t->dir.get(), t->temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
        // Keep the existing file's mode unless the request names one.
        struct stat old {};
        if (fd >= 0 && req.mode() == 0 && ::fstatat(t->dir.get(), t->name.c_str(), &old, AT_SYMLINK_NOFOLLOW) == 0) {
          ::fchmod(fd, old.st_mode & 07777);
        }
      } else {
        int flags = O_WRONLY | O_CREAT | O_CLOEXEC | nofollow;
        if (req.append()) flags |= O_APPEND;
        if (req.truncate() && req.offset() == 0) flags |= O_TRUNC;
        UniqueFd opened;
        if (PathError e = policy.open_regular_at(t->dir.get(), t->name, req.path(), flags, mode, &opened))
          fail(path_error(e));
        fd = opened.release();
      }
      if (failed) {
        // refused by open_regular_at: not a regular file, or hard-linked under file_roots
      } else if (fd < 0) {
        const int e = errno;
        t->temp.clear();
        if (e == ELOOP && policy.confined()) {
          fail(
              error_response(v1::ERROR_CODE_DENIED, "refusing to follow a symlink under file_roots: " + req.path(), e));
        } else {
          fail(errno_response(req.path(), e));
        }
      } else {
        t->fd.reset(fd);
        if (req.mode() != 0) ::fchmod(fd, mode);  // also when the file existed
      }
    }
    asio::post(agent.io,
               [weak, id, req, t, failed, pending, slot = std::move(slot), error = std::move(error)]() mutable {
                 auto live = weak.lock();
                 if (!live || live->stopped() || failed || pending->cancelled()) {
                   if (!t->temp.empty()) ::unlinkat(t->dir.get(), t->temp.c_str(), 0);
                   if (live && failed && !pending->cancelled()) live->respond(id, std::move(error));
                   return;
                 }
                 auto op = std::make_shared<FileWriteOp>(*live, id, req, t, std::move(slot));
                 live->add_operation(id, op);
                 op->start(*live);
                 pending->hand_over(*op);
               });
  });
}

}  // namespace qtx::agent
