#include "qtx/wire/envelope_codec.h"

#include <gtest/gtest.h>

#include <string>

#include "qtx/wire/decoder.h"
#include "qtx/wire/encoder.h"
#include "support/frames.h"

namespace qtx::wire {
namespace {

namespace v1 = agent::v1;

v1::Envelope ping_request(std::uint64_t id, std::string payload) {
  v1::Envelope env;
  env.set_id(id);
  env.mutable_request()->mutable_ping()->set_payload(std::move(payload));
  return env;
}

TEST(EnvelopeCodec, RoundTripThroughTheDecoder) {
  std::string stream;
  for (std::uint64_t id = 1; id <= 3; ++id) {
    ASSERT_TRUE(append_envelope_frame(ping_request(id, "p" + std::to_string(id)), &stream).ok());
  }
  testing::Recorder r;
  FrameDecoder d(&r);
  d.feed(stream);
  ASSERT_EQ(r.frames.size(), 3u);
  for (std::uint64_t id = 1; id <= 3; ++id) {
    v1::Envelope env;
    ASSERT_TRUE(parse_envelope(r.frames[id - 1], &env));
    EXPECT_EQ(env.id(), id);
    EXPECT_EQ(env.request().ping().payload(), "p" + std::to_string(id));
  }
}

TEST(EnvelopeCodec, SealedPayloadStartsWithTheCheckField) {
  std::string f;
  ASSERT_TRUE(append_envelope_frame(ping_request(7, "x"), &f).ok());
  EXPECT_EQ(f[kHeaderSize], '\x0d');
  v1::Envelope parsed;
  ASSERT_TRUE(parsed.ParseFromString(f.substr(kHeaderSize)));  // a plain protobuf parse works too
  EXPECT_NE(parsed.check(), 0u);
  EXPECT_EQ(parsed.id(), 7u);
}

TEST(EnvelopeCodec, RejectsUnsealedTamperedAndBodylessPayloads) {
  v1::Envelope env = ping_request(1, "hello");
  std::string plain = env.SerializeAsString();
  v1::Envelope out;
  EXPECT_FALSE(parse_envelope(plain, &out));

  std::string f;
  ASSERT_TRUE(append_envelope_frame(env, &f).ok());
  std::string payload = f.substr(kHeaderSize);
  payload.back() = static_cast<char>(payload.back() ^ 0x20);
  EXPECT_FALSE(parse_envelope(payload, &out));

  v1::Envelope empty;
  empty.set_id(5);
  std::string g;
  ASSERT_TRUE(append_envelope_frame(empty, &g).ok());
  EXPECT_FALSE(parse_envelope(std::string_view(g).substr(kHeaderSize), &out));

  // Sealed bytes that are not protobuf at all.
  EXPECT_FALSE(parse_envelope(testing::sealed("\xff\xff\xff"), &out));
}

TEST(EnvelopeCodec, RefusesOversizedAndPresealedEnvelopes) {
  std::string out = "keep";
  Status s = append_envelope_frame(ping_request(1, std::string(100, 'x')), &out, 64);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(out, "keep");
  v1::Envelope env = ping_request(1, "x");
  env.set_check(42);
  EXPECT_EQ(append_envelope_frame(env, &out).code(), Status::Code::kInternal);
  EXPECT_EQ(out, "keep");
}

}  // namespace
}  // namespace qtx::wire
