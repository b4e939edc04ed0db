// The C API against the real agent: handles, error codes, JSON requests,
// callbacks with user data; and its ABI rules: struct_size, versions, no
// exception crossing an entry point.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <new>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>

#include "c_api_support.h"
#include "qtx/host.h"
#include "qtx/host_vm.h"
#include "support/host_fixture.h"

extern "C" int qtx_c_header_check(void);

// A caller built against a newer header: one field the library lacks.
struct NewerAgentOptions {
  qtx_agent_options known;
  uint64_t added_later;
};

namespace qtx::testing {
namespace {

class CApi : public HostFixture {
 protected:
  void TearDown() override {
    if (agent_c_) qtx_agent_free(agent_c_);
    if (manager_c_) qtx_manager_free(manager_c_);
    HostFixture::TearDown();
  }
  static qtx_agent_options options() {
    qtx_agent_options o;
    qtx_agent_options_init(&o);
    return o;
  }
  qtx_agent* add(qtx_agent_options o = options()) {
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
  EXPECT_EQ(std::string(identity).rfind("{\"version\":\"0.2.0\",\"instance_id\":\"", 0), 0u) << identity;
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
  qtx_agent_options o = options();
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
  ASSERT_EQ(qtx_agent_exec(
                a, argv, "in", 2, 10000,
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
  const std::string request =
      "{\"argv\":[\"/bin/sh\",\"-c\",\"pwd; echo \\\"$A\\\"; cat; echo E >&2; exit 3\"],"
      "\"cwd\":\"" +
      dir() +
      "\",\"env\":[\"A=from env\",\"PATH=/usr/bin:/bin\"],"
      "\"merge_stderr\":true}";
  Collected c;
  char* result = nullptr;
  ASSERT_EQ(qtx_agent_exec_json(
                a, request.c_str(), "in\n", 3, 10000,
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
  ASSERT_EQ(qtx_agent_exec_json(
                a, "{\"argv\":[\"/bin/echo\",\"0123456789\"],\"output_limit\":\"4\"}", nullptr, 0, 10000,
                [](void* user, int, const char* d, size_t n) { static_cast<Collected*>(user)->out.append(d, n); }, &c,
                &result, &err),
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
  ASSERT_EQ(qtx_agent_download(a, (dir() + "/guest.txt").c_str(), (dir() + "/back.txt").c_str(), nullptr, nullptr, down,
                               &err),
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
  qtx_agent_options o = options();
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
  qtx_vm_user user;
  qtx_vm_user_init(&user);
  user.name = "ops";
  user.ssh_authorized_keys = keys;
  const char* addresses[] = {"192.0.2.10/24", nullptr};
  qtx_vm_seed seed;
  qtx_vm_seed_init(&seed);  // the defaults
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
  EXPECT_STREQ(err.message,
               "gateway \"198.51.100.1\" is in none of the addresses' subnets: the guest could not reach it");
  seed.network_mode = 7;
  EXPECT_EQ(qtx_vm_render_seed(&seed, nullptr, nullptr, nullptr, &err), QTX_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(qtx_vm_render_seed(nullptr, nullptr, nullptr, nullptr, &err), QTX_ERR_INVALID_ARGUMENT);

  char* xml = nullptr;
  ASSERT_EQ(qtx_vm_channel_wiring("/run/vm1.sock", nullptr, 0, QTX_VM_WIRING_LIBVIRT, &xml, &err), QTX_OK);
  EXPECT_STREQ(xml,
               "<channel type='unix'>\n  <source mode='bind' path='/run/vm1.sock'/>\n"
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

TEST_F(CApi, VersionMatchesTheHeaderAndTheSoname) {
  EXPECT_EQ(qtx_version(), static_cast<uint32_t>(QTX_VERSION));
  EXPECT_EQ(qtx_version() >> 16, static_cast<uint32_t>(QTX_VERSION_MAJOR));
  EXPECT_STREQ(qtx_version_string(), (std::to_string(QTX_VERSION_MAJOR) + "." + std::to_string(QTX_VERSION_MINOR) +
                                      "." + std::to_string(QTX_VERSION_PATCH))
                                         .c_str());
  EXPECT_STREQ(qtx_version_string(), QTX_PROJECT_VERSION);
}

TEST_F(CApi, OptionsWithoutStructSizeAreRefused) {
  manager_c_ = qtx_manager_new();
  const std::string path = socket_path();
  qtx_agent_options o;
  std::memset(&o, 0, sizeof(o));  // zeroed without qtx_agent_options_init
  o.socket_path = path.c_str();
  qtx_error err;
  EXPECT_EQ(qtx_agent_add(manager_c_, &o, &err), nullptr);
  EXPECT_EQ(err.kind, QTX_ERR_INVALID_ARGUMENT);
  // The size of the struct's first release (0.1, up to `user`): callers
  // built against it are still served.
  EXPECT_EQ(std::string(err.message), "qtx_agent_options.struct_size is 0, below " +
                                          std::to_string(QTX_STRUCT_SIZE_UP_TO(qtx_agent_options, user)) +
                                          ": initialise it with qtx_agent_options_init()");
  o.struct_size = QTX_STRUCT_SIZE_UP_TO(qtx_agent_options, user);
  agent_c_ = qtx_agent_add(manager_c_, &o, &err);
  EXPECT_NE(agent_c_, nullptr) << err.message;

  qtx_vm_seed seed;
  std::memset(&seed, 0, sizeof(seed));
  seed.hostname = "vm1";
  EXPECT_EQ(qtx_vm_render_seed(&seed, nullptr, nullptr, nullptr, &err), QTX_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(std::string(err.message).rfind("qtx_vm_seed.struct_size is 0, below ", 0), 0u) << err.message;
}

TEST_F(CApi, NewerCallerIsServedWhileItsNewFieldsAreZero) {
  start_agent();
  manager_c_ = qtx_manager_new();
  const std::string path = socket_path();
  NewerAgentOptions newer;
  std::memset(&newer, 0, sizeof(newer));
  newer.known.struct_size = sizeof(newer);
  newer.known.socket_path = path.c_str();
  newer.added_later = 1;  // a field this library does not know, set: refused
  qtx_error err;
  EXPECT_EQ(qtx_agent_add(manager_c_, &newer.known, &err), nullptr);
  EXPECT_EQ(err.kind, QTX_ERR_UNSUPPORTED);
  EXPECT_EQ(std::string(err.message),
            "qtx_agent_options has fields this library (" + std::to_string(sizeof(qtx_agent_options)) +
                " bytes) does not know set (byte " + std::to_string(offsetof(NewerAgentOptions, added_later)) + " of " +
                std::to_string(sizeof(NewerAgentOptions)) + ")");
  newer.added_later = 0;  // left at zero: the old behaviour, accepted
  agent_c_ = qtx_agent_add(manager_c_, &newer.known, &err);
  ASSERT_NE(agent_c_, nullptr) << err.message;
  EXPECT_EQ(qtx_agent_wait_ready(agent_c_, 10000, &err), QTX_OK) << err.message;
}

TEST_F(CApi, SeedUsersShareOneStructSize) {
  // The users array strides by the caller's struct_size, so every element
  // must carry the same one.
  qtx_vm_user users[2];
  qtx_vm_user_init(&users[0]);
  qtx_vm_user_init(&users[1]);
  users[0].name = "alice";
  users[1].name = "bob";
  qtx_vm_seed seed;
  qtx_vm_seed_init(&seed);
  seed.hostname = "vm1";
  seed.users = users;
  seed.n_users = 2;
  qtx_error err;
  char* user_data = nullptr;
  ASSERT_EQ(qtx_vm_render_seed(&seed, nullptr, &user_data, nullptr, &err), QTX_OK) << err.message;
  const std::string ud(user_data);
  qtx_free(user_data);
  EXPECT_NE(ud.find("name: \"alice\""), std::string::npos) << ud;
  EXPECT_NE(ud.find("name: \"bob\""), std::string::npos) << ud;

  users[1].struct_size = sizeof(qtx_vm_user) - 8;
  EXPECT_EQ(qtx_vm_render_seed(&seed, nullptr, nullptr, nullptr, &err), QTX_ERR_INVALID_ARGUMENT);
  EXPECT_STREQ(err.message, "users[1].struct_size differs from users[0].struct_size");
  users[0].struct_size = sizeof(qtx_vm_user) - 4;  // would misalign users[1]
  EXPECT_EQ(qtx_vm_render_seed(&seed, nullptr, nullptr, nullptr, &err), QTX_ERR_INVALID_ARGUMENT);
  EXPECT_STREQ(err.message, "users[0].struct_size is not a size of qtx_vm_user");
}

// An input on which the C++ code underneath throws: the entry point answers
// with an error value instead of letting the exception into C.
TEST_F(CApi, ExceptionsInsideBecomeErrors) {
  qtx_vm_user user;
  qtx_vm_user_init(&user);
  user.name = "ops";
  qtx_vm_seed seed;
  qtx_vm_seed_init(&seed);
  seed.hostname = "vm1";
  seed.users = &user;
  seed.n_users = SIZE_MAX;  // std::vector throws std::length_error before reading users[1]
  qtx_error err;
  EXPECT_EQ(qtx_vm_render_seed(&seed, nullptr, nullptr, nullptr, &err), QTX_ERR_LOCAL);
  EXPECT_EQ(std::string(err.message).rfind("internal error: ", 0), 0u) << err.message;

  // NULL handles are errors too, not crashes.
  EXPECT_EQ(qtx_agent_ping(nullptr, 0, &err), QTX_ERR_INVALID_ARGUMENT);
  EXPECT_STREQ(err.message, "qtx_agent_ping: agent is NULL");
  EXPECT_EQ(qtx_agent_state(nullptr), QTX_STATE_CLOSED);
}

// How an option struct of another release is read: the library's own
// struct here is V2, which added `added` after the first release V1.
TEST(CApiStruct, ReadStructServesOlderAndNewerCallers) {
  struct V1 {
    size_t struct_size;
    uint64_t a;
  };
  struct V2 {
    size_t struct_size;
    uint64_t a;
    uint64_t added;
  };
  struct V3 {
    size_t struct_size;
    uint64_t a;
    uint64_t added;
    uint64_t newer;
  };
  using qtx::host::c_api::read_struct;
  const std::size_t oldest = QTX_STRUCT_SIZE_UP_TO(V1, a);
  qtx_error err;
  V2 out;
  // Older: `added` is not read (it is not the caller's) and stays zero.
  struct {
    V1 v1;
    uint64_t beyond = 77;  // the caller's neighbouring memory, never read
  } older;
  older.v1 = {sizeof(V1), 5};
  ASSERT_EQ(read_struct(reinterpret_cast<const V2*>(&older.v1), oldest, "v", &out, &err), QTX_OK);
  EXPECT_EQ(out.struct_size, sizeof(V1));
  EXPECT_EQ(out.a, 5u);
  EXPECT_EQ(out.added, 0u);
  // Newer with its new field zero: served; set: refused.
  V3 newer = {sizeof(V3), 6, 7, 0};
  ASSERT_EQ(read_struct(reinterpret_cast<const V2*>(&newer), oldest, "v", &out, &err), QTX_OK);
  EXPECT_EQ(out.a, 6u);
  EXPECT_EQ(out.added, 7u);
  newer.newer = 1;
  EXPECT_EQ(read_struct(reinterpret_cast<const V2*>(&newer), oldest, "v", &out, &err), QTX_ERR_UNSUPPORTED);
  // Below the first release.
  V2 tiny = {oldest - 1, 1, 1};
  EXPECT_EQ(read_struct(&tiny, oldest, "v", &out, &err), QTX_ERR_INVALID_ARGUMENT);
}

// The guard every entry point runs in, for each kind of exception.
TEST(CApiGuard, MapsEachExceptionToAnErrorValue) {
  using qtx::host::c_api::guarded;
  qtx_error err;
  EXPECT_EQ(guarded(&err, []() -> int { throw std::bad_alloc(); }), QTX_ERR_LOCAL);
  EXPECT_STREQ(err.message, "out of memory");
  EXPECT_EQ(guarded(&err, []() -> int { throw std::runtime_error("boom"); }), QTX_ERR_LOCAL);
  EXPECT_STREQ(err.message, "internal error: boom");
  EXPECT_EQ(guarded(&err, []() -> int { throw 42; }), QTX_ERR_LOCAL);
  EXPECT_STREQ(err.message, "internal error: unknown exception");
  EXPECT_EQ(err.guest_code, 0);
  EXPECT_EQ(err.os_errno, 0);
  EXPECT_EQ(guarded(nullptr, []() -> int { throw std::bad_alloc(); }), QTX_ERR_LOCAL);
  EXPECT_EQ(qtx::host::c_api::guarded_or<int*>(nullptr, []() -> int* { throw std::bad_alloc(); }), nullptr);
}

}  // namespace
}  // namespace qtx::testing
