// The C API against the real agent: handles, error codes, JSON requests,
// callbacks with user data.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include "qtx/host.h"
#include "qtx/host_vm.h"
#include "support/host_fixture.h"

extern "C" int qtx_c_header_check(void);

namespace qtx::testing {
namespace {

class CApi : public HostFixture {
 protected:
  void TearDown() override {
    if (agent_c_) qtx_agent_free(agent_c_);
    if (manager_c_) qtx_manager_free(manager_c_);
    HostFixture::TearDown();
  }
  qtx_agent* add(qtx_agent_options o = {}) {
    manager_c_ = qtx_manager_new();
    const std::string path = socket_path();
    o.socket_path = path.c_str();
    qtx_error err;
    agent_c_ = qtx_agent_add(manager_c_, &o, &err);
    EXPECT_NE(agent_c_, nullptr) << err.message;
    return agent_c_;
  }
  qtx_manager* manager_c_ = nullptr;
  qtx_agent* agent_c_ = nullptr;
};

TEST_F(CApi, HeaderIsPlainC) { EXPECT_EQ(qtx_c_header_check(), QTX_STATE_READY); }

TEST_F(CApi, PingJsonCallsAndErrors) {
  start_agent();
  auto* a = add();
  ASSERT_TRUE(a);
  qtx_error err;
  ASSERT_EQ(qtx_agent_wait_ready(a, 10000, &err), QTX_OK) << err.message;
  EXPECT_EQ(qtx_agent_state(a), QTX_STATE_READY);
  EXPECT_EQ(qtx_agent_ping(a, 5000, &err), QTX_OK);
  char* identity = nullptr;
  ASSERT_EQ(qtx_agent_identity_json(a, &identity, &err), QTX_OK);
  EXPECT_EQ(std::string(identity).rfind("{\"version\":\"0.1.0\",\"instance_id\":\"", 0), 0u) << identity;
  qtx_free(identity);

  char* json = nullptr;
  ASSERT_EQ(qtx_agent_call_json(a, "{\"hostname_get\":{}}", 5000, &json, &err), QTX_OK) << err.message;
  char host[256] = {};
  ::gethostname(host, sizeof(host) - 1);
  EXPECT_EQ(std::string(json), std::string("{\"hostname_get\":{\"hostname\":\"") + host + "\"}}");
  qtx_free(json);

  EXPECT_EQ(qtx_agent_call_json(a, "{\"no_such_request\":{}}", 5000, &json, &err), QTX_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(std::string(err.message).rfind("request JSON: ", 0), 0u) << err.message;
  EXPECT_EQ(qtx_agent_call_json(a, "{\"file_stat\":{\"path\":\"/no/such/file\"}}", 5000, &json, &err),
            QTX_ERR_NOT_FOUND);
  EXPECT_EQ(err.guest_code, 4);
  EXPECT_STREQ(qtx_error_kind_name(err.kind), "not_found");
}

struct Collected {
  std::string out, err;
  int states_ready = 0;
};

TEST_F(CApi, ExecWithOutputCallbackAndStateCallback) {
  start_agent();
  qtx_agent_options o = {};
  Collected c;
  o.user = &c;
  o.on_state = [](void* user, qtx_state s, const qtx_error*) {
    if (s == QTX_STATE_READY) static_cast<Collected*>(user)->states_ready++;
  };
  auto* a = add(o);
  ASSERT_TRUE(a);
  qtx_error err;
  ASSERT_EQ(qtx_agent_wait_ready(a, 10000, &err), QTX_OK) << err.message;
  const char* argv[] = {"/bin/sh", "-c", "cat; echo E >&2; exit 5", nullptr};
  int code = 0, sig = 0;
  ASSERT_EQ(qtx_agent_exec(a, argv, "in", 2, 10000,
                           [](void* user, int stream, const char* d, size_t n) {
                             auto* col = static_cast<Collected*>(user);
                             (stream == 1 ? col->out : col->err).append(d, n);
                           },
                           &c, &code, &sig, &err),
            QTX_OK)
      << err.message;
  EXPECT_EQ(code, 5);
  EXPECT_EQ(sig, 0);
  EXPECT_EQ(c.out, "in");
  EXPECT_EQ(c.err, "E\n");
  EXPECT_EQ(c.states_ready, 1);
}

TEST_F(CApi, ExecJsonTakesEveryRequestFieldAndReturnsTheResult) {
  start_agent();
  auto* a = add();
  ASSERT_TRUE(a);
  qtx_error err;
  ASSERT_EQ(qtx_agent_wait_ready(a, 10000, &err), QTX_OK) << err.message;
  const std::string request = "{\"argv\":[\"/bin/sh\",\"-c\",\"pwd; echo \\\"$A\\\"; cat; echo E >&2; exit 3\"],"
                              "\"cwd\":\"" + dir() + "\",\"env\":[\"A=from env\",\"PATH=/usr/bin:/bin\"],"
                              "\"merge_stderr\":true}";
  Collected c;
  char* result = nullptr;
  ASSERT_EQ(qtx_agent_exec_json(a, request.c_str(), "in\n", 3, 10000,
                                [](void* user, int stream, const char* d, size_t n) {
                                  auto* col = static_cast<Collected*>(user);
                                  (stream == 1 ? col->out : col->err).append(d, n);
                                },
                                &c, &result, &err),
            QTX_OK)
      << err.message;
  const std::string expected = dir() + "\nfrom env\nin\nE\n";
  EXPECT_EQ(c.out, expected);
  EXPECT_EQ(c.err, "");
  // pid and duration vary; the rest is exact (64-bit integers are strings).
  const std::regex shape("\\{\"pid\":[1-9][0-9]*,\"exit_code\":3,\"stdout_bytes\":\"" +
                         std::to_string(expected.size()) + "\"(,\"duration_ms\":\"[0-9]+\")?\\}");
  EXPECT_TRUE(std::regex_match(std::string(result), shape)) << result;
  qtx_free(result);

  // Output beyond output_limit is cut and the result says so.
  c = {};
  ASSERT_EQ(qtx_agent_exec_json(a, "{\"argv\":[\"/bin/echo\",\"0123456789\"],\"output_limit\":\"4\"}", nullptr, 0, 10000,
                                [](void* user, int, const char* d, size_t n) { static_cast<Collected*>(user)->out.append(d, n); },
                                &c, &result, &err),
            QTX_OK)
      << err.message;
  EXPECT_EQ(c.out, "0123");
  EXPECT_NE(std::string(result).find("\"exit_code\":0,\"truncated\":true,\"stdout_bytes\":\"11\""), std::string::npos)
      << result;
  qtx_free(result);

  // What the library refuses itself.
  result = nullptr;
  EXPECT_EQ(qtx_agent_exec_json(a, "{\"argv\":", nullptr, 0, 0, nullptr, nullptr, &result, &err),
            QTX_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(std::string(err.message).rfind("exec request JSON: ", 0), 0u) << err.message;
  EXPECT_EQ(qtx_agent_exec_json(a, "{\"cwd\":\"/\"}", nullptr, 0, 0, nullptr, nullptr, &result, &err),
            QTX_ERR_INVALID_ARGUMENT);
  EXPECT_STREQ(err.message, "qtx_agent_exec_json: argv is empty");
  EXPECT_EQ(qtx_agent_exec_json(a, "{\"argv\":[\"/bin/cat\"],\"stdin_stream\":true}", nullptr, 0, 0, nullptr, nullptr,
                                &result, &err),
            QTX_ERR_INVALID_ARGUMENT);
  EXPECT_STREQ(err.message, "qtx_agent_exec_json: stdin_stream is not available through the C API");
  EXPECT_EQ(qtx_agent_exec_json(a, "{\"argv\":[\"/bin/true\"]}", nullptr, 0, 0, nullptr, nullptr, nullptr, &err),
            QTX_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(result, nullptr);
}

TEST_F(CApi, UploadDownloadAndDenied) {
  start_agent("[policy]\ndeny = [\"exec\"]\n");
  auto* a = add();
  ASSERT_TRUE(a);
  qtx_error err;
  ASSERT_EQ(qtx_agent_wait_ready(a, 10000, &err), QTX_OK) << err.message;
  std::ofstream(dir() + "/src.txt") << "payload from C";
  char up[65] = {}, down[65] = {};
  ASSERT_EQ(qtx_agent_upload(a, (dir() + "/src.txt").c_str(), (dir() + "/guest.txt").c_str(), 0600, nullptr, nullptr,
                             up, &err),
            QTX_OK)
      << err.message;
  ASSERT_EQ(qtx_agent_download(a, (dir() + "/guest.txt").c_str(), (dir() + "/back.txt").c_str(), nullptr, nullptr,
                               down, &err),
            QTX_OK)
      << err.message;
  EXPECT_STREQ(up, down);
  EXPECT_EQ(std::string(up).size(), 64u);
  std::ifstream f(dir() + "/back.txt");
  std::stringstream ss;
  ss << f.rdbuf();
  EXPECT_EQ(ss.str(), "payload from C");

  const char* argv[] = {"/bin/true", nullptr};
  EXPECT_EQ(qtx_agent_exec(a, argv, nullptr, 0, 0, nullptr, nullptr, nullptr, nullptr, &err), QTX_ERR_DENIED);
  EXPECT_STREQ(err.message, "denied by the guest's policy: exec");
  char* result = nullptr;
  EXPECT_EQ(qtx_agent_exec_json(a, "{\"argv\":[\"/bin/true\"]}", nullptr, 0, 0, nullptr, nullptr, &result, &err),
            QTX_ERR_DENIED);
  EXPECT_EQ(result, nullptr);
}

TEST_F(CApi, SecondOwnerAndBadArguments) {
  start_agent();
  auto* a = add();
  ASSERT_TRUE(a);
  qtx_error err;
  ASSERT_EQ(qtx_agent_wait_ready(a, 10000, &err), QTX_OK) << err.message;
  qtx_agent_options o = {};
  const std::string path = socket_path();
  o.socket_path = path.c_str();
  EXPECT_EQ(qtx_agent_add(manager_c_, &o, &err), nullptr);
  EXPECT_EQ(err.kind, QTX_ERR_ALREADY_EXISTS);
  o.socket_path = nullptr;
  EXPECT_EQ(qtx_agent_add(manager_c_, &o, &err), nullptr);
  EXPECT_EQ(err.kind, QTX_ERR_INVALID_ARGUMENT);
}

TEST_F(CApi, ProvisioningHelpers) {
  qtx_error err;
  uint64_t bytes = 0;
  ASSERT_EQ(qtx_vm_parse_size("20G", &bytes, &err), QTX_OK) << err.message;
  EXPECT_EQ(bytes, 20ull << 30);
  EXPECT_EQ(qtx_vm_parse_size("20Q", &bytes, &err), QTX_ERR_INVALID_ARGUMENT);

  const char* keys[] = {"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g c", nullptr};
  qtx_vm_user user = {};
  user.name = "ops";
  user.ssh_authorized_keys = keys;
  const char* addresses[] = {"192.0.2.10/24", nullptr};
  qtx_vm_seed seed = {};  // zeroed: the defaults
  seed.hostname = "vm1";
  seed.users = &user;
  seed.n_users = 1;
  seed.network_mode = QTX_VM_NETWORK_STATIC;
  seed.mac = "52:54:00:00:00:01";
  seed.addresses = addresses;
  seed.gateway4 = "192.0.2.1";
  char *meta = nullptr, *user_data = nullptr, *net = nullptr;
  ASSERT_EQ(qtx_vm_render_seed(&seed, &meta, &user_data, &net, &err), QTX_OK) << err.message;
  EXPECT_NE(std::string(user_data).find("    ssh_authorized_keys:\n      - \"ssh-ed25519 "), std::string::npos);
  EXPECT_NE(std::string(user_data).find("install.sh"), std::string::npos);  // installs the agent by default
  EXPECT_NE(std::string(user_data).find("growpart:\n  mode: \"auto\""), std::string::npos);
  EXPECT_NE(std::string(net).find("    gateway4: \"192.0.2.1\"\n"), std::string::npos);
  EXPECT_EQ(std::string(meta).rfind("instance-id: \"qtx-", 0), 0u);
  qtx_free(meta);
  qtx_free(user_data);
  qtx_free(net);

  seed.gateway4 = "198.51.100.1";
  EXPECT_EQ(qtx_vm_render_seed(&seed, nullptr, nullptr, nullptr, &err), QTX_ERR_INVALID_ARGUMENT);
  EXPECT_STREQ(err.message, "gateway \"198.51.100.1\" is in none of the addresses' subnets: the guest could not reach it");
  seed.network_mode = 7;
  EXPECT_EQ(qtx_vm_render_seed(&seed, nullptr, nullptr, nullptr, &err), QTX_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(qtx_vm_render_seed(nullptr, nullptr, nullptr, nullptr, &err), QTX_ERR_INVALID_ARGUMENT);

  char* xml = nullptr;
  ASSERT_EQ(qtx_vm_channel_wiring("/run/vm1.sock", nullptr, 0, QTX_VM_WIRING_LIBVIRT, &xml, &err), QTX_OK);
  EXPECT_STREQ(xml, "<channel type='unix'>\n  <source mode='bind' path='/run/vm1.sock'/>\n"
                    "  <target type='virtio' name='org.quantix.agent.0'/>\n</channel>\n");
  qtx_free(xml);
  EXPECT_EQ(qtx_vm_channel_wiring("/run/vm1.sock", nullptr, 0, 9, &xml, &err), QTX_ERR_INVALID_ARGUMENT);

  int seen = -1;
  const std::string path = socket_path();
  EXPECT_EQ(qtx_vm_wait_ready(path.c_str(), 200, &seen, &err), QTX_ERR_TIMEOUT);
  EXPECT_EQ(seen, QTX_VM_SEEN_SOCKET_ABSENT);
  start_agent();
  EXPECT_EQ(qtx_vm_wait_ready(path.c_str(), 10000, &seen, &err), QTX_OK) << err.message;
  EXPECT_EQ(seen, QTX_VM_SEEN_READY);

  EXPECT_EQ(qtx_vm_create_overlay(nullptr, "x", 0, 0, nullptr, nullptr, &err), QTX_ERR_INVALID_ARGUMENT);
  const std::string missing = dir() + "/none.qcow2";
  EXPECT_EQ(qtx_vm_create_overlay(missing.c_str(), (dir() + "/o.qcow2").c_str(), 0, 0, nullptr, nullptr, &err),
            QTX_ERR_NOT_FOUND);
}

}  // namespace
}  // namespace qtx::testing
