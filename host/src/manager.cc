#include "qtx/host/manager.h"

#include <unistd.h>

#include "io_thread.h"
#include "link.h"
#include "metrics_text.h"
#include "owner_lock.h"
#include "qtx/quote.h"

namespace qtx::host {
namespace {

std::optional<Error> validate(const AgentOptions& o) {
  auto bad = [](const std::string& m) { return Error(ErrorKind::kLocal, m); };
  const Endpoint& e = o.endpoint;
  if (e.kind == Endpoint::Kind::kAdopt) {
    if (e.fd < 0) return bad("adopt: no file descriptor given");
  } else if (e.path.empty()) {
    return bad("no socket path given");
  }
  using ms = std::chrono::milliseconds;
  if (o.handshake_timeout <= ms(0)) return bad("handshake_timeout must be positive");
  if (o.write_timeout <= ms(0)) return bad("write_timeout must be positive");
  if (o.stall_timeout <= ms(0)) return bad("stall_timeout must be positive");
  if (o.reconnect_min <= ms(0) || o.reconnect_max < o.reconnect_min) {
    return bad("reconnect_min must be positive and at most reconnect_max");
  }
  if (o.keepalive_interval < ms(0) || (o.keepalive_interval > ms(0) && o.keepalive_timeout <= o.keepalive_interval)) {
    return bad("keepalive_timeout must be longer than keepalive_interval");
  }
  if (o.max_message < 64 * 1024 || o.max_message > 16u * 1024 * 1024) {
    return bad("max_message must be within 64 KiB .. 16 MiB");
  }
  if (o.labels.size() > AgentOptions::kMaxMetricLabels) {
    return bad("at most " + std::to_string(AgentOptions::kMaxMetricLabels) + " metric labels");
  }
  for (std::size_t i = 0; i < o.labels.size(); ++i) {
    const auto& [name, value] = o.labels[i];
    if (!detail::valid_label_name(name)) return bad("metric label name \"" + printable(name, 64) + "\" is not valid");
    if (detail::reserved_label_name(name)) return bad("metric label name \"" + name + "\" is reserved");
    for (std::size_t j = 0; j < i; ++j) {
      if (o.labels[j].first == name) return bad("metric label \"" + name + "\" given twice");
    }
    if (value.size() > AgentOptions::kMaxMetricLabelValue || !detail::valid_utf8(value)) {
      return bad("metric label \"" + name + "\": the value must be UTF-8 of at most " +
                 std::to_string(AgentOptions::kMaxMetricLabelValue) + " bytes");
    }
  }
  return std::nullopt;
}

}  // namespace

Manager::Manager() : io_(std::make_shared<detail::IoThread>()) {}

Manager::~Manager() { io_->shutdown(); }

Result<std::shared_ptr<Agent>> Manager::add(AgentOptions options) {
  // An adopted socket belongs to the library from here on, even when the
  // add fails.
  auto refuse = [&options](Error e) -> Result<std::shared_ptr<Agent>> {
    if (options.endpoint.kind == Endpoint::Kind::kAdopt && options.endpoint.fd >= 0) ::close(options.endpoint.fd);
    return e;
  };
  if (io_->stopped()) return refuse(Error(ErrorKind::kClosed, "the manager is shut down"));
  if (auto err = validate(options)) return refuse(*err);
  detail::OwnerLock lock;
  if (options.endpoint.kind != Endpoint::Kind::kAdopt) {
    auto acquired = detail::OwnerLock::acquire(options.endpoint.path);
    if (!acquired) return acquired.error();
    lock = std::move(acquired.value());
  }
  auto link = std::make_shared<detail::Link>(io_, std::move(options), std::move(lock));
  std::shared_ptr<Agent> agent(new Agent(link));
  link->set_handle(agent);
  io_->add(link);
  link->start();
  return agent;
}

void Manager::remove(const std::shared_ptr<Agent>& agent) {
  if (agent) agent->close();
}

std::vector<std::shared_ptr<Agent>> Manager::agents() const {
  std::vector<std::shared_ptr<Agent>> out;
  for (const auto& link : io_->links()) {
    if (auto a = link->handle()) out.push_back(std::move(a));
  }
  return out;
}

std::shared_ptr<Agent> Manager::find(const std::string& socket_path) const {
  auto link = io_->find(socket_path);
  return link ? link->handle() : nullptr;
}

bool Manager::remove(const std::string& socket_path) {
  auto agent = find(socket_path);
  if (!agent) return false;
  agent->close();
  return true;
}

std::size_t Manager::size() const { return io_->size(); }

bool Manager::on_io_thread() const { return io_->on_thread(); }

}  // namespace qtx::host
