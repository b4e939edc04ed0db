// The qtx tool against a scripted hostile guest: strings meant to drive the
// user's terminal or forge output lines, a download that never ends, and
// calls that are never answered while keepalives are. Each case runs the
// real qtx binary and checks its exit code, its output bytes and what it
// leaves on disk.
#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <signal.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <future>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "support/agent_client.h"
#include "support/cli_run.h"
#include "support/host_fixture.h"

namespace qtx::testing {
namespace {

using namespace std::chrono_literals;

// Terminal control and a forged line: ESC [ 2 J clears the screen, OSC 52
// writes the clipboard, the newline starts a line the guest wrote, CSI as
// a C1 control (U+009B) sets a colour, and a backslash.
const std::string kHostile =
    "evil\x1b[2J\x1b]52;c;ZXZpbA==\x07\nqtx: forged line\xc2\x9b"
    "31m\\";
// The same as the CLI shows it.
const std::string kHostileShown = "evil\\x1b[2J\\x1b]52;c;ZXZpbA==\\x07\\x0aqtx: forged line\\xc2\\x9b31m\\x5c";

// Answers one request the script does not handle itself (hello and ping
// are); it may send anything, or nothing.
using Answer = std::function<void(AgentConnection& peer, const v1::Envelope& request)>;

// The bytes of `out` a terminal would act on: C0 controls but newline, DEL,
// and C1 controls in UTF-8.
std::string terminal_controls(const std::string& out) {
  std::string found;
  for (std::size_t i = 0; i < out.size(); ++i) {
    const auto c = static_cast<unsigned char>(out[i]);
    const bool c1 = c == 0xc2 && i + 1 < out.size() && static_cast<unsigned char>(out[i + 1]) >= 0x80 &&
                    static_cast<unsigned char>(out[i + 1]) <= 0x9f;
    if ((c < 0x20 && c != '\n') || c == 0x7f || c1) found += out[i];
  }
  return found;
}

std::size_t lines(const std::string& out) { return static_cast<std::size_t>(std::count(out.begin(), out.end(), '\n')); }

// Entries of `dir` other than the agent's socket.
std::vector<std::string> files_in(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != ".." && n != "agent.sock") names.push_back(n);
    }
    ::closedir(d);
  }
  return names;
}

class HostileGuestCli : public HostFixture {
 protected:
  // Runs `qtx --socket S args...` while a scripted guest plays the agent on
  // S: it answers the hello (as `identity`) and every ping (keepalive), and
  // hands every other request to `answer`, until the CLI hangs up. The CLI
  // may write files of at most `max_file_size` bytes (RLIMIT_FSIZE, set
  // before the guest speaks): beyond it a write fails, or SIGXFSZ kills it.
  CliRun run(const std::vector<std::string>& args, const Answer& answer, const v1::AgentIdentity& identity = {},
             rlim_t max_file_size = RLIM_INFINITY) {
    std::promise<pid_t> pid;
    cli_pid_ = pid.get_future().share();
    pings_ = 0;
    HostListener listener(socket_path());
    std::thread guest([&] {
      int fd = listener.accept(10000ms);
      if (fd < 0) return;
      cli_pid_.wait();  // the limit is in place
      AgentConnection peer(fd);
      try {
        for (;;) {
          auto env = peer.recv(30000ms);  // bounds a failing test only
          if (!env) return;
          if (!env->has_request()) continue;
          const v1::Request& req = env->request();
          v1::Envelope reply;
          reply.set_id(env->id());
          if (req.has_hello()) {
            auto* h = reply.mutable_response()->mutable_hello();
            h->set_nonce(req.hello().nonce());
            h->set_protocol_version(1);
            *h->mutable_agent() = identity;
            if (h->agent().instance_id().empty()) h->mutable_agent()->set_instance_id("scripted");
            peer.send(reply);
          } else if (req.has_ping()) {
            ++pings_;
            reply.mutable_response()->mutable_ping()->set_payload(req.ping().payload());
            peer.send(reply);
          } else {
            answer(peer, *env);
          }
        }
      } catch (const std::runtime_error&) {
        // The CLI hung up while the script was sending: the script ends.
      }
    });
    std::vector<std::string> full = {"--socket", socket_path()};
    full.insert(full.end(), args.begin(), args.end());
    CliRun r = run_cli(QTX_CLI_BINARY, full, "", [&pid, max_file_size](pid_t p) {
      const rlimit limit{max_file_size, max_file_size};
      EXPECT_EQ(::prlimit(p, RLIMIT_FSIZE, &limit, nullptr), 0);
      pid.set_value(p);
    });
    guest.join();
    return r;
  }

  // The process id of the CLI that run() started, for an Answer to signal.
  pid_t cli_pid() const { return cli_pid_.get(); }
  // Keepalive pings the CLI sent in the last run() (each one answered).
  int pings() const { return pings_; }

 private:
  std::shared_future<pid_t> cli_pid_;
  int pings_ = 0;  // written by the script's thread, read after it is joined
};

// Sends `response` as the answer to `request`.
void reply(AgentConnection& peer, const v1::Envelope& request, const v1::Response& response) {
  v1::Envelope env;
  env.set_id(request.id());
  *env.mutable_response() = response;
  peer.send(env);
}

void fill_identity(v1::AgentIdentity* a) {
  a->set_version(kHostile);
  a->set_instance_id(kHostile);
  a->set_boot_id(kHostile);
  auto* cap = a->add_capabilities();
  cap->set_name(kHostile);
  cap->set_allowed(false);
}

// --- item: guest strings in the CLI's human output -------------------------------

// Answers nothing but the hello and pings.
void never_answer_but_hello(AgentConnection&, const v1::Envelope&) {}

Answer answer_everything_hostile() {
  return [](AgentConnection& peer, const v1::Envelope& request) {
    const v1::Request& req = request.request();
    v1::Response r;
    if (req.has_info()) {
      auto* info = r.mutable_info();
      fill_identity(info->mutable_agent());
      info->mutable_os()->set_pretty_name(kHostile);
      info->set_kernel_release(kHostile);
      info->set_arch(kHostile);
      info->set_hostname(kHostile);
      info->set_timezone(kHostile);
      info->mutable_policy()->add_file_roots(kHostile);
    } else if (req.has_ssh_keys()) {
      r.mutable_ssh_keys()->add_keys(kHostile);
      r.mutable_ssh_keys()->add_keys(kHostile);
    } else if (req.has_freeze_status()) {
      r.mutable_freeze_status()->set_frozen(true);
      r.mutable_freeze_status()->add_mountpoints(kHostile);
    } else if (req.has_freeze()) {
      r.mutable_freeze()->add_frozen(kHostile);
      r.mutable_freeze()->add_frozen(kHostile);
    } else if (req.has_telemetry_config()) {
      r.mutable_telemetry_config()->set_interval_ms(5000);
      reply(peer, request, r);
      v1::Envelope sample;
      auto* s = sample.mutable_event()->mutable_telemetry();
      s->set_seq(1);
      auto* fs = s->add_filesystems();
      fs->set_mountpoint(kHostile);
      fs->set_device(kHostile);
      peer.send(sample);
      return;
    } else {
      return;
    }
    reply(peer, request, r);
  };
}

TEST_F(HostileGuestCli, GuestStringsCannotDriveTheTerminalOrForgeLines) {
  v1::AgentIdentity identity;
  fill_identity(&identity);
  struct Case {
    std::vector<std::string> args;
    std::size_t lines;
  };
  const Case cases[] = {
      {{"info"}, 11},         {{"wait-ready"}, 1}, {{"ssh-key", "list", "alice"}, 2},
      {{"freeze-status"}, 1}, {{"freeze"}, 1},     {{"telemetry"}, 1},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.args[0]);
    auto r = run(c.args, answer_everything_hostile(), identity);
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(terminal_controls(r.out), "") << r.out;
    EXPECT_EQ(lines(r.out), c.lines) << r.out;
    EXPECT_EQ(r.out.find("\nqtx: forged line"), std::string::npos) << r.out;
    if (c.args[0] == "telemetry") continue;  // numbers only in human output
    EXPECT_NE(r.out.find(kHostileShown), std::string::npos) << r.out;

    // --json: exact JSON, whose escapes leave no control for a terminal.
    std::vector<std::string> json_args = {"--json"};
    json_args.insert(json_args.end(), c.args.begin(), c.args.end());
    auto j = run(json_args, answer_everything_hostile(), identity);
    EXPECT_EQ(j.code, 0) << j.err;
    EXPECT_EQ(terminal_controls(j.out), "") << j.out;
    EXPECT_EQ(lines(j.out), 1u) << j.out;
  }
  auto r = run({"info"}, answer_everything_hostile(), identity);
  EXPECT_NE(r.out.find("hostname      " + kHostileShown + "\n"), std::string::npos) << r.out;
  r = run({"ssh-key", "list", "alice"}, answer_everything_hostile(), identity);
  EXPECT_EQ(r.out, kHostileShown + "\n" + kHostileShown + "\n");
  r = run({"--json", "telemetry"}, answer_everything_hostile(), identity);
  EXPECT_NE(r.out.find("\\u001b[2J\\u001b]52;c;ZXZpbA==\\u0007\\nqtx: forged line"), std::string::npos) << r.out;
}

TEST_F(HostileGuestCli, VmWaitReadyEscapesTheGuestsIdentity) {
  v1::AgentIdentity identity;
  fill_identity(&identity);
  auto r = run({"vm", "wait-ready", "--socket", socket_path(), "--timeout", "10"}, never_answer_but_hello, identity);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(terminal_controls(r.out), "") << r.out;
  EXPECT_EQ(lines(r.out), 1u) << r.out;
  EXPECT_NE(r.out.find("qtx-agent " + kHostileShown + ", instance " + kHostileShown + "\n"), std::string::npos)
      << r.out;
  r = run({"--json", "vm", "wait-ready", "--socket", socket_path(), "--timeout", "10"}, never_answer_but_hello,
          identity);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(terminal_controls(r.out), "") << r.out;
  EXPECT_NE(r.out.find("\"agent_version\":\"evil\\u001b[2J\\u001b]52;c;ZXZpbA==\\u0007\\nqtx: forged "
                       "line\\u009b31m\\\\\""),
            std::string::npos)
      << r.out;
}

TEST_F(HostileGuestCli, ExecOutputIsPassedThroughRawAndExactlyQuotedInJson) {
  // The command's output is the data asked for: raw in human output, and
  // exact JSON (with no terminal control left) under --json.
  auto answer_exec = [](AgentConnection& peer, const v1::Envelope& request) {
    if (!request.request().has_exec()) return;
    v1::Envelope out;
    out.set_id(request.id());
    out.mutable_progress()->mutable_exec_output()->set_stream(v1::ExecOutput::STREAM_STDOUT);
    out.mutable_progress()->mutable_exec_output()->set_data(kHostile);
    peer.send(out);
    v1::Response r;
    r.mutable_exec()->set_exit_code(0);
    reply(peer, request, r);
  };
  auto r = run({"exec", "--", "/bin/cat"}, answer_exec);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, kHostile);
  r = run({"--json", "exec", "--", "/bin/cat"}, answer_exec);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(terminal_controls(r.out), "") << r.out;
  EXPECT_NE(r.out.find(",\"stdout\":\"evil\\u001b[2J\\u001b]52;c;ZXZpbA==\\u0007\\nqtx: forged line\\u009b31m\\\\\","),
            std::string::npos)
      << r.out;
}

// --- item: a download bounded by the announced size ---------------------------------

// Answers a stat with `announced` bytes (a regular file; 0: an empty one,
// as /proc files are), and a read with an endless stream: `first` bytes,
// then 64 KiB chunks within the credit the host grants, up to `cap` bytes,
// then an answer claiming success. *sent counts what was sent.
Answer endless_download(std::uint64_t announced, std::size_t first, std::uint64_t cap, std::uint64_t* sent) {
  return [=](AgentConnection& peer, const v1::Envelope& request) {
    const v1::Request& req = request.request();
    v1::Response r;
    if (req.has_file_stat()) {
      r.mutable_file_stat()->set_path(req.file_stat().path());
      r.mutable_file_stat()->set_type(v1::FILE_TYPE_REGULAR);
      r.mutable_file_stat()->set_size(announced);
      reply(peer, request, r);
      return;
    }
    if (!req.has_file_read()) return;
    std::uint64_t granted = req.file_read().window();
    std::size_t chunk = first;
    while (*sent < cap) {
      while (*sent + chunk > granted) {
        auto in = peer.recv(10000ms);
        if (!in || in->has_cancel()) return;  // the host gave up: the script ends
        if (in->has_credit()) granted += in->credit().bytes();
      }
      v1::Envelope data;
      data.set_id(request.id());
      data.mutable_progress()->mutable_file_chunk()->set_offset(*sent);
      data.mutable_progress()->mutable_file_chunk()->set_data(std::string(chunk, 'A'));
      peer.send(data);
      *sent += chunk;
      chunk = 64 * 1024;
    }
    r.mutable_file_read()->set_bytes(*sent);
    r.mutable_file_read()->set_file_size(*sent);
    reply(peer, request, r);
  };
}

TEST_F(HostileGuestCli, ADownloadBeyondTheAnnouncedSizeStopsAndLeavesNoFile) {
  std::uint64_t sent = 0;
  const std::string local = dir() + "/copy";
  // What reaches the disk is bounded: the CLI may not write a file past 1 MiB.
  auto r = run({"cp", "--no-sha256", ":/ten-bytes", local}, endless_download(10, 8, 64u << 20, &sent), {}, 1u << 20);
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "qtx: download: the agent sent more than the 10 bytes asked for; " + local + " was not written\n");
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(files_in(dir()), std::vector<std::string>{}) << "a partial file was left";
  // The host stopped granting credit at the first chunk past the size.
  EXPECT_LE(sent, 8u + 8u * 1024 * 1024) << sent;
  RecordProperty("guest_bytes_sent", std::to_string(sent));
}

TEST_F(HostileGuestCli, ADownloadWithNoAnnouncedSizeStopsAtMaxSize) {
  std::uint64_t sent = 0;
  const std::string local = dir() + "/copy";
  auto r = run({"cp", "--no-sha256", "--max-size", "100K", ":/proc/endless", local},
               endless_download(0, 60 * 1024, 64u << 20, &sent), {}, 1u << 20);
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err,
            "qtx: download: the agent sent more than the 102400 bytes this download accepts "
            "(TransferOptions::max_bytes); " +
                local + " was not written\n");
  EXPECT_EQ(files_in(dir()), std::vector<std::string>{}) << "a partial file was left";
  EXPECT_LE(sent, 8u * 1024 * 1024 + 60 * 1024) << sent;
  RecordProperty("guest_bytes_sent", std::to_string(sent));

  // An announced size above --max-size is refused before any byte is read.
  sent = 0;
  r = run({"cp", "--max-size", "1K", ":/big", local}, endless_download(4096, 1024, 64u << 20, &sent));
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "qtx: cp: :/big is 4096 bytes, more than --max-size 1024\n");
  EXPECT_EQ(sent, 0u);
  EXPECT_EQ(files_in(dir()), std::vector<std::string>{});

  // Usage errors, found before connecting.
  EXPECT_EQ(run_cli(QTX_CLI_BINARY, {"--socket", socket_path(), "cp", "--max-size", "lots", ":/big", local}).code, 2);
  EXPECT_EQ(run_cli(QTX_CLI_BINARY, {"--socket", socket_path(), "cp", "--max-size", "1K", local, ":/up"}).code, 2);
}

TEST_F(HostileGuestCli, AnInterruptedDownloadLeavesNoPartialFileAndLocalAsItWas) {
  const std::string local = dir() + "/copy";
  std::ofstream(local) << "before";
  // Streams within the credit until the host grants more, which it does
  // once a quarter of the window is on disk; then the user presses ^C.
  auto interrupt_mid_download = [this](AgentConnection& peer, const v1::Envelope& request) {
    const v1::Request& req = request.request();
    v1::Response r;
    if (req.has_file_stat()) {
      r.mutable_file_stat()->set_type(v1::FILE_TYPE_REGULAR);
      r.mutable_file_stat()->set_size(64u << 20);
      reply(peer, request, r);
      return;
    }
    if (!req.has_file_read()) return;
    std::uint64_t sent = 0;
    const std::size_t chunk = 256 * 1024;
    while (sent + chunk <= req.file_read().window() / 2) {
      v1::Envelope data;
      data.set_id(request.id());
      data.mutable_progress()->mutable_file_chunk()->set_offset(sent);
      data.mutable_progress()->mutable_file_chunk()->set_data(std::string(chunk, 'A'));
      peer.send(data);
      sent += chunk;
    }
    if (!peer.recv_until([](const v1::Envelope& e) { return e.has_credit(); })) return;
    ::kill(cli_pid(), SIGINT);
    while (peer.recv()) {
    }
  };
  auto r = run({"cp", ":/big", local}, interrupt_mid_download);
  EXPECT_EQ(r.code, 128 + SIGINT);
  EXPECT_EQ(r.err, "qtx: cp: interrupted; " + local + " was not written\n");
  EXPECT_EQ(files_in(dir()), std::vector<std::string>{"copy"}) << "a partial file was left";
  std::ifstream in(local);
  std::stringstream kept;
  kept << in.rdbuf();
  EXPECT_EQ(kept.str(), "before");
}

// --- item: every command has a host-side deadline -----------------------------------

TEST_F(HostileGuestCli, ACallNeverAnsweredEndsAtTheDeadlineWithExit5) {
  const std::string deadline_passed = " within the command's deadline of 1 s (qtx --timeout S changes it)";
  std::ofstream(dir() + "/up.bin") << "upload me";
  struct Case {
    std::vector<std::string> args;
    std::string err;
  };
  const Case cases[] = {
      {{"info"}, "qtx: no answer" + deadline_passed + "\n"},
      {{"exec", "--", "/bin/true"}, "qtx: no answer" + deadline_passed + "\n"},
      {{"exec", "--timeout", "60", "--", "/bin/true"}, "qtx: no answer" + deadline_passed + "\n"},
      {{"cp", dir() + "/up.bin", ":/up"}, "qtx: no answer" + deadline_passed + "\n"},
      {{"telemetry"}, "qtx: no answer" + deadline_passed + "\n"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.args[0]);
    std::vector<std::string> args = {"--timeout", "1"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    auto r = run(args, never_answer_but_hello);
    EXPECT_EQ(r.code, 5) << r.err;
    EXPECT_EQ(r.err, c.err);
    EXPECT_EQ(r.out, "");
  }
  // A download whose stat is answered but whose read is not.
  auto stat_only = [](AgentConnection& peer, const v1::Envelope& request) {
    if (!request.request().has_file_stat()) return;
    v1::Response r;
    r.mutable_file_stat()->set_type(v1::FILE_TYPE_REGULAR);
    r.mutable_file_stat()->set_size(10);
    reply(peer, request, r);
  };
  const std::string local = dir() + "/down";
  auto r = run({"--timeout", "1", "cp", ":/ten-bytes", local}, stat_only);
  EXPECT_EQ(r.code, 5) << r.err;
  EXPECT_EQ(r.err, "qtx: no answer" + deadline_passed + "; " + local + " was not written\n");
  EXPECT_EQ(files_in(dir()), std::vector<std::string>{"up.bin"});

  // A telemetry sample that never comes, its config answered.
  auto config_only = [](AgentConnection& peer, const v1::Envelope& request) {
    if (!request.request().has_telemetry_config()) return;
    v1::Response resp;
    resp.mutable_telemetry_config()->set_interval_ms(60000);
    reply(peer, request, resp);
  };
  r = run({"--timeout", "1", "telemetry"}, config_only);
  EXPECT_EQ(r.code, 5) << r.err;
  EXPECT_EQ(r.err, "qtx: no telemetry sample" + deadline_passed + "\n");

  // Keepalive answered all along (the CLI pings after 5 s of silence) does
  // not keep the call alive past its deadline.
  r = run({"--timeout", "10", "exec", "--", "/bin/true"}, never_answer_but_hello);
  EXPECT_EQ(r.code, 5) << r.err;
  EXPECT_EQ(r.err, "qtx: no answer within the command's deadline of 10 s (qtx --timeout S changes it)\n");
  EXPECT_GE(pings(), 1);
}

}  // namespace
}  // namespace qtx::testing
