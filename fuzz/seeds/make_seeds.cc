// Writes the seed corpus of the protocol fuzzers (fuzz/frame_script.h):
//
//   qtx_fuzz_seeds agent_dispatch DIR    conversations a host has with an agent
//   qtx_fuzz_seeds host_responses DIR    what an agent says to a host's calls
//
// The committed corpora under fuzz/corpus were made with it; found crashes
// are added there by hand and never regenerated.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "frame_script.h"
#include "qtx/agent/v1/envelope.pb.h"

namespace {

namespace v1 = qtx::agent::v1;
using qtx::fuzz::Step;

// An envelope body as the script carries it: serialized without its seal.
// The agent_dispatch target puts its temporary root where this name stands.
const std::string kRoot = "/tmp/qtx-fuzz-XXXXXX";

std::string body(const v1::Envelope& env) { return env.SerializeAsString(); }

class Script {
 public:
  Script& request(std::uint64_t id, const std::function<void(v1::Request*)>& fill) {
    v1::Envelope env;
    env.set_id(id);
    fill(env.mutable_request());
    return sealed(env);
  }
  Script& sealed(const v1::Envelope& env) {
    qtx::fuzz::append_step({Step::Kind::kSealed, 0, body(env)}, &out_);
    return *this;
  }
  Script& addressed(std::uint8_t target, const v1::Envelope& env) {
    qtx::fuzz::append_step({Step::Kind::kAddressed, target, body(env)}, &out_);
    return *this;
  }
  Script& raw(std::string bytes) {
    qtx::fuzz::append_step({Step::Kind::kRaw, 0, std::move(bytes)}, &out_);
    return *this;
  }
  Script& progress_chunk(std::uint64_t id, std::uint64_t offset, std::string data) {
    v1::Envelope env;
    env.set_id(id);
    auto* c = env.mutable_progress()->mutable_file_chunk();
    c->set_offset(offset);
    c->set_data(std::move(data));
    return sealed(env);
  }
  Script& credit(std::uint64_t id, std::uint64_t bytes) {
    v1::Envelope env;
    env.set_id(id);
    env.mutable_credit()->set_bytes(bytes);
    return sealed(env);
  }
  Script& cancel(std::uint64_t id) {
    v1::Envelope env;
    env.set_id(id);
    env.mutable_cancel();
    return sealed(env);
  }
  const std::string& bytes() const { return out_; }

 private:
  std::string out_;
};

Script& hello(Script& s) {
  return s.request(1, [](v1::Request* r) {
    r->mutable_hello()->set_nonce(0x0123456789abcdefULL);
    r->mutable_hello()->set_protocol_version(1);
    r->mutable_hello()->set_client("fuzz");
  });
}

std::map<std::string, std::string> agent_dispatch_seeds() {
  std::map<std::string, std::string> seeds;
  auto add = [&](const std::string& name, const Script& s) { seeds[name] = s.bytes(); };
  {
    Script s;
    hello(s).request(2, [](auto* r) { r->mutable_ping(); }).request(3, [](auto* r) { r->mutable_info(); });
    s.request(4, [](auto* r) { r->mutable_telemetry_config()->set_interval_ms(1000); });
    add("handshake", s);
  }
  {
    Script s;
    hello(s).request(2, [](auto* r) { r->mutable_file_list()->set_path(kRoot + "/files"); });
    s.request(3, [](auto* r) { r->mutable_file_stat()->set_path(kRoot + "/files/a.txt"); });
    s.request(4, [](auto* r) { r->mutable_file_hash()->set_path(kRoot + "/files/sub/b.bin"); });
    s.request(5, [](auto* r) {
      r->mutable_file_mkdir()->set_path(kRoot + "/files/new/deeper");
      r->mutable_file_mkdir()->set_parents(true);
    });
    s.request(6, [](auto* r) {
      r->mutable_file_remove()->set_path(kRoot + "/files/sub");
      r->mutable_file_remove()->set_recursive(true);
    });
    s.request(7, [](auto* r) {
      r->mutable_file_set_attr()->set_path(kRoot + "/files/a.txt");
      r->mutable_file_set_attr()->set_mode(0600);
    });
    add("file_commands", s);
  }
  {
    Script s;  // escapes: absolute paths outside, "..", symlinks out (to the target's canary)
    s.request(2, [](auto* r) { r->mutable_file_stat()->set_path("/etc/passwd"); });
    s.request(3, [](auto* r) { r->mutable_file_read()->set_path(kRoot + "/files/../../etc/shadow"); });
    s.request(4, [](auto* r) { r->mutable_file_read()->set_path(kRoot + "/files/escape"); });
    s.request(5, [](auto* r) { r->mutable_file_list()->set_path(kRoot + "/files/slash/etc"); });
    s.request(6, [](auto* r) {
      r->mutable_file_remove()->set_path(kRoot + "/files/slash");
      r->mutable_file_remove()->set_recursive(true);
    });
    // The canary's own path shares the root's as a prefix.
    s.request(7, [](auto* r) { r->mutable_file_write()->set_path(kRoot + ".canary/secret"); });
    s.progress_chunk(7, 0, "overwritten");
    s.request(8, [](auto* r) {
      r->mutable_file_remove()->set_path(kRoot + ".canary");
      r->mutable_file_remove()->set_recursive(true);
    });
    add("path_escapes", s);
  }
  {
    Script s;
    s.request(2, [](auto* r) {
      auto* w = r->mutable_file_write();
      w->set_path(kRoot + "/files/up.bin");
      w->set_mode(0644);
      w->set_atomic(true);
    });
    s.progress_chunk(2, 0, "first part ").progress_chunk(2, 11, "second part");
    v1::Envelope end;
    end.set_id(2);
    end.mutable_progress()->mutable_file_chunk()->set_offset(22);
    end.mutable_progress()->mutable_file_chunk()->set_last(true);
    s.sealed(end);
    s.request(3, [](auto* r) {
      r->mutable_file_read()->set_path(kRoot + "/files/sub/b.bin");
      r->mutable_file_read()->set_chunk_size(1024);
    });
    s.credit(3, 8192);
    add("file_transfers", s);
  }
  {
    Script s;  // a write whose chunks skip, overlap and overflow
    s.request(2, [](auto* r) { r->mutable_file_write()->set_path(kRoot + "/files/bad.bin"); });
    s.progress_chunk(2, 5, "gap").progress_chunk(2, 0, "xx").progress_chunk(2, 1, "overlap");
    s.request(2, [](auto* r) { r->mutable_ping(); });  // the id is in use
    s.cancel(2);
    add("file_write_disorder", s);
  }
  {
    Script s;
    s.request(2, [](auto* r) {
      auto* e = r->mutable_exec();
      e->add_argv("/bin/echo");
      e->add_argv("hi");
      e->set_stdin("input");
      e->set_output_window(16);
    });
    s.credit(2, 64);
    s.request(3, [](auto* r) {
      auto* e = r->mutable_exec();
      e->add_argv("/bin/cat");
      e->set_stdin_stream(true);
      e->set_timeout_ms(200);
      e->add_env("A=b");
      e->set_cwd(kRoot + "/files");
      e->set_user("qtx");
    });
    v1::Envelope in;
    in.set_id(3);
    in.mutable_progress()->mutable_exec_input()->set_data("streamed");
    s.sealed(in);
    in.mutable_progress()->mutable_exec_input()->set_eof(true);
    s.sealed(in);
    s.request(4, [](auto* r) { r->mutable_exec()->add_argv("no-such-program"); });
    s.request(5, [](auto* r) { r->mutable_exec()->add_argv(std::string("nul\0byte", 8)); });
    add("exec", s);
  }
  {
    Script s;
    s.request(2, [](auto* r) {
      r->mutable_set_password()->set_user("qtx");
      r->mutable_set_password()->set_password("secret");
    });
    s.request(3, [](auto* r) {
      auto* k = r->mutable_ssh_keys();
      k->set_user("qtx");
      k->set_action(v1::SshKeysRequest::ACTION_ADD);
      k->add_keys("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKey2 second@host");
    });
    s.request(4, [](auto* r) {
      r->mutable_ssh_keys()->set_user("qtx");
      r->mutable_ssh_keys()->set_action(v1::SshKeysRequest::ACTION_LIST);
    });
    s.request(5, [](auto* r) { r->mutable_hostname_get(); });
    s.request(6, [](auto* r) { r->mutable_time_get(); });
    s.request(7, [](auto* r) { r->mutable_network(); });
    s.request(8, [](auto* r) { r->mutable_process_list(); });
    s.request(9, [](auto* r) { r->mutable_freeze_status(); });
    add("system_commands", s);
  }
  {
    Script s;  // denied by the fuzzing policy: answered, never carried out
    s.request(2, [](auto* r) { r->mutable_power()->set_action(v1::PowerRequest::ACTION_REBOOT); });
    s.request(3, [](auto* r) { r->mutable_freeze(); });
    s.request(4, [](auto* r) { r->mutable_time_set()->set_unix_time_ns(1); });
    s.request(5, [](auto* r) { r->mutable_hostname_set()->set_hostname("evil"); });
    s.request(6, [](auto* r) { r->mutable_process_kill()->set_pid(1); });
    add("denied", s);
  }
  {
    Script s;  // garbage, torn frames, messages only an agent sends, id 0
    s.raw("garbage before anything").raw(std::string("QTX\x01\x00\x00\x00\x10partial", 15));
    hello(s);
    s.request(0, [](auto* r) { r->mutable_ping(); });
    v1::Envelope resp;
    resp.set_id(7);
    resp.mutable_response()->mutable_ping();
    s.sealed(resp);
    s.request(8, [](auto* r) { (void)r; });  // a request of no kind
    s.raw(std::string("QTX\x01\xff\xff\xff\xff", 8));
    s.request(9, [](auto* r) { r->mutable_ping(); });
    s.raw(std::string("QTX\x01\x00\x00\x01\x00", 8));  // a header whose body never comes
    add("hostile_stream", s);
  }
  return seeds;
}

// host_responses: targets are the host's requests in order: 0 hello, 1 ping,
// 2 info, 3 file_list, 4 process_list, 5 network, 6 ssh_keys, 7 exec
// (collected), 8 exec (streamed), 9 download, 10 upload.
enum Target : std::uint8_t {
  kHello,
  kPing,
  kInfo,
  kList,
  kProcs,
  kNet,
  kKeys,
  kExecCollected,
  kExecStreamed,
  kDownload,
  kUpload
};

v1::Envelope response(const std::function<void(v1::Response*)>& fill) {
  v1::Envelope env;
  fill(env.mutable_response());
  return env;
}
v1::Envelope exec_output(v1::ExecOutput::Stream stream, std::string data) {
  v1::Envelope env;
  auto* o = env.mutable_progress()->mutable_exec_output();
  o->set_stream(stream);
  o->set_data(std::move(data));
  o->set_pid(42);
  return env;
}
v1::Envelope chunk(std::uint64_t offset, std::string data) {
  v1::Envelope env;
  env.mutable_progress()->mutable_file_chunk()->set_offset(offset);
  env.mutable_progress()->mutable_file_chunk()->set_data(std::move(data));
  return env;
}
v1::Envelope credit_of(std::uint64_t bytes) {
  v1::Envelope env;
  env.mutable_credit()->set_bytes(bytes);
  return env;
}
v1::Envelope event(const std::function<void(v1::Event*)>& fill) {
  v1::Envelope env;
  fill(env.mutable_event());
  return env;
}

std::map<std::string, std::string> host_responses_seeds() {
  std::map<std::string, std::string> seeds;
  auto add = [&](const std::string& name, const Script& s) { seeds[name] = s.bytes(); };
  {
    Script s;  // what a well-behaved agent answers
    s.addressed(kPing, response([](auto* r) { r->mutable_ping(); }));
    s.addressed(kInfo, response([](auto* r) { r->mutable_info()->set_hostname("vm"); }));
    s.addressed(kList, response([](auto* r) {
                  auto* e = r->mutable_file_list()->add_entries();
                  e->set_path("etc");
                  e->set_type(v1::FILE_TYPE_DIRECTORY);
                }));
    s.addressed(kProcs, response([](auto* r) { r->mutable_process_list()->add_processes()->set_name("init"); }));
    s.addressed(kNet, response([](auto* r) { r->mutable_network()->add_interfaces()->set_name("eth0"); }));
    s.addressed(kKeys, response([](auto* r) { r->mutable_ssh_keys()->add_keys("ssh-ed25519 AAAA k"); }));
    s.addressed(kExecCollected, exec_output(v1::ExecOutput::STREAM_STDOUT, "hello\n"));
    s.addressed(kExecCollected, response([](auto* r) {
                  r->mutable_exec()->set_exit_code(0);
                  r->mutable_exec()->set_stdout_bytes(6);
                }));
    s.addressed(kExecStreamed, exec_output(v1::ExecOutput::STREAM_STDERR, "oops"));
    s.addressed(kExecStreamed, response([](auto* r) { r->mutable_exec()->set_signal(9); }));
    s.addressed(kDownload, chunk(0, "abc"));
    s.addressed(kDownload, response([](auto* r) {
                  r->mutable_file_read()->set_bytes(3);
                  r->mutable_file_read()->set_file_size(3);
                }));
    s.addressed(kUpload, credit_of(65536));
    s.addressed(kUpload, response([](auto* r) { r->mutable_file_write()->set_bytes(20000); }));
    add("proper_answers", s);
  }
  {
    Script s;  // answers of the wrong kind, twice, or to no call
    s.addressed(kPing, response([](auto* r) { r->mutable_info(); }));
    s.addressed(kInfo, response([](auto* r) { r->mutable_ping(); }));
    s.addressed(kInfo, response([](auto* r) { r->mutable_ping(); }));
    s.addressed(kExecCollected, response([](auto* r) { r->mutable_file_read(); }));
    s.addressed(kDownload, exec_output(v1::ExecOutput::STREAM_STDOUT, "not a chunk"));
    s.addressed(kUpload, chunk(0, "the host is the writer"));
    s.addressed(kHello, response([](auto* r) { r->mutable_hello()->set_nonce(1); }));
    s.addressed(200, response([](auto* r) { r->mutable_ping(); }));  // an id no call has
    s.addressed(kList, response([](auto* r) {
                  auto* e = r->mutable_error();
                  e->set_code(v1::ERROR_CODE_DENIED);
                  e->set_message("\x1b[31mred\nforged log line");
                }));
    add("wrong_kinds", s);
  }
  {
    Script s;  // claims meant to make the host allocate or wrap
    s.addressed(kDownload, chunk(~0ULL - 2, "xyz"));
    s.addressed(kDownload, response([](auto* r) {
                  r->mutable_file_read()->set_bytes(~0ULL);
                  r->mutable_file_read()->set_file_size(~0ULL);
                }));
    s.addressed(kUpload, credit_of(~0ULL));
    s.addressed(kUpload, credit_of(~0ULL));
    s.addressed(kExecCollected, response([](auto* r) {
                  r->mutable_exec()->set_stdout_bytes(~0ULL);
                  r->mutable_exec()->set_pid(~0U);
                }));
    s.addressed(kExecStreamed, exec_output(v1::ExecOutput::STREAM_UNSPECIFIED, "which stream?"));
    add("huge_claims", s);
  }
  {
    Script s;  // collected output past the host's bound
    for (int i = 0; i < 6; ++i)
      s.addressed(kExecCollected, exec_output(v1::ExecOutput::STREAM_STDOUT, std::string(1000, 'o')));
    s.addressed(kExecCollected, response([](auto* r) { r->mutable_exec()->set_exit_code(0); }));
    add("exec_flood", s);
  }
  {
    Script s;  // events, the agent restarting under the host, garbage between frames
    s.sealed(event([](auto* e) { e->mutable_telemetry()->set_seq(1); }));
    s.raw("\x00\x01garbage QTX");
    s.sealed(event([](auto* e) { e->mutable_freeze_state()->set_frozen(true); }));
    s.raw(std::string("QTX\x01\x7f\xff\xff\xff", 8));
    s.addressed(kPing, response([](auto* r) { r->mutable_ping(); }));
    s.sealed(event([](auto* e) { e->mutable_agent_started()->mutable_agent()->set_instance_id("other"); }));
    s.addressed(kInfo, response([](auto* r) { r->mutable_info(); }));
    s.raw(std::string("QTX\x01\x00\x00\x00\x40torn", 12));
    add("events_and_garbage", s);
  }
  return seeds;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: qtx_fuzz_seeds agent_dispatch|host_responses DIR\n");
    return 2;
  }
  const std::string target = argv[1];
  std::map<std::string, std::string> seeds;
  if (target == "agent_dispatch") {
    seeds = agent_dispatch_seeds();
  } else if (target == "host_responses") {
    seeds = host_responses_seeds();
  } else {
    std::fprintf(stderr, "qtx_fuzz_seeds: unknown target \"%s\"\n", argv[1]);
    return 2;
  }
  std::filesystem::create_directories(argv[2]);
  for (const auto& [name, bytes] : seeds) {
    std::ofstream(std::filesystem::path(argv[2]) / name, std::ios::binary) << bytes;
  }
  std::printf("%zu seeds written to %s\n", seeds.size(), argv[2]);
  return 0;
}
