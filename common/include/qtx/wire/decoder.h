// FrameDecoder: a streaming QTX1 decoder with a resync scanner.
//
// Fed the byte stream in chunks of any size, it delivers every frame whose
// payload the handler accepts and reports every other byte as dropped, with a
// reason, exactly once. The rules (scan, reject = resume at magic + 1, stall
// flush, reset) are those of docs/wire-format.md, section 2.
//
// Invariants:
//  - The sequence of frames and drop reports depends only on the bytes fed and
//    on when stall_flush()/reset() are called, never on how the bytes were
//    split into chunks.
//  - After stall_flush() or reset(): stats().bytes_fed == stats().frame_bytes +
//    stats().dropped_total().
//  - Memory held is at most one partial frame (header + max_payload) plus the
//    chunk being fed, plus, while candidates nested in a rejected one are
//    checked, one checkpoint of 4 bytes per kSealCheckpointSpacing bytes of it.
//  - Work is linear in the bytes fed, whatever they are. With the seal
//    required (the default), no byte is hashed more than a few times
//    (stats().bytes_hashed <= kMaxHashedPerByteFed * bytes_fed + kSealCheckpointSpacing),
//    no payload is handed to the handler more than once, and the handler sees
//    only payloads whose seal matched. Without the seal (SealCheck::kNone) the
//    handler validates alone and its cost on rejected candidates is its own:
//    a hostile stream of nested candidates then costs it quadratic work, so
//    every decoder that reads a peer requires the seal.
//
// The decoder has no clock. Its owner arms an idle timer of
// kDefaultStallTimeoutMs (or its own setting) whenever idle() is false after a
// feed(), and calls stall_flush() when the timer fires without new bytes.
//
// Not thread-safe: one owner calls it. Handler callbacks run synchronously
// inside feed()/stall_flush()/reset() and must not call back into the decoder.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "qtx/wire/format.h"

namespace qtx::wire {

// Why bytes were dropped. A rejected candidate's bytes are its header plus,
// when its length was valid, the payload it claims; those the scan skips
// after it (up to the next magic, or the end of the candidate, whichever
// comes first) take its reason. Every other skipped byte is kGarbage.
enum class DropReason : std::uint8_t {
  kGarbage = 0,  // bytes that belong to no candidate
  kBadLength,    // a header with length 0, below the seal's size or above the limit (8 bytes at most)
  kBadPayload,   // a complete candidate whose seal failed, one whose payload lacks the seal's tag,
                 // or a sealed frame the handler rejected (that frame, whole)
  kStalled,      // an incomplete frame abandoned by stall_flush() (idle time, end of input)
  kReset,        // bytes buffered when reset() ended the transport epoch
};
inline constexpr std::size_t kDropReasonCount = 5;

// "garbage", "bad_length", "bad_payload", "stalled", "reset".
const char* drop_reason_name(DropReason reason);

// A run of consecutive dropped bytes that share one reason.
struct Drop {
  std::uint64_t offset = 0;  // stream offset of the first byte (counted from construction)
  std::uint64_t bytes = 0;
  DropReason reason = DropReason::kGarbage;
};

// Whether the decoder itself checks each candidate's seal (docs/wire-format.md,
// section 3) before the handler sees it.
enum class SealCheck : std::uint8_t {
  kRequired,  // a candidate without a matching seal is rejected; a sealed frame is a frame
  kNone,      // the handler alone decides (tests and tools reading unsealed payloads)
};

// Checkpoints of the running crc32c, one every this many bytes, exist only
// while candidates nested in a rejected candidate's bytes are checked.
inline constexpr std::size_t kSealCheckpointSpacing = 16;
// The bound on stats().bytes_hashed per byte fed with the seal required:
// one pass to the end of each claimed payload, one to lay checkpoints, less
// than two spacings per seal check (at most one per 9 bytes) to reach a
// checkpoint, one spacing per re-anchoring (at most one per seal check).
inline constexpr std::uint64_t kMaxHashedPerByteFed = 8;

struct DecoderOptions {
  std::uint32_t max_payload = kDefaultMaxPayload;  // may be lowered, never raised above the default
  SealCheck seal = SealCheck::kRequired;
};

class FrameDecoder {
 public:
  class Handler {
   public:
    virtual ~Handler() = default;
    // A complete frame whose header (and, with SealCheck::kRequired, seal)
    // passed the checks. `payload` is valid only during the call. Return true
    // to accept it (the session layer consumed it), false to reject it: the
    // decoder drops it as kBadPayload, whole when it was sealed (the peer
    // meant it as a frame; nothing inside it is looked at again), else only
    // its first byte, resuming the scan at magic + 1. This is the session
    // layer's validator.
    virtual bool on_frame(std::string_view payload, std::uint64_t offset) = 0;
    // A finished run of dropped bytes. Runs are reported in stream order,
    // before the next frame is offered.
    virtual void on_drop(const Drop& drop) = 0;
  };

  using Options = DecoderOptions;

  struct Stats {
    std::uint64_t bytes_fed = 0;
    std::uint64_t frames = 0;                               // frames accepted
    std::uint64_t frame_bytes = 0;                          // header + payload of accepted frames
    std::array<std::uint64_t, kDropReasonCount> dropped{};  // bytes, by DropReason
    std::uint64_t seal_checks = 0;                          // complete candidates whose seal was checked
    std::uint64_t bytes_hashed = 0;                         // bytes run through crc32c for those checks
    std::uint64_t dropped_total() const;
  };

  // `handler` must outlive the decoder.
  explicit FrameDecoder(Handler* handler, Options options = Options());

  FrameDecoder(const FrameDecoder&) = delete;
  FrameDecoder& operator=(const FrameDecoder&) = delete;

  // Consumes data[0, n): delivers the complete frames in it and buffers an
  // incomplete tail (a partial frame, or up to 3 bytes that may start a magic).
  void feed(const char* data, std::size_t n);
  void feed(std::string_view data) { feed(data.data(), data.size()); }

  // The input went idle: abandons any partial frame, rescans its bytes,
  // delivers every complete frame found in them and drops the rest. Nothing
  // stays buffered and every drop run is reported.
  void stall_flush();

  // Transport epoch (EOF, reconnect): drops everything buffered as kReset and
  // forgets any scan state. Frames are never completed across a reset.
  void reset();

  // True when what is held back is the start of one frame and no other
  // candidate follows it: the peer stopped inside a frame. stall_flush()
  // would then drop that frame and free nothing waiting behind it, so an
  // owner whose peer may simply be slow (a live connection) keeps waiting
  // and flushes at a later idle time, once other bytes came after it.
  bool only_a_partial_frame() const;

  // Bytes held back waiting for more input.
  std::size_t buffered() const { return buf_.size(); }
  // True when nothing is buffered and no drop run awaits its report: an
  // idle timer is not needed.
  bool idle() const { return buf_.empty() && pending_.bytes == 0; }

  const Stats& stats() const { return stats_; }
  std::uint32_t max_payload() const { return max_payload_; }

 private:
  // Processes data[0, n), which starts at stream offset `offset`. Returns how
  // many bytes were consumed (delivered or dropped); when `flushing`, all.
  std::size_t process(const char* data, std::size_t n, std::uint64_t offset, bool flushing);
  // Whether the candidate at p[c] (stream offset base + c) with a complete
  // payload of `len` bytes carries a matching seal.
  bool seal_matches(const char* p, std::uint64_t base, std::size_t c, std::uint32_t len);
  // crc32c(stream[origin, pos)) for the running checksum's origin; p[0] is at
  // stream offset base and the bytes up to pos are there.
  std::uint32_t running_crc_at(const char* p, std::uint64_t base, std::uint64_t pos);
  // Moves the checkpoints' origin up to `pos` while the bytes before it are
  // still at hand: the buffer is about to drop everything before `pos`'s candidate.
  void reanchor(const char* p, std::uint64_t base, std::uint64_t pos);
  void forget_running_crc();
  // Drops the bytes [from, to) the scan skipped: scan_reason_ for those
  // before scan_reason_end_, garbage for the rest.
  void drop_skipped(std::uint64_t from, std::uint64_t to);
  // Records n dropped bytes at `offset`, merging with the pending run.
  void drop(std::uint64_t offset, std::uint64_t n, DropReason reason);
  void report_pending();

  Handler* handler_;
  std::uint32_t max_payload_;
  SealCheck seal_;
  std::string buf_;  // unconsumed bytes; buf_[0] is at stream offset buf_offset_
  std::uint64_t buf_offset_ = 0;
  // The last rejected candidate's reason and the stream offset where its
  // bytes end: skipped bytes before it take that reason (0: none do).
  DropReason scan_reason_ = DropReason::kGarbage;
  std::uint64_t scan_reason_end_ = 0;
  Drop pending_;  // drop run not yet reported (bytes == 0: none)
  Stats stats_;

  // The running crc32c that makes seal checks linear. While valid, every
  // value is C(x) = crc32c(stream[base_, x)) for one base_ at or before
  // origin_ (only differences C(b) ^ combine(C(a), 0, b - a) are used, so
  // base_ itself is never stored): checkpoints_[k] is
  // C(origin_ + k * kSealCheckpointSpacing) and hashed_crc_ is C(hashed_end_).
  // All of [origin_, hashed_end_) is still buffered; the checkpoints are laid
  // lazily, only when a position before hashed_end_ is asked for, and
  // reanchor() moves origin_ forward without changing base_.
  bool running_valid_ = false;
  std::uint64_t origin_ = 0;
  std::uint64_t hashed_end_ = 0;
  std::uint32_t hashed_crc_ = 0;
  std::vector<std::uint32_t> checkpoints_;
};

}  // namespace qtx::wire
