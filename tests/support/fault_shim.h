// FaultShim: a unix-socket proxy between libqtx-host and the agent that
// injects transport faults. It listens on one path and, for every
// connection accepted there, connects to the agent's socket and forwards
// both ways:
//  - every byte is written on its own (each write split at every byte
//    boundary), in order: nothing is ever reordered or duplicated; or, to
//    make many cuts cheap, what was read is written whole;
//  - optionally with a pause every few bytes (shorter than the stall
//    timeout, so no partial frame is flushed for it);
//  - the first connection can be cut after N bytes in either direction:
//    N bytes pass and, when the next one arrives, both sockets are closed
//    instead, as a dying peer or a broken channel would; later connections
//    pass untouched;
//  - a side that stops reading for 10 s ends the connection (a send
//    timeout), so the shim never hangs a test.
// An end of file on either side closes both. One thread, one connection at
// a time (a new one replaces the old).
//
// The byte counts are final only once the connection is closed: a byte is
// counted after its write returns, so the peer may see (and count) it
// before the shim does. wait_closed() is the point after which they may be
// compared with the peers' own counts.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <limits>
#include <mutex>
#include <string>
#include <thread>

namespace qtx::testing {

class FaultShim {
 public:
  enum Direction { kToAgent = 0, kToHost = 1 };
  static constexpr std::uint64_t kNever = std::numeric_limits<std::uint64_t>::max();

  struct Plan {
    Direction cut_direction = kToAgent;
    std::uint64_t cut_after = kNever;  // bytes forwarded in cut_direction before the cut
    bool split = true;                 // false: forward what was read in one write (up to the cut)
    unsigned pause_every = 0;          // with split; 0: none; else a pause of pause_us after every N-th byte
    unsigned pause_us = 0;
  };

  FaultShim(std::string listen_path, std::string agent_path, Plan plan);
  ~FaultShim();
  FaultShim(const FaultShim&) = delete;
  FaultShim& operator=(const FaultShim&) = delete;

  int connections() const { return connections_.load(); }
  bool cut() const { return cut_.load(); }
  // Bytes forwarded on the first connection, per direction.
  std::uint64_t first_bytes(Direction d) const { return first_bytes_[d].load(); }
  // Waits until no connection is open (the host's side has hung up and
  // everything it sent before was forwarded, or a cut closed it); false if
  // one is still open after `timeout`.
  bool wait_closed(std::chrono::milliseconds timeout);

 private:
  void run();
  void set_open(bool open);

  const std::string listen_path_, agent_path_;
  const Plan plan_;
  int listen_fd_ = -1;
  int stop_pipe_[2] = {-1, -1};
  std::atomic<int> connections_{0};
  std::atomic<bool> cut_{false};
  std::atomic<std::uint64_t> first_bytes_[2] = {0, 0};
  std::mutex mutex_;
  std::condition_variable closed_;
  bool open_ = false;  // guarded by mutex_
  std::thread thread_;
};

}  // namespace qtx::testing
