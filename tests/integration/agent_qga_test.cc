// qtx-agent serving the qemu-ga protocol on a unix socket, and the same
// scripted conversations against Debian's qemu-ga: answers must match in
// shape (keys, JSON types, error classes) and, where both describe the
// same machine, in value.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "support/agent_process.h"
#include "support/qga_peers.h"

namespace qtx::testing {
namespace {

using Json = QgaJson;

class QgaAgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/qtx-qga-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    agent_ = std::make_unique<AgentProcess>("unix-listen:" + dir_ + "/native.sock",
                                            "[qga]\nenabled = true\ntransport = \"unix-listen:" + dir_ +
                                                "/qga.sock\"\n[policy]\ndeny = [\"time_get\"]\n",
                                            "info");
    qtx_ = std::make_unique<QgaClient>(dir_ + "/qga.sock");
    ASSERT_TRUE(qtx_->connected()) << agent_->log();
  }
  void TearDown() override {
    qtx_.reset();
    if (agent_) {
      EXPECT_EQ(agent_->signal_and_wait(SIGTERM), 0) << agent_->log();
    }
    agent_.reset();
    std::string cmd = "rm -rf '" + dir_ + "'";
    if (std::system(cmd.c_str()) != 0) ADD_FAILURE() << cmd;
  }

  std::string dir_;
  std::unique_ptr<AgentProcess> agent_;
  std::unique_ptr<QgaClient> qtx_;
};

TEST_F(QgaAgentTest, AnswersOnItsOwnPortBesideTheNativeOne) {
  EXPECT_EQ(qtx_->call(R"({"execute":"guest-ping"})"), Json::parse(R"({"return":{}})"));
  qtx_->send(R"({"execute":"guest-sync-delimited","arguments":{"id":99}})");
  EXPECT_EQ(qtx_->line(), "\xFF{\"return\": 99}");
  // Split across writes, garbage in between, then a resync.
  qtx_->send(R"({"execute":"guest-sy)");
  qtx_->send(R"(nc","arguments":{"id":5}})");
  EXPECT_EQ(qtx_->line(), "{\"return\": 5}");
  qtx_->send("{\"exec\xFF{\"execute\":\"guest-ping\"}");
  EXPECT_EQ(qtx_->line(), R"({"error": {"class": "GenericError", "desc": "JSON parse error, stray '\uFFFD'"}})");
  EXPECT_EQ(qtx_->line(), R"({"return": {}})");
  // The native policy applies here too.
  EXPECT_EQ(qtx_->call(R"({"execute":"guest-get-time"})"),
            Json::parse(R"({"error":{"class":"CommandNotFound","desc":"Command guest-get-time has been disabled"}})"));
  // An oversized request, then the session still answers.
  qtx_->send(R"({"execute":"guest-ping","id":")" + std::string(3u << 20, 'z') + "\"}");
  EXPECT_EQ(qtx_->line(), R"({"error": {"class": "GenericError", "desc": "JSON token size limit exceeded"}})");
  EXPECT_EQ(qtx_->call(R"({"execute":"guest-ping"})"), Json::parse(R"({"return":{}})"));
}

TEST_F(QgaAgentTest, ANewClientIsServedAfterTheFirstLeaves) {
  qtx_->send(R"({"execute":"gue)");  // partial, then gone
  qtx_.reset();
  QgaClient again(dir_ + "/qga.sock");
  ASSERT_TRUE(again.connected());
  EXPECT_EQ(again.call(R"({"execute":"guest-ping"})"), Json::parse(R"({"return":{}})"));
}

// --- differential: the same conversations against Debian's qemu-ga ------------

struct Step {
  const char* name;
  std::string request;
  enum Compare { kShape, kValue, kErrorClass, kInterfaces, kCommandList } compare;
};

TEST_F(QgaAgentTest, MatchesQemuGa) {
  if (!QemuGa::installed()) GTEST_SKIP() << "qemu-ga is not installed";
  QemuGa qemu(dir_ + "/qemu.sock", dir_);
  QgaClient ref(dir_ + "/qemu.sock");
  ASSERT_TRUE(ref.connected());
  // Our agent denies time_get; compare guest-get-time with a fresh agent.
  AgentProcess open_agent("unix-listen:" + dir_ + "/native2.sock",
                          "[qga]\nenabled = true\ntransport = \"unix-listen:" + dir_ + "/qga2.sock\"\n", "info");
  QgaClient ours(dir_ + "/qga2.sock");
  ASSERT_TRUE(ours.connected()) << open_agent.log();

  const std::vector<Step> steps = {
      {"ping", R"({"execute":"guest-ping"})", Step::kValue},
      {"ping with id", R"({"execute":"guest-ping","id":{"a":[1,"x",null]}})", Step::kValue},
      {"sync", R"({"execute":"guest-sync","arguments":{"id":1234567}})", Step::kValue},
      {"sync-delimited", R"({"execute":"guest-sync-delimited","arguments":{"id":-5}})", Step::kValue},
      {"info", R"({"execute":"guest-info"})", Step::kCommandList},
      {"host name", R"({"execute":"guest-get-host-name"})", Step::kValue},
      {"time", R"({"execute":"guest-get-time"})", Step::kShape},
      {"time zone", R"({"execute":"guest-get-timezone"})", Step::kValue},
      {"os info", R"({"execute":"guest-get-osinfo"})", Step::kValue},
      {"users", R"({"execute":"guest-get-users"})", Step::kShape},
      {"interfaces", R"({"execute":"guest-network-get-interfaces"})", Step::kInterfaces},
      {"unknown command", R"({"execute":"guest-no-such-thing"})", Step::kValue},
      {"windows-only command", R"({"execute":"guest-get-devices"})", Step::kValue},
      {"missing argument", R"({"execute":"guest-sync"})", Step::kValue},
      {"wrong argument type", R"({"execute":"guest-sync","arguments":{"id":"x"}})", Step::kValue},
      {"unexpected argument", R"({"execute":"guest-ping","arguments":{"x":1}})", Step::kValue},
      {"not an object", "[1, 2]", Step::kValue},
      {"no execute", "{}", Step::kValue},
      {"unexpected member", R"({"execute":"guest-ping","foo":1})", Step::kValue},
      {"execute not a string", R"({"execute":1})", Step::kValue},
      {"arguments not an object", R"({"execute":"guest-ping","arguments":[]})", Step::kValue},
      {"duplicate key", R"({"execute":"guest-ping","execute":"guest-ping"})", Step::kValue},
      {"malformed JSON", R"({"execute":tru})", Step::kErrorClass},
      {"stray close", "}", Step::kValue},
      {"sentinel", "\xFF", Step::kValue},
  };
  for (const auto& step : steps) {
    SCOPED_TRACE(step.name);
    const Json a = ours.call(step.request);
    const Json b = ref.call(step.request);
    ASSERT_FALSE(a.is_discarded()) << "qtx-agent gave no JSON answer";
    ASSERT_FALSE(b.is_discarded()) << "qemu-ga gave no JSON answer";
    switch (step.compare) {
      case Step::kValue: EXPECT_EQ(qga_canonical(a), qga_canonical(b)); break;
      case Step::kShape: EXPECT_EQ(qga_canonical(qga_shape(a)), qga_canonical(qga_shape(b))); break;
      case Step::kErrorClass:
        ASSERT_TRUE(a.contains("error") && b.contains("error")) << a << " / " << b;
        EXPECT_EQ(a["error"]["class"], b["error"]["class"]);
        EXPECT_EQ(a["error"]["desc"].get<std::string>().rfind("JSON parse error, ", 0), 0u) << a;
        break;
      case Step::kInterfaces: {
        std::map<std::string, std::string> mine, theirs;
        for (const auto& i : a.at("return")) mine[i.at("name")] = qga_canonical(qga_shape(i));
        for (const auto& i : b.at("return")) theirs[i.at("name")] = qga_canonical(qga_shape(i));
        EXPECT_EQ(mine, theirs);
        // Addresses too (statistics move between the two reads).
        std::map<std::string, std::set<std::string>> addrs_a, addrs_b;
        for (const auto& i : a.at("return")) {
          for (const auto& ad : i.value("ip-addresses", Json::array())) addrs_a[i.at("name")].insert(qga_canonical(ad));
        }
        for (const auto& i : b.at("return")) {
          for (const auto& ad : i.value("ip-addresses", Json::array())) addrs_b[i.at("name")].insert(qga_canonical(ad));
        }
        EXPECT_EQ(addrs_a, addrs_b);
        break;
      }
      case Step::kCommandList: {
        EXPECT_EQ(qga_canonical(qga_shape(a)), qga_canonical(qga_shape(b)));
        std::set<std::string> theirs;
        for (const auto& c : b.at("return").at("supported_commands")) theirs.insert(c.at("name"));
        for (const auto& c : a.at("return").at("supported_commands")) EXPECT_TRUE(theirs.count(c.at("name"))) << c;
        break;
      }
    }
  }
  // An oversized request: one error of the same class from both (qemu-ga's
  // limit is 64 MiB per token, ours 1 MiB per request: a 2 MiB request is
  // refused by qtx-agent only, so only the class is compared on a size
  // both refuse - a nesting bomb past both depth limits).
  const std::string deep = R"({"execute":"guest-ping","id":)" + std::string(1100, '[') + std::string(1100, ']') + "}";
  ours.send(deep);
  EXPECT_EQ(ours.line(), R"({"error": {"class": "GenericError", "desc": "JSON nesting depth limit exceeded"}})");
  ref.send(deep);
  EXPECT_EQ(ref.line(), R"({"error": {"class": "GenericError", "desc": "JSON nesting depth limit exceeded"}})");
  EXPECT_EQ(open_agent.signal_and_wait(SIGTERM), 0) << open_agent.log();
}

}  // namespace
}  // namespace qtx::testing
