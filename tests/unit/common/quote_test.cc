#include "qtx/quote.h"

#include <gtest/gtest.h>

#include <string>

namespace qtx {
namespace {

// Control bytes, a C1 control (CSI), DEL, a backslash, a quote, valid UTF-8
// and a lone non-UTF-8 byte: what each function must get right.
constexpr char kHostileBytes[] =
    "a\nb\rc\td\0e\x7f \x1b[31m \xc2\x9b"
    "1m \\ \" \xc3\xbc \xff";
const std::string kHostile(kHostileBytes, sizeof(kHostileBytes) - 1);

TEST(Printable, PlainTextAndUtf8PassUnchanged) {
  EXPECT_EQ(printable("hello, world"), "hello, world");
  EXPECT_EQ(printable("gr\xc3\xbc\xc3\x9f dich \xe2\x82\xac"), "gr\xc3\xbc\xc3\x9f dich \xe2\x82\xac");
  EXPECT_EQ(printable(""), "");
}

TEST(Printable, ControlBytesC1ControlsAndBackslashesAreEscaped) {
  EXPECT_EQ(printable(std::string("a\nb\rc\td\0e\x7f", 10)), "a\\x0ab\\x0dc\\x09d\\x00e\\x7f");
  EXPECT_EQ(printable("\x1b[31mred"), "\\x1b[31mred");
  EXPECT_EQ(printable("\xc2\x9b"
                      "31m \xc2\x80 \xc2\x9f \xc2\xa0"),
            "\\xc2\\x9b31m \\xc2\\x80 \\xc2\\x9f \xc2\xa0");
  EXPECT_EQ(printable("C:\\path"), "C:\\x5cpath");
  EXPECT_EQ(printable(kHostile), "a\\x0ab\\x0dc\\x09d\\x00e\\x7f \\x1b[31m \\xc2\\x9b1m \\x5c \" \xc3\xbc \xff");
}

TEST(Printable, LongTextIsCutAtMaxInputBytes) {
  EXPECT_EQ(printable("abcdef", 3), "abc...");
  EXPECT_EQ(printable("abc", 3), "abc");
  EXPECT_EQ(printable("\n\n\n\n", 2), "\\x0a\\x0a...");
  // A C1 pair cut in half at the end: the lone lead byte passes as it is.
  EXPECT_EQ(printable("x\xc2\x9b", 2), "x\xc2...");
  EXPECT_EQ(printable(std::string(201, 'a')), std::string(200, 'a') + "...");
}

TEST(GuestText, EscapesAsPrintableAndNeverCuts) {
  EXPECT_EQ(guest_text(kHostile), printable(kHostile));
  const std::string long_text = std::string(5000, 'x') + "\n";
  EXPECT_EQ(guest_text(long_text), std::string(5000, 'x') + "\\x0a");
}

TEST(JsonQuote, EscapesWhatJsonAndTerminalsNeed) {
  EXPECT_EQ(json_quote(""), "\"\"");
  EXPECT_EQ(json_quote("plain \xc3\xbc"), "\"plain \xc3\xbc\"");
  EXPECT_EQ(json_quote(kHostile), "\"a\\nb\\rc\\td\\u0000e\\u007f \\u001b[31m \\u009b1m \\\\ \\\" \xc3\xbc \xff\"");
  // A lone 0xc2 at the end is not a C1 control: it passes as it is.
  EXPECT_EQ(json_quote("\xc2"), "\"\xc2\"");
}

TEST(YamlQuote, EscapesWhatADoubleQuotedScalarNeeds) {
  EXPECT_EQ(yaml_quote(""), "\"\"");
  EXPECT_EQ(yaml_quote("yes: #1"), "\"yes: #1\"");
  // C1 controls and non-UTF-8 bytes pass: YAML reads them as they are.
  EXPECT_EQ(yaml_quote(kHostile),
            "\"a\\nb\\x0dc\\td\\x00e\\x7f \\x1b[31m \xc2\x9b"
            "1m \\\\ \\\" \xc3\xbc \xff\"");
}

TEST(ShellQuote, QuotesOnlyWhatNeedsIt) {
  EXPECT_EQ(shell_quote("qemu-img"), "qemu-img");
  EXPECT_EQ(shell_quote("backing_file=/a/b.qcow2,x@y:%1+2"), "backing_file=/a/b.qcow2,x@y:%1+2");
  EXPECT_EQ(shell_quote(""), "''");
  EXPECT_EQ(shell_quote("a b"), "'a b'");
  EXPECT_EQ(shell_quote("it's"), "'it'\\''s'");
  EXPECT_EQ(shell_quote("$(rm -rf /)\n"), "'$(rm -rf /)\n'");
  EXPECT_EQ(shell_quote("\xc3\xbc"), "'\xc3\xbc'");
}

}  // namespace
}  // namespace qtx
