// hello, ping, info, telemetry_config: the requests every session needs.
#include <asio/post.hpp>

#include "dispatcher.h"
#include "handlers.h"
#include "reply.h"
#include "session.h"
#include "system/system_info.h"

namespace qtx::agent {

void fill_identity(Session& s, v1::AgentIdentity* out) {
  const auto& id = s.agent().identity;
  out->set_version(id.version);
  out->set_instance_id(id.instance_id);
  out->set_boot_id(id.boot_id);
  for (auto& c : capabilities(s.agent().config)) *out->add_capabilities() = std::move(c);
}

// Answered whatever protocol version the host speaks: the reply carries ours,
// and the host decides whether it can work with it.
void handle_hello(Session& s, std::uint64_t id, const v1::HelloRequest& req) {
  v1::Response r;
  auto* hello = r.mutable_hello();
  hello->set_nonce(req.nonce());
  hello->set_protocol_version(v1::PROTOCOL_VERSION_1);
  fill_identity(s, hello->mutable_agent());
  s.respond(id, std::move(r));
  s.mark_handshaken();
}

void handle_ping(Session& s, std::uint64_t id, const v1::PingRequest& req) {
  v1::Response r;
  r.mutable_ping()->set_payload(req.payload());
  s.respond(id, std::move(r));
}

void handle_info(Session& s, std::uint64_t id, const v1::InfoRequest&) {
  // Small reads of /etc and uname: done on a worker all the same, a guest
  // under memory pressure can stall on them.
  Reply reply(s.weak(), id);
  v1::Response r;
  auto* info = r.mutable_info();
  fill_identity(s, info->mutable_agent());
  const auto& c = s.agent().config;
  auto* p = info->mutable_policy();
  p->set_exec_allowed(c.allows("exec"));
  for (const auto& root : c.file_roots) p->add_file_roots(root);
  p->set_max_concurrent_execs(c.max_concurrent_execs);
  p->set_max_exec_output(c.max_exec_output);
  p->set_max_open_transfers(c.max_open_transfers);
  p->set_max_message(c.max_message);
  const auto& st = s.decoder_stats();
  auto* counters = info->mutable_session();
  counters->set_bytes_received(st.bytes_fed);
  counters->set_frames_received(st.frames);
  counters->set_bytes_dropped(st.dropped_total());
  counters->set_bytes_dropped_since_start(s.agent().counters.bytes_dropped.load() + st.dropped_total());
  counters->set_bytes_hashed(st.bytes_hashed);
  asio::post(s.agent().workers, [reply, r = std::move(r)]() mutable {
    auto* out = r.mutable_info();
    *out->mutable_os() = read_os_info();
    KernelInfo k = read_kernel_info();
    out->set_kernel_release(k.release);
    out->set_kernel_version(k.version);
    out->set_arch(k.arch);
    out->set_hostname(k.hostname);
    out->set_timezone(read_timezone());
    reply.send(std::move(r));
  });
}

void handle_telemetry_config(Session& s, std::uint64_t id, const v1::TelemetryConfigRequest& req) {
  auto& agent = s.agent();
  if (req.interval_ms() != 0) {
    if (req.interval_ms() < 100) {
      s.respond(id, error_response(v1::ERROR_CODE_INVALID_ARGUMENT, "telemetry interval must be at least 100 ms"));
      return;
    }
    agent.telemetry_interval_ms = req.interval_ms();
    s.reschedule_telemetry();
  }
  agent.config.telemetry_per_cpu = req.per_cpu();
  v1::Response r;
  r.mutable_telemetry_config()->set_interval_ms(agent.telemetry_interval_ms);
  s.respond(id, std::move(r));
  if (req.sample_now()) s.sample_telemetry_now();
}

}  // namespace qtx::agent
