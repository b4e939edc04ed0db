// Text written into another syntax, one function per destination. They
// differ on purpose, each escaping exactly what its reader needs:
//
//   printable   a line of a log or an error message; not quoted, bounded
//   guest_text  human output of the qtx tool; printable, never cut
//   json_quote  a JSON string literal
//   yaml_quote  a YAML double-quoted scalar (cloud-init seeds)
//   shell_quote one word of a POSIX shell command line, for showing a command
//
// printable and guest_text guard readers of text a peer shaped: a peer must
// not be able to forge log lines or drive a terminal (escape sequences, OSC 52
// clipboard writes). The quoters keep the text exact for a parser.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace qtx {

// `s` with every control byte (C0, DEL), every C1 control (U+0080..U+009F,
// as UTF-8) and every backslash written as \xNN, cut to at most `max` bytes
// of `s` ("..." marks the cut). Other bytes, UTF-8 included, pass unchanged.
std::string printable(std::string_view s, std::size_t max = 200);

// Text the guest chose (hostname, OS name, user names, keys, mountpoints,
// versions, ...) as the qtx tool prints it in human output: escaped as by
// printable, never cut. Not for --json output (json_quote escapes it there)
// nor for exec's stdout and stderr, which are the data the user asked for.
inline std::string guest_text(std::string_view s) { return printable(s, static_cast<std::size_t>(-1)); }

// `s` as a JSON string literal, quotes included: '"', '\\', \n, \r, \t by
// name, other control bytes, DEL and C1 controls (as the protobuf JSON
// printer does) as \u00NN. Other bytes pass unchanged, so invalid UTF-8 stays
// invalid: the caller gives text, or accepts what a JSON reader makes of it.
std::string json_quote(std::string_view s);

// `s` as a YAML double-quoted scalar, quotes included: '"', '\\', \n and \t
// by name, other control bytes and DEL as \xNN. No value can change the
// structure of the document it is put in.
std::string yaml_quote(std::string_view s);

// `arg` as one shell word: unchanged when it is made only of letters, digits
// and _-+=./:,@% (and is not empty), else in single quotes with each '
// written as '\''.
std::string shell_quote(std::string_view arg);

}  // namespace qtx
