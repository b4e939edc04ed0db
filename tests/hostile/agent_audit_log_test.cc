// A host that puts a newline and a terminal escape in the paths it sends, to
// forge audit lines or drive the terminal of whoever reads the log. Every
// line naming the path carries it escaped (\x0a, \x1b), and the log holds
// neither byte raw.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "support/agent_fixture.h"

namespace qtx::testing {
namespace {

// What follows the newline would be a line of its own in an unescaped log.
constexpr char kForged[] = "qtx-agent info: audit: forged";
const std::string kHostile = std::string("x\n") + kForged + "\x1b[2J";
const std::string kEscaped = std::string("x\\x0a") + kForged + "\\x1b[2J";

std::size_t count(const std::string& haystack, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = haystack.find(needle); at != std::string::npos; at = haystack.find(needle, at + 1)) ++n;
  return n;
}

class AuditLogInjection : public AgentFixture {
 protected:
  void SetUp() override {
    dir_ = scratch_dir();
    ASSERT_EQ(::mkdir((dir_ + "/hooks").c_str(), 0755), 0);
    // A freeze that got past its checks would find no hooks and keep its
    // state here, never in the machine's directories.
    start("[agent]\nstate_dir = \"" + dir_ + "/state\"\n[freeze]\nhooks_dir = \"" + dir_ + "/hooks\"\n");
  }
  // No line of the log starts with the forged text, and no raw ESC is left.
  void expect_nothing_forged() {
    const std::string log = agent_->log();
    EXPECT_EQ(log.find(std::string("\n") + kForged), std::string::npos) << log;
    EXPECT_EQ(log.find('\x1b'), std::string::npos) << log;
  }
  std::string dir_;
};

TEST_F(AuditLogInjection, AFileWritePathIsEscapedInEveryLine) {
  v1::FileWriteRequest req;
  req.set_path(dir_ + "/" + kHostile);
  auto r = write_file(2, req, "hello");
  ASSERT_TRUE(r && r->has_file_write()) << describe(r) << agent_->log();
  EXPECT_EQ(r->file_write().bytes(), 5u);
  std::ifstream written(dir_ + "/" + kHostile);
  std::stringstream data;
  data << written.rdbuf();
  EXPECT_EQ(data.str(), "hello");  // the file itself has its real name
  const std::string log = agent_->log();
  // The request's audit line and the completion line, one line each.
  EXPECT_EQ(count(log, "audit: file_write (id 2) " + dir_ + "/" + kEscaped + "\n"), 1u) << log;
  EXPECT_EQ(count(log, "audit: file_write " + dir_ + "/" + kEscaped + " (5 bytes)\n"), 1u) << log;
  EXPECT_EQ(count(log, kForged), 2u) << log;
  expect_nothing_forged();
}

TEST_F(AuditLogInjection, AFreezeMountpointIsEscapedAndANewlineInItIsRefused) {
  v1::Request freeze;
  freeze.mutable_freeze()->add_mountpoints(dir_ + "/" + kHostile);
  freeze.mutable_freeze()->add_mountpoints("/second\x1b]0;title\x07");
  auto r = conn_->call(2, freeze);
  ASSERT_TRUE(r && r->has_error()) << describe(r);
  // The state file keeps one mountpoint a line: a newline cannot go there.
  EXPECT_EQ(r->error().code(), v1::ERROR_CODE_INVALID_ARGUMENT) << describe(r);
  EXPECT_EQ(r->error().message(), "a mountpoint cannot contain a newline or NUL: " + dir_ + "/" + kEscaped);
  const std::string log = agent_->log();
  EXPECT_EQ(count(log,
                  "audit: freeze (id 2) " + dir_ + "/" + kEscaped + " /second\\x1b]0;title\\x07, timeout 60000 ms\n"),
            1u)
      << log;
  EXPECT_EQ(count(log, kForged), 1u) << log;
  expect_nothing_forged();
  struct stat st {};
  EXPECT_NE(::stat((dir_ + "/state/freeze.state").c_str(), &st), 0);  // nothing was recorded, nothing frozen

  // A NUL would cut the path short at open(2): refused too. (The part before
  // it does not exist, so a regression cannot freeze anything real.)
  v1::Request nul;
  nul.mutable_freeze()->add_mountpoints(dir_ + "/absent" + std::string(1, '\0') + "/elsewhere");
  r = conn_->call(3, nul);
  ASSERT_TRUE(r && r->has_error()) << describe(r);
  EXPECT_EQ(r->error().code(), v1::ERROR_CODE_INVALID_ARGUMENT) << describe(r);
  EXPECT_NE(agent_->log().find("audit: freeze (id 3) " + dir_ + "/absent\\x00/elsewhere, timeout 60000 ms\n"),
            std::string::npos)
      << agent_->log();
}

}  // namespace
}  // namespace qtx::testing
