// Text from a peer, made safe to put in one line of a log or in an error
// message: a peer must not be able to forge log lines or drive a terminal.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace qtx {

// `s` with every control byte (C0, DEL), every C1 control (U+0080..U+009F,
// as UTF-8) and every backslash written as \xNN, cut to at most `max` bytes
// of `s` ("..." marks the cut). Other bytes, UTF-8 included, pass unchanged.
std::string printable(std::string_view s, std::size_t max = 200);

}  // namespace qtx
