// File commands and transfers through the real agent process.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>

#include "qtx/wire/sha256.h"
#include "support/agent_fixture.h"

namespace qtx::testing {
namespace {

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string random_data(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

class Files : public AgentFixture {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/qtx-files.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    AgentFixture::TearDown();
    (void)std::system(("rm -rf '" + dir_ + "'").c_str());
  }
  std::optional<v1::Response> call(std::uint64_t id, const v1::Request& r) { return conn_->call(id, r); }

  std::string dir_;
};

TEST_F(Files, WriteAtomicallyThenReadBackWithMatchingSha256) {
  start();
  const std::string data = random_data(3 * 1024 * 1024 + 17, 1);
  v1::FileWriteRequest w;
  w.set_path(dir_ + "/blob");
  w.set_atomic(true);
  w.set_mode(0600);
  auto wr = write_file(2, w, data, 100000);
  ASSERT_TRUE(wr && wr->has_file_write()) << describe(wr) << agent_->log();
  EXPECT_EQ(wr->file_write().bytes(), data.size());
  EXPECT_EQ(wr->file_write().sha256(), wire::Sha256::bytes(wire::Sha256::of(data)));
  EXPECT_EQ(slurp(dir_ + "/blob"), data);
  struct stat st {};
  ASSERT_EQ(::stat((dir_ + "/blob").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);

  v1::FileReadRequest r;
  r.set_path(dir_ + "/blob");
  r.set_chunk_size(64 * 1024);
  auto rd = read_file(3, r, 512 * 1024);
  ASSERT_TRUE(rd.response && rd.response->has_file_read()) << describe(rd.response);
  EXPECT_EQ(rd.data, data);
  EXPECT_EQ(rd.response->file_read().bytes(), data.size());
  EXPECT_EQ(rd.response->file_read().file_size(), data.size());
  EXPECT_EQ(rd.response->file_read().sha256(), wire::Sha256::bytes(wire::Sha256::of(data)));
  // No temporary left beside it.
  v1::Request list;
  list.mutable_file_list()->set_path(dir_);
  auto l = call(4, list);
  ASSERT_TRUE(l && l->has_file_list());
  ASSERT_EQ(l->file_list().entries_size(), 1);
  EXPECT_EQ(l->file_list().entries(0).path(), "blob");
}

TEST_F(Files, SkipSha256TransfersTheSameBytesAndAnswersNoDigest) {
  start();
  const std::string data = random_data(1024 * 1024 + 5, 2);
  v1::FileWriteRequest w;
  w.set_path(dir_ + "/blob");
  w.set_atomic(true);
  w.set_skip_sha256(true);
  auto wr = write_file(2, w, data, 100000);
  ASSERT_TRUE(wr && wr->has_file_write()) << describe(wr) << agent_->log();
  EXPECT_EQ(wr->file_write().bytes(), data.size());
  EXPECT_EQ(wr->file_write().sha256(), "");
  EXPECT_EQ(slurp(dir_ + "/blob"), data);

  v1::FileReadRequest r;
  r.set_path(dir_ + "/blob");
  r.set_skip_sha256(true);
  auto rd = read_file(3, r, 512 * 1024);
  ASSERT_TRUE(rd.response && rd.response->has_file_read()) << describe(rd.response);
  EXPECT_EQ(rd.data, data);
  EXPECT_EQ(rd.response->file_read().bytes(), data.size());
  EXPECT_EQ(rd.response->file_read().sha256(), "");
}

TEST_F(Files, ReadARangeAndAnEmptyFile) {
  start();
  std::ofstream(dir_ + "/f") << "0123456789";
  std::ofstream(dir_ + "/empty");
  v1::FileReadRequest r;
  r.set_path(dir_ + "/f");
  r.set_offset(3);
  r.set_length(4);
  auto rd = read_file(2, r);
  ASSERT_TRUE(rd.response && rd.response->has_file_read());
  EXPECT_EQ(rd.data, "3456");
  r.set_path(dir_ + "/empty");
  r.set_offset(0);
  r.set_length(0);
  rd = read_file(3, r);
  ASSERT_TRUE(rd.response && rd.response->has_file_read());
  EXPECT_EQ(rd.data, "");
  EXPECT_EQ(rd.response->file_read().sha256(), wire::Sha256::bytes(wire::Sha256::of("")));
}

TEST_F(Files, WriteAtAnOffsetAndAppend) {
  start();
  std::ofstream(dir_ + "/f") << "aaaaaaaaaa";
  v1::FileWriteRequest w;
  w.set_path(dir_ + "/f");
  w.set_offset(2);
  ASSERT_TRUE(write_file(2, w, "BBB")->has_file_write());
  EXPECT_EQ(slurp(dir_ + "/f"), "aaBBBaaaaa");
  w.set_offset(0);
  w.set_append(true);
  ASSERT_TRUE(write_file(3, w, "cc")->has_file_write());
  EXPECT_EQ(slurp(dir_ + "/f"), "aaBBBaaaaacc");
  v1::FileWriteRequest t;
  t.set_path(dir_ + "/f");
  t.set_truncate(true);
  ASSERT_TRUE(write_file(4, t, "new")->has_file_write());
  EXPECT_EQ(slurp(dir_ + "/f"), "new");
}

TEST_F(Files, StatListMkdirRemove) {
  start();
  v1::Request mk;
  mk.mutable_file_mkdir()->set_path(dir_ + "/a/b/c");
  auto r = call(2, mk);
  ASSERT_TRUE(r && r->has_error());
  EXPECT_EQ(r->error().code(), v1::ERROR_CODE_NOT_FOUND);
  mk.mutable_file_mkdir()->set_parents(true);
  mk.mutable_file_mkdir()->set_mode(0700);
  r = call(3, mk);
  ASSERT_TRUE(r && r->has_done()) << describe(r);
  r = call(4, mk);  // mkdir -p of an existing directory is fine
  ASSERT_TRUE(r && r->has_done());
  std::ofstream(dir_ + "/a/b/c/file") << "x";
  ASSERT_EQ(::symlink("/etc/passwd", (dir_ + "/a/link").c_str()), 0);

  v1::Request st;
  st.mutable_file_stat()->set_path(dir_ + "/a/b/c");
  r = call(5, st);
  ASSERT_TRUE(r && r->has_file_stat());
  EXPECT_EQ(r->file_stat().type(), v1::FILE_TYPE_DIRECTORY);
  EXPECT_EQ(r->file_stat().mode(), 0700u);
  st.mutable_file_stat()->set_path(dir_ + "/a/link");
  r = call(6, st);
  ASSERT_TRUE(r && r->has_file_stat());
  EXPECT_EQ(r->file_stat().type(), v1::FILE_TYPE_SYMLINK);
  EXPECT_EQ(r->file_stat().symlink_target(), "/etc/passwd");
  st.mutable_file_stat()->set_follow_symlinks(true);
  r = call(7, st);
  ASSERT_TRUE(r && r->has_file_stat());
  EXPECT_EQ(r->file_stat().type(), v1::FILE_TYPE_REGULAR);

  v1::Request ls;
  ls.mutable_file_list()->set_path(dir_ + "/a");
  r = call(8, ls);
  ASSERT_TRUE(r && r->has_file_list());
  ASSERT_EQ(r->file_list().entries_size(), 2);
  EXPECT_EQ(r->file_list().entries(0).path(), "b");
  EXPECT_EQ(r->file_list().entries(1).path(), "link");

  v1::Request rm;
  rm.mutable_file_remove()->set_path(dir_ + "/a");
  r = call(9, rm);
  ASSERT_TRUE(r && r->has_error());
  EXPECT_EQ(r->error().code(), v1::ERROR_CODE_FAILED_PRECONDITION);
  rm.mutable_file_remove()->set_recursive(true);
  r = call(10, rm);
  ASSERT_TRUE(r && r->has_done()) << describe(r);
  struct stat sb {};
  EXPECT_NE(::lstat((dir_ + "/a").c_str(), &sb), 0);
  EXPECT_EQ(::stat("/etc/passwd", &sb), 0);  // the symlink's target was not followed
  r = call(11, rm);
  ASSERT_TRUE(r && r->has_error());
  EXPECT_EQ(r->error().code(), v1::ERROR_CODE_NOT_FOUND);
}

TEST_F(Files, SetAttrAndHash) {
  start();
  std::ofstream(dir_ + "/f") << "abc";
  v1::Request sa;
  sa.mutable_file_set_attr()->set_path(dir_ + "/f");
  sa.mutable_file_set_attr()->set_mode(0640);
  if (::geteuid() == 0) sa.mutable_file_set_attr()->set_owner("nobody");
  auto r = call(2, sa);
  ASSERT_TRUE(r && r->has_done()) << describe(r);
  struct stat st {};
  ASSERT_EQ(::stat((dir_ + "/f").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  if (::geteuid() == 0) {
    EXPECT_EQ(st.st_uid, 65534u);
  }
  sa.mutable_file_set_attr()->set_owner("no-such-user-qtx");
  r = call(3, sa);
  ASSERT_TRUE(r && r->has_error());
  EXPECT_EQ(r->error().code(), v1::ERROR_CODE_INVALID_ARGUMENT);

  v1::Request h;
  h.mutable_file_hash()->set_path(dir_ + "/f");
  r = call(4, h);
  ASSERT_TRUE(r && r->has_file_hash());
  EXPECT_EQ(wire::Sha256::hex([&] {
              wire::Sha256::Digest d;
              std::copy(r->file_hash().sha256().begin(), r->file_hash().sha256().end(), d.begin());
              return d;
            }()),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(r->file_hash().size(), 3u);
}

TEST_F(Files, RelativeAndMissingPathsAreClearErrors) {
  start();
  v1::Request st;
  st.mutable_file_stat()->set_path("relative/path");
  auto r = call(2, st);
  ASSERT_TRUE(r && r->has_error());
  EXPECT_EQ(r->error().code(), v1::ERROR_CODE_INVALID_ARGUMENT);
  v1::FileReadRequest rd;
  rd.set_path(dir_ + "/missing");
  auto run = read_file(3, rd);
  ASSERT_TRUE(run.response && run.response->has_error());
  EXPECT_EQ(run.response->error().code(), v1::ERROR_CODE_NOT_FOUND);
  rd.set_path(dir_);
  run = read_file(4, rd);
  ASSERT_TRUE(run.response && run.response->has_error());
  EXPECT_EQ(run.response->error().code(), v1::ERROR_CODE_INVALID_ARGUMENT);
}

TEST_F(Files, ConfinementRefusesEveryEscape) {
  const std::string root = dir_ + "/root";
  ::mkdir(root.c_str(), 0755);
  ::mkdir((root + "/sub").c_str(), 0755);
  std::ofstream(root + "/sub/ok") << "inside";
  std::ofstream(dir_ + "/secret") << "outside";
  ASSERT_EQ(::symlink((dir_ + "/secret").c_str(), (root + "/link-out").c_str()), 0);
  ASSERT_EQ(::symlink(dir_.c_str(), (root + "/dir-out").c_str()), 0);
  start("[policy]\nfile_roots = [\"" + root + "\"]\n");

  auto read_code = [&](std::uint64_t id, const std::string& path) {
    v1::FileReadRequest r;
    r.set_path(path);
    auto run = read_file(id, r);
    if (!run.response) return v1::ERROR_CODE_UNSPECIFIED;
    return run.response->has_error() ? run.response->error().code() : v1::ERROR_CODE_UNSPECIFIED;
  };
  EXPECT_EQ(read_code(2, root + "/sub/ok"), v1::ERROR_CODE_UNSPECIFIED);  // allowed
  EXPECT_EQ(read_code(3, dir_ + "/secret"), v1::ERROR_CODE_DENIED);
  EXPECT_EQ(read_code(4, root + "/../secret"), v1::ERROR_CODE_DENIED);
  EXPECT_EQ(read_code(5, root + "/sub/../../secret"), v1::ERROR_CODE_DENIED);
  EXPECT_EQ(read_code(6, root + "/link-out"), v1::ERROR_CODE_DENIED);
  EXPECT_EQ(read_code(7, root + "/dir-out/secret"), v1::ERROR_CODE_DENIED);
  EXPECT_EQ(read_code(8, root + "x/secret"), v1::ERROR_CODE_DENIED);  // a sibling with the root as prefix

  // Writes, removes and attribute changes through the symlinks do nothing outside.
  v1::FileWriteRequest w;
  w.set_path(root + "/link-out");
  auto wr = write_file(9, w, "pwned");
  ASSERT_TRUE(wr && wr->has_error());
  EXPECT_EQ(wr->error().code(), v1::ERROR_CODE_DENIED);
  w.set_path(root + "/dir-out/new");
  wr = write_file(10, w, "pwned");
  ASSERT_TRUE(wr && wr->has_error());
  v1::Request sa;
  sa.mutable_file_set_attr()->set_path(root + "/link-out");
  sa.mutable_file_set_attr()->set_mode(0777);
  auto r = call(11, sa);
  ASSERT_TRUE(r && r->has_error());
  EXPECT_EQ(r->error().code(), v1::ERROR_CODE_DENIED);
  EXPECT_EQ(slurp(dir_ + "/secret"), "outside");
  struct stat st {};
  ASSERT_EQ(::stat((dir_ + "/secret").c_str(), &st), 0);
  EXPECT_NE(st.st_mode & 0777, 0777u);
  EXPECT_FALSE(std::ifstream(dir_ + "/new").good());
  // Listing the root itself works.
  v1::Request ls;
  ls.mutable_file_list()->set_path(root);
  r = call(12, ls);
  ASSERT_TRUE(r && r->has_file_list());
  EXPECT_EQ(r->file_list().entries_size(), 3);
}

TEST_F(Files, CancelledAtomicWriteLeavesTheOldFileAndNoTemporary) {
  start();
  std::ofstream(dir_ + "/f") << "old contents";
  v1::Envelope env;
  env.set_id(2);
  env.mutable_request()->mutable_file_write()->set_path(dir_ + "/f");
  env.mutable_request()->mutable_file_write()->set_atomic(true);
  conn_->send(env);
  auto credit = conn_->recv_until([](const v1::Envelope& e) { return e.id() == 2; });
  ASSERT_TRUE(credit && credit->has_credit());
  v1::Envelope chunk;
  chunk.set_id(2);
  chunk.mutable_progress()->mutable_file_chunk()->set_data("new but never finished");
  conn_->send(chunk);
  v1::Envelope cancel;
  cancel.set_id(2);
  cancel.mutable_cancel();
  conn_->send(cancel);
  auto r = conn_->recv_until([](const v1::Envelope& e) { return e.id() == 2 && e.has_response(); });
  ASSERT_TRUE(r && r->response().has_error());
  EXPECT_EQ(r->response().error().code(), v1::ERROR_CODE_CANCELLED);
  EXPECT_EQ(slurp(dir_ + "/f"), "old contents");
  // The answer comes after the cleanup: no temporary is left.
  v1::Request ls;
  ls.mutable_file_list()->set_path(dir_);
  auto l = call(3, ls);
  ASSERT_TRUE(l && l->has_file_list());
  ASSERT_EQ(l->file_list().entries_size(), 1);
  EXPECT_EQ(l->file_list().entries(0).path(), "f");
}

TEST_F(Files, DataBeyondTheCreditFailsTheWrite) {
  start();
  v1::Envelope env;
  env.set_id(2);
  env.mutable_request()->mutable_file_write()->set_path(dir_ + "/f");
  conn_->send(env);
  auto credit = conn_->recv_until([](const v1::Envelope& e) { return e.id() == 2; });
  ASSERT_TRUE(credit && credit->has_credit());
  v1::Envelope chunk;
  chunk.set_id(2);
  chunk.mutable_progress()->mutable_file_chunk()->set_data(std::string(credit->credit().bytes() + 1, 'x'));
  conn_->send(chunk);
  auto r = conn_->recv_until([](const v1::Envelope& e) { return e.id() == 2 && e.has_response(); });
  ASSERT_TRUE(r && r->response().has_error());
  EXPECT_EQ(r->response().error().code(), v1::ERROR_CODE_INVALID_ARGUMENT);
}

TEST_F(Files, OpenTransferLimitAnswersBusy) {
  start("[limits]\nmax_open_transfers = 1\n");
  std::ofstream(dir_ + "/f") << std::string(1 << 20, 'x');
  v1::Envelope env;
  env.set_id(2);
  env.mutable_request()->mutable_file_read()->set_path(dir_ + "/f");
  env.mutable_request()->mutable_file_read()->set_window(1024);  // stalls after 1 KiB
  env.mutable_request()->mutable_file_read()->set_chunk_size(1024);
  conn_->send(env);
  auto first = conn_->recv_until([](const v1::Envelope& e) { return e.id() == 2; });
  ASSERT_TRUE(first && first->has_progress());
  v1::FileReadRequest second;
  second.set_path(dir_ + "/f");
  auto run = read_file(3, second);
  ASSERT_TRUE(run.response && run.response->has_error());
  EXPECT_EQ(run.response->error().code(), v1::ERROR_CODE_BUSY);
}

}  // namespace
}  // namespace qtx::testing
