// A man in the middle of a VM's agent channel that writes garbage into the
// host->guest direction before every frame the host sends, as a noisy
// channel or a confused earlier client would. Guest->host bytes pass
// untouched.
//
// It listens on `listen_path`; its first client is connected to
// `target_path` (QEMU's chardev socket) and served until the destructor.
// The garbage is deterministic (seeded) and mixes random bytes with the
// shapes a resync scanner must survive: a bare magic, a magic with length 0,
// one with an oversized length, a short frame whose seal is wrong, and a
// magic cut one byte short right before the real frame. Every injected run
// is complete before the frame it precedes, so a decoder has decided all of
// it by the time it delivers that frame.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>

namespace qtx::testing {

class InjectingProxy {
 public:
  InjectingProxy(std::string listen_path, std::string target_path, std::uint32_t seed);
  ~InjectingProxy();
  InjectingProxy(const InjectingProxy&) = delete;
  InjectingProxy& operator=(const InjectingProxy&) = delete;

  // Garbage bytes written so far, and the host's frames forwarded after them.
  std::uint64_t garbage_bytes() const { return garbage_.load(); }
  std::uint64_t frames() const { return frames_.load(); }
  // Set when the host sent something that is not a QTX1 frame, or a socket
  // failed before the destructor; the test asserts it stays empty.
  std::string error() const;

 private:
  void serve();
  void host_to_guest(int host, int guest);
  std::string next_garbage();
  void fail(const std::string& what);

  const std::string target_path_;
  int listen_fd_ = -1;
  std::atomic<int> host_fd_{-1}, guest_fd_{-1};
  std::atomic<bool> stopping_{false};
  std::atomic<std::uint64_t> garbage_{0}, frames_{0};
  std::uint64_t rng_;
  unsigned shape_ = 0;
  mutable std::atomic<bool> failed_{false};
  std::string error_;  // written once, before failed_ is set
  std::thread server_;
};

}  // namespace qtx::testing
