// A cursor over a fuzzer's input: structured values taken from the front,
// zeros once the input runs out. Fuzz targets use it to build test cases.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace qtx::fuzz {

class FuzzInput {
 public:
  FuzzInput(const std::uint8_t* data, std::size_t size) : p_(data), n_(size) {}

  bool empty() const { return n_ == 0; }
  std::size_t remaining() const { return n_; }

  std::uint8_t byte() {
    if (n_ == 0) return 0;
    --n_;
    return *p_++;
  }
  std::uint16_t u16() { return static_cast<std::uint16_t>(byte() << 8 | byte()); }

  // Up to `max` bytes (fewer when the input runs out).
  std::string bytes(std::size_t max) {
    std::size_t k = max < n_ ? max : n_;
    std::string out(reinterpret_cast<const char*>(p_), k);
    p_ += k;
    n_ -= k;
    return out;
  }

 private:
  const std::uint8_t* p_;
  std::size_t n_;
};

}  // namespace qtx::fuzz
