#include "qtx/wire/decoder.h"

#include <algorithm>
#include <cstring>

#include "qtx/wire/crc32c.h"
#include "qtx/wire/seal.h"

namespace qtx::wire {
namespace {

// A buffer that held a large frame is released once empty, so one big
// transfer does not pin its peak memory for the life of the connection.
constexpr std::size_t kRetainedCapacity = 256 * 1024;
constexpr std::size_t kRetainedCheckpoints = kRetainedCapacity / kSealCheckpointSpacing;

// kMaxHashedPerByteFed counts at most one seal check per 9 bytes: a candidate
// that reaches one has the magic, a length and the seal's tag, and the next
// magic cannot start inside those 9 bytes because the tag is no byte of the
// magic and a length at or below the limit has no 'Q' in its first byte.
static_assert(kMagic[0] != kSealTag && kMagic[1] != kSealTag && kMagic[2] != kSealTag && kMagic[3] != kSealTag);
static_assert((kDefaultMaxPayload >> 24) < static_cast<std::uint32_t>(kMagic[0]));

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
      max_payload_(options.max_payload == 0 || options.max_payload > kDefaultMaxPayload ? kDefaultMaxPayload
                                                                                        : options.max_payload),
      seal_(options.seal) {}

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
  forget_running_crc();
  report_pending();
  scan_reason_end_ = 0;
}

bool FrameDecoder::only_a_partial_frame() const {
  // feed() keeps the buffer from its first incomplete candidate on. A magic
  // prefix cut by the end of the buffer (a payload byte 'Q', say) has
  // nothing behind it either.
  if (buf_.empty() || find_magic(buf_.data(), 0, buf_.size()) != 0) return false;
  const std::size_t next = find_magic(buf_.data(), 1, buf_.size());
  return buf_.size() - next < kMagicSize;
}

void FrameDecoder::reset() {
  if (!buf_.empty()) {
    drop(buf_offset_, buf_.size(), DropReason::kReset);
    buf_offset_ += buf_.size();
    std::string().swap(buf_);
  }
  forget_running_crc();
  report_pending();
  scan_reason_end_ = 0;
}

std::size_t FrameDecoder::process(const char* p, std::size_t n, std::uint64_t base, bool flushing) {
  // The running crc covers only bytes still at hand.
  if (running_valid_ && origin_ < base) forget_running_crc();
  const bool sealed = seal_ == SealCheck::kRequired;
  std::size_t i = 0;
  while (i < n) {
    const std::size_t c = find_magic(p, i, n);
    if (c > i) drop_skipped(base + i, base + c);
    i = c;
    if (c == n) break;

    // A candidate at c. Rejecting it drops only its first byte here; the scan
    // from c + 1 attributes the rest of the candidate's bytes, up to `end`
    // (its header, plus the payload it claims when its length was valid) or
    // the next magic, to the same reason, and bytes beyond it to garbage.
    auto reject = [&](DropReason reason, std::uint64_t end) {
      scan_reason_ = reason;
      scan_reason_end_ = end;
      drop(base + c, 1, reason);
      i = c + 1;
    };
    const std::uint64_t at = base + c;

    const std::size_t avail = n - c;
    if (avail < kMagicSize) {  // a magic prefix cut by the end of the data
      if (!flushing) break;
      drop(base + c, avail, DropReason::kStalled);
      i = n;
      break;
    }
    if (avail < kHeaderSize) {
      if (!flushing) break;
      reject(DropReason::kStalled, base + n);  // its claim is unknown: all that is at hand
      continue;
    }
    const std::uint32_t len = load_be32(p + c + kMagicSize);
    if (len == 0 || len > max_payload_ || (sealed && len < kSealSize)) {
      reject(DropReason::kBadLength, at + kHeaderSize);  // a length it cannot have claims nothing
      continue;
    }
    const std::uint64_t claim_end = at + kHeaderSize + len;
    // A sealed payload starts with the seal's tag: a candidate without it is
    // refused at once instead of being waited for.
    if (sealed && avail > kHeaderSize && p[c + kHeaderSize] != kSealTag) {
      reject(DropReason::kBadPayload, claim_end);
      continue;
    }
    if (avail - kHeaderSize < len) {
      if (!flushing) {
        // The buffer keeps this candidate and what follows it; the checksum
        // state must not lean on the bytes before it.
        if (sealed) reanchor(p, base, base + c + kHeaderSize + kSealSize);
        break;
      }
      reject(DropReason::kStalled, claim_end);
      continue;
    }
    if (sealed && !seal_matches(p, base, c, len)) {
      reject(DropReason::kBadPayload, claim_end);
      continue;
    }
    report_pending();
    const std::size_t end = c + kHeaderSize + len;
    if (handler_->on_frame(std::string_view(p + c + kHeaderSize, len), base + c)) {
      stats_.frames++;
      stats_.frame_bytes += kHeaderSize + len;
      scan_reason_end_ = 0;
      i = end;
    } else if (sealed) {
      // The seal matched: the peer sent this frame as it is. It is dropped
      // whole, and nothing inside it is offered again, so a handler's cost
      // is paid once per byte, whatever the peer sends.
      drop(base + c, kHeaderSize + len, DropReason::kBadPayload);
      scan_reason_end_ = 0;
      i = end;
    } else {
      reject(DropReason::kBadPayload, claim_end);
    }
  }
  return i;
}

void FrameDecoder::drop_skipped(std::uint64_t from, std::uint64_t to) {
  const std::uint64_t split = std::clamp(scan_reason_end_, from, to);
  if (split > from) drop(from, split - from, scan_reason_);
  if (to > split) drop(split, to - split, DropReason::kGarbage);
}

bool FrameDecoder::seal_matches(const char* p, std::uint64_t base, std::size_t c, std::uint32_t len) {
  stats_.seal_checks++;
  const std::uint64_t body = base + c + kHeaderSize + kSealSize;
  const std::uint64_t end = base + c + kHeaderSize + len;
  // Candidates come in stream order, so no later question is about a
  // position before this body: past what was hashed, start afresh here
  // rather than hash the gap.
  if (!running_valid_ || body < origin_ || body > hashed_end_) {
    forget_running_crc();
    running_valid_ = true;
    origin_ = hashed_end_ = body;
    hashed_crc_ = 0;
    checkpoints_.push_back(0);
  }
  const std::uint32_t at_body = running_crc_at(p, base, body);
  const std::uint32_t at_end = running_crc_at(p, base, end);
  const std::uint32_t body_crc = at_end ^ crc32c::combine(at_body, 0, end - body);
  return body_crc == sealed_crc(p + c + kHeaderSize);
}

std::uint32_t FrameDecoder::running_crc_at(const char* p, std::uint64_t base, std::uint64_t pos) {
  auto at = [&](std::uint64_t offset) { return p + (offset - base); };
  if (pos >= hashed_end_) {
    hashed_crc_ = crc32c::extend(hashed_crc_, at(hashed_end_), pos - hashed_end_);
    stats_.bytes_hashed += pos - hashed_end_;
    hashed_end_ = pos;
    return hashed_crc_;
  }
  // Inside what was hashed: from the checkpoint at or before pos, laying the
  // missing ones first. They all lie before hashed_end_, so each byte is
  // hashed for them at most once per origin.
  const std::uint64_t k = (pos - origin_) / kSealCheckpointSpacing;
  while (checkpoints_.size() <= k) {
    const std::uint64_t from = origin_ + (checkpoints_.size() - 1) * kSealCheckpointSpacing;
    checkpoints_.push_back(crc32c::extend(checkpoints_.back(), at(from), kSealCheckpointSpacing));
    stats_.bytes_hashed += kSealCheckpointSpacing;
  }
  const std::uint64_t from = origin_ + k * kSealCheckpointSpacing;
  stats_.bytes_hashed += pos - from;
  return crc32c::extend(checkpoints_[k], at(from), pos - from);
}

void FrameDecoder::reanchor(const char* p, std::uint64_t base, std::uint64_t pos) {
  if (!running_valid_ || pos < origin_ || pos >= hashed_end_) {
    forget_running_crc();
    return;
  }
  if (pos == origin_) return;
  const std::uint32_t crc = running_crc_at(p, base, pos);
  checkpoints_.assign(1, crc);
  origin_ = pos;
}

void FrameDecoder::forget_running_crc() {
  running_valid_ = false;
  if (checkpoints_.capacity() > kRetainedCheckpoints) {
    std::vector<std::uint32_t>().swap(checkpoints_);
  } else {
    checkpoints_.clear();
  }
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
