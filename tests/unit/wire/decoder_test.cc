// FrameDecoder tests in the style of leveldb's log_test: every test asserts
// the exact frames delivered and the exact dropped-byte runs.
#include "qtx/wire/decoder.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "support/frames.h"

namespace qtx::wire {
namespace {

using testing::frame;
using testing::nested_claims;
using testing::raw_frame;
using testing::Recorder;
using testing::sealed;

// Payloads without a seal are for the handler alone to judge.
constexpr DecoderOptions kUnsealed{.seal = SealCheck::kNone};

struct DropEq {
  std::uint64_t offset;
  std::uint64_t bytes;
  DropReason reason;
};

void expect_drops(const Recorder& r, const std::vector<DropEq>& want) {
  ASSERT_EQ(r.drops.size(), want.size()) << r.log;
  for (std::size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(r.drops[i].offset, want[i].offset) << "drop " << i << " " << r.log;
    EXPECT_EQ(r.drops[i].bytes, want[i].bytes) << "drop " << i << " " << r.log;
    EXPECT_EQ(r.drops[i].reason, want[i].reason) << "drop " << i << " " << r.log;
  }
}

// Every byte fed is in a delivered frame or reported dropped, exactly once.
void expect_accounting(const FrameDecoder& d, const Recorder& r) {
  ASSERT_TRUE(d.idle());
  const auto& s = d.stats();
  std::uint64_t frame_bytes = 0;
  for (const auto& f : r.frames) frame_bytes += kHeaderSize + f.size();
  EXPECT_EQ(s.frame_bytes, frame_bytes);
  EXPECT_EQ(s.frames, r.frames.size());
  EXPECT_EQ(s.dropped_total(), r.dropped_total());
  EXPECT_EQ(s.bytes_fed, s.frame_bytes + s.dropped_total());
}

TEST(FrameDecoder, SingleFrame) {
  Recorder r;
  FrameDecoder d(&r, kUnsealed);
  d.feed(frame("hello"));
  ASSERT_EQ(r.frames, std::vector<std::string>{"hello"});
  EXPECT_EQ(r.frame_offsets[0], 0u);
  EXPECT_TRUE(d.idle());
  expect_drops(r, {});
  expect_accounting(d, r);
}

TEST(FrameDecoder, GarbagePrefixIsReportedBeforeTheFrame) {
  Recorder r;
  FrameDecoder d(&r, kUnsealed);
  d.feed("garbage!" + frame("hello"));
  ASSERT_EQ(r.frames, std::vector<std::string>{"hello"});
  EXPECT_EQ(r.log, "D0:8:garbage;F8:5;");
  expect_accounting(d, r);
}

TEST(FrameDecoder, GarbageWithoutFramesIsReportedAtTheStall) {
  Recorder r;
  FrameDecoder d(&r, kUnsealed);
  d.feed(std::string(1000, 'x'));
  EXPECT_TRUE(r.drops.empty());  // a run is reported when it ends
  EXPECT_FALSE(d.idle());
  EXPECT_EQ(d.buffered(), 0u);
  d.stall_flush();
  expect_drops(r, {{0, 1000, DropReason::kGarbage}});
  expect_accounting(d, r);
}

TEST(FrameDecoder, MagicSplitAcrossReadsAtEveryPosition) {
  const std::string stream = "ab" + frame("payload-1") + frame("payload-2");
  for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
    Recorder r;
    FrameDecoder d(&r, kUnsealed);
    d.feed(stream.substr(0, cut));
    d.feed(stream.substr(cut));
    ASSERT_EQ(r.frames, (std::vector<std::string>{"payload-1", "payload-2"})) << "cut " << cut;
    d.stall_flush();
    expect_drops(r, {{0, 2, DropReason::kGarbage}});
    expect_accounting(d, r);
  }
}

TEST(FrameDecoder, ZeroLengthIsBadLength) {
  Recorder r;
  FrameDecoder d(&r, kUnsealed);
  d.feed(raw_frame(0, "") + frame("ok"));
  ASSERT_EQ(r.frames, std::vector<std::string>{"ok"});
  expect_drops(r, {{0, 8, DropReason::kBadLength}});
  expect_accounting(d, r);
}

TEST(FrameDecoder, LengthAboveTheDefaultLimitIsBadLength) {
  Recorder r;
  FrameDecoder d(&r, kUnsealed);
  d.feed(raw_frame(kDefaultMaxPayload + 1, "xyz") + frame("ok"));
  ASSERT_EQ(r.frames, std::vector<std::string>{"ok"});
  // The header claims nothing it could have: what follows it is garbage.
  expect_drops(r, {{0, 8, DropReason::kBadLength}, {8, 3, DropReason::kGarbage}});
  expect_accounting(d, r);
}

TEST(FrameDecoder, ConfiguredLimitIsInclusive) {
  Recorder r;
  FrameDecoder d(&r, {.max_payload = 16, .seal = SealCheck::kNone});
  d.feed(frame(std::string(16, 'a')) + frame(std::string(17, 'b')) + frame("c"));
  ASSERT_EQ(r.frames, (std::vector<std::string>{std::string(16, 'a'), "c"}));
  expect_drops(r, {{24, 8, DropReason::kBadLength}, {32, 17, DropReason::kGarbage}});
  expect_accounting(d, r);
}

// A rejected candidate's bytes are its header and, when its length was
// valid, the payload it claims: they take its reason. The bytes the scan
// skips beyond them, up to the next magic, belong to no candidate: garbage.
// The same for every chunking.
TEST(FrameDecoder, BytesBeyondARejectedCandidateAreGarbage) {
  struct Case {
    std::string stream;
    std::vector<DropEq> drops;
    std::string name;
  };
  const std::string ok = frame(sealed("ok"));
  const std::string bad_seal = raw_frame(5, std::string("\x0d\x01\x02\x03\x04", 5));  // complete, seal fails
  const std::vector<Case> cases = {
      {raw_frame(0, "") + "junkjunk" + ok, {{0, 8, DropReason::kBadLength}, {8, 8, DropReason::kGarbage}}, "length 0"},
      {raw_frame(3, "") + "junkjunk" + ok,  // below the seal's size
       {{0, 8, DropReason::kBadLength}, {8, 8, DropReason::kGarbage}},
       "length 3"},
      {raw_frame(kDefaultMaxPayload + 1, "") + "junk" + ok,
       {{0, 8, DropReason::kBadLength}, {8, 4, DropReason::kGarbage}},
       "length above the limit"},
      {bad_seal + "tail!" + ok, {{0, 13, DropReason::kBadPayload}, {13, 5, DropReason::kGarbage}}, "seal fails"},
      {raw_frame(6, "abcdef") + "zz" + ok,  // no seal tag: refused at its first payload byte
       {{0, 14, DropReason::kBadPayload}, {14, 2, DropReason::kGarbage}},
       "no seal tag"},
      {raw_frame(6, "a") + ok,  // no seal tag, the claim covers the frame behind it, which is found
       {{0, 9, DropReason::kBadPayload}},
       "claim over a frame"},
  };
  for (const auto& c : cases) {
    for (std::size_t chunk : {c.stream.size(), std::size_t{1}, std::size_t{3}}) {
      Recorder r(Recorder::Accept::kSealed);
      FrameDecoder d(&r);
      for (std::size_t i = 0; i < c.stream.size(); i += chunk) d.feed(c.stream.substr(i, chunk));
      d.stall_flush();
      ASSERT_EQ(r.frames, std::vector<std::string>{sealed("ok")}) << c.name << ", chunks of " << chunk;
      SCOPED_TRACE(c.name + ", chunks of " + std::to_string(chunk));
      expect_drops(r, c.drops);
      expect_accounting(d, r);
    }
  }
}

TEST(FrameDecoder, LimitCannotBeRaisedAboveTheDefault) {
  Recorder r;
  FrameDecoder d(&r, {.max_payload = 0xffffffffu});
  EXPECT_EQ(d.max_payload(), kDefaultMaxPayload);
}

TEST(FrameDecoder, RunsOfMagic) {
  // Each "QTX1" reads the next "QTX1" as its length (0x51545801 > 16 MiB).
  std::string runs;
  for (int i = 0; i < 5; ++i) runs += "QTX1";
  for (auto& c : runs)
    if (c == '1') c = '\x01';
  Recorder r;
  FrameDecoder d(&r, kUnsealed);
  d.feed(runs + frame("ok"));
  ASSERT_EQ(r.frames, std::vector<std::string>{"ok"});
  expect_drops(r, {{0, 20, DropReason::kBadLength}});
  expect_accounting(d, r);
}

TEST(FrameDecoder, FrameStartingInsideAStaleLengthField) {
  // A stale header whose length field holds the start of a real frame: "QTX1" "\0" + frame.
  // Its length reads 00 51 54 58 = 5,329,240: plausible, so the decoder waits.
  const std::string stream = std::string("QTX\x01\x00", 5) + frame("real");
  {
    Recorder r;
    FrameDecoder d(&r, kUnsealed);
    d.feed(stream);
    EXPECT_TRUE(r.frames.empty());
    d.stall_flush();
    ASSERT_EQ(r.frames, std::vector<std::string>{"real"});
    expect_drops(r, {{0, 5, DropReason::kStalled}});
    expect_accounting(d, r);
  }
  {
    // Under a 1 MiB limit the same length is rejected at once.
    Recorder r;
    FrameDecoder d(&r, {.max_payload = 1 << 20, .seal = SealCheck::kNone});
    d.feed(stream);
    ASSERT_EQ(r.frames, std::vector<std::string>{"real"});
    expect_drops(r, {{0, 5, DropReason::kBadLength}});
    expect_accounting(d, r);
  }
}

TEST(FrameDecoder, RejectedPayloadResumesAtMagicPlusOne) {
  // The outer frame fails validation; the sealed frame inside it is found.
  const std::string inner = frame(sealed("inner"));
  const std::string outer = frame("xx" + inner + "yy");
  Recorder r(Recorder::Accept::kSealed);
  FrameDecoder d(&r);
  d.feed(outer + frame(sealed("next")));
  ASSERT_EQ(r.frames, (std::vector<std::string>{sealed("inner"), sealed("next")}));
  expect_drops(r, {{0, 8 + 2, DropReason::kBadPayload}, {10 + inner.size(), 2, DropReason::kGarbage}});
  expect_accounting(d, r);
}

TEST(FrameDecoder, SealedFrameTheHandlerRejectsIsDroppedWholeAndNothingInsideIsOfferedAgain) {
  // The seal matches, so the peer sent this frame as it is: a handler that
  // refuses it (say, it does not parse) costs one look, not one per byte.
  const std::string inner = frame(sealed("inner"));
  const std::string outer = frame(sealed("xx" + inner + "yy"));
  struct RefusesOuter : Recorder {
    int offered = 0;
    bool on_frame(std::string_view payload, std::uint64_t offset) override {
      ++offered;
      return payload.size() < 20 && Recorder::on_frame(payload, offset);
    }
  } r;
  FrameDecoder d(&r);
  d.feed(outer + frame(sealed("next")));
  EXPECT_EQ(r.offered, 2);
  ASSERT_EQ(r.frames, std::vector<std::string>{sealed("next")});
  expect_drops(r, {{0, outer.size(), DropReason::kBadPayload}});
  expect_accounting(d, r);
}

TEST(FrameDecoder, WithTheSealRequiredAPayloadWithoutItsTagIsRefusedWithoutWaiting) {
  // A stale header followed by anything but the seal's tag cannot start a
  // sealed frame: it is not waited for, and the frame behind it is delivered
  // without an idle time.
  Recorder r;
  FrameDecoder d(&r);
  d.feed(raw_frame(1000, "") + frame(sealed("behind")));
  ASSERT_EQ(r.frames, std::vector<std::string>{sealed("behind")});
  expect_drops(r, {{0, 8, DropReason::kBadPayload}});
  EXPECT_EQ(d.stats().seal_checks, 1u);
  expect_accounting(d, r);
}

TEST(FrameDecoder, NestedClaimsCostWorkLinearInTheBytesFedForAnyChunking) {
  // Every claim covers the valid frames at the end, which must still be found.
  std::string tail;
  std::vector<std::string> want;
  for (int i = 0; i < 3; ++i) {
    want.push_back(sealed("after the attack " + std::to_string(i)));
    tail += frame(want.back());
  }
  for (std::size_t size : {std::size_t{4} << 10, std::size_t{64} << 10, std::size_t{1} << 20}) {
    const std::string stream = nested_claims(size, tail);
    for (std::size_t chunk : {stream.size(), std::size_t{4096}, std::size_t{7}}) {
      Recorder r;
      FrameDecoder d(&r);
      for (std::size_t i = 0; i < stream.size(); i += chunk) d.feed(stream.substr(i, chunk));
      d.stall_flush();
      ASSERT_EQ(r.frames, want) << size << " in chunks of " << chunk;
      const auto& st = d.stats();
      EXPECT_EQ(st.seal_checks, size / 9 + want.size()) << size << " in chunks of " << chunk;
      EXPECT_LE(st.bytes_hashed, kMaxHashedPerByteFed * st.bytes_fed + kSealCheckpointSpacing)
          << size << " in chunks of " << chunk;
      expect_drops(r, {{0, size / 9 * 9, DropReason::kBadPayload}});
      expect_accounting(d, r);
    }
  }
}

TEST(FrameDecoder, TruncatedFrameAtEndIsStalledNotCorrupt) {
  const std::string f1 = frame(sealed("first"));
  const std::string f2 = frame(sealed("second frame"));
  for (std::size_t k = 1; k < f2.size(); ++k) {
    Recorder r(Recorder::Accept::kSealed);
    FrameDecoder d(&r);
    d.feed(f1 + f2.substr(0, k));
    EXPECT_EQ(d.buffered(), k);
    d.stall_flush();
    ASSERT_EQ(r.frames.size(), 1u) << "k " << k;
    expect_drops(r, {{f1.size(), k, DropReason::kStalled}});
    expect_accounting(d, r);
  }
}

// A peer paused inside a frame: only that frame is held back, whatever
// prefix of it came (magic, header, payload), and it is still delivered
// when the rest comes. Once another candidate follows it, a flush can free
// something and the answer changes.
TEST(FrameDecoder, OnlyAPartialFrameIsToldApartFromOneWithBytesAfterIt) {
  const std::string f1 = frame(sealed("first"));
  const std::string f2 = frame(sealed(std::string(300, 'p')));
  for (std::size_t k = 1; k < f2.size(); ++k) {
    Recorder r(Recorder::Accept::kSealed);
    FrameDecoder d(&r);
    EXPECT_FALSE(d.only_a_partial_frame());
    d.feed(f1 + f2.substr(0, k));
    EXPECT_TRUE(d.only_a_partial_frame()) << "k " << k;
    d.feed(f2.substr(k));
    ASSERT_EQ(r.frames.size(), 2u) << "k " << k;
    EXPECT_FALSE(d.only_a_partial_frame());
    expect_drops(r, {});
    expect_accounting(d, r);
  }
  {  // a payload byte that looks like the start of a magic, at the end
    const std::string fq = frame(sealed(std::string(300, 'Q')));
    Recorder r(Recorder::Accept::kSealed);
    FrameDecoder d(&r);
    d.feed(fq.substr(0, 100));
    EXPECT_TRUE(d.only_a_partial_frame());
    d.feed(fq.substr(100));
    EXPECT_EQ(r.frames.size(), 1u);
  }
  Recorder r(Recorder::Accept::kSealed);
  FrameDecoder d(&r);
  d.feed(f2.substr(0, 100) + f1);  // f1 sits inside the claim of f2's head
  EXPECT_FALSE(d.only_a_partial_frame());
  d.stall_flush();
  ASSERT_EQ(r.frames.size(), 1u);
  expect_accounting(d, r);
}

// Builds frames F1..F3 (sealed) and a longer frame F0 whose prefixes are the
// stale partial frames.
struct StaleCase {
  std::string f0 = frame(sealed(std::string(1000, 's')));
  std::vector<std::string> payloads = {sealed("one"), sealed(std::string(100, 't')), sealed("three")};
  std::string valid() const {
    std::string out;
    for (const auto& p : payloads) out += frame(p);
    return out;
  }
};

TEST(FrameDecoder, StalePartialFrameOfEveryLengthThenValidFrames) {
  StaleCase c;
  for (std::size_t len = 1; len <= 400; ++len) {
    Recorder r(Recorder::Accept::kSealed);
    FrameDecoder d(&r);
    const std::string stream = c.f0.substr(0, len) + c.valid();
    // Fed in 7-byte chunks, then the idle time passes.
    for (std::size_t i = 0; i < stream.size(); i += 7) d.feed(stream.substr(i, 7));
    d.stall_flush();
    ASSERT_EQ(r.frames, c.payloads) << "stale length " << len << " " << r.log;
    EXPECT_EQ(r.dropped_total(), len) << r.log;
    EXPECT_EQ(r.dropped(DropReason::kReset), 0u);
    expect_accounting(d, r);
  }
}

TEST(FrameDecoder, StalePartialFrameOvertakenByTrafficIsRejectedWithoutAStall) {
  // Enough valid traffic follows to complete the stale frame's claimed length:
  // the seal fails and every valid frame is delivered before any idle time.
  StaleCase c;
  std::string traffic;
  std::vector<std::string> want;
  for (int i = 0; i < 60; ++i) {
    want.push_back(sealed("frame " + std::to_string(i)));
    traffic += frame(want.back());
  }
  ASSERT_GT(traffic.size(), 1000u);
  for (std::size_t len = 8; len <= 400; ++len) {
    Recorder r(Recorder::Accept::kSealed);
    FrameDecoder d(&r);
    d.feed(c.f0.substr(0, len) + traffic);
    ASSERT_EQ(r.frames, want) << "stale length " << len;
    expect_drops(r, {{0, len, DropReason::kBadPayload}});
    expect_accounting(d, r);
  }
}

TEST(FrameDecoder, ResetDropsBufferedBytesAndStartsANewEpoch) {
  const std::string f = frame("abcdefghij");
  Recorder r;
  FrameDecoder d(&r, kUnsealed);
  d.feed(f.substr(0, 12));
  d.reset();
  expect_drops(r, {{0, 12, DropReason::kReset}});
  EXPECT_TRUE(d.idle());
  // The rest of the old frame is garbage in the new epoch; nothing completes across.
  d.feed(f.substr(12) + frame("new"));
  ASSERT_EQ(r.frames, std::vector<std::string>{"new"});
  expect_drops(r, {{0, 12, DropReason::kReset}, {12, f.size() - 12, DropReason::kGarbage}});
  EXPECT_EQ(r.frame_offsets[0], f.size());
  expect_accounting(d, r);
}

TEST(FrameDecoder, ResetReportsThePendingRunFirst) {
  Recorder r;
  FrameDecoder d(&r, kUnsealed);
  d.feed("zzzQT");
  d.reset();
  expect_drops(r, {{0, 3, DropReason::kGarbage}, {3, 2, DropReason::kReset}});
}

TEST(FrameDecoder, LargeFrameInSmallChunksIsDeliveredOnceWithBoundedBuffering) {
  std::string payload(1 << 20, '\0');
  for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>(i * 131);
  const std::string stream = frame(payload) + frame("tail");
  Recorder r;
  FrameDecoder d(&r, kUnsealed);
  std::size_t max_buffered = 0;
  for (std::size_t i = 0; i < stream.size(); i += 4096) {
    d.feed(stream.substr(i, 4096));
    max_buffered = std::max(max_buffered, d.buffered());
  }
  ASSERT_EQ(r.frames.size(), 2u);
  EXPECT_EQ(r.frames[0], payload);
  EXPECT_EQ(r.frames[1], "tail");
  EXPECT_LE(max_buffered, kHeaderSize + payload.size());
  expect_drops(r, {});
}

std::string d_payload(int i) { return "d" + std::to_string(i) + std::string(40, '.'); }

// A stream mixing every case, fed whole, byte by byte and in random chunks:
// the callbacks must be identical.
std::string mixed_stream() {
  StaleCase c;
  std::string s = "leading garbage Q QT QTX ";
  s += frame(sealed("a"));
  s += raw_frame(0, "");
  s += frame(sealed("b"));
  s += frame("unsealed payload");  // rejected
  s += "QTX\x01QTX\x01";
  s += frame(sealed(std::string(300, 'c')));
  s += c.f0.substr(0, 120);  // stale partial overtaken by traffic below
  for (int i = 0; i < 30; ++i) s += frame(sealed(d_payload(i)));
  s += raw_frame(kDefaultMaxPayload + 7, "zz");
  s += frame(sealed("e"));
  s += c.f0.substr(0, 50);  // stale partial at the end: needs the stall flush
  return s;
}

std::string decode_log(const std::string& stream, const std::vector<std::size_t>& chunks) {
  Recorder r(Recorder::Accept::kSealed);
  FrameDecoder d(&r);
  std::size_t pos = 0;
  for (std::size_t n : chunks) {
    n = std::min(n, stream.size() - pos);
    d.feed(stream.data() + pos, n);
    pos += n;
  }
  d.feed(stream.data() + pos, stream.size() - pos);
  d.stall_flush();
  EXPECT_EQ(d.stats().bytes_fed, d.stats().frame_bytes + d.stats().dropped_total());
  return r.log;
}

TEST(FrameDecoder, ChunkingDoesNotChangeTheResult) {
  const std::string stream = mixed_stream();
  const std::string whole = decode_log(stream, {});
  std::vector<std::size_t> ones(stream.size(), 1);
  EXPECT_EQ(decode_log(stream, ones), whole);
  std::mt19937 rng(12345);
  for (int round = 0; round < 200; ++round) {
    std::vector<std::size_t> chunks;
    std::size_t total = 0;
    std::uniform_int_distribution<std::size_t> len(1, round % 2 ? 9 : 600);
    while (total < stream.size()) {
      chunks.push_back(len(rng));
      total += chunks.back();
    }
    ASSERT_EQ(decode_log(stream, chunks), whole) << "round " << round;
  }
  // And the expected content: 1 + 1 + 1 + 30 + 1 + 1 sealed frames delivered.
  EXPECT_NE(whole.find("D0:25:garbage;"), std::string::npos) << whole;
}

TEST(FrameDecoder, MixedStreamDeliversEveryValidFrameInOrder) {
  Recorder r(Recorder::Accept::kSealed);
  FrameDecoder d(&r);
  d.feed(mixed_stream());
  d.stall_flush();
  std::vector<std::string> want = {sealed("a"), sealed("b"), sealed(std::string(300, 'c'))};
  for (int i = 0; i < 30; ++i) want.push_back(sealed(d_payload(i)));
  want.push_back(sealed("e"));
  EXPECT_EQ(r.frames, want);
  EXPECT_EQ(d.stats().dropped[static_cast<int>(DropReason::kStalled)], 50u);
  expect_accounting(d, r);
}

TEST(FrameDecoder, DropReasonNames) {
  EXPECT_STREQ(drop_reason_name(DropReason::kGarbage), "garbage");
  EXPECT_STREQ(drop_reason_name(DropReason::kBadLength), "bad_length");
  EXPECT_STREQ(drop_reason_name(DropReason::kBadPayload), "bad_payload");
  EXPECT_STREQ(drop_reason_name(DropReason::kStalled), "stalled");
  EXPECT_STREQ(drop_reason_name(DropReason::kReset), "reset");
}

}  // namespace
}  // namespace qtx::wire
