#include "qtx/wire/decoder.h"

#include <cstring>

namespace qtx::wire {
namespace {

// A buffer that held a large frame is released once empty, so one big
// transfer does not pin its peak memory for the life of the connection.
constexpr std::size_t kRetainedCapacity = 256 * 1024;

// First position at or after `from` where a magic starts, or where a proper
// prefix of one runs to the end of the data (it may complete with the next
// chunk). n when there is none. memchr does the scanning.
std::size_t find_magic(const char* p, std::size_t from, std::size_t n) {
  std::size_t i = from;
  while (i < n) {
    const void* hit = std::memchr(p + i, kMagic[0], n - i);
    if (hit == nullptr) return n;
    std::size_t c = static_cast<std::size_t>(static_cast<const char*>(hit) - p);
    std::size_t avail = n - c;
    std::size_t cmp = avail < kMagicSize ? avail : kMagicSize;
    if (std::memcmp(p + c, kMagic.data(), cmp) == 0) return c;
    i = c + 1;
  }
  return n;
}

}  // namespace

const char* drop_reason_name(DropReason reason) {
  switch (reason) {
    case DropReason::kGarbage: return "garbage";
    case DropReason::kBadLength: return "bad_length";
    case DropReason::kBadPayload: return "bad_payload";
    case DropReason::kStalled: return "stalled";
    case DropReason::kReset: return "reset";
  }
  return "unknown";
}

std::uint64_t FrameDecoder::Stats::dropped_total() const {
  std::uint64_t total = 0;
  for (auto d : dropped) total += d;
  return total;
}

FrameDecoder::FrameDecoder(Handler* handler, Options options)
    : handler_(handler),
      max_payload_(options.max_payload == 0 || options.max_payload > kDefaultMaxPayload
                       ? kDefaultMaxPayload
                       : options.max_payload) {}

void FrameDecoder::feed(const char* data, std::size_t n) {
  if (n == 0) return;
  const std::uint64_t offset = stats_.bytes_fed;
  stats_.bytes_fed += n;
  if (buf_.empty()) {
    // Fast path: decode straight from the caller's chunk; copy only the tail.
    std::size_t used = process(data, n, offset, /*flushing=*/false);
    buf_.assign(data + used, n - used);
    buf_offset_ = offset + used;
  } else {
    buf_.append(data, n);
    std::size_t used = process(buf_.data(), buf_.size(), buf_offset_, /*flushing=*/false);
    buf_.erase(0, used);
    buf_offset_ += used;
  }
  if (buf_.empty() && buf_.capacity() > kRetainedCapacity) std::string().swap(buf_);
}

void FrameDecoder::stall_flush() {
  if (!buf_.empty()) {
    process(buf_.data(), buf_.size(), buf_offset_, /*flushing=*/true);
    buf_offset_ += buf_.size();
    std::string().swap(buf_);
  }
  report_pending();
  scan_reason_ = DropReason::kGarbage;
}

void FrameDecoder::reset() {
  if (!buf_.empty()) {
    drop(buf_offset_, buf_.size(), DropReason::kReset);
    buf_offset_ += buf_.size();
    std::string().swap(buf_);
  }
  report_pending();
  scan_reason_ = DropReason::kGarbage;
}

std::size_t FrameDecoder::process(const char* p, std::size_t n, std::uint64_t base, bool flushing) {
  std::size_t i = 0;
  while (i < n) {
    const std::size_t c = find_magic(p, i, n);
    if (c > i) drop(base + i, c - i, scan_reason_);
    i = c;
    if (c == n) break;

    // A candidate at c. Rejecting it drops only its first byte here; the scan
    // from c + 1 attributes the bytes up to the next magic to the same reason.
    auto reject = [&](DropReason reason) {
      scan_reason_ = reason;
      drop(base + c, 1, reason);
      i = c + 1;
    };

    const std::size_t avail = n - c;
    if (avail < kMagicSize) {  // a magic prefix cut by the end of the data
      if (!flushing) break;
      drop(base + c, avail, DropReason::kStalled);
      i = n;
      break;
    }
    if (avail < kHeaderSize) {
      if (!flushing) break;
      reject(DropReason::kStalled);
      continue;
    }
    const std::uint32_t len = load_be32(p + c + kMagicSize);
    if (len == 0 || len > max_payload_) {
      reject(DropReason::kBadLength);
      continue;
    }
    if (avail - kHeaderSize < len) {
      if (!flushing) break;
      reject(DropReason::kStalled);
      continue;
    }
    report_pending();
    if (handler_->on_frame(std::string_view(p + c + kHeaderSize, len), base + c)) {
      stats_.frames++;
      stats_.frame_bytes += kHeaderSize + len;
      scan_reason_ = DropReason::kGarbage;
      i = c + kHeaderSize + len;
    } else {
      reject(DropReason::kBadPayload);
    }
  }
  return i;
}

void FrameDecoder::drop(std::uint64_t offset, std::uint64_t n, DropReason reason) {
  stats_.dropped[static_cast<std::size_t>(reason)] += n;
  if (pending_.bytes != 0 && pending_.reason == reason && pending_.offset + pending_.bytes == offset) {
    pending_.bytes += n;
    return;
  }
  report_pending();
  pending_ = Drop{offset, n, reason};
}

void FrameDecoder::report_pending() {
  if (pending_.bytes == 0) return;
  Drop d = pending_;
  pending_.bytes = 0;
  handler_->on_drop(d);
}

}  // namespace qtx::wire
