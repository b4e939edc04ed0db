// Text the guest chose (hostname, OS name, user names, keys, mountpoints,
// versions, ...) as the CLI prints it in human output. A guest must not be
// able to drive the user's terminal (escape sequences, OSC 52 clipboard
// writes) or forge lines of output, so every such string goes through here:
// control bytes, C1 controls, DEL and backslash become \xNN (qtx/printable.h);
// other text, UTF-8 included, stays readable and is never cut.
//
// Not for --json output (JSON quoting escapes it there) nor for exec's
// stdout and stderr, which are the data the user asked for.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "qtx/printable.h"

namespace qtx::cli {

inline std::string guest_text(std::string_view s) { return printable(s, static_cast<std::size_t>(-1)); }

}  // namespace qtx::cli
