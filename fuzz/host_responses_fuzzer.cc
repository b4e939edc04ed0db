// libqtx-host fed by a hostile guest: the fuzzer plays the agent on a
// socketpair adopted by a real Manager. It answers the handshake, waits for
// the calls the host makes (unary calls, two execs, a download, an upload),
// then sends its script (fuzz/frame_script.h; an addressed step carries the
// id of the target-th request the host sent), keeps reading whatever the
// host writes, and hangs up. Properties:
//  - never a crash or a sanitizer report, and no allocation the guest's
//    claims can inflate (libFuzzer's -malloc_limit_mb and -rss_limit_mb);
//  - every call's callback runs exactly once, and all of them have run
//    within 10 s of the hang-up: no call is left pending;
//  - collected exec output never passes ExecStreams::max_collected;
//  - the host's decoder did work linear in the bytes it read (bytes hashed
//    within kMaxHashedPerByteFed).
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "frame_script.h"
#include "qtx/host/manager.h"
#include "qtx/wire/decoder.h"
#include "qtx/wire/envelope_codec.h"

namespace {

namespace v1 = qtx::agent::v1;
using qtx::fuzz::Step;
using namespace std::chrono_literals;

constexpr std::size_t kMaxInput = 64 * 1024;
constexpr std::size_t kMaxCollected = 4096;  // small enough for one input to pass
constexpr auto kDeadline = 10s;

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "property violated: %s\n", what.c_str());
  std::abort();
}

qtx::host::Manager& manager() {
  static qtx::host::Manager* m = [] {
    ::signal(SIGPIPE, SIG_IGN);
    return new qtx::host::Manager();  // the process's lifetime: its I/O thread serves every input
  }();
  return *m;
}

// Completions of the host's calls, written on its I/O thread.
class Tally {
 public:
  // A callback for call `name`; it must run exactly once.
  template <class T>
  qtx::host::Callback<T> expect(const std::string& name, std::function<void(const T&)> check = {}) {
    std::lock_guard<std::mutex> lock(mu_);
    const std::size_t slot = runs_.size();
    runs_.push_back(0);
    names_.push_back(name);
    return [this, slot, check](qtx::host::Result<T> r) {
      if (r && check) check(*r);
      std::lock_guard<std::mutex> held(mu_);
      if (++runs_[slot] > 1) fail("the callback of " + names_[slot] + " ran twice");
      cv_.notify_all();
    };
  }

  void wait_all() {
    std::unique_lock<std::mutex> lock(mu_);
    const bool done = cv_.wait_for(lock, kDeadline, [this] {
      for (int n : runs_) {
        if (n == 0) return false;
      }
      return true;
    });
    if (!done) {
      std::string pending;
      for (std::size_t i = 0; i < runs_.size(); ++i) {
        if (runs_[i] == 0) pending += " " + names_[i];
      }
      fail("calls still pending 10 s after the guest hung up:" + pending);
    }
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<int> runs_;
  std::vector<std::string> names_;
};

// The guest's end of the socketpair: frames in, bytes out, driven by poll.
class GuestEnd : private qtx::wire::FrameDecoder::Handler {
 public:
  explicit GuestEnd(int fd) : fd_(fd), decoder_(this) {}
  ~GuestEnd() override { hang_up(); }

  // Reads and writes until `done()` or the deadline (false).
  template <class Pred>
  bool pump(Pred done) {
    const auto deadline = std::chrono::steady_clock::now() + kDeadline;
    while (!done()) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0 || fd_ < 0) return false;
      pollfd p{fd_, static_cast<short>(POLLIN | (out_.empty() ? 0 : POLLOUT)), 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) < 0) continue;
      if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
        char buf[64 * 1024];
        const ssize_t n = ::read(fd_, buf, sizeof buf);
        if (n <= 0) return false;  // the host hung up: nothing more will come
        decoder_.feed(buf, static_cast<std::size_t>(n));
      }
      if ((p.revents & POLLOUT) && !out_.empty()) {
        const ssize_t n = ::send(fd_, out_.data(), out_.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) out_.erase(0, static_cast<std::size_t>(n));
        if (n < 0 && errno != EAGAIN && errno != EINTR) return false;
      }
    }
    return true;
  }

  void queue(std::string bytes) { out_ += bytes; }
  bool flushed() const { return out_.empty(); }
  void hang_up() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  // Request ids in the order the host sent them (the hello first).
  const std::vector<std::uint64_t>& requests() const { return requests_; }
  const v1::Envelope& hello() const { return hello_; }

 private:
  bool on_frame(std::string_view payload, std::uint64_t) override {
    if (!qtx::wire::parse_envelope(payload, &env_)) fail("the host sent a frame that does not parse");
    if (env_.has_request()) {
      if (env_.request().has_hello() && requests_.empty()) hello_ = env_;
      requests_.push_back(env_.id());
    }
    return true;
  }
  void on_drop(const qtx::wire::Drop&) override { fail("the host sent bytes that are not a frame"); }

  int fd_;
  qtx::wire::FrameDecoder decoder_;
  v1::Envelope env_, hello_;
  std::string out_;
  std::vector<std::uint64_t> requests_;
};

std::string frame_of(const v1::Envelope& env) {
  std::string out;
  if (!qtx::wire::append_envelope_frame(env, &out)) fail("an envelope did not encode");
  return out;
}

// The calls the host has in flight when the script starts.
void make_calls(qtx::host::Agent& agent, Tally& tally) {
  const qtx::host::CallOptions none{.timeout = 0ms};
  agent.ping({}, none, tally.expect<v1::PingResponse>("ping"));
  agent.info({}, none, tally.expect<v1::InfoResponse>("info"));
  v1::FileListRequest list;
  list.set_path("/");
  agent.file_list(list, none, tally.expect<v1::FileListResponse>("file_list"));
  agent.process_list({}, none, tally.expect<v1::ProcessListResponse>("process_list"));
  agent.network({}, none, tally.expect<v1::NetworkResponse>("network"));
  v1::SshKeysRequest keys;
  keys.set_user("root");
  keys.set_action(v1::SshKeysRequest::ACTION_LIST);
  agent.ssh_keys(keys, none, tally.expect<v1::SshKeysResponse>("ssh_keys"));

  v1::ExecRequest exec;
  exec.add_argv("/bin/true");
  qtx::host::ExecStreams collected;
  collected.max_collected = kMaxCollected;
  agent.exec(exec, collected, none, tally.expect<qtx::host::ExecOutcome>("exec collected", [](const auto& o) {
    if (o.stdout_data.size() > kMaxCollected || o.stderr_data.size() > kMaxCollected) {
      fail("collected exec output passed max_collected");
    }
  }));
  qtx::host::ExecStreams streamed;
  streamed.on_stdout = [](std::string_view) {};
  streamed.on_stderr = [](std::string_view) {};
  agent.exec(exec, streamed, none, tally.expect<qtx::host::ExecOutcome>("exec streamed"));

  v1::FileReadRequest read;
  read.set_path("/f");
  qtx::host::TransferOptions small;
  small.chunk_size = 4096;
  small.window = 16 * 1024;
  agent.download(
      read, [](std::string_view) { return qtx::host::Result<void>(); }, small, none,
      tally.expect<qtx::host::TransferResult>("download"));
  v1::FileWriteRequest write;
  write.set_path("/g");
  auto left = std::make_shared<std::size_t>(20000);
  agent.upload(
      [left](char* buf, std::size_t n) -> qtx::host::Result<std::size_t> {
        const std::size_t k = std::min(n, *left);
        std::fill(buf, buf + k, 'u');
        *left -= k;
        return k;
      },
      20000, write, small, none, tally.expect<qtx::host::TransferResult>("upload"));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > kMaxInput) return 0;
  qtx::fuzz::FuzzInput in(data, size);
  const std::vector<Step> script = qtx::fuzz::read_script(in);

  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) fail("socketpair failed");
  GuestEnd guest(fds[1]);
  qtx::host::AgentOptions options;
  options.endpoint = qtx::host::Endpoint::adopt(fds[0]);
  options.name = "fuzz";
  options.handshake_timeout = kDeadline;
  options.keepalive_interval = 0ms;  // no timer may end the connection: only the script and the hang-up
  options.max_message = 64 * 1024;
  auto added = manager().add(options);
  if (!added) fail("add: " + added.error().message());
  std::shared_ptr<qtx::host::Agent> agent = *added;

  // The handshake, answered as an agent would.
  if (!guest.pump([&] { return !guest.requests().empty(); })) fail("no hello from the host");
  v1::Envelope answer;
  answer.set_id(guest.hello().id());
  auto* hello = answer.mutable_response()->mutable_hello();
  hello->set_nonce(guest.hello().request().hello().nonce());
  hello->set_protocol_version(v1::PROTOCOL_VERSION_1);
  hello->mutable_agent()->set_instance_id("fuzz");
  guest.queue(frame_of(answer));
  if (!guest.pump([&] { return guest.flushed(); })) fail("the hello answer was not taken");
  if (!agent->wait_ready(kDeadline)) fail("the host did not become ready after a valid hello answer");

  Tally tally;
  make_calls(*agent, tally);
  constexpr std::size_t kRequests = 1 + 10;  // the hello and make_calls' calls
  if (!guest.pump([&] { return guest.requests().size() >= kRequests; })) fail("the host did not send its calls");

  const auto& ids = guest.requests();
  for (const Step& s : script) {
    if (s.kind == Step::Kind::kRaw) {
      guest.queue(s.bytes);
      continue;
    }
    v1::Envelope env;
    if (s.kind == Step::Kind::kAddressed && s.target < ids.size() && env.ParseFromString(s.bytes)) {
      env.clear_check();
      env.set_id(ids[s.target]);
      guest.queue(qtx::fuzz::sealed_frame(env.SerializeAsString()));
    } else {
      guest.queue(qtx::fuzz::sealed_frame(s.bytes));
    }
  }
  // The host may stop reading (a hostile byte can end the connection): then
  // the rest of the script is simply never taken.
  guest.pump([&] { return guest.flushed(); });
  guest.hang_up();
  tally.wait_all();
  const auto stats = agent->stats();
  if (stats.decoder_bytes_hashed >
      qtx::wire::kMaxHashedPerByteFed * stats.bytes_in + qtx::wire::kSealCheckpointSpacing) {
    fail("the host's decoder hashed " + std::to_string(stats.decoder_bytes_hashed) + " bytes for " +
         std::to_string(stats.bytes_in) + " read, past its linear bound");
  }
  manager().remove(agent);
  return 0;
}
