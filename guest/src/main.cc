// qtx-agent: the qtx guest agent.
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "agent_config.h"
#include "agent_context.h"
#include "config_reload.h"
#include "freeze/freeze_manager.h"
#include "logging.h"
#include "qga/qga_service.h"
#include "session.h"
#include "supervisor.h"
#include "transport/transport.h"

namespace {

constexpr const char* kDefaultConfig = "/etc/qtx/agent.conf";
constexpr unsigned kDrainMs = 2000;
// After the sessions stop: how long worker jobs may take to finish.
constexpr unsigned kWorkerStopMs = 3000;

void usage(std::FILE* out) {
  std::fprintf(out,
               "Usage: qtx-agent [OPTIONS]\n"
               "The qtx guest agent: answers the host over a virtio-serial port.\n\n"
               "Options:\n"
               "  -c, --config FILE       configuration file (default %s; optional unless given)\n"
               "  -t, --transport T       virtio:NAME (default virtio:org.quantix.agent.0),\n"
               "                          unix-listen:PATH or unix-connect:PATH\n"
               "  -l, --log-level LEVEL   trace, debug, info, warn, error or off (default info)\n"
               "  -V, --version           print the version and exit\n"
               "  -h, --help              print this help and exit\n\n"
               "The qemu-ga protocol is served beside the native one on virtio:org.qemu.guest_agent.0\n"
               "when that port exists ([qga] enabled = \"auto\" | true | false, transport = ...;\n"
               "see docs/qemu-ga-compat.md).\n\n"
               "Signals: SIGTERM/SIGINT stop cleanly (exit 0); SIGHUP reloads the configuration.\n",
               kDefaultConfig);
}

// Parses the command line into *source. Returns -1 to go on, or the exit
// code: 0 after --help or --version, 2 for a usage error (said on stderr).
int parse_command_line(int argc, char** argv, qtx::agent::ConfigSource* source) {
  source->path = kDefaultConfig;
  static const option kOptions[] = {{"config", required_argument, nullptr, 'c'},
                                    {"transport", required_argument, nullptr, 't'},
                                    {"log-level", required_argument, nullptr, 'l'},
                                    {"version", no_argument, nullptr, 'V'},
                                    {"help", no_argument, nullptr, 'h'},
                                    {nullptr, 0, nullptr, 0}};
  for (;;) {
    int c = getopt_long(argc, argv, "c:t:l:Vh", kOptions, nullptr);
    if (c == -1) break;
    switch (c) {
      case 'c':
        source->path = optarg;
        source->path_given = true;
        break;
      case 't': source->transport = optarg; break;
      case 'l': source->log_level = optarg; break;
      case 'V': std::printf("qtx-agent %s\n", QTX_VERSION); return 0;
      case 'h': usage(stdout); return 0;
      default: usage(stderr); return 2;
    }
  }
  if (optind < argc) {
    std::fprintf(stderr, "qtx-agent: unexpected argument \"%s\"\n", argv[optind]);
    usage(stderr);
    return 2;
  }
  if (!source->log_level.empty() && !qtx::agent::is_known_log_level(source->log_level)) {
    std::fprintf(stderr, "qtx-agent: --log-level must be trace, debug, info, warn, error or off, not \"%s\"\n",
                 source->log_level.c_str());
    return 2;
  }
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace qtx::agent;
  // 0, 1 and 2 always open (on /dev/null if we were started without them), so
  // no descriptor we open later can be mistaken for standard I/O in a child.
  for (int fd = 0; fd < 3; ++fd) {
    if (::fcntl(fd, F_GETFD) < 0) ::open("/dev/null", O_RDWR);
  }
  ConfigSource source;
  if (int code = parse_command_line(argc, argv, &source); code >= 0) return code;
  AgentConfig config;
  ConfigLoad load = load_config(source.path, source.path_given, &config);
  if (!load.status) {
    std::fprintf(stderr, "qtx-agent: %s\n", load.status.message().c_str());
    return 2;
  }
  if (!source.transport.empty()) config.transport = source.transport;
  if (!source.log_level.empty()) config.log_level = source.log_level;

  setup_logging(config.log_level);
  for (const auto& w : load.warnings) spdlog::warn("{}", w);

  ::signal(SIGPIPE, SIG_IGN);
  asio::io_context io;
  std::unique_ptr<Transport> transport;
  qtx::Status s = make_transport(io, config.transport, &transport);
  if (!s) {
    spdlog::critical("{}", s.message());
    return 2;
  }

  AgentIdentity identity{QTX_VERSION, random_instance_id(), read_boot_id()};
  AgentContext agent(io, config, identity);
  agent.freeze->set_event_sink([&agent](const qtx::agent::v1::FreezeStateChanged& ev) {
    auto session = agent.current_session.lock();
    if (!session || session->stopped()) return;
    qtx::agent::v1::Envelope env;
    *env.mutable_event()->mutable_freeze_state() = ev;
    session->send(env);
  });
  agent.freeze->restore();
  Supervisor supervisor(agent, *transport);
  // The qemu-ga port: its transport is chosen once, at start.
  std::unique_ptr<qga::QgaService> qga_service;
  if (qga::qga_wanted(config)) {
    std::unique_ptr<Transport> qga_transport;
    s = make_transport(io, config.qga_transport, &qga_transport);
    if (!s) {
      spdlog::critical("qga.transport: {}", s.message());
      return 2;
    }
    qga_service = std::make_unique<qga::QgaService>(agent, std::move(qga_transport));
  }

  asio::signal_set signals(io, SIGTERM, SIGINT, SIGHUP);
  std::function<void()> wait_signal;
  wait_signal = [&] {
    signals.async_wait([&](const asio::error_code& ec, int sig) {
      if (ec) return;
      if (sig == SIGHUP) {
        reload_config(agent, source);
        return wait_signal();
      }
      spdlog::info("{} received: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
      if (qga_service) qga_service->stop();
      supervisor.shutdown(kDrainMs, [&] {
        signals.cancel();
        io.stop();
      });
    });
  };
  wait_signal();

  spdlog::info("qtx-agent {} starting (instance {}) on {}", QTX_VERSION, identity.instance_id, transport->describe());
  supervisor.start();
  if (qga_service) {
    spdlog::info("qemu-ga protocol on {}", qga_service->describe());
    qga_service->start();
  }
  // Handlers report errors as values; this is the last line of defence so
  // that no bug reachable from a peer's bytes can end the daemon.
  for (;;) {
    try {
      io.run();
      break;
    } catch (const std::exception& e) {
      spdlog::critical("internal error, continuing: {}", e.what());
    }
  }
  // Worker jobs hand their operations back to io. Let them finish, then run
  // what they posted, so those operations die now, while the AgentContext they
  // count against is alive (io outlives it, and would destroy them later).
  // A job blocked in the kernel (a read that never returns) must not hold up
  // the stop: after kWorkerStopMs the agent exits without joining them (the
  // destructors would wait for those threads).
  if (!agent.workers.wait_idle_for(std::chrono::milliseconds(kWorkerStopMs))) {
    spdlog::warn("{} worker jobs still queued or running after {} ms: exiting without them", agent.workers.jobs(),
                 kWorkerStopMs);
    spdlog::default_logger()->flush();
    std::_Exit(0);
  }
  agent.workers.join();
  io.restart();
  io.poll();
  spdlog::info("stopped");
  return 0;
}
