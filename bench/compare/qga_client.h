// A minimal client of the QEMU Guest Agent's protocol (QMP-style JSON, one
// object per line) for the comparison harness: what a VM manager written in
// C++ would do, with no Python in the timed path. Blocking, on a connected
// stream socket it owns.
#pragma once

#include <google/protobuf/struct.pb.h>

#include <cstdint>
#include <string>
#include <vector>

namespace qtx::bench {

class QgaClient {
 public:
  explicit QgaClient(int fd);
  ~QgaClient();
  QgaClient(const QgaClient&) = delete;
  QgaClient& operator=(const QgaClient&) = delete;

  // guest-sync-delimited: discards anything stale on the channel (what a
  // client must do first on a virtio-serial port). False on failure.
  bool sync();
  // One command, its "return" value; false (with *error) on an error reply
  // or a broken connection.
  bool call(const std::string& json_command, google::protobuf::Value* ret, std::string* error);
  // `n` commands written back to back (up to `window` unanswered), then
  // every answer read: qemu-ga executes them one at a time, in order.
  bool pipelined(const std::string& json_command, int n, int window, std::string* error);

  // Files through guest-file-open/read/write/close, base64 on the wire.
  bool read_file(const std::string& guest_path, std::size_t chunk, std::string* out, std::string* error);
  bool write_file(const std::string& guest_path, const std::string& data, std::size_t chunk, std::string* error);
  // guest-exec with captured output, then guest-exec-status until it exits.
  bool exec(const std::string& path, const std::vector<std::string>& args, int* exit_code, std::string* out,
            std::string* error);

 private:
  bool send(const std::string& line);
  bool read_line(std::string* line);

  int fd_;
  std::string buf_;  // bytes read past the last line
  std::uint64_t sync_id_ = 1000;
};

}  // namespace qtx::bench
