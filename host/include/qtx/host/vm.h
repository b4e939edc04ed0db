// Provisioning helpers for VM managers: getting a VM from a cloud image to
// a running guest agent. A qcow2 overlay on the image (qemu-img), a
// cloud-init NoCloud seed ISO that installs the agent from the agent ISO
// (xorriso), the agent channel's QEMU arguments and libvirt XML, and a
// wait for the agent that says what it saw.
//
// Every function validates all of its input before it writes anything, and
// is idempotent: run again with the same input it leaves the same files
// (reporting "unchanged") and never overwrites a different file unless
// asked to. Failures are Errors: kInvalidArgument (fix the input),
// kNotFound (a file named in the input is missing), kAlreadyExists (a
// different file is in the way), kLocal (a tool is missing or failed; the
// message has its output).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "qtx/host/error.h"
#include "qtx/host/export.h"

namespace qtx::host::vm {

// "0", "4096", "512K", "20G", "1.5T" (binary units, an optional trailing
// "iB" or "B") to bytes. kInvalidArgument for anything else.
QTX_HOST_API Result<std::uint64_t> parse_size(std::string_view text);

// --- overlay disks ---------------------------------------------------------------------

struct OverlayOptions {
  std::string backing;     // the cloud image; its format is detected (qemu-img info), never guessed
  std::string output;      // the overlay to write (qcow2)
  std::uint64_t size = 0;  // virtual size in bytes; 0: the backing file's
  bool overwrite = false;  // replace an existing, different overlay
  std::string qemu_img = "qemu-img";
};

struct OverlayResult {
  std::string command;         // the qemu-img command that ran (or would have), shell-quoted
  std::string backing_format;  // as detected: "qcow2", "raw", ...
  std::uint64_t backing_size = 0;
  std::uint64_t size = 0;  // the overlay's virtual size
  bool created = false;    // false: an identical overlay was already there
};

// Creates `output` as a qcow2 overlay on `backing`. Refuses (before running
// anything) a missing or unreadable backing file (kNotFound, saying how to
// get one), a size below the backing file's virtual size (kInvalidArgument)
// and an existing output that is not the same overlay (kAlreadyExists,
// unless overwrite). An existing output on the same backing file with the
// same size is left alone.
QTX_HOST_API Result<OverlayResult> create_overlay(const OverlayOptions& options);

// --- cloud-init seeds ------------------------------------------------------------------

struct SeedUser {
  std::string name;                              // a POSIX user name
  std::vector<std::string> ssh_authorized_keys;  // "TYPE BASE64 [COMMENT]", checked
  std::string password_hash;                     // a crypt(3) hash ($6$, $5$, $y$, $2b$); empty: no password
  bool sudo = false;                             // passwordless sudo
};

struct NetworkConfig {
  enum class Mode { kNone, kDhcp, kStatic };
  Mode mode = Mode::kNone;  // kNone: no network-config file (cloud-init's default, DHCP on the first NIC)
  // Which NIC: by MAC address (preferred; stable) or by interface name.
  // One of the two is required with kDhcp and kStatic.
  std::string mac;
  std::string interface;
  std::vector<std::string> addresses;  // kStatic: "ADDRESS/PREFIX", IPv4 or IPv6, at least one
  std::string gateway4, gateway6;      // optional; must lie in one of the addresses' subnets
  std::vector<std::string> dns;        // name server addresses
  std::vector<std::string> search;     // DNS search domains
};

struct SeedOptions {
  std::string hostname;     // required: an RFC 1123 name; a dotted one also sets the FQDN
  std::string instance_id;  // empty: derived from the rest of the seed, so it changes when the seed does
  std::vector<SeedUser> users;
  std::vector<std::string> packages;  // Debian/RPM package names, optionally NAME=VERSION
  bool install_agent = true;          // mount the agent ISO (by its volume id) and run its installer
  std::string agent_iso_label = "QTX_AGENT_TOOLS";
  bool grow_root = true;  // growpart + resize of the root filesystem, by cloud-init's own modules
  NetworkConfig network;
};

// The seed's files, as written to the ISO.
struct SeedFiles {
  std::string instance_id;  // as given, or as derived
  std::string meta_data;
  std::string user_data;       // "#cloud-config" ...
  std::string network_config;  // empty when network.mode is kNone
};

// Checks every input and renders the files (YAML). Pure: touches nothing.
QTX_HOST_API Result<SeedFiles> render_seed(const SeedOptions& options);

struct SeedIsoOptions {
  std::string output;
  bool overwrite = false;  // replace an existing, different file
  std::string xorriso = "xorriso";
};

struct SeedIsoResult {
  SeedFiles files;
  bool created = false;  // false: the same ISO was already there
};

// Renders the seed and writes it as a NoCloud ISO (volume id "cidata",
// Rock Ridge and Joliet). The same input gives the same bytes (fixed dates),
// so a second run finds the ISO unchanged.
QTX_HOST_API Result<SeedIsoResult> write_seed_iso(const SeedOptions& seed, const SeedIsoOptions& options);

// --- the agent's channel ---------------------------------------------------------------

struct ChannelOptions {
  std::string socket;  // absolute path of the host side's unix socket
  std::string port = "org.quantix.agent.0";
  bool host_listens = false;  // false: QEMU serves the socket (server=on), the library connects
  std::string id = "qtx0";    // QEMU chardev/device id prefix
};

// `-chardev ... -device virtio-serial-pci ... -device virtserialport ...`,
// one argument per element (no shell quoting needed).
QTX_HOST_API Result<std::vector<std::string>> qemu_channel_args(const ChannelOptions& options);
// The <channel> element for the domain's <devices>.
QTX_HOST_API Result<std::string> libvirt_channel_xml(const ChannelOptions& options);

// --- waiting for the agent -------------------------------------------------------------

struct ReadyReport {
  enum class Seen {
    kSocketAbsent,  // the socket never appeared: is the VM running with the channel wired?
    kNoConnection,  // the socket is there but refused or dropped every connection
    kNoHandshake,   // connected, but no agent answered: not installed or not running in the guest
    kReady,
  };
  Seen seen = Seen::kSocketAbsent;
  std::chrono::milliseconds elapsed{0};
  std::string agent_version, instance_id;  // kReady
  std::string last_error;                  // the last failure seen, for humans
};
QTX_HOST_API const char* seen_name(ReadyReport::Seen seen);  // "socket_absent", ...

// Connects to QEMU's socket (retrying) until an agent completes the
// handshake or `timeout` passes, and reports the furthest it got. Blocks
// the caller. What the VM or guest did is in the report; an Error only for
// this side: an empty path (kInvalidArgument), or a socket that already has
// an owner in this or another process (kAlreadyExists).
QTX_HOST_API Result<ReadyReport> wait_ready(const std::string& socket, std::chrono::milliseconds timeout);

}  // namespace qtx::host::vm
