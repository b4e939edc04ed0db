#include "qtx/quote.h"

namespace qtx {
namespace {

constexpr char kHex[] = "0123456789abcdef";

void append_hex(std::string* out, const char* prefix, unsigned char c) {
  *out += prefix;
  *out += kHex[c >> 4];
  *out += kHex[c & 15];
}

// Whether s[i] starts a C1 control in UTF-8 (0xc2 then 0x80..0x9f).
bool c1_at(std::string_view s, std::size_t i) {
  return static_cast<unsigned char>(s[i]) == 0xc2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) >= 0x80 &&
         static_cast<unsigned char>(s[i + 1]) <= 0x9f;
}

}  // namespace

std::string printable(std::string_view s, std::size_t max) {
  const std::string_view kept = s.substr(0, max);
  std::string out;
  out.reserve(kept.size());
  for (std::size_t i = 0; i < kept.size(); ++i) {
    const auto c = static_cast<unsigned char>(kept[i]);
    if (c < 0x20 || c == 0x7f || c == '\\') {
      append_hex(&out, "\\x", c);
    } else if (c1_at(kept, i)) {
      append_hex(&out, "\\x", c);
      append_hex(&out, "\\x", static_cast<unsigned char>(kept[++i]));
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > max) out += "...";
  return out;
}

std::string json_quote(std::string_view s) {
  std::string out = "\"";
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    // The text stays exact, and a terminal showing the JSON gets no control
    // from it.
    if (c1_at(s, i)) {
      append_hex(&out, "\\u00", static_cast<unsigned char>(s[++i]));
      continue;
    }
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          append_hex(&out, "\\u00", c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
  return out;
}

std::string yaml_quote(std::string_view s) {
  std::string out = "\"";
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          append_hex(&out, "\\x", c);
        } else {
          out += ch;
        }
    }
  }
  out += '"';
  return out;
}

std::string shell_quote(std::string_view arg) {
  const bool plain = !arg.empty() && arg.find_first_not_of(
                                         "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                         "0123456789_-+=./:,@%") == std::string_view::npos;
  if (plain) return std::string(arg);
  std::string out = "'";
  for (const char c : arg) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  out += '\'';
  return out;
}

}  // namespace qtx
