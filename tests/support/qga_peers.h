// Peers for tests of the qemu-ga protocol: a line-reading client of one
// qemu-ga socket, Debian's qemu-ga started on a unix socket as the
// reference, and the comparisons the differential tests make.
#pragma once

#include <sys/types.h>

#include <string>

#include "qga/json_writer.h"

namespace qtx::testing {

using QgaJson = agent::qga::Json;

// A client of one qemu-ga socket: sends bytes, reads answers line by line.
class QgaClient {
 public:
  // Connects, retrying while the server has not created the socket yet
  // (a condition polled, with a 20 s bound, not a guessed delay).
  explicit QgaClient(const std::string& path);
  ~QgaClient();
  QgaClient(const QgaClient&) = delete;
  QgaClient& operator=(const QgaClient&) = delete;
  bool connected() const { return fd_ >= 0; }

  void send(const std::string& bytes);
  // The next answer line (without "\n"; a leading 0xFF kept), or "" after
  // 20 s without one.
  std::string line();
  // Sends `request` and parses the next line (0xFF dropped); a discarded
  // value when no JSON came.
  QgaJson call(const std::string& request);

 private:
  int fd_ = -1;
  std::string buf_;
};

// Debian's qemu-ga on a unix socket, with its state in `state_dir`;
// SIGTERMed and reaped by the destructor.
class QemuGa {
 public:
  static constexpr const char* kPath = "/usr/sbin/qemu-ga";
  static bool installed();
  QemuGa(const std::string& socket, const std::string& state_dir);
  ~QemuGa();
  QemuGa(const QemuGa&) = delete;
  QemuGa& operator=(const QemuGa&) = delete;

 private:
  pid_t pid_ = -1;
};

// The JSON type skeleton of a value: objects keep their keys, arrays the
// shape of their first element.
QgaJson qga_shape(const QgaJson& v);

// Keys sorted, so that member order (qemu's is a hash's) does not count.
std::string qga_canonical(const QgaJson& v);

}  // namespace qtx::testing
