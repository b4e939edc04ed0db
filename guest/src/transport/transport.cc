#include "transport.h"

#include "unix_transport.h"
#include "virtio_transport.h"

namespace qtx::agent {

Status make_transport(asio::io_context& io, const std::string& spec, std::unique_ptr<Transport>* out) {
  const auto colon = spec.find(':');
  const std::string kind = spec.substr(0, colon);
  const std::string arg = colon == std::string::npos ? "" : spec.substr(colon + 1);
  if (kind == "virtio") {
    const std::string name = arg.empty() ? "org.quantix.agent.0" : arg;
    if (name.find('/') != std::string::npos) {
      return Status::invalid_argument("virtio port names contain no '/': " + spec);
    }
    *out = std::make_unique<VirtioTransport>(io, name);
    return Status::OK();
  }
  if ((kind == "unix-listen" || kind == "unix-connect") && arg.empty()) {
    return Status::invalid_argument(kind + " needs a socket path: " + kind + ":/path/to/socket");
  }
  if (kind == "unix-listen") {
    *out = std::make_unique<UnixListenTransport>(io, arg);
    return Status::OK();
  }
  if (kind == "unix-connect") {
    *out = std::make_unique<UnixConnectTransport>(io, arg);
    return Status::OK();
  }
  return Status::invalid_argument("unknown transport \"" + spec +
                                  "\": use virtio:NAME, unix-listen:PATH or unix-connect:PATH");
}

}  // namespace qtx::agent
