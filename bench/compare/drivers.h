// The two agents behind one interface, so that every figure is measured by
// the same code for both: qtx through libqtx-host, qemu-ga through
// QgaClient.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "qga_client.h"
#include "qtx/host/manager.h"

namespace qtx::bench {

class Driver {
 public:
  virtual ~Driver() = default;
  virtual bool ping() = 0;
  // `n` pings with up to `window` in flight.
  virtual bool pings(int n, int window) = 0;
  // The whole file into *out; `chunk` is the request size where the
  // protocol has one (qemu-ga), ignored otherwise.
  virtual bool read_file(const std::string& path, std::size_t chunk, std::string* out) = 0;
  virtual bool write_file(const std::string& path, const std::string& data, std::size_t chunk) = 0;
  // Runs argv; its exit code, and its stdout (in *out when not null).
  virtual bool exec(const std::vector<std::string>& argv, int* exit_code, std::size_t* out_bytes,
                    std::string* out = nullptr) = 0;
  virtual std::string last_error() const = 0;
  // qtx: whether transfers check the end-to-end sha256 (on by default).
  virtual void set_checksums(bool) {}
};

// qtx: an Agent of `manager` on `socket` (QEMU's chardev, or the agent's
// own unix-listen socket), ready; *agent (when given) receives it.
std::unique_ptr<Driver> connect_qtx(host::Manager& manager, const std::string& socket,
                                    std::shared_ptr<host::Agent>* agent = nullptr);
// qemu-ga on a unix socket; synced before it is returned. Null on failure.
std::unique_ptr<Driver> connect_qga(const std::string& socket);

}  // namespace qtx::bench
