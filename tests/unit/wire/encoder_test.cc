#include "qtx/wire/encoder.h"

#include <gtest/gtest.h>

#include <string>

#include "qtx/wire/seal.h"

namespace qtx::wire {
namespace {

TEST(Encoder, HeaderIsMagicAndBigEndianLength) {
  auto h = frame_header(0x01020304u);
  EXPECT_EQ(std::string(h.data(), h.size()), std::string("QTX\x01\x01\x02\x03\x04", 8));
}

TEST(Encoder, AppendFrameWritesOneContiguousFrame) {
  std::string out = "prefix";
  ASSERT_TRUE(append_frame("abc", &out).ok());
  EXPECT_EQ(out, std::string("prefixQTX\x01\x00\x00\x00\x03"
                             "abc",
                             17));
}

TEST(Encoder, EmptyAndOversizedPayloadsAreRejectedAndLeaveOutputAlone) {
  std::string out = "keep";
  Status s = append_frame("", &out);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(s.message(), "frame payload is empty");
  s = append_frame("12345", &out, 4);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(s.message(), "frame payload of 5 bytes exceeds the limit of 4");
  EXPECT_EQ(out, "keep");
  EXPECT_TRUE(append_frame("1234", &out, 4).ok());
}

TEST(Encoder, FinishSealedFrameFillsHeaderAndSealInPlace) {
  std::string f(kSealedFramePrefix, '?');
  f += "body";
  ASSERT_TRUE(finish_sealed_frame(&f).ok());
  EXPECT_EQ(f.substr(0, 8), std::string("QTX\x01\x00\x00\x00\x09", 8));
  EXPECT_EQ(f[8], '\x0d');
  EXPECT_TRUE(verify_seal(std::string_view(f).substr(kHeaderSize)));
  EXPECT_EQ(f.substr(kSealedFramePrefix), "body");
}

TEST(Encoder, FinishSealedFrameRejectsShortAndOversizedBuffers) {
  std::string shortbuf(kSealedFramePrefix - 1, '?');
  EXPECT_EQ(finish_sealed_frame(&shortbuf).code(), Status::Code::kInvalidArgument);
  std::string big(kSealedFramePrefix + 10, '?');
  EXPECT_EQ(finish_sealed_frame(&big, 14).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(big, std::string(kSealedFramePrefix + 10, '?'));
  EXPECT_TRUE(finish_sealed_frame(&big, 15).ok());
}

TEST(Seal, DetectsEveryFlippedByte) {
  std::string p;
  append_sealed("some envelope bytes", &p);
  ASSERT_TRUE(verify_seal(p));
  for (std::size_t i = 0; i < p.size(); ++i) {
    std::string bad = p;
    bad[i] = static_cast<char>(bad[i] ^ 0x01);
    EXPECT_FALSE(verify_seal(bad)) << "byte " << i;
  }
  EXPECT_FALSE(verify_seal(p.substr(0, p.size() - 1)));
  EXPECT_FALSE(verify_seal(""));
  EXPECT_FALSE(verify_seal(std::string("\x0d\x00\x00\x00", 4)));
}

TEST(Seal, EmptyBodyIsSealable) {
  std::string p;
  append_sealed("", &p);
  EXPECT_EQ(p.size(), kSealSize);
  EXPECT_TRUE(verify_seal(p));
}

TEST(StatusType, CodesAndMessages) {
  EXPECT_TRUE(Status().ok());
  EXPECT_EQ(Status().to_string(), "ok");
  Status s = Status::error(Status::Code::kInvalidArgument, "bad thing");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.to_string(), "invalid argument: bad thing");
  Status copy = s;
  EXPECT_EQ(copy.message(), "bad thing");
  EXPECT_STREQ(code_name(Status::Code::kDisconnected), "disconnected");
}

}  // namespace
}  // namespace qtx::wire
