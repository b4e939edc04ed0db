// The agent's session and request handlers, fed by a hostile host: any
// sequence of sealed envelopes and raw bytes (fuzz/frame_script.h) goes into
// a live Session over a socketpair, followed by a Cancel for every request id
// used. Properties:
//  - never a crash, and the session survives everything the host sends;
//  - every request with a non-zero id is answered exactly once (a second
//    answer, or an answer to id 0, is a failure), within 10 s of the cancel;
//  - every frame the agent refuses is a counted drop: its decoder dropped
//    exactly the bytes a mirror decoder over the same stream dropped;
//  - the agent's decoder did work linear in the bytes it was fed (bytes
//    hashed within kMaxHashedPerByteFed), and no single allocation passed
//    the target's malloc limit (fuzz/CMakeLists.txt);
//  - once the session ends, no exec is left running and no transfer open.
//
// The handlers run against a temporary root, so nothing the fuzzer sends can
// touch this machine: file commands are confined to it (policy.file_roots),
// the account files and home directories live in it (its symlinks that lead
// out lead to a canary directory beside it, checked after every input), the
// requests that act
// on the machine itself (power, freeze, thaw, time_set, hostname_set,
// process_kill) are denied by policy, and every program exec starts is
// replaced at execve by /bin/cat (this target links with --wrap=execve), so
// the exec machinery - pipes, stdin, output credit, timeouts, cancel, reaping
// - runs for real while no requested program does.
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/write.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <string>

#include "agent_context.h"
#include "exec/child_reaper.h"
#include "frame_script.h"
#include "logging.h"
#include "qtx/wire/decoder.h"
#include "qtx/wire/envelope_codec.h"
#include "session.h"

extern "C" int __real_execve(const char* path, char* const argv[], char* const envp[]);

// Every execve of the agent's code lands here, in the child after fork.
extern "C" int __wrap_execve(const char*, char* const[], char* const envp[]) {
  static char cat_name[] = "cat";
  char* const argv[] = {cat_name, nullptr};
  return __real_execve("/bin/cat", argv, envp);
}

namespace {

namespace fs = std::filesystem;
namespace v1 = qtx::agent::v1;
using qtx::fuzz::Step;

constexpr std::size_t kMaxInput = 64 * 1024;
constexpr std::uint32_t kMaxMessage = 64 * 1024;  // the smallest the agent accepts: short padding
constexpr auto kDeadline = std::chrono::seconds(10);
constexpr auto kQuiet = std::chrono::milliseconds(5);
// The temporary root: made from this template, whose length it keeps. Inputs
// name it by the template itself, which is replaced byte for byte before the
// stream is sealed, so a corpus works in every process (and the protobuf
// lengths around the name stay right).
constexpr std::string_view kRootTemplate = "/tmp/qtx-fuzz-XXXXXX";
constexpr const char* kCanaryText = "outside the root\n";

void replace_root(std::string* s, const std::string& root) {
  for (auto at = s->find(kRootTemplate); at != std::string::npos; at = s->find(kRootTemplate, at + root.size())) {
    s->replace(at, kRootTemplate.size(), root);
  }
}

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "property violated: %s\n", what.c_str());
  std::abort();
}

void write_text(const fs::path& p, const std::string& text) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << text;
}

// The temporary root and the agent around it, made once per process.
class Sandbox {
 public:
  Sandbox() {
    std::string tmpl(kRootTemplate);
    if (::mkdtemp(tmpl.data()) == nullptr) fail("mkdtemp failed");
    root_ = tmpl;
    root_str_ = tmpl;
    canary_ = tmpl + ".canary";
    make_canary();
    reset();

    qtx::agent::AgentConfig c;
    c.log_level = "off";
    c.state_dir = (root_ / "state").string();
    c.deny = {"power", "freeze", "thaw", "time_set", "hostname_set", "process_kill"};
    c.file_roots = {root_.string()};
    // Longer than kDeadline: every exec must end by the Cancel, so one the
    // Cancel cannot reach (its id lost) fails the run instead of timing out.
    c.exec_default_timeout_ms = 60000;
    c.max_message = kMaxMessage;
    c.max_exec_output = 1 << 20;
    c.max_concurrent_execs = 4;
    c.max_open_transfers = 4;
    c.outbox_bytes = 1 << 20;
    c.telemetry_interval_ms = 60000;
    c.freeze_hooks_dir = (root_ / "freeze-hook.d").string();
    c.passwd_file = (root_ / "etc/passwd").string();
    c.shadow_file = (root_ / "etc/shadow").string();
    c.group_file = (root_ / "etc/group").string();
    c.hostname_file = (root_ / "etc/hostname").string();
    agent_ = std::make_unique<qtx::agent::AgentContext>(
        io_, c, qtx::agent::AgentIdentity{"fuzz", "00000000000000000000000000000000", ""});
  }

  void remove_root() {
    open_up();
    std::error_code ignored;
    fs::remove_all(root_, ignored);
    fs::remove_all(canary_, ignored);
  }

  // The same small tree before every input, so an input means the same
  // thing whenever it runs.
  void reset() {
    open_up();
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(root_, ec)) fs::remove_all(e.path(), ec);
    for (const char* d : {"etc", "state", "freeze-hook.d", "home/qtx/.ssh", "home/root", "files/sub"}) {
      fs::create_directories(root_ / d);
    }
    const std::string r = root_.string();
    write_text(root_ / "etc/passwd", "root:x:0:0:root:" + r +
                                         "/home/root:/bin/sh\nqtx:x:" + std::to_string(::getuid()) + ":" +
                                         std::to_string(::getgid()) + "::" + r + "/home/qtx:/bin/sh\n");
    write_text(root_ / "etc/shadow", "root:*:19000:0:99999:7:::\nqtx:!:19000:0:99999:7:::\n");
    write_text(root_ / "etc/group", "root:x:0:\nqtx:x:" + std::to_string(::getgid()) + ":\n");
    write_text(root_ / "etc/hostname", "fuzz\n");
    write_text(root_ / "home/qtx/.ssh/authorized_keys", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFuzz fuzz@host\n");
    write_text(root_ / "files/a.txt", "hello\n");
    write_text(root_ / "files/sub/b.bin", std::string(4096, 'b'));
    // The ways out point at a canary beside the root, never at the real
    // machine: a confinement bug the fuzzer finds costs a canary.
    fs::create_symlink(canary_ / "secret", root_ / "files/escape", ec);
    fs::create_directory_symlink(canary_, root_ / "files/slash", ec);
  }

  // The canary beside the root, as reset() expects it.
  void make_canary() {
    fs::create_directories(canary_ / "dir");
    write_text(canary_ / "secret", kCanaryText);
  }
  // False when anything reached the canary: a write, a removal, a new file.
  bool canary_intact() const {
    std::error_code ec;
    std::ifstream f(canary_ / "secret", std::ios::binary);
    const std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    std::size_t entries = 0;
    for ([[maybe_unused]] const auto& e : fs::directory_iterator(canary_, ec)) ++entries;
    return !ec && text == kCanaryText && entries == 2 && fs::is_directory(canary_ / "dir", ec);
  }

  // Directories an input made unreadable must be opened up to be removed.
  void open_up() {
    std::error_code ec;
    ::chmod(root_.c_str(), 0700);
    for (auto it = fs::recursive_directory_iterator(root_, fs::directory_options::skip_permission_denied, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (it->is_directory(ec) && !it->is_symlink(ec)) ::chmod(it->path().c_str(), 0700);
    }
  }

  const std::string& root() const { return root_str_; }
  asio::io_context& io() { return io_; }
  qtx::agent::AgentContext& agent() { return *agent_; }

 private:
  fs::path root_;
  fs::path canary_;  // outside the root; only symlinks in the root lead to it
  std::string root_str_;
  asio::io_context io_;
  std::unique_ptr<qtx::agent::AgentContext> agent_;
};

Sandbox& sandbox() {
  static Sandbox* s = [] {
    qtx::agent::setup_logging("off");  // protobuf's messages too
    ::signal(SIGPIPE, SIG_IGN);
    // Lives as long as the process (workers may still post to its io
    // context); only its directory is removed at exit.
    static Sandbox* box = new Sandbox();
    std::atexit([] { box->remove_root(); });
    return box;
  }();
  return *s;
}

// Tallies the frames a decoder accepts exactly as Session::on_frame does.
class MirrorHandler : public qtx::wire::FrameDecoder::Handler {
 public:
  bool on_frame(std::string_view payload, std::uint64_t) override {
    if (!qtx::wire::parse_sealed_envelope(payload, &env_)) return false;
    if (!qtx::agent::Session::acceptable(env_)) return false;
    if (env_.has_request()) ++expected[env_.id()];
    ++frames;
    return true;
  }
  void on_drop(const qtx::wire::Drop&) override {}

  std::map<std::uint64_t, int> expected;  // request id -> requests sent with it
  std::uint64_t frames = 0;

 private:
  v1::Envelope env_;
};

// The host's side of the socketpair: reads every answer and checks it.
class HostEnd : public qtx::wire::FrameDecoder::Handler {
 public:
  HostEnd(asio::io_context& io, int fd, const std::map<std::uint64_t, int>& expected)
      : sock_(io, fd), expected_(expected), decoder_(this), buf_(new char[64 * 1024]) {}

  void start_reading() {
    sock_.async_read_some(asio::buffer(buf_.get(), 64 * 1024), [this](const asio::error_code& ec, std::size_t n) {
      if (ec) {
        eof_ = true;
        return;
      }
      decoder_.feed(buf_.get(), n);
      start_reading();
    });
  }

  void write(std::string bytes, bool* done) {
    out_ = std::move(bytes);
    asio::async_write(sock_, asio::buffer(out_), [done](const asio::error_code&, std::size_t) { *done = true; });
  }

  bool all_answered() const { return answered_ == total_expected(); }
  std::string unanswered() const {
    std::string s;
    for (const auto& [id, n] : expected_) {
      auto it = answers_.find(id);
      if (it == answers_.end() || it->second < n) s += " " + std::to_string(id);
    }
    return s;
  }
  void close() {
    asio::error_code ignored;
    sock_.close(ignored);
  }
  bool eof() const { return eof_; }

 private:
  int total_expected() const {
    int n = 0;
    for (const auto& [id, k] : expected_) n += k;
    return n;
  }

  bool on_frame(std::string_view payload, std::uint64_t) override {
    if (!qtx::wire::parse_envelope(payload, &env_)) fail("the agent sent a frame that does not parse");
    if (!env_.has_response()) return true;  // telemetry, agent_started, stream data
    const std::uint64_t id = env_.id();
    if (id == 0) fail("the agent answered a request with id 0");
    auto it = expected_.find(id);
    const int sent = it == expected_.end() ? 0 : it->second;
    if (++answers_[id] > sent) fail("request " + std::to_string(id) + " answered more times than it was sent");
    ++answered_;
    return true;
  }
  void on_drop(const qtx::wire::Drop&) override { fail("the agent sent bytes that are not a frame"); }

  asio::posix::stream_descriptor sock_;
  const std::map<std::uint64_t, int>& expected_;
  qtx::wire::FrameDecoder decoder_;
  std::unique_ptr<char[]> buf_;
  std::string out_;
  v1::Envelope env_;
  std::map<std::uint64_t, int> answers_;
  int answered_ = 0;
  bool eof_ = false;
};

// Runs the io loop until `done()` holds; fails with `what()` after kDeadline.
template <class Pred, class What>
void run_until(asio::io_context& io, Pred done, What what) {
  const auto deadline = std::chrono::steady_clock::now() + kDeadline;
  while (!done()) {
    if (io.run_one_until(deadline) == 0 && std::chrono::steady_clock::now() >= deadline) fail(what());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > kMaxInput) return 0;
  Sandbox& box = sandbox();
  box.reset();
  auto& io = box.io();
  auto work = asio::make_work_guard(io);

  // The stream, and what the agent will make of it.
  qtx::fuzz::FuzzInput in(data, size);
  std::string stream;
  for (Step& s : qtx::fuzz::read_script(in)) {
    replace_root(&s.bytes, box.root());
    stream += s.kind == Step::Kind::kRaw ? s.bytes : qtx::fuzz::sealed_frame(s.bytes);
  }
  MirrorHandler mirror;
  qtx::wire::FrameDecoder mirror_decoder(&mirror, qtx::wire::FrameDecoder::Options{.max_payload = kMaxMessage});
  mirror_decoder.feed(stream.data(), stream.size());
  if (mirror_decoder.buffered() != 0) {
    // A torn frame at the end would wait for the stall timer: zeros complete
    // any header the agent may be holding, so it is refused now instead.
    const std::string padding(kMaxMessage + qtx::wire::kHeaderSize, '\0');
    stream += padding;
    mirror_decoder.feed(padding.data(), padding.size());
    if (mirror_decoder.buffered() != 0) fail("padding left bytes in the mirror decoder");
  }
  const std::uint64_t mirror_dropped = mirror_decoder.stats().dropped_total();
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) fail("socketpair failed");
  bool ended = false;
  qtx::agent::Session::Outcome outcome{};
  auto session = std::make_shared<qtx::agent::Session>(box.agent(), fds[0], [&](const auto& o) {
    ended = true;
    outcome = o;
  });
  box.agent().current_session = session;
  HostEnd host(io, fds[1], mirror.expected);
  host.start_reading();
  session->start();

  // The script, then a pause until the agent has been quiet for kQuiet (so
  // what can finish by itself does), then a Cancel for every request id.
  bool written = false;
  host.write(std::move(stream), &written);
  run_until(
      io, [&] { return written || ended; }, [] { return std::string("the script was not taken"); });
  if (ended) fail("the session ended while the script was being written: " + outcome.detail);
  const auto quiet_deadline = std::chrono::steady_clock::now() + kDeadline;
  while (!host.all_answered() && !ended && std::chrono::steady_clock::now() < quiet_deadline &&
         io.run_one_for(kQuiet) != 0) {
  }
  std::string cancels;
  for (const auto& [id, n] : mirror.expected) {
    v1::Envelope cancel;
    cancel.set_id(id);
    cancel.mutable_cancel();
    if (!qtx::wire::append_envelope_frame(cancel, &cancels)) fail("a cancel did not encode");
  }
  written = false;
  host.write(std::move(cancels), &written);
  run_until(
      io, [&] { return (written && host.all_answered()) || ended; },
      [&] { return "unanswered after the cancel:" + host.unanswered(); });
  if (ended) fail("the session ended before every request was answered: " + outcome.detail);
  if (session->decoder_stats().dropped_total() != mirror_dropped) {
    fail("the agent dropped " + std::to_string(session->decoder_stats().dropped_total()) +
         " bytes; the mirror decoder " + std::to_string(mirror_dropped));
  }
  const auto& decoded = session->decoder_stats();
  if (decoded.bytes_hashed > qtx::wire::kMaxHashedPerByteFed * decoded.bytes_fed + qtx::wire::kSealCheckpointSpacing) {
    fail("the agent's decoder hashed " + std::to_string(decoded.bytes_hashed) + " bytes for " +
         std::to_string(decoded.bytes_fed) + " fed, past its linear bound");
  }

  host.close();  // its pending read completes (aborted) before `host` goes
  run_until(
      io, [&] { return ended && host.eof(); },
      [] { return std::string("the session did not end after the host closed"); });
  // The close shows as an end of file, a reset (unread bytes were left) or
  // a broken pipe (the agent was writing): all three are the host leaving.
  if (outcome.end != qtx::agent::Session::End::kHostClosed) {
    fail("the session did not end as the host leaving: " + outcome.detail);
  }
  session.reset();
  if (!box.canary_intact()) fail("a request reached the canary outside the root");
  run_until(
      io, [&] { return box.agent().running_execs == 0 && box.agent().open_transfers == 0; },
      [&] {
        return "left behind: " + std::to_string(box.agent().running_execs) + " execs, " +
               std::to_string(box.agent().open_transfers) + " transfers";
      });
  return 0;
}
