// One side of an instruction count (scripts/instruction-counts.sh): connects
// to qtx-agent or qemu-ga on a unix socket and does one kind of work a given
// number of times, through the same drivers as agent_compare. The script runs
// it (or the agent) under callgrind twice, with a small and a large count,
// and divides the difference: what remains is the cost of one operation,
// without start-up, connection and exit.
//
//   instruction_client qtx|qemu-ga SOCKET ping|upload|download COUNT DIR
//
// ping: COUNT round trips, one at a time. upload / download: one file of
// COUNT MiB (sha256-checked for qtx, as by default), to or from DIR/file.
// Exit status 0 on success.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>

#include "drivers.h"
#include "qtx/host/manager.h"

namespace {

constexpr std::size_t kMiB = 1024 * 1024;
// qemu-ga's guest-file-read/write request size: its documented 48 MiB
// limit is far above, and 1 MiB is what agent_compare uses for its figures.
constexpr std::size_t kQgaChunk = kMiB;

std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 2654435761u) >> 24);
  return s;
}

int usage() {
  std::fprintf(stderr, "usage: instruction_client qtx|qemu-ga SOCKET ping|upload|download COUNT DIR\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 6) return usage();
  const std::string kind = argv[1], socket = argv[2], op = argv[3], dir = argv[5];
  const long count = std::strtol(argv[4], nullptr, 10);
  if ((kind != "qtx" && kind != "qemu-ga") || count < 0) return usage();

  qtx::host::Manager manager;
  std::unique_ptr<qtx::bench::Driver> driver =
      kind == "qtx" ? qtx::bench::connect_qtx(manager, socket) : qtx::bench::connect_qga(socket);
  if (!driver) {
    std::fprintf(stderr, "instruction_client: no %s on %s\n", kind.c_str(), socket.c_str());
    return 1;
  }
  const std::string file = dir + "/file";
  bool ok = true;
  if (op == "ping") {
    for (long i = 0; i < count && ok; ++i) ok = driver->ping();
  } else if (op == "upload") {
    ok = driver->write_file(file, pattern(static_cast<std::size_t>(count) * kMiB), kQgaChunk);
  } else if (op == "download") {
    std::string out;
    ok = driver->read_file(file, kQgaChunk, &out) && out.size() == static_cast<std::size_t>(count) * kMiB;
  } else {
    return usage();
  }
  if (!ok) {
    std::fprintf(stderr, "instruction_client: %s %s failed: %s\n", kind.c_str(), op.c_str(),
                 driver->last_error().c_str());
    return 1;
  }
  return 0;
}
