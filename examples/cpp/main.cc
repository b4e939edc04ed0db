// qtx_example_cpp: the C++ API of libqtx-host in one small program.
//
//   qtx_example_cpp SOCKET
//
// Connects to the agent behind SOCKET (QEMU's chardev socket for the VM's
// org.quantix.agent.0 port), prints its identity, runs `uname -a` in the
// guest, and copies a small file into the guest and back. Exit status: 0 on
// success, 1 on any failure, 2 for a usage error.
#include <qtx/host/manager.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

namespace host = qtx::host;
namespace v1 = ::qtx::agent::v1;
using namespace std::chrono_literals;

namespace {

int fail(const char* what, const host::Error& error) {
  std::fprintf(stderr, "%s: %s\n", what, error.to_string().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s SOCKET\n", argv[0]);
    return 2;
  }

  // One Manager (one I/O thread) serves every VM of the process.
  host::Manager manager;

  host::AgentOptions options;
  options.endpoint = host::Endpoint::connect(argv[1]);
  // Callbacks run on the manager's I/O thread: they print and return, and
  // never block or make blocking calls.
  options.callbacks.on_state = [](host::State state, const host::Error* cause) {
    if (cause != nullptr) {
      std::printf("state: %s (%s)\n", host::state_name(state), cause->to_string().c_str());
    } else {
      std::printf("state: %s\n", host::state_name(state));
    }
  };
  options.callbacks.on_telemetry = [](const v1::TelemetrySample& sample) {
    std::printf("telemetry #%llu: cpu %.1f%%, %llu MiB of memory available\n",
                static_cast<unsigned long long>(sample.seq()), sample.cpu().busy_pct(),
                static_cast<unsigned long long>(sample.memory().available_bytes() / (1024 * 1024)));
  };

  // This process now owns the socket; the agent closes when its last handle
  // goes (here: at the end of main, before the manager).
  auto added = manager.add(std::move(options));
  if (!added) return fail("add", added.error());
  std::shared_ptr<host::Agent> agent = std::move(added.value());

  auto identity = agent->wait_ready(10s);
  if (!identity) return fail("wait_ready", identity.error());
  std::printf("ready: qtx-agent %s, instance %s\n", identity->version().c_str(), identity->instance_id().c_str());

  // exec: with no stream callbacks the output is collected in the outcome.
  v1::ExecRequest exec;
  exec.add_argv("uname");
  exec.add_argv("-a");
  auto ran = agent->exec(exec, {}, host::CallOptions{.timeout = 30s});
  if (!ran) return fail("exec", ran.error());
  std::printf("uname -a: %s", ran->stdout_data.c_str());
  if (ran->result.has_signal()) {
    std::printf("uname: killed by signal %d\n", ran->result.signal());
  } else {
    std::printf("uname: exit code %d\n", ran->result.exit_code());
  }

  // Upload a buffer (atomically replacing the file), then read it back. Both
  // transfers are sha256-checked end to end by the library.
  const std::string content = "hello from libqtx-host\n";
  v1::FileWriteRequest write;
  write.set_path("/tmp/qtx-example.txt");
  write.set_mode(0644);
  write.set_atomic(true);
  auto uploaded = agent->upload_bytes(content, write);
  if (!uploaded) return fail("upload", uploaded.error());
  std::printf("uploaded %llu bytes, sha256 %s\n", static_cast<unsigned long long>(uploaded->bytes),
              uploaded->sha256_hex.c_str());

  v1::FileReadRequest read;
  read.set_path("/tmp/qtx-example.txt");
  std::string back;  // download_bytes appends to it
  auto downloaded = agent->download_bytes(read, &back);
  if (!downloaded) return fail("download", downloaded.error());
  if (back != content) {
    std::fprintf(stderr, "download: got %zu bytes that differ from the %zu uploaded\n", back.size(), content.size());
    return 1;
  }
  std::printf("downloaded %llu bytes: identical\n", static_cast<unsigned long long>(downloaded->bytes));
  return 0;
}
