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
//    chunk being fed.
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

#include "qtx/wire/format.h"

namespace qtx::wire {

enum class DropReason : std::uint8_t {
  kGarbage = 0,  // bytes where no frame started
  kBadLength,    // a header with length 0 or above the limit, and what follows up to the next magic
  kBadPayload,   // a complete frame the handler rejected, and what follows up to the next magic
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

struct DecoderOptions {
  std::uint32_t max_payload = kDefaultMaxPayload;  // may be lowered, never raised above the default
};

class FrameDecoder {
 public:
  class Handler {
   public:
    virtual ~Handler() = default;
    // A complete frame whose header passed the checks. `payload` is valid only
    // during the call. Return true to accept it (the session layer consumed
    // it), false to reject it: the decoder then drops it as kBadPayload and
    // resumes scanning at magic + 1. This is the session layer's validator.
    virtual bool on_frame(std::string_view payload, std::uint64_t offset) = 0;
    // A finished run of dropped bytes. Runs are reported in stream order,
    // before the next frame is offered.
    virtual void on_drop(const Drop& drop) = 0;
  };

  using Options = DecoderOptions;

  struct Stats {
    std::uint64_t bytes_fed = 0;
    std::uint64_t frames = 0;       // frames accepted
    std::uint64_t frame_bytes = 0;  // header + payload of accepted frames
    std::array<std::uint64_t, kDropReasonCount> dropped{};  // bytes, by DropReason
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
  // Records n dropped bytes at `offset`, merging with the pending run.
  void drop(std::uint64_t offset, std::uint64_t n, DropReason reason);
  void report_pending();

  Handler* handler_;
  std::uint32_t max_payload_;
  std::string buf_;                // unconsumed bytes; buf_[0] is at stream offset buf_offset_
  std::uint64_t buf_offset_ = 0;
  DropReason scan_reason_ = DropReason::kGarbage;  // reason for bytes skipped by the current scan
  Drop pending_;                   // drop run not yet reported (bytes == 0: none)
  Stats stats_;
};

}  // namespace qtx::wire
