#include "qtx/printable.h"

namespace qtx {

std::string printable(std::string_view s, std::size_t max) {
  static const char kHex[] = "0123456789abcdef";
  const std::string_view kept = s.substr(0, max);
  std::string out;
  out.reserve(kept.size());
  auto escape = [&out](unsigned char c) {
    out += "\\x";
    out += kHex[c >> 4];
    out += kHex[c & 15];
  };
  for (std::size_t i = 0; i < kept.size(); ++i) {
    const auto c = static_cast<unsigned char>(kept[i]);
    const bool c1 = c == 0xc2 && i + 1 < kept.size() && static_cast<unsigned char>(kept[i + 1]) >= 0x80 &&
                    static_cast<unsigned char>(kept[i + 1]) <= 0x9f;
    if (c < 0x20 || c == 0x7f || c == '\\') {
      escape(c);
    } else if (c1) {
      escape(c);
      escape(static_cast<unsigned char>(kept[++i]));
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > max) out += "...";
  return out;
}

}  // namespace qtx
