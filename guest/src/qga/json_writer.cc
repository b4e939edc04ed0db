#include "qga/json_writer.h"

#include <cstdio>

namespace qtx::agent::qga {
namespace {

void write_u16(unsigned v, std::string* out) {
  char b[8];
  std::snprintf(b, sizeof(b), "\\u%04X", v & 0xFFFF);
  out->append(b);
}

void write_codepoint(std::uint32_t cp, std::string* out) {
  if (cp >= 0x10000) {
    cp -= 0x10000;
    write_u16(0xD800 + (cp >> 10), out);
    write_u16(0xDC00 + (cp & 0x3FF), out);
  } else {
    write_u16(cp, out);
  }
}

// Decodes one UTF-8 sequence at s[i]; returns its length, or 0 when invalid.
std::size_t decode_utf8(const std::string& s, std::size_t i, std::uint32_t* cp) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  std::size_t len;
  std::uint32_t v;
  if (b0 < 0x80) {
    *cp = b0;
    return 1;
  } else if ((b0 & 0xE0) == 0xC0) {
    len = 2;
    v = b0 & 0x1F;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3;
    v = b0 & 0x0F;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4;
    v = b0 & 0x07;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  for (std::size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) return 0;
    v = (v << 6) | (b & 0x3F);
  }
  static const std::uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (v < kMin[len] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
  *cp = v;
  return len;
}

void write_string(const std::string& s, std::string* out) {
  out->push_back('"');
  for (std::size_t i = 0; i < s.size();) {
    std::uint32_t cp = 0;
    std::size_t len = decode_utf8(s, i, &cp);
    if (len == 0) {
      cp = 0xFFFD;
      len = 1;
    }
    i += len;
    switch (cp) {
      case '"': out->append("\\\""); continue;
      case '\\': out->append("\\\\"); continue;
      case '\b': out->append("\\b"); continue;
      case '\f': out->append("\\f"); continue;
      case '\n': out->append("\\n"); continue;
      case '\r': out->append("\\r"); continue;
      case '\t': out->append("\\t"); continue;
      default: break;
    }
    if (cp < 0x20 || cp >= 0x7F) {
      write_codepoint(cp, out);
    } else {
      out->push_back(static_cast<char>(cp));
    }
  }
  out->push_back('"');
}

}  // namespace

void write_json(const Json& v, std::string* out) {
  switch (v.type()) {
    case Json::value_t::object: {
      out->push_back('{');
      bool first = true;
      for (const auto& [k, m] : v.items()) {
        if (!first) out->append(", ");
        first = false;
        write_string(k, out);
        out->append(": ");
        write_json(m, out);
      }
      out->push_back('}');
      return;
    }
    case Json::value_t::array: {
      out->push_back('[');
      bool first = true;
      for (const auto& m : v) {
        if (!first) out->append(", ");
        first = false;
        write_json(m, out);
      }
      out->push_back(']');
      return;
    }
    case Json::value_t::string: return write_string(v.get_ref<const std::string&>(), out);
    case Json::value_t::boolean: out->append(v.get<bool>() ? "true" : "false"); return;
    case Json::value_t::number_integer: out->append(std::to_string(v.get<std::int64_t>())); return;
    case Json::value_t::number_unsigned: out->append(std::to_string(v.get<std::uint64_t>())); return;
    case Json::value_t::number_float: {
      char b[32];
      std::snprintf(b, sizeof(b), "%.17g", v.get<double>());
      out->append(b);
      return;
    }
    case Json::value_t::null:
    case Json::value_t::discarded:
    case Json::value_t::binary: out->append("null"); return;
  }
}

}  // namespace qtx::agent::qga
