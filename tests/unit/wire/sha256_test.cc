#include "qtx/wire/sha256.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>

namespace qtx::wire {
namespace {

TEST(Sha256, FipsVectors) {
  EXPECT_EQ(Sha256::hex(Sha256::of("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256::hex(Sha256::of("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256::hex(Sha256::of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(Sha256::hex(Sha256::of("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
                                   "ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu")),
            "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
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

// The lengths where padding spills into a second block (55/56, 119/120) or
// ends one exactly (63/64), against digests computed independently.
TEST(Sha256, PaddingBoundaries) {
  const std::pair<std::size_t, const char*> cases[] = {
      {55, "576a1bf8d4478657e6dc4af9398544765c2a92cde28478b019235cfed315fc09"},
      {56, "9b20501dfd1d99161c257950f3444f3e49230c351c5c8e0943ef369f85f5205d"},
      {63, "30b345906b493f06f69444b6521113511c242f30e29840462950035043682f1e"},
      {64, "d8bc63b4fc1156e5e7d95a418b9bf54cd3174bedbc2db40f74895349b229b3c0"},
      {119, "7a6589821178918ca8d9edaba5abfc1e9b2669564f4469b66885379c1530b2c8"},
      {120, "655250427d56b1b0eeb8497d21428704273458a01772d6881b65c0abac0f8a98"},
  };
  for (const auto& [n, digest] : cases) {
    std::string data;
    for (std::size_t i = 0; i < n; ++i) data.push_back(static_cast<char>(i * 7));
    EXPECT_EQ(Sha256::hex(Sha256::of(data)), digest) << n << " bytes";
  }
}

// A copy continues from the state it copied, independently of the original.
TEST(Sha256, CopyCarriesTheState) {
  Sha256 a;
  a.update("abc");
  Sha256 b = a;
  a.update("def");
  EXPECT_EQ(b.finish(), Sha256::of("abc"));
  EXPECT_EQ(a.finish(), Sha256::of("abcdef"));
}

}  // namespace
}  // namespace qtx::wire
