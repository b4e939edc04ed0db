// Any bytes on the qemu-ga port, in pieces of any size: never a crash; each
// byte is scanned once and parsed at most once; every answer is one line of
// plain ASCII JSON ("\n"-terminated, a 0xFF first only for
// guest-sync-delimited) holding exactly one of "return" and "error", with
// "id" beside it only when the request had one.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "agent_config.h"
#include "agent_context.h"
#include "qga/qga_protocol.h"
#include "qga/qga_state.h"

namespace {

[[noreturn]] void fail(const char* what, const std::string& answer) {
  std::fprintf(stderr, "property violated: %s\nanswer: %s\n", what, answer.c_str());
  std::abort();
}

void check(const std::string& a) {
  if (a.empty() || a.back() != '\n') fail("an answer without its newline", a);
  std::size_t start = 0;
  if (static_cast<unsigned char>(a[0]) == 0xFF) start = 1;
  for (std::size_t i = start; i + 1 < a.size(); ++i) {
    const auto c = static_cast<unsigned char>(a[i]);
    if (c < 0x20 || c > 0x7E) fail("a byte outside printable ASCII", a);
  }
  const auto j = qtx::agent::qga::Json::parse(a.begin() + static_cast<long>(start), a.end() - 1, nullptr, false);
  if (!j.is_object()) fail("an answer that is not a JSON object", a);
  const bool ret = j.contains("return"), err = j.contains("error");
  if (ret == err) fail("not exactly one of return and error", a);
  if (j.size() != (j.contains("id") ? 2u : 1u)) fail("an unexpected member", a);
  if (err && (!j["error"].contains("class") || !j["error"].contains("desc") || j["error"].size() != 2)) {
    fail("an error without exactly class and desc", a);
  }
  if (start == 1 && !ret) fail("a 0xFF before an error", a);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  static const bool quiet = [] {
    spdlog::set_level(spdlog::level::off);  // denials log an audit line each
    return true;
  }();
  (void)quiet;
  const std::size_t piece = 1 + data[0];  // how the bytes arrive
  ++data;
  --size;
  // Only commands that read: a fuzzer must not run what acts on the machine
  // (exec, files, power, time, passwords). "network" is left out too, which
  // keeps every run cheap; policy refusals are exercised by all the others.
  static asio::io_context io;
  static qtx::agent::AgentContext agent(
      io,
      [] {
        qtx::agent::AgentConfig config;
        config.allow = {"info", "hostname_get", "time_get"};
        return config;
      }(),
      qtx::agent::AgentIdentity{});
  static qtx::agent::qga::CommandEnv env{agent, std::make_shared<qtx::agent::qga::QgaState>()};
  std::vector<std::string> answers;
  // Small limits, so that inputs of a few KiB reach them.
  qtx::agent::qga::QgaProtocol protocol(
      [&](const std::string& name, const qtx::agent::qga::Json& args, qtx::agent::qga::Reply reply) {
        qtx::agent::qga::run_command(env, name, args, std::move(reply));
      },
      [&](std::string a) { answers.push_back(std::move(a)); }, qtx::agent::qga::JsonFramer::Limits{4096, 16});
  for (std::size_t off = 0; off < size; off += piece) {
    protocol.feed(reinterpret_cast<const char*>(data) + off, std::min(piece, size - off));
  }
  if (protocol.busy()) fail("a command still running after the input ended", "");
  for (const auto& a : answers) check(a);
  if (protocol.framer().bytes_scanned() != size) fail("bytes scanned != bytes fed", "");
  if (protocol.stats().bytes_parsed > size) fail("a byte parsed twice", "");
  if (answers.size() > size + 1) fail("more answers than bytes", "");
  return 0;
}
