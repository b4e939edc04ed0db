// A hostile host (or a local guest user preparing files for it) against the
// file commands: FIFOs where files are expected, hard links out of
// file_roots, and hashes of files too large to finish.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include "support/agent_fixture.h"

namespace qtx::testing {
namespace {

constexpr int kWorkers = 4;  // the agent's worker threads (guest/src/agent_context.cc)

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

class FileSafety : public AgentFixture {
 protected:
  void SetUp() override {
    dir_ = scratch_dir();
    root_ = dir_ + "/root";
    ASSERT_EQ(::mkdir(root_.c_str(), 0755), 0);
  }
  void start_confined(const std::string& extra = "") { start("[policy]\nfile_roots = [\"" + root_ + "\"]\n" + extra); }
  std::optional<v1::Response> call(std::uint64_t id, const v1::Request& r) { return conn_->call(id, r); }

  v1::ErrorCode code_of(const std::optional<v1::Response>& r) {
    return r && r->has_error() ? r->error().code() : v1::ERROR_CODE_UNSPECIFIED;
  }

  std::optional<v1::Response> hash(std::uint64_t id, const std::string& path) {
    v1::Request req;
    req.mutable_file_hash()->set_path(path);
    return call(id, req);
  }
  std::optional<v1::Response> stat(std::uint64_t id, const std::string& path) {
    v1::Request req;
    req.mutable_file_stat()->set_path(path);
    return call(id, req);
  }
  // Sends a file_hash without waiting for its answer.
  void send_hash(std::uint64_t id, const std::string& path) {
    v1::Envelope env;
    env.set_id(id);
    env.mutable_request()->mutable_file_hash()->set_path(path);
    conn_->send(env);
  }
  // A file that is all hole, 1 TiB or, where the filesystem's largest file
  // is smaller, 64 GiB: hashing it takes tens of thousands of 1 MiB steps (the
  // better part of an hour at 1 TiB). Empty, with skip_reason_ set, when the
  // filesystem takes neither size.
  std::string huge_sparse_file() {
    const std::string path = root_ + "/huge";
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    EXPECT_GE(fd, 0);
    for (const off_t size : {off_t{1} << 40, off_t{1} << 36}) {
      if (::ftruncate(fd, size) == 0) {
        ::close(fd);
        huge_size_ = static_cast<std::uint64_t>(size);
        return path;
      }
      const int e = errno;
      EXPECT_TRUE(e == EFBIG || e == EINVAL) << std::strerror(e);
      skip_reason_ = "this filesystem holds no sparse file of 64 GiB: " + std::string(std::strerror(e));
    }
    ::close(fd);
    return "";
  }

  std::uint64_t huge_size_ = 0;
  std::string skip_reason_;
  std::string dir_;
  std::string root_;
};

TEST_F(FileSafety, HashReadAndWriteOfAFifoAreRefusedWithoutBlocking) {
  start_confined();
  const std::string fifo = root_ + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0666), 0);
  // Each of these blocked a worker for ever (no writer or reader ever comes).
  for (int i = 0; i < kWorkers; ++i) {
    auto r = hash(10 + i, fifo);
    EXPECT_EQ(code_of(r), v1::ERROR_CODE_INVALID_ARGUMENT) << describe(r);
  }
  v1::FileReadRequest rd;
  rd.set_path(fifo);
  auto run = read_file(20, rd);
  EXPECT_EQ(code_of(run.response), v1::ERROR_CODE_INVALID_ARGUMENT) << describe(run.response);
  for (bool append : {false, true}) {
    v1::FileWriteRequest w;
    w.set_path(fifo);
    w.set_append(append);
    auto wr = write_file(append ? 31 : 30, w, "data");
    EXPECT_EQ(code_of(wr), v1::ERROR_CODE_INVALID_ARGUMENT) << describe(wr);
  }
  // The workers are all free: a request needing one is answered.
  auto st = stat(40, fifo);
  ASSERT_TRUE(st && st->has_file_stat()) << describe(st);
  EXPECT_EQ(st->file_stat().type(), v1::FILE_TYPE_OTHER);
}

TEST_F(FileSafety, FifosForAuthorizedKeysOrShadowAreNeverRead) {
  const std::string home = dir_ + "/home/alice";
  ASSERT_EQ(std::system(("mkdir -p '" + home + "/.ssh'").c_str()), 0);
  std::ofstream(dir_ + "/passwd") << "root:x:0:0:root:/root:/bin/sh\nalice:x:65534:65534:Alice:" << home
                                  << ":/bin/sh\n";
  std::ofstream(dir_ + "/group") << "root:x:0:\nnogroup:x:65534:\n";
  // What a local user can do before the host lists their keys.
  ASSERT_EQ(::mkfifo((home + "/.ssh/authorized_keys").c_str(), 0600), 0);
  ASSERT_EQ(::mkfifo((dir_ + "/shadow").c_str(), 0600), 0);
  start("[system]\npasswd_file = \"" + dir_ + "/passwd\"\nshadow_file = \"" + dir_ + "/shadow\"\ngroup_file = \"" +
        dir_ + "/group\"\n");

  for (int i = 0; i < kWorkers; ++i) {
    v1::Request list;
    list.mutable_ssh_keys()->set_action(v1::SshKeysRequest::ACTION_LIST);
    list.mutable_ssh_keys()->set_user("alice");
    auto r = call(10 + i, list);
    EXPECT_EQ(code_of(r), v1::ERROR_CODE_DENIED) << describe(r);
  }
  v1::Request pw;
  pw.mutable_set_password()->set_user("alice");
  pw.mutable_set_password()->set_password("$6$abc$prehashed");
  pw.mutable_set_password()->set_crypted(true);
  auto r = call(20, pw);
  EXPECT_EQ(code_of(r), v1::ERROR_CODE_FAILED_PRECONDITION) << describe(r);

  // Nor is it replaced: the user who made it has to remove it.
  v1::Request add;
  add.mutable_ssh_keys()->set_action(v1::SshKeysRequest::ACTION_ADD);
  add.mutable_ssh_keys()->set_user("alice");
  add.mutable_ssh_keys()->add_keys("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKey1Key1Key1Key1Key1 alice@one");
  r = call(30, add);
  EXPECT_EQ(code_of(r), v1::ERROR_CODE_DENIED) << describe(r);
  struct stat st {};
  ASSERT_EQ(::lstat((home + "/.ssh/authorized_keys").c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
}

TEST_F(FileSafety, HardLinkToAFileOutsideTheRootsIsNeitherReadNorChanged) {
  const std::string outside = dir_ + "/secret";
  std::ofstream(outside) << "outside the roots";
  ASSERT_EQ(::chmod(outside.c_str(), 0600), 0);
  const std::string link = root_ + "/link";
  ASSERT_EQ(::link(outside.c_str(), link.c_str()), 0);
  start_confined();

  v1::FileReadRequest rd;
  rd.set_path(link);
  auto run = read_file(2, rd);
  EXPECT_EQ(code_of(run.response), v1::ERROR_CODE_DENIED) << describe(run.response);
  EXPECT_EQ(run.data, "");
  EXPECT_EQ(code_of(hash(3, link)), v1::ERROR_CODE_DENIED);

  struct Write {
    bool append, truncate;
    std::uint64_t offset;
  };
  std::uint64_t id = 10;
  for (const Write& how :
       {Write{false, false, 0}, Write{false, false, 3}, Write{true, false, 0}, Write{false, true, 0}}) {
    v1::FileWriteRequest w;
    w.set_path(link);
    w.set_append(how.append);
    w.set_truncate(how.truncate);
    w.set_offset(how.offset);
    auto wr = write_file(id++, w, "OVERWRITTEN");
    EXPECT_EQ(code_of(wr), v1::ERROR_CODE_DENIED) << describe(wr) << " (write " << id - 1 << ")";
  }
  v1::Request chmod;
  chmod.mutable_file_set_attr()->set_path(link);
  chmod.mutable_file_set_attr()->set_mode(0777);
  EXPECT_EQ(code_of(call(20, chmod)), v1::ERROR_CODE_DENIED);

  EXPECT_EQ(slurp(outside), "outside the roots");
  struct stat st {};
  ASSERT_EQ(::stat(outside.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_nlink, 2u);

  // An atomic write replaces the name inside the roots, never the file it
  // linked to; removing the name leaves that file alone too.
  v1::FileWriteRequest atomic;
  atomic.set_path(link);
  atomic.set_atomic(true);
  auto wr = write_file(30, atomic, "replaced");
  ASSERT_TRUE(wr && wr->has_file_write()) << describe(wr);
  EXPECT_EQ(slurp(link), "replaced");
  EXPECT_EQ(slurp(outside), "outside the roots");
  v1::Request rm;
  rm.mutable_file_remove()->set_path(link);
  auto r = call(31, rm);
  ASSERT_TRUE(r && r->has_done()) << describe(r);
  EXPECT_EQ(slurp(outside), "outside the roots");
}

TEST_F(FileSafety, HardLinksAreUsedWhenThePolicyAllowsThem) {
  const std::string outside = dir_ + "/shared";
  std::ofstream(outside) << "shared";
  const std::string link = root_ + "/link";
  ASSERT_EQ(::link(outside.c_str(), link.c_str()), 0);
  start_confined("file_allow_hard_links = true\n");
  v1::FileReadRequest rd;
  rd.set_path(link);
  auto run = read_file(2, rd);
  ASSERT_TRUE(run.response && run.response->has_file_read()) << describe(run.response);
  EXPECT_EQ(run.data, "shared");
  v1::FileWriteRequest w;
  w.set_path(link);
  w.set_append(true);
  auto wr = write_file(3, w, " more");
  ASSERT_TRUE(wr && wr->has_file_write()) << describe(wr);
  EXPECT_EQ(slurp(outside), "shared more");
}

TEST_F(FileSafety, HashesOfAHugeFileStopOnCancel) {
  start_confined();
  const std::string huge = huge_sparse_file();
  if (huge.empty()) GTEST_SKIP() << skip_reason_;
  // One per worker: before, these held every worker for the whole file.
  for (int i = 0; i < kWorkers; ++i) send_hash(10 + i, huge);
  for (int i = 0; i < kWorkers; ++i) {
    v1::Envelope cancel;
    cancel.set_id(10 + i);
    cancel.mutable_cancel();
    conn_->send(cancel);
  }
  std::map<std::uint64_t, v1::ErrorCode> answers;
  while (answers.size() < static_cast<std::size_t>(kWorkers)) {
    auto e = conn_->recv_until([](const v1::Envelope& x) { return x.has_response(); });
    ASSERT_TRUE(e) << "no answer to a cancelled hash; agent log:\n" << agent_->log();
    answers[e->id()] = e->response().has_error() ? e->response().error().code() : v1::ERROR_CODE_UNSPECIFIED;
  }
  for (int i = 0; i < kWorkers; ++i) EXPECT_EQ(answers[10 + i], v1::ERROR_CODE_CANCELLED) << "hash " << 10 + i;
  // The workers came free: requests needing them are answered.
  for (int i = 0; i < kWorkers + 1; ++i) {
    auto st = stat(20 + i, huge);
    ASSERT_TRUE(st && st->has_file_stat()) << describe(st) << agent_->log();
    EXPECT_EQ(st->file_stat().size(), huge_size_);
  }
}

TEST_F(FileSafety, HashesOfAHugeFileStopWhenTheSessionEnds) {
  start_confined();
  const std::string huge = huge_sparse_file();
  if (huge.empty()) GTEST_SKIP() << skip_reason_;
  for (int i = 0; i < kWorkers; ++i) send_hash(10 + i, huge);
  conn_->close();
  conn_ = accept_next();
  ASSERT_TRUE(conn_);
  ASSERT_TRUE(conn_->hello());
  auto st = stat(20, huge);
  ASSERT_TRUE(st && st->has_file_stat()) << describe(st) << agent_->log();
  EXPECT_EQ(st->file_stat().size(), huge_size_);
}

}  // namespace
}  // namespace qtx::testing
