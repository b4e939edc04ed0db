// The qtx tool as users run it: a process with arguments, against the real
// agent, checked by exit code, stdout and stderr.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <vector>

#include "support/agent_client.h"
#include "support/cli_run.h"
#include "support/host_fixture.h"

namespace qtx::testing {
namespace {

using Run = CliRun;

Run qtx(const std::vector<std::string>& args, const std::string& input = "") {
  return run_cli(QTX_CLI_BINARY, args, input);
}

class Cli : public HostFixture {
 protected:
  std::vector<std::string> with_socket(std::vector<std::string> args) {
    args.insert(args.begin(), {"--socket", socket_path()});
    return args;
  }
};

TEST_F(Cli, PingAndInfo) {
  start_agent();
  auto r = qtx(with_socket({"ping"}));
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("pong from " + socket_path() + " in ", 0), 0u) << r.out;
  r = qtx(with_socket({"--json", "info"}));
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("{\"agent\":{\"version\":\"", 0), 0u) << r.out;
}

TEST_F(Cli, NoAgentIsExit3WithTheReason) {
  auto r = qtx(with_socket({"--connect-timeout", "0.2", "ping"}));
  EXPECT_EQ(r.code, 3);
  EXPECT_EQ(r.err, "qtx: no agent on " + socket_path() + ": no such socket (is the VM running?)\n");
  EXPECT_EQ(r.out, "");
}

TEST_F(Cli, ExecStreamsOutputAndExitsWithTheCommandsCode) {
  start_agent();
  auto r = qtx(with_socket({"exec", "--", "/bin/sh", "-c", "echo hi; echo oops >&2; exit 7"}));
  EXPECT_EQ(r.code, 7);
  EXPECT_EQ(r.out, "hi\n");
  EXPECT_EQ(r.err, "oops\n");
  r = qtx(with_socket({"exec", "--stdin", "--", "/bin/cat"}), "fed through stdin");
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out, "fed through stdin");
  r = qtx(with_socket({"--json", "exec", "--", "/bin/sh", "-c", "printf x; kill -9 $$"}));
  EXPECT_EQ(r.code, 128 + 9);
  EXPECT_NE(r.out.find("\"signal\":9"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"stdout\":\"x\""), std::string::npos) << r.out;
}

TEST_F(Cli, CopyInAndOutVerified) {
  start_agent();
  std::string data(3 * 1024 * 1024 + 5, '\0');
  std::mt19937 rng(7);
  for (auto& c : data) c = static_cast<char>(rng());
  std::ofstream(dir() + "/in.bin", std::ios::binary) << data;
  auto r = qtx(with_socket({"cp", dir() + "/in.bin", ":" + dir() + "/guest.bin"}));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find(std::to_string(data.size()) + " bytes, sha256 "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("(verified)"), std::string::npos);
  r = qtx(with_socket({"cp", ":" + dir() + "/guest.bin", dir() + "/out.bin"}));
  ASSERT_EQ(r.code, 0) << r.err;
  std::ifstream f(dir() + "/out.bin", std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  EXPECT_EQ(ss.str(), data);

  r = qtx(with_socket({"cp", ":" + dir() + "/absent", dir() + "/x"}));
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err.rfind("qtx: ", 0), 0u);
  r = qtx(with_socket({"cp", "a", "b"}));
  EXPECT_EQ(r.code, 2);
}

TEST_F(Cli, CopyOutWithMaxSizeAndATimeout) {
  start_agent();
  std::ofstream(dir() + "/guest.txt") << "0123456789";
  // An announced size above --max-size is refused before reading.
  auto r = qtx(with_socket({"cp", "--max-size", "9", ":" + dir() + "/guest.txt", dir() + "/copy.txt"}));
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "qtx: cp: :" + dir() + "/guest.txt is 10 bytes, more than --max-size 9\n");
  EXPECT_NE(::access((dir() + "/copy.txt").c_str(), F_OK), 0);
  r = qtx(with_socket({"cp", "--max-size", "10", ":" + dir() + "/guest.txt", dir() + "/copy.txt"}));
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("10 bytes, sha256 ", 0), 0u) << r.out;
  // A deadline that leaves time enough changes nothing.
  r = qtx(with_socket({"--timeout", "60", "info"}));
  EXPECT_EQ(r.code, 0) << r.err;
}

TEST_F(Cli, DeniedIsExit4) {
  start_agent("[policy]\ndeny = [\"exec\"]\n");
  auto r = qtx(with_socket({"exec", "--", "/bin/true"}));
  EXPECT_EQ(r.code, 4);
  EXPECT_EQ(r.err, "qtx: denied by the guest's policy: exec\n");
}

TEST_F(Cli, ASecondProcessIsToldWhoOwnsTheSocket) {
  start_agent();
  auto agent = connect();
  ASSERT_TRUE(agent);
  auto r = qtx(with_socket({"ping"}));
  EXPECT_EQ(r.code, 3);
  EXPECT_EQ(r.err, "qtx: " + socket_path() + " is already owned by pid " + std::to_string(::getpid()) +
                       " (QEMU serves one client per channel)\n");
}

TEST_F(Cli, ASocketThatNeverAnswersIsExit3WithTheHandshakeReason) {
  HostListener silent(socket_path());  // connects succeed, nothing answers
  auto r = qtx(with_socket({"--connect-timeout", "0.3", "ping"}));
  EXPECT_EQ(r.code, 3);
  EXPECT_EQ(r.err, "qtx: the agent on " + socket_path() + " did not answer the handshake within 300 ms\n");
}

TEST_F(Cli, ExecOptionsBeforeTheSeparator) {
  start_agent();
  auto r = qtx(with_socket({"exec", "--env", "A=1", "--", "/bin/sh", "-c", "echo $A"}));
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "1\n");
}

TEST_F(Cli, UsageErrorsExit2) {
  EXPECT_EQ(qtx(with_socket({"cp", "--mode", "xyz", "a", ":b"})).code, 2);
  EXPECT_EQ(qtx({"frobnicate"}).code, 2);
  auto r = qtx({"ping"});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, "qtx: no socket given: use --socket PATH or set QTX_SOCKET\n");
}

// The global options work after the command name too, at any depth; a
// command's own option of the same name stays the command's.
TEST_F(Cli, GlobalOptionsAfterTheCommandName) {
  start_agent();
  auto r = qtx({"info", "--socket", socket_path(), "--json"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("{\"agent\":{\"version\":\"", 0), 0u) << r.out;
  r = qtx({"ping", "-s", socket_path(), "--json", "--connect-timeout", "5", "--timeout", "60"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("{\"rtt_us\":", 0), 0u) << r.out;
  r = qtx({"time", "get", "--socket", socket_path(), "--json"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("{\"unix_time_ns\":\"", 0), 0u) << r.out;
  // exec --timeout is the guest's kill timeout (exit 124), not the host's deadline (exit 5).
  r = qtx({"exec", "--socket", socket_path(), "--timeout", "0.2", "--", "/bin/sleep", "5"});
  EXPECT_EQ(r.code, 124) << r.err;
  // After --, everything is the command's.
  r = qtx({"exec", "--socket", socket_path(), "--", "/bin/echo", "--json"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "--json\n");
  // The host's deadline after the command name.
  r = qtx({"info", "--socket", socket_path(), "--listen", "--connect-timeout", "0.2"});
  EXPECT_EQ(r.code, 3) << r.err;
}

TEST_F(Cli, AGlobalOptionGivenBeforeAndAfterTheCommandTakesTheLaterValue) {
  auto r = qtx({"--socket", dir() + "/first.sock", "--connect-timeout", "10", "ping", "--socket",
                dir() + "/second.sock", "--connect-timeout", "0.2"});
  EXPECT_EQ(r.code, 3);
  EXPECT_EQ(r.err, "qtx: no agent on " + dir() + "/second.sock: no such socket (is the VM running?)\n");
  r = qtx({"--json", "ping", "--json", "--socket", dir() + "/none.sock", "--connect-timeout", "0.2"});
  EXPECT_EQ(r.code, 3);
  EXPECT_EQ(r.out.rfind("{\"error\":{\"kind\":\"disconnected\"", 0), 0u) << r.out;
  // vm wiring has a --socket of its own: there it is wiring's, and the
  // global --json still applies.
  r = qtx({"--socket", "/run/other.sock", "vm", "wiring", "--socket", "/run/qtx/vm1.sock", "--libvirt", "--json"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("{\"libvirt_xml\":\"<channel type='unix'>\\n  <source mode='bind' path='/run/qtx/vm1.sock'/>",
                        0),
            0u)
      << r.out;
}

TEST_F(Cli, ACommandsHelpListsTheGlobalOptionsItDoesNotShadow) {
  auto r = qtx({"info", "--help"});
  EXPECT_EQ(r.code, 0);
  const auto globals = r.out.find("Global options (before or after the command):\n");
  ASSERT_NE(globals, std::string::npos) << r.out;
  for (const char* opt : {"-s,--socket", "--listen", "--json", "--connect-timeout", "--timeout"}) {
    EXPECT_NE(r.out.find(opt, globals), std::string::npos) << opt << "\n" << r.out;
  }
  r = qtx({"exec", "--help"});
  EXPECT_EQ(r.code, 0);
  const auto exec_globals = r.out.find("Global options (before or after the command):\n");
  ASSERT_NE(exec_globals, std::string::npos) << r.out;
  const std::string exec_section = r.out.substr(exec_globals, r.out.find("\nExit codes:") - exec_globals);
  EXPECT_EQ(exec_section.find("--timeout"), std::string::npos) << exec_section;
  EXPECT_NE(exec_section.find("--json"), std::string::npos) << exec_section;
  // An option no command knows is still a usage error, wherever it is.
  r = qtx({"info", "--frobnicate"});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err.rfind("The following argument was not expected: --frobnicate", 0), 0u) << r.err;
}

// `qtx vm`: the provisioning helpers by exit code and output.
TEST_F(Cli, VmOverlayAndItsFailures) {
  const std::string base = dir() + "/base.qcow2";
  ASSERT_EQ(std::system(("qemu-img create -q -f qcow2 '" + base + "' 16M").c_str()), 0);
  const std::string out = dir() + "/vm1.qcow2";
  auto made = qtx({"vm", "overlay", "--backing", base, out});
  EXPECT_EQ(made.code, 0) << made.err;
  EXPECT_EQ(made.out, "ran: qemu-img create -q -f qcow2 -b " + base + " -F qcow2 " + out + "\n" + out +
                          ": qcow2 overlay, 16777216 bytes, on " + base + " (qcow2)\n");
  auto again = qtx({"vm", "overlay", "--backing", base, "--size", "0", out});
  EXPECT_EQ(again.code, 0) << again.err;
  EXPECT_EQ(again.out.rfind("unchanged, already made by: qemu-img create", 0), 0u) << again.out;

  auto missing = qtx({"vm", "overlay", "--backing", dir() + "/nope.qcow2", dir() + "/x.qcow2"});
  EXPECT_EQ(missing.code, 1);
  EXPECT_EQ(missing.err.rfind("qtx: backing image " + dir() + "/nope.qcow2 does not exist: download", 0), 0u)
      << missing.err;
  auto small = qtx({"vm", "overlay", "--backing", base, "--size", "8M", dir() + "/x.qcow2"});
  EXPECT_EQ(small.code, 2);
  auto bad_size = qtx({"vm", "overlay", "--backing", base, "--size", "lots", dir() + "/x.qcow2"});
  EXPECT_EQ(bad_size.code, 2);
  EXPECT_EQ(bad_size.err,
            "qtx: bad size \"lots\": give bytes or a number with K, M, G or T (binary units), e.g. 20G\n");
}

TEST_F(Cli, VmSeedPrintsOrWritesAndRefusesBadInput) {
  const std::string key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g ops@host";
  auto printed = qtx({"vm", "seed", "--hostname", "vm1", "--user", "ops", "--ssh-key", key, "--address", "10.0.2.50/24",
                      "--gateway", "10.0.2.2", "--dns", "10.0.2.3", "--mac", "52:54:00:12:34:56", "--print"});
  EXPECT_EQ(printed.code, 0) << printed.err;
  EXPECT_EQ(printed.out.rfind("--- meta-data\ninstance-id: \"qtx-", 0), 0u) << printed.out;
  EXPECT_NE(printed.out.find("--- user-data\n#cloud-config\n"), std::string::npos);
  EXPECT_NE(printed.out.find("      - \"" + key + "\"\n"), std::string::npos);
  EXPECT_NE(printed.out.find("--- network-config\n"), std::string::npos);
  EXPECT_NE(printed.out.find("    gateway4: \"10.0.2.2\"\n"), std::string::npos);

  const std::string iso = dir() + "/seed.iso";
  auto written = qtx({"vm", "seed", "--hostname", "vm1", "--dhcp", "--interface", "ens3", iso});
  EXPECT_EQ(written.code, 0) << written.err;
  EXPECT_EQ(written.out.rfind(iso + ": wrote NoCloud seed (volume id cidata), instance qtx-", 0), 0u) << written.out;
  auto again = qtx({"vm", "seed", "--hostname", "vm1", "--dhcp", "--interface", "ens3", iso});
  EXPECT_EQ(again.code, 0) << again.err;
  EXPECT_EQ(again.out.rfind(iso + ": unchanged, NoCloud seed", 0), 0u) << again.out;
  auto other = qtx({"vm", "seed", "--hostname", "vm2", iso});
  EXPECT_EQ(other.code, 1);
  EXPECT_EQ(other.err, "qtx: " + iso + " already exists with a different seed: remove it, or ask to overwrite it\n");

  auto bad_host = qtx({"vm", "seed", "--hostname", "web_1", dir() + "/b.iso"});
  EXPECT_EQ(bad_host.code, 2);
  EXPECT_EQ(bad_host.err, "qtx: hostname \"web_1\" may hold only letters, digits, '-' and '.'\n");
  auto bad_net = qtx({"vm", "seed", "--hostname", "vm1", "--address", "10.0.2.50/24", "--gateway", "10.9.9.9", "--mac",
                      "52:54:00:12:34:56", dir() + "/b.iso"});
  EXPECT_EQ(bad_net.code, 2);
  auto two_gateways = qtx({"vm", "seed", "--hostname", "vm1", "--address", "10.0.2.50/24", "--gateway", "10.0.2.2",
                           "--gateway", "10.0.2.3", "--mac", "52:54:00:12:34:56", "--print"});
  EXPECT_EQ(two_gateways.code, 2);
  EXPECT_EQ(two_gateways.err, "qtx: --gateway given twice for one address family\n");
  auto key_without_user = qtx({"vm", "seed", "--hostname", "vm1", "--ssh-key", key, "--print"});
  EXPECT_EQ(key_without_user.code, 2);
  EXPECT_EQ(key_without_user.err, "qtx: SSH keys, a password and --sudo need --user NAME\n");
  EXPECT_NE(::access((dir() + "/b.iso").c_str(), F_OK), 0);
}

TEST_F(Cli, VmWiringAndWaitReady) {
  auto xml = qtx({"vm", "wiring", "--socket", "/run/qtx/vm1.sock", "--libvirt"});
  EXPECT_EQ(xml.code, 0) << xml.err;
  EXPECT_EQ(xml.out,
            "<channel type='unix'>\n  <source mode='bind' path='/run/qtx/vm1.sock'/>\n"
            "  <target type='virtio' name='org.quantix.agent.0'/>\n</channel>\n");
  auto args = qtx({"vm", "wiring", "--socket", "/run/qtx/vm1.sock"});
  EXPECT_EQ(args.code, 0) << args.err;
  EXPECT_EQ(args.out,
            "-chardev socket,id=qtx0,path=/run/qtx/vm1.sock,server=on,wait=off \\\n"
            "-device virtio-serial-pci,id=qtx0-serial \\\n"
            "-device virtserialport,bus=qtx0-serial.0,chardev=qtx0,name=org.quantix.agent.0\n");
  EXPECT_EQ(qtx({"vm", "wiring", "--socket", "relative.sock"}).code, 2);

  auto absent = qtx({"vm", "wait-ready", "--socket", socket_path(), "--timeout", "0.3"});
  EXPECT_EQ(absent.code, 3);
  EXPECT_NE(absent.err.find("socket " + socket_path() + " never appeared"), std::string::npos) << absent.err;
  start_agent();
  auto ready = qtx({"--json", "vm", "wait-ready", "--socket", socket_path(), "--timeout", "10"});
  EXPECT_EQ(ready.code, 0) << ready.err;
  EXPECT_EQ(ready.out.rfind("{\"seen\":\"ready\",\"elapsed_ms\":", 0), 0u) << ready.out;
}

}  // namespace
}  // namespace qtx::testing
