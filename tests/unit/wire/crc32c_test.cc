#include "qtx/wire/crc32c.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>

namespace qtx::wire::crc32c {
namespace {

// Vectors from RFC 3720, B.4, as used by leveldb's crc32c_test.
TEST(Crc32c, StandardResults) {
  char buf[32];
  std::memset(buf, 0, sizeof(buf));
  EXPECT_EQ(value(buf, sizeof(buf)), 0x8a9136aau);
  std::memset(buf, 0xff, sizeof(buf));
  EXPECT_EQ(value(buf, sizeof(buf)), 0x62a8ab43u);
  for (int i = 0; i < 32; ++i) buf[i] = static_cast<char>(i);
  EXPECT_EQ(value(buf, sizeof(buf)), 0x46dd794eu);
  for (int i = 0; i < 32; ++i) buf[i] = static_cast<char>(31 - i);
  EXPECT_EQ(value(buf, sizeof(buf)), 0x113fdb5cu);
  EXPECT_EQ(value("123456789", 9), 0xe3069283u);
}

TEST(Crc32c, ExtendEqualsWholeAtEverySplit) {
  std::string data;
  for (int i = 0; i < 100; ++i) data.push_back(static_cast<char>(i * 7 + 3));
  const std::uint32_t whole = value(data.data(), data.size());
  for (std::size_t cut = 0; cut <= data.size(); ++cut) {
    EXPECT_EQ(extend(value(data.data(), cut), data.data() + cut, data.size() - cut), whole);
  }
}

TEST(Crc32c, CombineEqualsTheWholeAtEverySplit) {
  std::string data;
  for (int i = 0; i < 300; ++i) data.push_back(static_cast<char>(i * 31 + 11));
  const std::uint32_t whole = value(data.data(), data.size());
  for (std::size_t cut = 0; cut <= data.size(); ++cut) {
    const std::uint32_t a = value(data.data(), cut);
    const std::uint32_t b = value(data.data() + cut, data.size() - cut);
    EXPECT_EQ(combine(a, b, data.size() - cut), whole) << "cut " << cut;
  }
}

TEST(Crc32c, CombineOfLongRunsOfZeroesMatchesHashingThem) {
  // Lengths that exercise every byte of the length, up to the 16 MiB payload limit.
  const std::uint32_t prefix = value("prefix", 6);
  for (std::size_t n :
       {std::size_t{1}, std::size_t{255}, std::size_t{256}, std::size_t{65537}, std::size_t{16} << 20}) {
    const std::string zeroes(n, '\0');
    EXPECT_EQ(combine(prefix, value(zeroes.data(), n), n), extend(prefix, zeroes.data(), n)) << n;
  }
}

TEST(Crc32c, SubstringFromRunningValues) {
  // The decoder's identity: crc(data[a, b)) = C(b) ^ combine(C(a), 0, b - a).
  std::string data;
  for (int i = 0; i < 200; ++i) data.push_back(static_cast<char>(i * i + 5));
  for (std::size_t a = 0; a <= data.size(); a += 7) {
    for (std::size_t b = a; b <= data.size(); b += 13) {
      const std::uint32_t ca = value(data.data(), a), cb = value(data.data(), b);
      EXPECT_EQ(cb ^ combine(ca, 0, b - a), value(data.data() + a, b - a)) << a << ".." << b;
    }
  }
}

TEST(Crc32c, MaskRoundTripsAndDiffers) {
  const std::uint32_t crc = value("foo", 3);
  EXPECT_NE(crc, mask(crc));
  EXPECT_NE(crc, mask(mask(crc)));
  EXPECT_EQ(crc, unmask(mask(crc)));
  EXPECT_EQ(crc, unmask(unmask(mask(mask(crc)))));
}

}  // namespace
}  // namespace qtx::wire::crc32c
