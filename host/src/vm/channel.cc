// The agent channel's wiring: QEMU arguments and libvirt domain XML.
#include <sys/un.h>

#include <cctype>

#include "qtx/host/vm.h"

namespace qtx::host::vm {
namespace {

Result<void> check(const ChannelOptions& o) {
  if (o.socket.empty() || o.socket[0] != '/') {
    return Error(ErrorKind::kInvalidArgument, "the channel socket must be an absolute path, got \"" + o.socket + "\"");
  }
  if (o.socket.size() >= sizeof(sockaddr_un{}.sun_path)) {
    return Error(ErrorKind::kInvalidArgument, "the channel socket path is " + std::to_string(o.socket.size()) +
                                                  " bytes: unix sockets take at most " +
                                                  std::to_string(sizeof(sockaddr_un{}.sun_path) - 1));
  }
  for (unsigned char c : o.socket) {
    if (c < 0x20 || c == 0x7f)
      return Error(ErrorKind::kInvalidArgument, "the channel socket path holds a control character");
  }
  if (o.port.empty() || o.port.size() > 64)
    return Error(ErrorKind::kInvalidArgument, "the port name must be 1 to 64 characters");
  for (char c : o.port) {
    if (!(std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '.' ||
          c == '_' || c == '-')) {
      return Error(ErrorKind::kInvalidArgument,
                   "the port name \"" + o.port + "\" may hold only a-z, 0-9, '.', '_', '-'");
    }
  }
  if (o.id.empty() || !std::isalpha(static_cast<unsigned char>(o.id[0]))) {
    return Error(ErrorKind::kInvalidArgument, "the QEMU id must start with a letter");
  }
  for (char c : o.id) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) {
      return Error(ErrorKind::kInvalidArgument, "the QEMU id \"" + o.id + "\" may hold only letters, digits, '_', '-'");
    }
  }
  return {};
}

// QEMU's option syntax: a comma inside a value is written twice.
std::string qemu_value(const std::string& s) {
  std::string v;
  for (char c : s) {
    v += c;
    if (c == ',') v += ',';
  }
  return v;
}

std::string xml_attr(const std::string& s) {
  std::string v;
  for (char c : s) {
    switch (c) {
      case '&': v += "&amp;"; break;
      case '<': v += "&lt;"; break;
      case '>': v += "&gt;"; break;
      case '\'': v += "&apos;"; break;
      case '"': v += "&quot;"; break;
      default: v += c;
    }
  }
  return v;
}

}  // namespace

Result<std::vector<std::string>> qemu_channel_args(const ChannelOptions& o) {
  if (auto ok = check(o); !ok) return ok.error();
  // QEMU serves the socket and keeps it across guest reboots (wait=off: it
  // boots without a host attached); or, when the host listens, QEMU
  // connects and retries every second until it is there.
  const std::string mode = o.host_listens ? "server=off,reconnect=1" : "server=on,wait=off";
  return std::vector<std::string>{
      "-chardev", "socket,id=" + o.id + ",path=" + qemu_value(o.socket) + "," + mode,
      "-device",  "virtio-serial-pci,id=" + o.id + "-serial",
      "-device",  "virtserialport,bus=" + o.id + "-serial.0,chardev=" + o.id + ",name=" + o.port,
  };
}

Result<std::string> libvirt_channel_xml(const ChannelOptions& o) {
  if (auto ok = check(o); !ok) return ok.error();
  std::string x = "<channel type='unix'>\n";
  if (o.host_listens) {
    x += "  <source mode='connect' path='" + xml_attr(o.socket) +
         "'>\n    <reconnect enabled='yes' timeout='1'/>\n  </source>\n";
  } else {
    x += "  <source mode='bind' path='" + xml_attr(o.socket) + "'/>\n";
  }
  x += "  <target type='virtio' name='" + o.port + "'/>\n</channel>\n";
  return x;
}

}  // namespace qtx::host::vm
