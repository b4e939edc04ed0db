#include "qtx/wire/sha256.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

namespace qtx::wire {
namespace {

TEST(Sha256, FipsVectors) {
  EXPECT_EQ(Sha256::hex(Sha256::of("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256::hex(Sha256::of("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256::hex(Sha256::of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(Sha256::hex(Sha256::of(std::string(1000000, 'a'))),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, UpdateInPiecesEqualsWhole) {
  std::string data;
  for (int i = 0; i < 1000; ++i) data.push_back(static_cast<char>(i * 13));
  const auto whole = Sha256::of(data);
  for (std::size_t step : {1u, 3u, 63u, 64u, 65u, 500u}) {
    Sha256 h;
    for (std::size_t i = 0; i < data.size(); i += step) h.update(std::string_view(data).substr(i, step));
    EXPECT_EQ(h.finish(), whole) << "step " << step;
  }
}

}  // namespace
}  // namespace qtx::wire

namespace qtx::wire {
namespace {

// The SHA-extension path (where the CPU has it) and the portable one agree.
TEST(Sha256, AcceleratedAndPortableBlocksAgree) {
  std::string data(64 * 97, '\0');
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 2654435761u >> 13);
  std::uint32_t a[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  std::uint32_t b[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  const auto* p = reinterpret_cast<const std::uint8_t*>(data.data());
  detail::sha256_blocks(a, p, 97);
  detail::sha256_blocks_portable(b, p, 97);
  EXPECT_TRUE(std::equal(a, a + 8, b));
  if (!detail::sha256_accelerated()) GTEST_SKIP() << "no SHA extensions on this CPU: only the portable path ran";
}

}  // namespace
}  // namespace qtx::wire
