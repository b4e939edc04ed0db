// Serialises a JSON value the way qemu-ga writes its answers: ", " and ": "
// between members, every non-ASCII character (and every control character)
// as \uXXXX, so the output is plain ASCII whatever a string holds. Bytes of a
// string that are not valid UTF-8 are written as U+FFFD.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace qtx::agent::qga {

using Json = nlohmann::ordered_json;

void write_json(const Json& value, std::string* out);

}  // namespace qtx::agent::qga
