// Standard base64 (RFC 4648 section 4: the + / alphabet, '=' padding).
#pragma once

#include <string>
#include <string_view>

namespace qtx {

// `in` in base64, padded to a multiple of 4 characters.
std::string base64_encode(std::string_view in);

// Decodes padded base64 into *out. False on anything else: a length that is
// not a multiple of 4, a byte outside the alphabet (whitespace included),
// padding anywhere but in the last one or two places. The empty string
// decodes to the empty string. *out is unspecified after a false.
bool base64_decode(std::string_view in, std::string* out);

}  // namespace qtx
