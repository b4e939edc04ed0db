// The qemu-ga protocol without I/O: the framer, the request checks, the
// commands' argument checks and policy, the answer format, and the cost of
// hostile input (counted in bytes scanned and parsed, never timed).
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "agent_config.h"
#include "agent_context.h"
#include "qga/json_framer.h"
#include "qga/json_writer.h"
#include "qga/qga_protocol.h"
#include "qga/qga_service.h"
#include "qga/qga_state.h"

namespace qtx::agent::qga {
namespace {

const std::string kPing = R"({"execute":"guest-ping"})";
const std::string kPong = "{\"return\": {}}\n";

std::string generic(const std::string& desc) {
  return "{\"error\": {\"class\": \"GenericError\", \"desc\": \"" + desc + "\"}}\n";
}

// The protocol with the agent's real commands (those that answer at once).
class Harness {
 public:
  explicit Harness(AgentConfig config = {}, JsonFramer::Limits limits = {})
      : agent_(io_, std::move(config), AgentIdentity{}),
        env_{agent_, std::make_shared<QgaState>()},
        protocol_([this](const std::string& name, const Json& args,
                         Reply reply) { run_command(env_, name, args, std::move(reply)); },
                  [this](std::string a) { answers_.push_back(std::move(a)); }, limits) {}

  std::vector<std::string> feed(const std::string& bytes) {
    answers_.clear();
    protocol_.feed(bytes.data(), bytes.size());
    return answers_;
  }
  std::vector<std::string> feed_bytewise(const std::string& bytes) {
    answers_.clear();
    for (char c : bytes) protocol_.feed(&c, 1);
    return answers_;
  }
  const QgaProtocol& protocol() const { return protocol_; }

 private:
  asio::io_context io_;
  AgentContext agent_;
  CommandEnv env_;
  std::vector<std::string> answers_;
  QgaProtocol protocol_;
};

using Answers = std::vector<std::string>;

TEST(QgaFramer, WholeAndBytewiseFeedsGiveTheSameAnswers) {
  const std::string script = kPing + "\n" + R"({"execute":"guest-sync","arguments":{"id":42}})" + kPing + "  " +
                             R"(  {"execute" : "guest-sync-delimited", "arguments": {"id": -7}})";
  const Answers expected = {kPong, "{\"return\": 42}\n", kPong, "\xFF{\"return\": -7}\n"};
  Harness whole, bytewise;
  EXPECT_EQ(whole.feed(script), expected);
  EXPECT_EQ(bytewise.feed_bytewise(script), expected);
  EXPECT_TRUE(bytewise.protocol().idle());
}

TEST(QgaFramer, BracesInsideStringsDoNotEndTheText) {
  Harness h;
  EXPECT_EQ(h.feed(R"({"execute":"guest-ping","id":"}]\"{["})"), Answers{"{\"return\": {}, \"id\": \"}]\\\"{[\"}\n"});
}

TEST(QgaFramer, TopLevelScalarsEndAtADelimiter) {
  Harness h;
  EXPECT_EQ(h.feed("42"), Answers{});  // a number may go on
  EXPECT_EQ(h.feed(" "), Answers{generic("QMP input must be a JSON object")});
  EXPECT_EQ(h.feed("true" + kPing), (Answers{generic("QMP input must be a JSON object"), kPong}));
  EXPECT_EQ(h.feed("\"text\""), Answers{generic("QMP input must be a JSON object")});
}

TEST(QgaFramer, GarbageGetsOneGenericErrorPerText) {
  Harness h;
  EXPECT_EQ(h.feed("}"), Answers{generic("JSON parse error, expecting value")});
  EXPECT_EQ(h.feed(R"({"a":tru})"), Answers{generic("JSON parse error, invalid JSON syntax")});
  EXPECT_EQ(h.feed("{]"), Answers{generic("JSON parse error, invalid JSON syntax")});
  EXPECT_EQ(h.feed("nonsense\n"), Answers{generic("JSON parse error, invalid JSON syntax")});
  EXPECT_EQ(h.feed(R"({"execute":"guest-ping","execute":"guest-info"})"),
            Answers{generic("JSON parse error, duplicate key")});
  EXPECT_EQ(h.feed(kPing), Answers{kPong});
}

TEST(QgaFramer, SentinelDropsThePartialTextAndResyncs) {
  Harness h;
  EXPECT_EQ(h.feed(R"({"execute":"gue)"), Answers{});
  EXPECT_EQ(h.feed("\xFF" + kPing), (Answers{generic("JSON parse error, stray '\\uFFFD'"), kPong}));
  // Inside a string too, and after an unbalanced nesting bomb.
  EXPECT_EQ(h.feed(R"({"id":"ab)" + std::string("\xFF") + kPing),
            (Answers{generic("JSON parse error, stray '\\uFFFD'"), kPong}));
  EXPECT_EQ(h.feed(std::string(100000, '[') + "\xFF" + kPing),
            (Answers{generic("JSON nesting depth limit exceeded"), generic("JSON parse error, stray '\\uFFFD'"),
                     kPong}));
}

TEST(QgaFramer, NestingBombIsRefusedOnceAndSkippedToItsEnd) {
  Harness h;
  const std::string bomb = std::string(5000, '[') + std::string(5000, ']');
  EXPECT_EQ(h.feed(bomb + kPing), (Answers{generic("JSON nesting depth limit exceeded"), kPong}));
  EXPECT_EQ(h.protocol().stats().bytes_parsed, kPing.size());  // the bomb never reached the parser
  // 64 levels pass, 65 do not.
  const std::string id64 = std::string(63, '[') + std::string(63, ']');
  EXPECT_EQ(h.feed(R"({"execute":"guest-ping","id":)" + id64 + "}").size(), 1u);
  EXPECT_EQ(h.feed(R"({"execute":"guest-ping","id":)" + id64 + "}")[0].rfind("{\"return\"", 0), 0u);
  const std::string id65 = std::string(64, '[') + std::string(64, ']');
  EXPECT_EQ(h.feed(R"({"execute":"guest-ping","id":)" + id65 + "}"),
            Answers{generic("JSON nesting depth limit exceeded")});
}

TEST(QgaFramer, OversizedRequestIsRefusedOnceAndSkipped) {
  Harness h;
  const std::string big = R"({"execute":"guest-ping","id":")" + std::string(2u << 20, 'x') + "\"}";
  EXPECT_EQ(h.feed(big + kPing), (Answers{generic("JSON token size limit exceeded"), kPong}));
  // Bytewise as well: the limit holds however the bytes arrive.
  EXPECT_EQ(h.feed_bytewise(big + kPing), (Answers{generic("JSON token size limit exceeded"), kPong}));
  // Just under the limit is answered (the id is echoed).
  Harness small({}, JsonFramer::Limits{1024, 64});
  const std::string head = R"({"execute":"guest-ping","id":")";
  const std::string fits = head + std::string(1024 - head.size() - 2, 'y') + "\"}";
  ASSERT_EQ(fits.size(), 1024u);
  EXPECT_EQ(small.feed(fits)[0].rfind("{\"return\": {}, \"id\": \"yyy", 0), 0u);
  EXPECT_EQ(small.feed(head + std::string(1024, 'y') + "\"}" + kPing),
            (Answers{generic("JSON token size limit exceeded"), kPong}));
}

TEST(QgaCost, GarbageCostsLinearWork) {
  std::mt19937 rng(1234);
  std::string garbage(4u << 20, '\0');
  for (auto& c : garbage) c = static_cast<char>(rng());
  Harness h;
  std::size_t answers = 0;
  for (std::size_t off = 0; off < garbage.size(); off += 4096) {
    answers += h.feed(garbage.substr(off, 4096)).size();
  }
  const auto& framer = h.protocol().framer();
  EXPECT_EQ(framer.bytes_scanned(), garbage.size());                     // each byte looked at once
  EXPECT_LE(h.protocol().stats().bytes_parsed, garbage.size());          // and parsed at most once
  EXPECT_EQ(framer.bytes_emitted(), h.protocol().stats().bytes_parsed);  // nothing re-parsed
  EXPECT_LE(answers, garbage.size());
  EXPECT_EQ(h.feed("\xFF" + kPing).back(), kPong);  // still answering
}

TEST(QgaCost, DeepNestingCostsOneScanAndNoParse) {
  Harness h;
  const std::string open(8u << 20, '{');
  EXPECT_EQ(h.feed(open), Answers{generic("JSON nesting depth limit exceeded")});
  EXPECT_EQ(h.protocol().framer().bytes_scanned(), open.size());
  EXPECT_EQ(h.protocol().stats().bytes_parsed, 0u);
}

TEST(QgaRequests, EnvelopeChecksUseQmpWording) {
  Harness h;
  EXPECT_EQ(h.feed("[1,2]"), Answers{generic("QMP input must be a JSON object")});
  EXPECT_EQ(h.feed("{}"), Answers{generic("QMP input lacks member 'execute'")});
  EXPECT_EQ(h.feed(R"({"foo":1})"), Answers{generic("QMP input member 'foo' is unexpected")});
  EXPECT_EQ(h.feed(R"({"execute":1})"), Answers{generic("QMP input member 'execute' must be a string")});
  EXPECT_EQ(h.feed(R"({"execute":"guest-ping","arguments":[]})"),
            Answers{generic("QMP input member 'arguments' must be an object")});
  EXPECT_EQ(h.feed(R"({"execute":"guest-ping","id":7})"), Answers{"{\"return\": {}, \"id\": 7}\n"});
  EXPECT_EQ(h.feed(R"({"id":"x"})"),
            Answers{"{\"error\": {\"class\": \"GenericError\", \"desc\": \"QMP input lacks member 'execute'\"}, "
                    "\"id\": \"x\"}\n"});
}

TEST(QgaRequests, ArgumentsAreCheckedAsQemuChecksThem) {
  Harness h;
  EXPECT_EQ(h.feed(R"({"execute":"guest-sync"})"), Answers{generic("Parameter 'id' is missing")});
  EXPECT_EQ(h.feed(R"({"execute":"guest-sync","arguments":{"id":"x"}})"),
            Answers{generic("Invalid parameter type for 'id', expected: integer")});
  EXPECT_EQ(h.feed(R"({"execute":"guest-sync","arguments":{"id":1.5}})"),
            Answers{generic("Invalid parameter type for 'id', expected: integer")});
  EXPECT_EQ(h.feed(R"({"execute":"guest-sync","arguments":{"id":18446744073709551615}})"),
            Answers{generic("Invalid parameter type for 'id', expected: integer")});
  EXPECT_EQ(h.feed(R"({"execute":"guest-sync","arguments":{"id":9223372036854775807}})"),
            Answers{"{\"return\": 9223372036854775807}\n"});
  EXPECT_EQ(h.feed(R"({"execute":"guest-ping","arguments":{"x":1}})"), Answers{generic("Parameter 'x' is unexpected")});
  EXPECT_EQ(h.feed(R"({"execute":"guest-sync","arguments":{"id":1,"y":2}})"),
            Answers{generic("Parameter 'y' is unexpected")});
}

TEST(QgaRequests, UnknownAndDisabledCommands) {
  AgentConfig config;
  config.deny = {"time_get", "network"};
  Harness h(config);
  EXPECT_EQ(h.feed(R"({"execute":"guest-foo"})"),
            Answers{"{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"The command guest-foo has not been "
                    "found\"}}\n"});
  EXPECT_EQ(h.feed(R"({"execute":"guest-get-time"})"),
            Answers{"{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"Command guest-get-time has been "
                    "disabled\"}}\n"});
  EXPECT_EQ(h.feed(R"({"execute":"guest-get-devices"})"),
            Answers{"{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"Command guest-get-devices has been "
                    "disabled\"}}\n"});
  // Policy cannot turn off the protocol's own commands.
  config.deny = {"*"};
  Harness all_denied(config);
  EXPECT_EQ(all_denied.feed(kPing), Answers{kPong});
  EXPECT_EQ(all_denied.feed(R"({"execute":"guest-sync","arguments":{"id":1}})"), Answers{"{\"return\": 1}\n"});
}

TEST(QgaRequests, GuestInfoReflectsThePolicy) {
  AgentConfig config;
  config.deny = {"network"};
  Harness h(config);
  const auto a = h.feed(R"({"execute":"guest-info"})");
  ASSERT_EQ(a.size(), 1u);
  const Json info = Json::parse(a[0]).at("return");
  EXPECT_EQ(info.at("version"), QTX_VERSION);
  std::map<std::string, bool> enabled;
  for (const auto& c : info.at("supported_commands")) {
    enabled[c.at("name").get<std::string>()] = c.at("enabled").get<bool>();
    EXPECT_EQ(c.at("success-response"), true);
  }
  EXPECT_EQ(enabled.at("guest-network-get-interfaces"), false);
  EXPECT_EQ(enabled.at("guest-get-host-name"), true);
  EXPECT_EQ(enabled.at("guest-sync-delimited"), true);
  EXPECT_EQ(enabled.at("guest-get-devices"), false);
  EXPECT_EQ(enabled.size(), 11u);
}

// One command at a time: what arrives while an asynchronous command runs
// waits, in order, and is answered after it; a silent success gets no answer.
TEST(QgaRequests, InputBehindARunningCommandWaitsInOrder) {
  std::vector<Reply> pending;
  std::vector<std::string> answers;
  QgaProtocol p(
      [&](const std::string& name, const Json&, Reply reply) {
        if (name == "slow" || name == "quiet") return pending.push_back(std::move(reply));
        reply(Outcome{Json::object(), "", ""});
      },
      [&](std::string a) { answers.push_back(std::move(a)); });
  const std::string tail = kPing + "}" + R"({"execute":"quiet"})" + kPing;
  const std::string input = R"({"execute":"slow","id":7})" + tail;
  p.feed(input.data(), input.size());
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_TRUE(answers.empty());
  EXPECT_TRUE(p.busy());
  EXPECT_FALSE(p.idle());
  EXPECT_EQ(p.backlog_bytes(), tail.size() - 1);  // the stray brace waits as an event without text
  const Outcome slow{42, "", ""};
  pending[0](slow);  // answers 7, then the ping and the stray brace; "quiet" runs next
  EXPECT_EQ(answers, (Answers{"{\"return\": 42, \"id\": 7}\n", kPong, generic("JSON parse error, expecting value")}));
  ASSERT_EQ(pending.size(), 2u);
  EXPECT_EQ(p.backlog_bytes(), kPing.size());
  Outcome quiet{Json::object(), "", ""};
  quiet.silent = true;
  pending[1](quiet);
  EXPECT_EQ(answers.size(), 4u);
  EXPECT_EQ(answers.back(), kPong);
  EXPECT_TRUE(p.idle());
  EXPECT_EQ(p.backlog_bytes(), 0u);
}

TEST(QgaWriter, OutputIsAsciiWithQemuSeparators) {
  std::string out;
  write_json(Json{{"a", "\xC3\xA9\xF0\x9F\x98\x80\x01\xFF\n"}, {"b", Json::array({1, -2, true, nullptr})}}, &out);
  EXPECT_EQ(out, R"({"a": "\u00E9\uD83D\uDE00\u0001\uFFFD\n", "b": [1, -2, true, null]})");
}

TEST(QgaConfig, SectionIsValidated) {
  AgentConfig c;
  EXPECT_EQ(c.qga_enabled, "false");  // off unless asked for, in phase 1
  EXPECT_TRUE(parse_config("[qga]\nenabled = false\ntransport = \"unix-listen:/tmp/x\"\n", "t", &c).status);
  EXPECT_EQ(c.qga_enabled, "false");
  EXPECT_EQ(c.qga_transport, "unix-listen:/tmp/x");
  EXPECT_TRUE(parse_config("[qga]\nenabled = \"auto\"\n", "t", &c).status);
  EXPECT_EQ(c.qga_enabled, "auto");
  EXPECT_EQ(parse_config("[qga]\nenabled = \"maybe\"\n", "t", &c).status.message(),
            "t:2:11: qga.enabled must be true, false or \"auto\"");
  EXPECT_EQ(parse_config("[qga]\nenabeld = true\n", "t", &c).status.message(),
            "t:2:1: unknown key qga.enabeld (did you mean enabled?)");
}

TEST(QgaConfig, AutoServesOnlyAPortThatExists) {
  AgentConfig c;
  c.qga_transport = "virtio:org.example.no-such-port.0";
  EXPECT_FALSE(qga_wanted(c));  // false is the default
  c.qga_enabled = "auto";
  EXPECT_FALSE(qga_wanted(c));  // no such port
  c.qga_enabled = "true";
  EXPECT_TRUE(qga_wanted(c));
  c.qga_enabled = "false";
  c.qga_transport = "unix-listen:/tmp/x";
  EXPECT_FALSE(qga_wanted(c));
  c.qga_enabled = "auto";
  EXPECT_TRUE(qga_wanted(c));
}

}  // namespace
}  // namespace qtx::agent::qga
