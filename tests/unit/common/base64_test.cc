#include "qtx/base64.h"

#include <gtest/gtest.h>

#include <string>

namespace qtx {
namespace {

TEST(Base64, Rfc4648Vectors) {
  const char* const kPairs[][2] = {{"", ""},
                                   {"f", "Zg=="},
                                   {"fo", "Zm8="},
                                   {"foo", "Zm9v"},
                                   {"foob", "Zm9vYg=="},
                                   {"fooba", "Zm9vYmE="},
                                   {"foobar", "Zm9vYmFy"}};
  for (const auto& p : kPairs) {
    EXPECT_EQ(base64_encode(p[0]), p[1]);
    std::string out = "stale";
    ASSERT_TRUE(base64_decode(p[1], &out)) << p[1];
    EXPECT_EQ(out, p[0]);
  }
}

TEST(Base64, EveryByteValueRoundTrips) {
  for (std::size_t len = 0; len < 260; ++len) {
    std::string in(len, '\0');
    for (std::size_t i = 0; i < len; ++i) in[i] = static_cast<char>((i * 7 + len) & 0xff);
    const std::string enc = base64_encode(in);
    ASSERT_EQ(enc.size(), (len + 2) / 3 * 4);
    std::string out;
    ASSERT_TRUE(base64_decode(enc, &out));
    ASSERT_EQ(out, in);
  }
  EXPECT_EQ(base64_encode(std::string("\xfb\xff\xbf", 3)), "+/+/");
}

TEST(Base64, InvalidInputIsRejected) {
  std::string out;
  for (const char* bad : {"Zg", "Zg=", "Zm9vY", "Z===", "====", "Zg==Zg==", "Zg=a", "Z=g=", "Zm9v\n", "Zm 9v", "Zm9-",
                          "Zm9_", "Zm9v=", "Zg\x80="}) {
    EXPECT_FALSE(base64_decode(bad, &out)) << '"' << bad << '"';
  }
  EXPECT_FALSE(base64_decode(std::string("Zm\0v", 4), &out));
}

}  // namespace
}  // namespace qtx
